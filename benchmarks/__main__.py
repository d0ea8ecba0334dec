"""Run every benchmark and print its figures (``make bench``; not part of ``make test``)."""

from __future__ import annotations

import asyncio
import importlib
import sys

SUITES = [
    "benchmarks.bench_foundation",
    "benchmarks.bench_domain",
    "benchmarks.bench_providers",
    "benchmarks.bench_resume",
    "benchmarks.bench_cluster",
]


def main() -> None:
    selected = sys.argv[1:] or SUITES
    for name in selected:
        module = importlib.import_module(name if name.startswith("benchmarks.") else f"benchmarks.{name}")
        for line in asyncio.run(module.run()):
            print(line, flush=True)


if __name__ == "__main__":
    main()
