"""``narthex check rules`` and ``narthex test rules``: promtool's rule commands, output and exit codes.

Exit codes: 0 success, 1 failure, 3 lint problems under ``--lint-fatal``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from narthex.rules.lint import duplicate_rules, duplicate_rules_message
from narthex.rules.rulefmt import RuleFile, parse_rule_file, parse_rules

SUCCESS = 0
FAILURE = 1
LINT_ERROR = 3
LINT_OPTIONS = ("all", "duplicate-rules", "none")


def _lint_duplicates(setting: str) -> bool:
    enabled = False
    for option in setting.split(",") if setting else []:
        if option in ("all", "duplicate-rules"):
            enabled = True
        elif option != "none":
            print(f'WARNING: unknown lint option: "{option}"')
    return enabled


def _report(
    name: str, rule_file: RuleFile | None, errors: list[str], lint_duplicates: bool
) -> tuple[bool, bool]:
    """Print one file's verdict; returns (failed, has_errors) where lint problems are not errors."""
    print(f"Checking {name}")
    if errors or rule_file is None:
        sys.stdout.flush()
        print("  FAILED:", file=sys.stderr)
        for error in errors:
            print(error, file=sys.stderr)
        return True, True
    if lint_duplicates:
        duplicates = duplicate_rules(rule_file)
        if duplicates:
            sys.stdout.flush()
            print("  FAILED:", file=sys.stderr)
            print(duplicate_rules_message(duplicates), file=sys.stderr)
            print()
            return True, False
    print(f"  SUCCESS: {rule_file.rule_count} rules found")
    print()
    return False, False


def check_rules(
    files: Sequence[str],
    lint: str = "duplicate-rules",
    lint_fatal: bool = False,
    ignore_unknown_fields: bool = False,
) -> int:
    """Check rule files (standard input when none are given); returns promtool's exit code."""
    lint_duplicates = _lint_duplicates(lint)
    failed = has_errors = False
    if not files:
        text = sys.stdin.read()
        rule_file, errors = parse_rules(text, ignore_unknown_fields)
        failed, has_errors = _report("standard input", rule_file, errors, lint_duplicates)
    for path in files:
        rule_file, errors = parse_rule_file(path, ignore_unknown_fields)
        f, e = _report(path, rule_file, errors, lint_duplicates)
        failed, has_errors = failed or f, has_errors or e
    if failed and has_errors:
        return FAILURE
    if failed and lint_fatal:
        return LINT_ERROR
    return SUCCESS


def check_rules_main(argv: Sequence[str]) -> int:
    """``narthex check rules [--lint=...] [--lint-fatal] [--ignore-unknown-fields] [FILE...]``."""
    parser = argparse.ArgumentParser(prog="narthex check rules", allow_abbrev=False)
    parser.add_argument(
        "--lint",
        default="duplicate-rules",
        help="Linting checks to apply. Available options are: all, duplicate-rules, none. "
        "Use --lint=none to disable linting",
    )
    parser.add_argument("--lint-fatal", action="store_true", help="Make lint errors exit with exit code 3.")
    parser.add_argument(
        "--ignore-unknown-fields", action="store_true", help="Ignore unknown fields in the rule files."
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="The rule files to check (default: stdin).")
    args = parser.parse_args(list(argv))
    return check_rules(args.files, args.lint, args.lint_fatal, args.ignore_unknown_fields)


def test_rules_main(argv: Sequence[str]) -> int:
    """``narthex test rules [--run=REGEX] [--ignore-unknown-fields] [--junit=FILE] FILE...``."""
    from narthex.rules.unittest.runner import run_test_files

    parser = argparse.ArgumentParser(prog="narthex test rules", allow_abbrev=False)
    parser.add_argument(
        "--run", action="append", default=[], help="Run only test groups matching this regex."
    )
    parser.add_argument("--ignore-unknown-fields", action="store_true", help="Ignore unknown fields.")
    parser.add_argument("--debug", action="store_true", help="Print debug information (the data series).")
    parser.add_argument("--diff", action="store_true", help="Print a colored diff of failures.")
    parser.add_argument("--junit", default="", metavar="FILE", help="Write a JUnit XML report to FILE.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="The unit test files.")
    args = parser.parse_args(list(argv))
    return run_test_files(
        args.files,
        run=args.run,
        ignore_unknown_fields=args.ignore_unknown_fields,
        junit_path=args.junit,
        debug=args.debug,
    )
