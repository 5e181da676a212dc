"""``narthex promqltest FILE...``: run promqltest scripts against the engine (exit 1 on failure)."""

from __future__ import annotations

import argparse
import sys

from narthex.promql.promqltest import run_files


def promqltest_main(argv: list[str]) -> int:
    """Run the given ``.test`` files, print failures and counts; 0 when nothing failed."""
    parser = argparse.ArgumentParser(prog="narthex promqltest", description="Run PromQL test scripts.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="promqltest script(s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not list each skipped eval")
    args = parser.parse_args(argv)
    try:
        _, failed, _ = run_files(args.files, sys.stdout, show_skips=not args.quiet)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(promqltest_main(sys.argv[1:]))
