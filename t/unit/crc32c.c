/* crc32c.c: unit tests for lib/crc32c.c (CRC-32C of log frames). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "crc32c.h"

/* ref: the bitwise definition, independent of the table and SSE4.2 paths */
static uint32_t
ref(uint32_t crc, const unsigned char *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

static void
fill(unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
}

Test(crc32c, check_value)
{
	cr_assert_eq(crc32c(0, "123456789", 9), 0xE3069283u);
}

/* RFC 3720 (iSCSI) appendix B.4 test vectors */
Test(crc32c, rfc3720_vectors)
{
	unsigned char b[32];

	memset(b, 0, sizeof(b));
	cr_assert_eq(crc32c(0, b, 32), 0x8A9136AAu);
	memset(b, 0xff, sizeof(b));
	cr_assert_eq(crc32c(0, b, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)i;
	cr_assert_eq(crc32c(0, b, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)(31 - i);
	cr_assert_eq(crc32c(0, b, 32), 0x113FDB5Cu);
}

Test(crc32c, empty_input)
{
	cr_assert_eq(crc32c(0, "", 0), 0u);
	cr_assert_eq(crc32c(0, NULL, 0), 0u);
	/* an empty continuation leaves any running value alone */
	cr_assert_eq(crc32c(0xE3069283u, "x", 0), 0xE3069283u);
	cr_assert_eq(crc32c(0xFFFFFFFFu, NULL, 0), 0xFFFFFFFFu);
	cr_assert_eq(crc32c(0x12345678u, NULL, 0), 0x12345678u);
}

Test(crc32c, incremental_equals_one_shot)
{
	unsigned char b[1031];
	uint32_t whole;

	fill(b, sizeof(b), 7);
	whole = crc32c(0, b, sizeof(b));
	for (size_t k = 0; k <= sizeof(b); k++) {
		uint32_t c = crc32c(crc32c(0, b, k), b + k, sizeof(b) - k);
		cr_assert_eq(c, whole, "split at %zu: %08x != %08x", k, c, whole);
	}
	/* three pieces, odd sizes */
	uint32_t c = crc32c(0, b, 3);
	c = crc32c(c, b + 3, 500);
	c = crc32c(c, b + 503, sizeof(b) - 503);
	cr_assert_eq(c, whole);
	/* byte at a time */
	c = 0;
	for (size_t i = 0; i < sizeof(b); i++)
		c = crc32c(c, b + i, 1);
	cr_assert_eq(c, whole);
}

/* every length and alignment against the bitwise reference, so the fast
 * path (8 bytes at a time plus a tail) is checked at every boundary */
Test(crc32c, matches_reference_all_lengths_and_alignments)
{
	unsigned char b[600];

	fill(b, sizeof(b), 99);
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= 520; len++)
			cr_assert_eq(crc32c(0, b + off, len), ref(0, b + off, len),
			             "off %zu len %zu", off, len);
	cr_assert_eq(crc32c(0xDEADBEEFu, b, 77), ref(0xDEADBEEFu, b, 77));
}

Test(crc32c, detects_single_bit_flips)
{
	unsigned char b[64];
	uint32_t c0;

	fill(b, sizeof(b), 3);
	c0 = crc32c(0, b, sizeof(b));
	for (size_t i = 0; i < sizeof(b) * 8; i++) {
		b[i / 8] ^= (unsigned char)(1u << (i % 8));
		cr_assert_neq(crc32c(0, b, sizeof(b)), c0, "bit %zu", i);
		b[i / 8] ^= (unsigned char)(1u << (i % 8));
	}
	cr_assert_eq(crc32c(0, b, sizeof(b)), c0);
}
