#!/usr/bin/env python3
"""Compare boreas_micro builds A B A B on a noisy machine.

Runs each binary in turn, ROUNDS times, on the same --benchmark_filter, and prints per benchmark
the median time and byte rate of each build and the ratio first / last (above 1: the last build
is faster). Alternating the builds spreads the machine's slow spells over both of them, which
back-to-back runs of one build and then the other do not.

    bench/micro/compare.py --filter graph_attention_mesh --rounds 3 OLD/boreas_micro NEW/boreas_micro
"""
import argparse
import collections
import json
import statistics
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs="+", help="boreas_micro builds, first = baseline")
    parser.add_argument("--filter", required=True, help="--benchmark_filter regex")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-time", default="0.5", help="--benchmark_min_time per run (s)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    times = collections.defaultdict(lambda: collections.defaultdict(list))
    for _ in range(args.rounds):
        for binary in args.binaries:
            try:
                run = subprocess.run(
                    [binary, f"--benchmark_filter={args.filter}", "--benchmark_format=json",
                     f"--benchmark_min_time={args.min_time}"],
                    capture_output=True, text=True)
            except OSError as error:
                sys.exit(f"compare.py: cannot run {binary}: {error}")
            if run.returncode != 0:
                sys.exit(f"compare.py: {binary} failed (exit {run.returncode}): {run.stderr.strip()}")
            try:
                benchmarks = json.loads(run.stdout)["benchmarks"]
            except (json.JSONDecodeError, KeyError):
                said = (run.stderr or run.stdout).strip()[:200]
                sys.exit(f"compare.py: {binary} did not print Google Benchmark JSON: {said}")
            for b in benchmarks:
                if b.get("error_occurred"):
                    sys.exit(f"compare.py: {binary}: {b['name']} failed: {b.get('error_message')}")
                times[b["name"]][binary].append((b["real_time"], b.get("B/s", 0.0), b["time_unit"]))
    if not times:
        sys.exit(f"compare.py: no benchmark matches --filter {args.filter}")

    for name, by_binary in times.items():
        medians, cells = [], []
        for binary in args.binaries:
            runs = by_binary.get(binary)
            if not runs:  # a benchmark that only some of the builds have
                medians.append(None)
                cells.append(f"{'n/a':>22}")
                continue
            t = statistics.median(r[0] for r in runs)
            rate = statistics.median(r[1] for r in runs) / 1e9
            medians.append(t)
            cells.append(f"{t:9.2f} {runs[0][2]} {rate:5.1f} GB/s")
        ratio = f"{medians[0] / medians[-1]:.2f}x" if medians[0] and medians[-1] else "n/a"
        print(f"{name} | " + " | ".join(cells) + f" | {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
