/* idmap.c: unit tests for lib/idmap.c (int64 -> uint64 open addressing). */
#include <criterion/criterion.h>
#include <stdint.h>

#include "idmap.h"

Test(idmap, empty_map)
{
	struct idmap m;
	uint64_t v = 12345;

	idmap_init(&m);
	cr_assert_eq(idmap_get(&m, 0, &v), 0);
	cr_assert_eq(idmap_get(&m, -1, &v), 0);
	cr_assert_eq(v, 12345u, "a miss leaves *val alone");
	idmap_clear(&m); /* clear of a never-used map is fine */
	cr_assert_eq(m.n, 0u);
	idmap_free(&m);
	idmap_free(&m); /* and free is idempotent */
}

Test(idmap, put_get_duplicates_keep_max)
{
	struct idmap m;
	uint64_t v;

	idmap_init(&m);
	cr_assert_eq(idmap_put(&m, 7, 100), 0);
	cr_assert_eq(m.n, 1u);
	cr_assert_eq(idmap_get(&m, 7, &v), 1);
	cr_assert_eq(v, 100u);
	cr_assert_eq(idmap_get(&m, 8, &v), 0);

	cr_assert_eq(idmap_put(&m, 7, 50), 1, "duplicate reports 1");
	cr_assert_eq(idmap_get(&m, 7, &v), 1);
	cr_assert_eq(v, 100u, "a smaller value does not replace a larger one");
	cr_assert_eq(idmap_put(&m, 7, 100), 1);
	cr_assert_eq(idmap_put(&m, 7, 101), 1);
	cr_assert_eq(idmap_get(&m, 7, &v), 1);
	cr_assert_eq(v, 101u, "a larger value replaces");
	cr_assert_eq(idmap_put(&m, 7, UINT64_MAX), 1);
	cr_assert_eq(idmap_get(&m, 7, &v), 1);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(m.n, 1u, "duplicates do not count");

	/* value 0 is a value like any other */
	cr_assert_eq(idmap_put(&m, 9, 0), 0);
	cr_assert_eq(idmap_get(&m, 9, &v), 1);
	cr_assert_eq(v, 0u);
	idmap_free(&m);
}

Test(idmap, negative_and_extreme_keys)
{
	const int64_t keys[] = {0,
	                        -1,
	                        1,
	                        INT64_MIN,
	                        INT64_MAX,
	                        INT64_MIN + 1,
	                        INT64_MAX - 1,
	                        -1000000007,
	                        1000000007,
	                        (int64_t)1 << 62,
	                        -((int64_t)1 << 62)};
	const size_t n = sizeof(keys) / sizeof(keys[0]);
	struct idmap m;
	uint64_t v;

	idmap_init(&m);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(idmap_put(&m, keys[i], i + 1), 0, "key %lld", (long long)keys[i]);
	cr_assert_eq(m.n, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(idmap_get(&m, keys[i], &v), 1, "key %lld", (long long)keys[i]);
		cr_assert_eq(v, i + 1);
		cr_assert_eq(idmap_put(&m, keys[i], 0), 1);
	}
	cr_assert_eq(idmap_get(&m, 2, &v), 0);
	cr_assert_eq(idmap_get(&m, -2, &v), 0);
	idmap_free(&m);
}

Test(idmap, growth_past_100000_keys)
{
	struct idmap m;
	uint64_t v;
	const int64_t N = 150000;

	idmap_init(&m);
	for (int64_t i = 0; i < N; i++) {
		int64_t k = i % 2 ? i * 7919 : -i * 104729; /* mixed signs, spread out */
		cr_assert_eq(idmap_put(&m, k, (uint64_t)i), 0, "put %lld", (long long)k);
	}
	cr_assert_eq(m.n, (size_t)N);
	cr_assert(m.cap >= 2 * m.n, "load factor kept at most 1/2 (cap %zu, n %zu)", m.cap, m.n);
	cr_assert_eq(m.cap & (m.cap - 1), 0u, "cap is a power of two");
	for (int64_t i = 0; i < N; i++) {
		int64_t k = i % 2 ? i * 7919 : -i * 104729;
		cr_assert_eq(idmap_get(&m, k, &v), 1, "lost key %lld", (long long)k);
		cr_assert_eq(v, (uint64_t)i);
	}
	/* keys never put are absent */
	for (int64_t i = 1; i < 1000; i++)
		cr_assert_eq(idmap_get(&m, i * 7919 + 1, &v), 0);
	/* re-putting all of them finds every one as a duplicate */
	for (int64_t i = 0; i < N; i += 97) {
		int64_t k = i % 2 ? i * 7919 : -i * 104729;
		cr_assert_eq(idmap_put(&m, k, 0), 1);
	}
	cr_assert_eq(m.n, (size_t)N);
	idmap_free(&m);
}

Test(idmap, clear)
{
	struct idmap m;
	uint64_t v;

	idmap_init(&m);
	for (int64_t i = 0; i < 5000; i++)
		idmap_put(&m, i, 1000);
	size_t cap = m.cap;
	idmap_clear(&m);
	cr_assert_eq(m.n, 0u);
	cr_assert_eq(m.cap, cap, "clear keeps the table");
	for (int64_t i = 0; i < 5000; i++)
		cr_assert_eq(idmap_get(&m, i, &v), 0, "key %lld survived clear", (long long)i);
	/* after clear, an old key is new again and takes a smaller value */
	cr_assert_eq(idmap_put(&m, 3, 1), 0);
	cr_assert_eq(idmap_get(&m, 3, &v), 1);
	cr_assert_eq(v, 1u);
	cr_assert_eq(m.n, 1u);
	idmap_free(&m);
}

/* longest run of occupied slots (wrapping) */
static size_t
longest_run(const struct idmap *m)
{
	size_t best = 0, run = 0;

	for (size_t i = 0; i < 2 * m->cap; i++) {
		if (m->used[i & (m->cap - 1)]) {
			if (++run > best)
				best = run;
		} else {
			run = 0;
		}
		if (best >= m->cap)
			break;
	}
	return best;
}

/* Ids with zero low bits (i << 32, i << 40: ids built from a shard or a
 * timestamp in the high bits) must spread over the table like any other
 * ids.  If the slot is taken from bits that depend only on the key's low
 * bits, they all land on a handful of slots, one probe run holds them all
 * and every put and get degrades to a linear scan. */
Test(idmap, structured_keys_spread, .timeout = 20)
{
	const int shifts[] = {20, 32, 40, 48};
	struct idmap m;
	uint64_t v;

	for (size_t s = 0; s < sizeof(shifts) / sizeof(shifts[0]); s++) {
		idmap_init(&m);
		for (int64_t i = 1; i <= 4096; i++)
			cr_assert_eq(idmap_put(&m, i << shifts[s], (uint64_t)i), 0);
		for (int64_t i = 1; i <= 4096; i++) {
			cr_assert_eq(idmap_get(&m, i << shifts[s], &v), 1);
			cr_assert_eq(v, (uint64_t)i);
		}
		size_t run = longest_run(&m);
		cr_expect(run < 256,
		          "keys i << %d: a probe run of %zu slots (of %zu, %zu keys): the hash "
		          "ignores the high bits of the key",
		          shifts[s], run, m.cap, m.n);
		idmap_free(&m);
	}
	/* for contrast, consecutive ids spread fine */
	idmap_init(&m);
	for (int64_t i = 1; i <= 4096; i++)
		idmap_put(&m, i, 1);
	cr_assert(longest_run(&m) < 256, "run %zu", longest_run(&m));
	idmap_free(&m);
}
