"""``python -m bench [NAME...]``: run the benchmarks in ``bench/bench_*.py`` (all, or those named)."""

from __future__ import annotations

import importlib
import pathlib
import sys


def main(argv: list[str]) -> int:
    here = pathlib.Path(__file__).parent
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in argv] or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(names) or 'none'}")
        return 2
    if not wanted:
        print("no benchmarks in bench/")
        return 0
    status = 0
    for name in wanted:
        print(f"== {name}")
        module = importlib.import_module(f"bench.{name}")
        status |= module.main() or 0
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
