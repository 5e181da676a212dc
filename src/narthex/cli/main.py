"""The ``narthex`` command: the server and the everyday operations tool in one."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from narthex.cli.ops import COMMANDS as OPS_COMMANDS
from narthex.util.buildinfo import version_text

USAGE = """usage: narthex [--version] <command> [<args> ...]

Commands:
  serve                   Run the Narthex server (Prometheus's flags; see 'narthex serve --help').
  check config FILE...    Check configuration files, as 'promtool check config' does.
  check rules FILE...     Check rule files, as 'promtool check rules' does.
  test rules FILE...      Run rule unit tests, as 'promtool test rules' does.
  tsdb <command> ...      TSDB tools: create-blocks-from openmetrics, list, analyze, dump (as promtool).
  promqltest FILE...      Run PromQL conformance scripts (promqltest format) against the engine.
  query EXPR              Instant query against a server (--server, default $NARTHEX_URL or :9090).
  query-range EXPR        Range query (--start, --end, --step).
  series MATCH...         Series matching selectors.
  labels [NAME]           Label names, or one label's values.
  targets|alerts|rules    Scrape targets, active alerts, rule groups of a server.
  health|ready            Check a server's /-/healthy or /-/ready.
  version                 Print version information.
"""


def _check(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="narthex check", allow_abbrev=False)
    sub = parser.add_subparsers(dest="what", required=True)
    config = sub.add_parser("config", help="Check if the config files are valid or not.", allow_abbrev=False)
    config.add_argument("--syntax-only", action="store_true", help="Only check the config file syntax.")
    config.add_argument("files", nargs="+", metavar="FILE")
    args = parser.parse_args(list(argv))
    from narthex.cli.check_config import check_config

    return check_config(args.files, syntax_only=args.syntax_only)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a subcommand; returns the exit code (and exits with it when run as a script)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command in ("--version", "version"):
        sys.stdout.write(version_text())
        return 0
    if command == "serve":
        from narthex.cli.serve import serve_main

        return serve_main(rest)
    if command == "check" and rest[:1] == ["rules"]:
        from narthex.cli.rules import check_rules_main

        return check_rules_main(rest[1:])
    if command == "check":
        return _check(rest)
    if command == "test" and rest[:1] == ["rules"]:
        from narthex.cli.rules import test_rules_main

        return test_rules_main(rest[1:])
    if command == "tsdb":
        from narthex.cli.tsdb import tsdb_main

        return tsdb_main(rest)
    if command in OPS_COMMANDS:
        from narthex.cli.ops import ops_main

        return ops_main([command, *rest])
    if command == "promqltest":
        from narthex.cli.promqltest import promqltest_main

        return promqltest_main(rest)
    sys.stderr.write(f"narthex: error: unknown command {command!r}\n{USAGE}")
    return 2


def entry() -> None:
    sys.exit(main())
