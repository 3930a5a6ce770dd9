"""The generator's memory: flat in the stream's length, measured in one run.

    .venv/bin/python -m bench.generator_memory [--customers 2000]

Generates the same customers over 60 and over 240 days (four times the stream), writing
nothing, and measures each run's peak of Python allocations (``tracemalloc``) in a fresh
process. Before issue 17 the generator held the whole stream: the demo's 901k records
took 3.87 GB. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = """
import sys, tracemalloc
from streams.generator import GeneratorConfig, generate_stream
tracemalloc.start()
lines = sum(1 for _ in generate_stream(GeneratorConfig(customers=int(sys.argv[1]), days=int(sys.argv[2]), seed=42)))
print(lines, tracemalloc.get_traced_memory()[1])
"""


def peak(customers: int, days: int) -> tuple[int, int]:
    """(lines generated, peak bytes allocated) of one run in its own process."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(customers), str(days)],
        check=True,
        capture_output=True,
        text=True,
    )
    lines, peak_bytes = done.stdout.split()
    return int(lines), int(peak_bytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args()
    short_lines, short_peak = peak(args.customers, 60)
    long_lines, long_peak = peak(args.customers, 240)
    print(
        f"{args.customers:,} customers, 60 days: {short_lines:,} lines, peak {short_peak / 1e6:.1f} MB"
    )
    print(
        f"{args.customers:,} customers, 240 days: {long_lines:,} lines, peak {long_peak / 1e6:.1f} MB"
    )
    figures = {
        "bench": "generator_memory",
        "customers": args.customers,
        "lines_60d": short_lines,
        "lines_240d": long_lines,
        "peak_mb_60d": round(short_peak / 1e6, 1),
        "peak_mb_240d": round(long_peak / 1e6, 1),
        "stream_ratio": round(long_lines / short_lines, 2),
        "memory_ratio": round(long_peak / short_peak, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
