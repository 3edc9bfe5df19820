#!/usr/bin/python3
"""lib-oracle.py: random records, random filter expressions and a brute-force
oracle for t/t3100-query-filter.sh.  Python 3 standard library only.

  lib-oracle.py gen DIR SEED N M   records, the plan that loads them, M random
                                   expressions and the query files, in DIR
  lib-oracle.py check DIR WHAT OUT compare vdb-query's answers in OUT with the
                                   oracle's; WHAT is one of
                                     search  JSONL hits of DIR/search.jsonl
                                     full    JSONL hits of DIR/full.jsonl
                                     global  JSONL hits of DIR/global.jsonl
                                     serve   serve responses to DIR/serve.jsonl
                                     cli     "INDEX COUNT" lines from the
                                             --count loop over DIR/cli.txt

The oracle never parses an expression: the generator draws a tree, renders it
as text (random spelling, case, spacing, quoting, parentheses), and evaluates
the tree itself over the live rows, which it tracks through the same inserts
and deletes the plan makes.  Distances are exact (integer vectors), so hits
must match exactly: the same ids in the same order, ties by the smaller id.
"""
import json
import random
import re
import sys

DIM = 4
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
MAX_K = 16384

YEARS = list(range(1990, 2010))
# exact binary fractions, a negative zero, values no binary fraction holds
# (0.1 is the double strtod makes of "0.1", on both sides), and extremes
SCORES = [-2.25, -1.0, -0.0, 0.0, 0.5, 1.5, 2.75, 3.0, 0.1, -0.001, 100.125, 1e300, -1e300,
          9007199254740992.0]
# strings for like: prefixes, suffixes, wildcard characters as data, quotes,
# backslashes, UTF-8 (two-byte é: '_' is one byte), the empty string
TAGS = ["", "a", "ab", "abc", "abd", "abcd", "b", "ba", "bab", "pre", "prefix", "pre_x",
        "pre%x", "prexx", "100%", "50_50", "5050", 'say "hi"', "it's", "a\\b", "x_", "xy",
        "\u00e9", "caf\u00e9", "cafe", "ABC", "aBc", "a b", "tab\there", "%", "_", "\\",
        "\\%", "'", '"', "zzzzzzzzzzzzzzzz", "nl\nx", "cr\r", "\U0001F600", "\U0001F600!"]


# ---------------------------------------------------------------- records

def gen_row(rng, rid):
    return {"id": rid,
            "vector": [rng.randint(-8, 8) for _ in range(DIM)],
            "year": rng.choice(YEARS) if rng.random() < 0.95 else rng.choice(
                [INT64_MIN, INT64_MAX, 0, -1, 1 << 53, (1 << 53) + 1]),
            "score": rng.choice(SCORES),
            "ok": rng.random() < 0.4,
            "tag": rng.choice(TAGS)}


def jsonl_row(r):
    # ints for the vector; -0.0 as -0.0, 1e300 as 1e+300: json's repr of floats
    return json.dumps(r, ensure_ascii=(r["id"] % 2 == 0), separators=(",", ":"))


def gen_data(rng, n, d):
    """Write the batches, deletes and plan; return the live rows by id."""
    ids = rng.sample(range(-30000, 1000000), n - 4) + [INT64_MIN, INT64_MAX, 0, -1]
    ids = list(dict.fromkeys(ids))
    rng.shuffle(ids)
    live = {}
    gone = []  # ids deleted, candidates for inserting again
    plan = []
    state = {"files": 0}

    def ingest(rows, *args):
        state["files"] += 1
        name = "b%d.jsonl" % state["files"]
        with open("%s/%s" % (d, name), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(jsonl_row(r) + "\n")
        plan.append(" ".join(["ingest", name] + list(args)))
        part = args[args.index("--partition") + 1] if "--partition" in args else "_default"
        for r in rows:
            assert r["id"] not in live
            live[r["id"]] = dict(r, part=part)

    def delete(victims, extra):
        state["files"] += 1
        name = "d%d.ids" % state["files"]
        with open("%s/%s" % (d, name), "w") as f:
            for i in victims + extra:
                f.write("%s%d\n" % (rng.choice(["", " ", "\t"]), i))
        plan.append("delete " + name)
        for i in victims:
            del live[i]
            gone.append(i)

    def fresh(k):
        out = [gen_row(rng, ids.pop()) for _ in range(k)]
        return out

    def again(k):
        # ids deleted earlier, inserted again with new data
        rng.shuffle(gone)
        back = [gone.pop() for _ in range(min(k, len(gone)))]
        return [gen_row(rng, i) for i in back]

    nonexistent = [1000001 + i for i in range(10)]
    # 1: a segment
    ingest(fresh(n * 30 // 100), "--batch-rows", "400")
    plan.append("flush")
    # 2: more segments, split by --segment-rows
    ingest(fresh(n * 25 // 100), "--batch-rows", "250")
    plan.append("flush --segment-rows 300")
    # 3: deletes of sealed rows (and of ids that never were)
    delete(rng.sample(sorted(live), n * 8 // 100), nonexistent)
    # 4: another partition, left in the log
    plan.append("partition p2")
    ingest(fresh(n * 15 // 100), "--partition", "p2")
    # 5: small batches, some deleted ids back with new data; then sealed
    ingest(fresh(n * 15 // 100) + again(n * 3 // 100), "--batch-rows", "100")
    plan.append("flush")
    # 6: deletes of anything live (sealed, both partitions)
    delete(rng.sample(sorted(live), n * 5 // 100), [])
    # 7: the log tail: fresh rows and deleted ids back, then deletes in the tail
    tail = fresh(len(ids)) + again(n * 2 // 100)
    ingest(tail)
    delete(rng.sample([r["id"] for r in tail], min(len(tail), n * 2 // 100)), nonexistent[:3])
    with open("%s/plan" % d, "w") as f:
        f.write("\n".join(plan) + "\n")
    return live


# ---------------------------------------------------------------- expressions
#
# Trees (JSON-able lists):
#   ["cmp", field, op, lit]           field op lit (rendered either way round)
#   ["range", field, lo, op1, hi, op2] lo op1 field op2 hi, op1/op2 in < <=
#   ["in", field, [lit...], negated]
#   ["like", field, [elem...]]        elem: ["c", char] | ["_"] | ["%"]
#   ["bare", field]                   a bool field alone
#   ["const", bool]                   true / false alone
#   ["not", e], ["and", e...], ["or", e...]
# Literals: ["i", int] | ["d", float, text] | ["s", str] | ["b", bool]

OPS = ["==", "!=", "<", "<=", ">", ">="]
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


class Gen:
    def __init__(self, rng, ids):
        self.rng = rng
        self.ids = ids  # every id ever inserted, live or not

    # literals
    def dbl(self, x):
        """["d", x, text]: a text strtod reads as exactly x"""
        rng = self.rng
        texts = [repr(x)]
        if x == int(x) and abs(x) < 1e16:
            i = int(x)
            texts += ["%d.0" % i, "%d." % i, "%de0" % i, "%dE+0" % i]
            if i and i % 10 == 0:
                texts.append("%de1" % (i // 10))
            if i:
                s = "%d" % abs(i)
                texts.append("%s%s.%se%d" % ("-" if i < 0 else "", s[0], s[1:] or "0",
                                             len(s) - 1))
        if 0 < abs(x) < 1 and repr(x).lstrip("-").startswith("0."):
            texts.append(repr(x).replace("0.", ".", 1))
        if x > 0 and rng.random() < 0.2:
            texts = ["+" + t for t in texts]
        t = rng.choice(texts)
        if t in ("0.", "-0."):
            t += "0"
        assert float(t) == x, (t, x)
        return ["d", x, t]

    def lit_num(self, field):
        rng = self.rng
        r = rng.random()
        if field == "year":
            if r < 0.55:
                return ["i", rng.choice(YEARS) + rng.choice([0, 0, 0, -1, 1, -3, 3])]
            if r < 0.85:
                return self.dbl(rng.choice(YEARS) + rng.choice([0.5, -0.5, 0.0, 0.25]))
            return rng.choice([["i", INT64_MIN], ["i", INT64_MAX], ["i", 0], ["i", -1],
                               ["i", 1 << 53], ["i", (1 << 53) + 1], self.dbl(1e300),
                               self.dbl(-1e300), self.dbl(9.3e18), self.dbl(-9.3e18),
                               self.dbl(9223372036854775807.0), self.dbl(-9223372036854775808.0),
                               self.dbl(9007199254740992.0), self.dbl(0.5)])
        if field == "score":
            if r < 0.5:
                return self.dbl(rng.choice(SCORES))
            if r < 0.75:
                return ["i", rng.randint(-3, 3)]
            if r < 0.9:
                return self.dbl(rng.choice([0.25, -2.0, 1.0, 0.11, -0.5, 99.0, 2.5, 1e-300]))
            return rng.choice([["i", 9007199254740993], ["i", 9007199254740992],
                               ["i", 9007199254740991], ["i", INT64_MAX], ["i", INT64_MIN],
                               ["i", 100], self.dbl(1e300), self.dbl(-1e300)])
        # id
        if r < 0.6:
            i = rng.choice(self.ids)
            j = i + rng.choice([0, 0, 0, 1, -1])
            return ["i", j if INT64_MIN <= j <= INT64_MAX else i]
        if r < 0.75:
            return ["i", rng.randint(-30000, 1000000)]
        if r < 0.9:
            return self.dbl(rng.choice(self.ids) + rng.choice([0.5, -0.5, 0.0]))
        return rng.choice([["i", INT64_MIN], ["i", INT64_MAX], ["i", INT64_MIN + 1],
                           ["i", INT64_MAX - 1], ["i", 0], ["i", -1],
                           self.dbl(9223372036854775807.0), self.dbl(-9223372036854775808.0),
                           self.dbl(9.3e18), self.dbl(-1e300)])

    def lit_str(self):
        rng = self.rng
        if rng.random() < 0.8:
            return ["s", rng.choice(TAGS)]
        alpha = "abcxyz%_\\'\" \u00e9"
        return ["s", "".join(rng.choice(alpha) for _ in range(rng.randint(0, 5)))]

    def lit(self, field):
        if field in ("year", "score", "id"):
            return self.lit_num(field)
        if field == "tag":
            return self.lit_str()
        return ["b", self.rng.random() < 0.5]

    # leaves
    def leaf(self):
        rng = self.rng
        r = rng.random()
        if r < 0.36:
            f = rng.choice(["year", "year", "score", "score", "id", "tag", "tag", "ok"])
            op = rng.choice(["==", "!="]) if f == "ok" else rng.choice(OPS)
            return ["cmp", f, op, self.lit(f)]
        if r < 0.5:
            f = rng.choice(["year", "score", "id", "tag"])
            a, b = self.lit(f), self.lit(f)
            if rng.random() < 0.7:  # mostly a non-empty range
                if val(a) > val(b) if f != "tag" else a[1].encode() > b[1].encode():
                    a, b = b, a
            return ["range", f, a, rng.choice(["<", "<="]), b, rng.choice(["<", "<="])]
        if r < 0.7:
            f = rng.choice(["year", "score", "id", "tag", "tag", "ok"])
            n = rng.choice([0, 1, 1, 2, 3, 4, 6, 9])
            return ["in", f, [self.lit(f) for _ in range(n)], rng.random() < 0.35]
        if r < 0.88:
            return ["like", "tag", self.pattern()]
        if r < 0.93:
            return ["bare", "ok"]
        if r < 0.95:
            return ["const", rng.random() < 0.5]
        return self.edge()

    def edge(self):
        """where comparing an int64 and a double as doubles goes wrong: values
        next to 2^53 and 2^63 on both sides"""
        rng = self.rng
        f, lit = rng.choice([
            ("year", ["i", 1 << 53]), ("year", ["i", (1 << 53) + 1]),
            ("year", self.dbl(9007199254740992.0)), ("year", self.dbl(9007199254740994.0)),
            ("year", self.dbl(9223372036854775807.0)), ("year", self.dbl(-9223372036854775808.0)),
            ("id", self.dbl(9223372036854775807.0)), ("id", self.dbl(-9223372036854775808.0)),
            ("id", ["i", INT64_MAX]), ("id", ["i", INT64_MIN]),
            ("score", ["i", 9007199254740993]), ("score", ["i", 9007199254740991]),
            ("score", ["i", 9007199254740992]), ("score", ["i", INT64_MAX])])
        if rng.random() < 0.2:
            return ["in", f, [lit, self.lit(f)], rng.random() < 0.5]
        return ["cmp", f, rng.choice(OPS), lit]

    def pattern(self):
        rng = self.rng
        base = rng.choice([t for t in TAGS if t] + ["pre", "ab", "x", "caf"])
        elems = []
        kind = rng.random()
        if kind < 0.2:  # prefix
            elems = [["c", ch] for ch in base[:rng.randint(0, len(base))]] + [["%"]]
        elif kind < 0.35:  # suffix
            elems = [["%"]] + [["c", ch] for ch in base[rng.randint(0, len(base)):]]
        elif kind < 0.45:  # infix
            i = rng.randint(0, len(base))
            j = rng.randint(i, len(base))
            elems = [["%"]] + [["c", ch] for ch in base[i:j]] + [["%"]]
        else:  # anything: characters, '_' for some, '%' for runs
            i = 0
            while i < len(base):
                x = rng.random()
                if x < 0.55:
                    elems.append(["c", base[i]])
                    i += 1
                elif x < 0.75:
                    elems.append(["_"])
                    i += 1
                elif x < 0.9:
                    elems.append(["%"])
                    i += rng.randint(0, 3)
                else:
                    elems.append(["_"] if rng.random() < 0.5 else ["%"])
            if rng.random() < 0.2:
                elems.insert(rng.randint(0, len(elems)), ["%"])
            if rng.random() < 0.05:
                elems = []
        return elems

    def deep(self, n):
        """n levels of and/or, alternating, a leaf beside each, now and then
        a not: a tall tree that the parser cannot flatten"""
        rng = self.rng
        t = self.leaf()
        for i in range(n):
            kid = ["not", t] if rng.random() < 0.1 else t
            pair = [self.leaf(), kid]
            rng.shuffle(pair)
            t = ["and" if i % 2 else "or"] + pair
        return t

    def big_in(self, field, n):
        lits = [["i", rng_id] for rng_id in self.rng.sample(self.ids, min(n, len(self.ids)))]
        if field == "tag":
            lits = [["s", x] for x in TAGS if self.rng.random() < 0.7]
        return ["in", field, lits, self.rng.random() < 0.5]

    def expr(self, depth=0):
        rng = self.rng
        if depth >= 4 or rng.random() < (0.25 if depth == 0 else 0.2 + 0.2 * depth):
            return self.leaf()
        r = rng.random()
        if r < 0.4:
            return ["and"] + [self.expr(depth + 1) for _ in range(rng.choice([2, 2, 2, 3]))]
        if r < 0.8:
            return ["or"] + [self.expr(depth + 1) for _ in range(rng.choice([2, 2, 3, 3, 4]))]
        return ["not", self.expr(depth + 1)]


def val(lit):
    return lit[1]


# ---------------------------------------------------------------- rendering

KW = {"and": ["and", "AND", "&&"], "or": ["or", "OR", "||"], "not": ["not", "NOT", "!"]}


class Render:
    """A tree as text: a token list joined with random white space where the
    tokens allow none, and some where they need it."""

    def __init__(self, rng, newlines=True):
        self.rng = rng
        self.newlines = newlines
        self.parens = 0.12  # how often a node gets parentheses it does not need

    def kw(self, word):
        rng = self.rng
        r = rng.random()
        if r < 0.45:
            return word
        if r < 0.8:
            return word.upper()
        return "".join(c.upper() if rng.random() < 0.5 else c for c in word)

    def logic(self, op):
        w = self.rng.choice(KW[op])
        return w if w[0] in "&|!" else self.kw(w)

    def num(self, lit):
        if lit[0] == "i":
            s = "%d" % lit[1]
            if lit[1] >= 0 and self.rng.random() < 0.1:
                s = "+" + s
            return s
        return lit[2]

    def string(self, v):
        rng = self.rng
        q = rng.choice("\"'")
        out = [q]
        i = 0
        while i < len(v):
            ch = v[i]
            nxt = v[i + 1] if i + 1 < len(v) else ""
            if ch == "\\" and nxt in ("%", "_") and rng.random() < 0.5:
                out.append("\\" + nxt)  # the lexer keeps \% and \_ as they are
                i += 2
                continue
            if ch == q or ch == "\\":
                out.append("\\" + ch)
            elif ch in "\"'" and rng.random() < 0.3:
                out.append("\\" + ch)
            elif ch == "\t":
                out.append(rng.choice(["\\t", "\t", "\\u0009"]))
            elif ch == "\n":
                out.append(rng.choice(["\\n", "\\u000a", "\n"]))
            elif ch == "\r":
                out.append(rng.choice(["\\r", "\\u000D"]))
            elif 0x80 <= ord(ch) < 0x10000 and rng.random() < 0.5:
                out.append(rng.choice(["\\u%04x", "\\u%04X"]) % ord(ch))
            elif ch.isalpha() and rng.random() < 0.03:
                out.append("\\u%04x" % ord(ch))
            else:
                out.append(ch)
            i += 1
        out.append(q)
        return "".join(out)

    def lit(self, lit):
        if lit[0] in ("i", "d"):
            return self.num(lit)
        if lit[0] == "s":
            return self.string(lit[1])
        return self.kw("true" if lit[1] else "false")

    def pattern(self, elems):
        s = []
        for e in elems:
            if e[0] == "%":
                s.append("%")
            elif e[0] == "_":
                s.append("_")
            elif e[1] in "%_\\":
                s.append("\\" + e[1])
            else:
                s.append(e[1])
        return self.string("".join(s))

    # precedence: or 1, and 2, not 3, primary 4
    def toks(self, t, prec):
        rng = self.rng
        kind = t[0]
        if kind in ("and", "or"):
            mine = 1 if kind == "or" else 2
            out = []
            for i, c in enumerate(t[1:]):
                if i:
                    out.append(self.logic(kind))
                out += self.toks(c, mine)
            need = mine < prec
        elif kind == "not":
            out = [self.logic("not")] + self.toks(t[1], 3)
            need = False
        else:
            out = self.leaf(t)
            need = False
        if need or rng.random() < self.parens:
            out = ["("] + out + [")"]
        return out

    def leaf(self, t):
        rng = self.rng
        kind = t[0]
        if kind == "cmp":
            f, op, lit = t[1], t[2], t[3]
            if rng.random() < 0.3:
                return [self.lit(lit), FLIP[op], f]
            return [f, op, self.lit(lit)]
        if kind == "range":
            f, lo, op1, hi, op2 = t[1:]
            if rng.random() < 0.5:
                return [self.lit(lo), op1, f, op2, self.lit(hi)]
            return [self.lit(hi), FLIP[op2], f, FLIP[op1], self.lit(lo)]
        if kind == "in":
            out = [t[1]]
            if t[3]:
                out.append(self.kw("not"))
            out += [self.kw("in"), "["]
            for i, x in enumerate(t[2]):
                if i:
                    out.append(",")
                out.append(self.lit(x))
            if t[2] and rng.random() < 0.1:
                out.append(",")  # a trailing comma
            return out + ["]"]
        if kind == "like":
            return [t[1], self.kw("like"), self.pattern(t[2])]
        if kind == "bare":
            return [t[1]]
        if kind == "const":
            return [self.lit(["b", t[1]])]
        raise ValueError(kind)

    def space(self, need):
        rng = self.rng
        r = rng.random()
        if not need and r < 0.4:
            return ""
        if r < 0.85:
            return " "
        ws = [" ", "  ", "\t"] + (["\n", "\r\n"] if self.newlines else [])
        return rng.choice(ws)

    def text(self, t):
        toks = self.toks(t, 0)
        word = re.compile(r"[A-Za-z0-9_.]")
        out = [self.space(False) if self.rng.random() < 0.1 else ""]
        for i, tok in enumerate(toks):
            if i:
                prev = toks[i - 1]
                need = bool(word.match(prev[-1]) and word.match(tok[0]))
                # '!' '=' would read as '!='; '<' '=' as '<='
                need = need or (prev[-1] in "!<>=" and tok[0] == "=")
                # a sign after a word: year -1 is fine, but keep 1e3 -1 apart
                need = need or (word.match(prev[-1]) and tok[0] in "+-")
                out.append(self.space(need))
            out.append(tok)
        if self.rng.random() < 0.1:
            out.append(self.space(False))
        return "".join(out)


# ---------------------------------------------------------------- the oracle

def like_regex(elems):
    # on bytes: '_' is one byte, '%' any run of bytes
    rx = b""
    for e in elems:
        if e[0] == "%":
            rx += b".*"
        elif e[0] == "_":
            rx += b"."
        else:
            rx += re.escape(e[1].encode("utf-8"))
    return re.compile(rx, re.DOTALL)


def num_cmp(a, op, b):
    # Python compares int with float exactly, as real numbers
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def compile_tree(t):
    """t as a function of a row (a dict with id and the fields)"""
    kind = t[0]
    if kind == "and":
        kids = [compile_tree(c) for c in t[1:]]
        return lambda r: all(k(r) for k in kids)
    if kind == "or":
        kids = [compile_tree(c) for c in t[1:]]
        return lambda r: any(k(r) for k in kids)
    if kind == "not":
        k = compile_tree(t[1])
        return lambda r: not k(r)
    if kind == "const":
        v = t[1]
        return lambda r: v
    if kind == "bare":
        f = t[1]
        return lambda r: r[f]
    if kind == "cmp":
        f, op, lit = t[1], t[2], t[3]
        if f == "tag":
            b = lit[1].encode("utf-8")
            return lambda r: num_cmp(r["tagb"], op, b)
        x = lit[1]
        return lambda r: num_cmp(r[f], op, x)
    if kind == "range":
        f, lo, op1, hi, op2 = t[1:]
        a, b = lo[1], hi[1]
        if f == "tag":
            a, b = a.encode("utf-8"), b.encode("utf-8")
            f = "tagb"
        return lambda r: num_cmp(a, op1, r[f]) and num_cmp(r[f], op2, b)
    if kind == "in":
        f, lits, neg = t[1], t[2], t[3]
        if f == "tag":
            vals = [x[1].encode("utf-8") for x in lits]
            f = "tagb"
        else:
            vals = [x[1] for x in lits]
        return lambda r: any(r[f] == v for v in vals) != neg
    if kind == "like":
        rx = like_regex(t[2])
        return lambda r: rx.fullmatch(r["tagb"]) is not None
    raise ValueError(kind)


def load(d):
    with open("%s/oracle.json" % d, encoding="utf-8") as f:
        o = json.load(f)
    for r in o["rows"]:
        r["tagb"] = r["tag"].encode("utf-8")
    return o


def matches(o, ei):
    fn = compile_tree(o["exprs"][ei][1])
    return [r for r in o["rows"] if fn(r)]


def dist(q, v):
    return sum((a - b) * (a - b) for a, b in zip(q, v))


def topk(rows, q, k):
    ranked = sorted(((dist(q, r["vector"]), r["id"], r) for r in rows), key=lambda x: x[:2])
    return ranked[:k]


# ---------------------------------------------------------------- gen

def gen(d, seed, n, m):
    rng = random.Random(seed)
    live = gen_data(rng, n, d)
    ids = sorted(set(live) | set(
        json.loads(line)["id"] for name in sorted(_ls(d, ".jsonl"))
        for line in open("%s/%s" % (d, name), encoding="utf-8")))
    g = Gen(rng, ids)
    rd = Render(rng)
    exprs = []
    for i in range(m):
        t = g.expr()
        exprs.append([rd.text(t), t])
    # and some that random drawing seldom makes: tall trees (nested no
    # deeper than the 64 the parser allows), long lists
    rd.parens = 0.03
    for n in (20, 45, 70):
        t = g.deep(n)
        for _ in range(100):
            text = rd.text(t)
            if max_depth(text) <= 50:
                break
        else:
            raise SystemExit("lib-oracle.py: no tall tree within the depth limit")
        exprs.append([text, t])
    rd.parens = 0.12
    for f, n in (("id", 2500), ("id", 400), ("tag", 0)):
        t = g.big_in(f, n)
        exprs.append([rd.text(t), t])
    rows = sorted(live.values(), key=lambda r: r["id"])
    with open("%s/oracle.json" % d, "w", encoding="utf-8") as f:
        json.dump({"seed": seed, "rows": rows, "exprs": exprs}, f)
    with open("%s/live.ids" % d, "w") as f:
        f.write("".join("%d\n" % r["id"] for r in rows))

    def qvec():
        return [rng.randint(-9, 9) for _ in range(DIM)]

    # search: per expression two queries with -k's 10 and one with its own k;
    # now and then a query with no filter at all
    with open("%s/search.jsonl" % d, "w", encoding="utf-8") as f:
        for i, (text, _) in enumerate(exprs):
            for j in range(3):
                q = {"vector": qvec(), "filter": text}
                if j == 2:
                    q["k"] = rng.choice([1, 2, 5, 13, 40])
                f.write(json.dumps(q) + "\n")
            if i % 25 == 0:
                f.write(json.dumps({"vector": qvec()}) + "\n")
    # full: every matching row, in order
    with open("%s/full.jsonl" % d, "w", encoding="utf-8") as f:
        for text, _ in exprs:
            f.write(json.dumps({"vector": qvec(), "filter": text, "k": MAX_K}) + "\n")
    # one line each: what the shell reads with read -r, or passes as $(cat)
    oneline = [i for i, (text, _) in enumerate(exprs)
               if "\n" not in text and "\r" not in text and text.strip(" \t") == text]
    # global: --filter EXPR for queries without "filter", replaced by theirs
    g = oneline[0]
    with open("%s/global.jsonl" % d, "w", encoding="utf-8") as f:
        for i in range(60):
            q = {"vector": qvec()}
            if i % 3 == 2:
                q["filter"] = exprs[1 + i % (m - 1)][0]
            f.write(json.dumps(q) + "\n")
    with open("%s/global.expr" % d, "w", encoding="utf-8") as f:
        f.write(exprs[g][0])
    with open("%s/global.idx" % d, "w") as f:
        f.write("%d\n" % g)
    # serve: a count request per expression, and for some in partition p2
    with open("%s/serve.jsonl" % d, "w", encoding="utf-8") as f:
        for i, (text, _) in enumerate(exprs):
            f.write(json.dumps({"id": i, "op": "count", "collection": "c",
                                "filter": text}) + "\n")
            if i % 4 == 0:
                f.write(json.dumps({"id": "p2:%d" % i, "op": "count", "collection": "c",
                                    "filter": text, "partition": "p2"}) + "\n")
    # cli: --count --filter for some, one per line (those without a newline)
    with open("%s/cli.txt" % d, "w", encoding="utf-8") as f:
        for i in oneline[:40]:
            f.write("%d\t%s\n" % (i, exprs[i][0]))


def max_depth(text):
    """nesting of parentheses and nots, roughly as the parser counts it (the
    generated strings hold no parentheses)"""
    d = m = 0
    for w in re.findall(r"[()]|\bnot\b(?!\s*in\b)|!(?!=)", text, re.I):
        if w == "(":
            d += 1
        elif w == ")":
            d -= 1
        m = max(m, d + (w != ")" and w != "("))
    return m


def _ls(d, suffix):
    import os
    return [x for x in os.listdir(d) if x.endswith(suffix)]


# ---------------------------------------------------------------- check

class Checker:
    def __init__(self, d, what):
        self.o = load(d)
        self.what = what
        self.bad = 0
        self.memo = {}

    def match_rows(self, ei):
        if ei not in self.memo:
            self.memo[ei] = matches(self.o, ei)
        return self.memo[ei]

    def fail(self, ei, what, want, got):
        self.bad += 1
        if self.bad > 3:
            return
        text = self.o["exprs"][ei][0] if ei is not None else "(none)"
        print("MISMATCH (seed %s, %s) expr %s: %s" % (self.o["seed"], self.what,
                                                       ei, json.dumps(text)))
        print("  tree: %s" % json.dumps(self.o["exprs"][ei][1] if ei is not None else None))
        print("  %s" % what)
        print("  expected: %s" % want)
        print("  got:      %s" % got)

    def expr_index(self, text):
        if not hasattr(self, "_byt"):
            self._byt = {}
            for i, (t, _) in enumerate(self.o["exprs"]):
                self._byt.setdefault(t, i)
        return self._byt[text]

    def hits(self, qfile, out, default_k, default_filter=None, fields=False):
        queries = [json.loads(line) for line in open(qfile, encoding="utf-8")]
        lines = open(out, encoding="utf-8").read().split("\n")[:-1]
        if len(lines) != len(queries):
            self.fail(None, "answer lines", len(queries), len(lines))
            return
        for qi, (q, line) in enumerate(zip(queries, lines)):
            a = json.loads(line)
            text = q.get("filter", default_filter)
            ei = self.expr_index(text) if text is not None else None
            rows = self.match_rows(ei) if ei is not None else self.o["rows"]
            k = q.get("k", default_k)
            want = topk(rows, q["vector"], k)
            wids = [(x[1], x[0]) for x in want]
            gids = [(h["id"], h["distance"]) for h in a["hits"]]
            if a["query"] != qi:
                self.fail(ei, "query %d: number" % qi, qi, a["query"])
            if wids != gids:
                at = next((i for i, (x, y) in enumerate(zip(wids, gids)) if x != y),
                          min(len(wids), len(gids)))
                w, g = set(x[0] for x in wids), set(x[0] for x in gids)
                self.fail(ei, "query %d %s k %d: [id, distance] of the hits from rank %d "
                          "(%d of %d rows match; missing ids %s, extra ids %s)"
                          % (qi, q["vector"], k, at, len(rows), len(self.o["rows"]),
                             sorted(w - g)[:5], sorted(g - w)[:5]),
                          _short(wids, at), _short(gids, at))
                continue
            if fields:
                for (_, _, r), h in zip(want, a["hits"]):
                    wf = [r["year"], r["score"], r["ok"], r["tag"]]
                    gf = [h.get("year"), h.get("score"), h.get("ok"), h.get("tag")]
                    # score as %.17g: 3.0 prints as 3, a JSON integer
                    if wf != gf or [type(x) for x in wf[::2]] != [type(x) for x in gf[::2]] \
                            or type(gf[1]) not in (int, float) or type(gf[0]) is bool:
                        self.fail(ei, "query %d: fields of id %d" % (qi, r["id"]), wf, gf)
                        break

    def counts(self, pairs):
        for ei, got, part in pairs:
            want = len([r for r in self.match_rows(ei) if part is None or r["part"] == part])
            if got != want:
                self.fail(ei, "count" + (" in partition " + part if part else ""), want, got)


def _short(v, at, n=8):
    s = json.dumps(v[at:at + n])
    return s + (" ... (%d in all)" % len(v) if len(v) > at + n else " (%d in all)" % len(v))


def check(d, what, out):
    c = Checker(d, what)
    if what == "search":
        c.hits("%s/search.jsonl" % d, out, 10, fields=True)
    elif what == "full":
        c.hits("%s/full.jsonl" % d, out, MAX_K)
    elif what == "global":
        g = c.o["exprs"][int(open("%s/global.idx" % d).read())][0]
        c.hits("%s/global.jsonl" % d, out, 10, default_filter=g)
    elif what == "serve":
        reqs = [json.loads(line) for line in open("%s/serve.jsonl" % d, encoding="utf-8")]
        resp = [json.loads(line) for line in open(out, encoding="utf-8")]
        if len(resp) != len(reqs):
            c.fail(None, "responses", len(reqs), len(resp))
        pairs = []
        for q, r in zip(reqs, resp):
            i = q["id"] if isinstance(q["id"], int) else int(q["id"].split(":")[1])
            if r.get("id") != q["id"] or not isinstance(r.get("count"), int):
                c.fail(i, "response", '{"id":%s,"count":N}' % json.dumps(q["id"]),
                       json.dumps(r))
            else:
                pairs.append((i, r["count"], q.get("partition")))
        c.counts(pairs)
    elif what == "cli":
        pairs = []
        want = sum(1 for _ in open("%s/cli.txt" % d, encoding="utf-8"))
        lines = open(out, encoding="utf-8", errors="replace").read().split("\n")[:-1]
        if len(lines) != want:
            c.fail(None, "count lines", want, len(lines))
        for line in lines:
            i, n = line.split(" ", 1)
            try:
                pairs.append((int(i), int(n), None))
            except ValueError:
                c.fail(int(i), "count output", "a number", repr(n))
        c.counts(pairs)
    else:
        raise SystemExit("lib-oracle.py: check: unknown %r" % what)
    if c.bad:
        print("%d mismatches (seed %s)" % (c.bad, c.o["seed"]))
        return 1
    return 0


def main(argv):
    if len(argv) == 6 and argv[1] == "gen":
        gen(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
        return 0
    if len(argv) == 5 and argv[1] == "check":
        return check(argv[2], argv[3], argv[4])
    sys.stderr.write("usage: lib-oracle.py gen DIR SEED N M | check DIR WHAT OUT\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
