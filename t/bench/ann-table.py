#!/usr/bin/python3
"""The approximate-search bench's lines (t/bench/ann.sh) side by side.

  ann-table.py RESULTS

RESULTS holds lines of the form every engine prints
  ann engine=E index=I data=D mode=single|batch build_s=X rss_mb=X
      param=ef|nprobe value=V recall=X qps=X
(other lines starting "ann-", e.g. ann-oneshot, are repeated at the end;
anything else is ignored).  One table per data set, index and mode: a
row per ef or nprobe, recall@10 and queries/s per engine; then, since
engines trade recall for speed differently at the same ef or nprobe, the
best queries/s each reaches at a recall of at least 0.90, 0.95 and 0.99,
which is the fair comparison.  Where vdb has lines, vdb/peer ratios follow
(queries/s: above 1 is vdb faster; build seconds and RSS: below 1 is vdb
smaller).  Standard library only.
"""
import sys

ENGINES = ["vdb", "hnswlib", "faiss"]  # vdb first: the ratios are its
TARGETS = [0.90, 0.95, 0.99]
MODES = {"single": "one query at a time", "batch": "all queries in one batch"}


def parse(path):
    rows, other = [], []
    for line in open(path):
        f = line.split()
        if f and f[0].startswith("ann-"):
            other.append(line.rstrip("\n"))
        if not f or f[0] != "ann":
            continue
        r = dict(kv.split("=", 1) for kv in f[1:])
        for k in ("build_s", "rss_mb", "recall", "qps"):
            r[k] = float(r[k])
        r["value"] = int(r["value"])
        rows.append(r)
    return rows, other


def order(seen, first):
    return [x for x in first if x in seen] + sorted(x for x in seen if x not in first)


def fmt_ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


def table(data, index, mode, rows):
    engines = order({r["engine"] for r in rows}, ENGINES)
    peers = [e for e in engines if e != "vdb"] if "vdb" in engines else []
    param = rows[0]["param"]
    by = {(r["engine"], r["value"]): r for r in rows}
    first = {e: next(r for r in rows if r["engine"] == e) for e in engines}

    print("== %s, %s, %s ==" % (data, index, MODES.get(mode, mode)))
    for what, key, f in (("build s", "build_s", "%.2f"), ("peak RSS MB", "rss_mb", "%.0f")):
        print("%-13s" % what
              + " | ".join("%s %s" % (e, f % first[e][key]) for e in engines)
              + "".join(" | vdb/%s %s" % (p, fmt_ratio(first["vdb"][key], first[p][key]))
                        for p in peers))
    head = "%7s" % param + "".join(" | %-7s %7s %8s" % (e, "recall", "q/s") for e in engines)
    head += "".join(" | %12s" % ("vdb/" + p) for p in peers)
    print(head)
    print("-" * len(head))
    for v in sorted({r["value"] for r in rows}):
        line = "%7d" % v
        for e in engines:
            r = by.get((e, v))
            line += (" | %-7s %7.4f %8.0f" % ("", r["recall"], r["qps"]) if r
                     else " | %-7s %7s %8s" % ("", "-", "-"))
        for p in peers:
            a, b = by.get(("vdb", v)), by.get((p, v))
            line += " | %12s" % (fmt_ratio(a["qps"], b["qps"]) if a and b else "-")
        print(line)
    # the recall-matched comparison
    for t in TARGETS:
        best = {}
        for e in engines:
            ok = [r for r in rows if r["engine"] == e and r["recall"] >= t]
            best[e] = max(ok, key=lambda r: r["qps"]) if ok else None
        cells = ["%s %.0f q/s (%s %d)" % (e, best[e]["qps"], param, best[e]["value"])
                 if best[e] else "%s -" % e for e in engines]
        for p in peers:
            a, b = best["vdb"], best[p]
            cells.append("vdb/%s %s" % (p, fmt_ratio(a["qps"], b["qps"]) if a and b else "-"))
        print("%-13s" % ("recall>=%.2f" % t) + " | ".join(cells))
    print()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: ann-table.py RESULTS")
    rows, other = parse(sys.argv[1])
    groups = {}
    for r in rows:
        groups.setdefault((r["data"], r["index"], r["mode"]), []).append(r)
    datas = order({k[0] for k in groups}, ["siftsmall", "1m"])
    indexes = order({k[1] for k in groups}, ["hnsw", "ivf_flat", "ivf_pq", "ivf_pq_refine1"])
    for d in datas:
        for i in indexes:
            for m in order({k[2] for k in groups}, ["single", "batch"]):
                if (d, i, m) in groups:
                    table(d, i, m, groups[(d, i, m)])
    if other:
        print("== other measurements ==")
        print("\n".join(other))


if __name__ == "__main__":
    main()
