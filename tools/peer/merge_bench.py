#!/usr/bin/env python3
"""Merge the result documents of several rounds of one benchmark (docs/bench-schema.json) into one.

    merge_bench.py -o MERGED.json ROUND1.json ROUND2.json ...

The first document is the base (context, roof, repro).  Results are matched by name and must be the same in every
round; for each, the samples of all rounds are concatenated in order and everything derived from them is
recomputed with boreas bench's rules (run_anemoi.py's stats_of / is_noisy / roofline, docs/bench.md): stats
(warmup stays the per-round count, the rounds being separate processes), noisy, achieved GFLOP/s and GB/s,
fraction_of_roof and bound against the document's roof, share_of_step = median / the step's median.
peak_rss_bytes = the largest, verification = the first failed one, else the first round's.  params.rounds and
params.round_medians record the rounds.  Standard library only: runs with any python3.

boreas-bench-data/1 documents (``boreas bench data`` and tools/peer/bench_data_anemoi.py) merge per loader thread
count: samples, seconds and CPU-seconds summed and batch_seconds concatenated, the rates recomputed from the sums;
the chunk stage's rates are the median over rounds (``round_values`` keeps each round's); peak RSS the largest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_anemoi import is_noisy  # noqa: E402  (stdlib-only at import time)
from run_anemoi import roofline  # noqa: E402
from run_anemoi import stats_of  # noqa: E402


def merge(docs: list[dict]) -> dict:
    base = json.loads(json.dumps(docs[0]))
    names = [r["name"] for r in base["results"]]
    for i, d in enumerate(docs[1:], 2):
        other = [r["name"] for r in d["results"]]
        if other != names:
            raise SystemExit(f"merge_bench: round {i} has results {other}, round 1 {names}")
    totals = {}
    for k, r in enumerate(base["results"]):
        rounds = [d["results"][k] for d in docs]
        samples = [s for rr in rounds for s in rr["samples"]]
        r["samples"] = samples
        r["stats"] = stats_of(samples, r["stats"].get("warmup", 0))
        med = r["stats"]["median"]
        gflops, gbs, fraction, bound = roofline(r["flops"], r["bytes"], med, base.get("roof"))
        r["achieved"] = {**r.get("achieved", {}), "gflops": gflops, "gbs": gbs}
        r["fraction_of_roof"], r["bound"] = fraction, bound
        r["noisy"] = is_noisy(r["stats"])
        r["peak_rss_bytes"] = max(int(rr["peak_rss_bytes"]) for rr in rounds)
        failed = [rr["verification"] for rr in rounds if rr["verification"]["status"] == "failed"]
        r["verification"] = failed[0] if failed else rounds[0]["verification"]
        r["params"] = {**r.get("params", {}), "rounds": len(docs),
                       "round_medians": [rr["stats"]["median"] for rr in rounds]}
        if r["phase"] == "total":
            totals[r["name"]] = med
    for r in base["results"]:
        top = r["name"].split("/")[0]
        if top in totals and totals[top] > 0:
            r["share_of_step"] = r["stats"]["median"] / totals[top]
    base["context"]["run"]["merged_from"] = [d["context"]["run"].get("start_utc", "") for d in docs]
    return base


def _median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def merge_data(docs: list[dict]) -> dict:
    """Rounds of one side of the data-loading benchmark (boreas-bench-data/1) into one document."""
    base = json.loads(json.dumps(docs[0]))
    threads = [e["threads"] for e in base["loader"]]
    for i, d in enumerate(docs[1:], 2):
        if [e["threads"] for e in d["loader"]] != threads or d["store"] != base["store"]:
            raise SystemExit(f"merge_bench: round {i} has other thread counts or another store than round 1")
    for k, entry in enumerate(base["loader"]):
        rounds = [d["loader"][k] for d in docs]
        samples = sum(r["samples"] for r in rounds)
        seconds = sum(r["seconds"] for r in rounds)
        cpu = sum(r["cpu_seconds_per_sample"] * r["samples"] for r in rounds)
        entry["samples"], entry["seconds"] = samples, seconds
        entry["samples_per_s"] = samples / seconds
        entry["decompressed_mb_per_s"] = entry["dates_per_sample"] * samples * base["store"]["chunk_bytes"] / 1e6 / seconds
        entry["cpu_seconds_per_sample"] = cpu / samples
        entry["batch_seconds"] = [t for r in rounds for t in r.get("batch_seconds", [])]
        entry["round_samples_per_s"] = [r["samples_per_s"] for r in rounds]
    chunks = base.get("chunks", {})
    for key in ("read_mb_per_s", "decode_mb_per_s", "blosc_mb_per_s", "chunks_per_s", "decode_vs_blosc"):
        values = [d["chunks"][key] for d in docs if key in d.get("chunks", {})]
        if values:
            chunks[key] = _median(values)
            chunks.setdefault("round_values", {})[key] = values
    for k, entry in enumerate(chunks.get("parallel_decode", [])):
        for key in ("mb_per_s", "vs_blosc_single_thread_times_threads"):
            values = [d["chunks"]["parallel_decode"][k][key] for d in docs if key in d["chunks"]["parallel_decode"][k]]
            if values:
                entry[key] = _median(values)
    base["peak_rss_bytes"] = max(int(d.get("peak_rss_bytes", 0)) for d in docs)
    base["rounds"] = len(docs)
    return base


def summary(doc: dict) -> str:
    lines = [f"{doc['context']['run']['implementation']}: {doc['context']['run']['config']}, "
             f"{doc['context']['run']['threads']} thread(s)"]
    for r in doc["results"]:
        s = r["stats"]
        lines.append(f"  {r['name']:28s} median {s['median'] * 1e3:10.3f} ms  min {s['min'] * 1e3:10.3f}  "
                     f"max {s['max'] * 1e3:10.3f}  n {s['n']:3d}{'  noisy' if r['noisy'] else ''}")
    lines.append(f"  verification: {doc['results'][0]['verification']['status']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Merge rounds of one benchmark (boreas-bench documents).")
    p.add_argument("rounds", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--print", action="store_true", help="print a short summary of the merged document")
    a = p.parse_args(argv)
    docs = [json.loads(Path(f).read_text()) for f in a.rounds]
    if docs[0].get("schema") == "boreas-bench-data/1":
        doc = merge_data(docs)
        Path(a.output).write_text(json.dumps(doc, indent=1) + "\n")
        return 0
    doc = merge(docs)
    Path(a.output).write_text(json.dumps(doc, indent=1) + "\n")
    if a.print:
        print(summary(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
