"""``narthex tsdb ...``: promtool's offline TSDB commands (list, analyze, dump, create-blocks-from).

Arguments, output and messages follow ``promtool tsdb`` (Prometheus 2.42; ``dump --format`` and
``dump-openmetrics`` as in promtool 3). Errors are printed to stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

import numpy as np

from narthex.model.labels import METRIC_NAME
from narthex.model.textparse import format_go_float
from narthex.promql.parser import parse_metric_selector
from narthex.tsdb.analyze import analyze_block
from narthex.tsdb.backfill import BackfillError, create_blocks_from_openmetrics
from narthex.tsdb.block import BlockMeta
from narthex.tsdb.gofmt import (
    condensed_labels,
    format_base2_bytes,
    format_go_duration,
    labels_string,
    parse_go_duration,
    tabwrite,
)
from narthex.tsdb.querier import Series
from narthex.tsdb.readonly import ReadOnlyDB

DEFAULT_DB_PATH = "data/"
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
DEFAULT_MATCH = "{__name__=~'(?s:.*)'}"
_STALE_NAN_BITS = 0x7FF0000000000002
_HEADER = [
    "BLOCK ULID",
    "MIN TIME",
    "MAX TIME",
    "DURATION",
    "NUM SAMPLES",
    "NUM CHUNKS",
    "NUM SERIES",
    "SIZE",
]


class _ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so :func:`tsdb_main` can return a status."""

    def error(self, message: str) -> NoReturn:
        raise _ArgError(f"{self.prog}: error: {message}")


def _block_row(meta: BlockMeta, size: int, human: bool) -> list[str]:
    def when(ts: int) -> str:
        if not human:
            return str(ts)
        secs = int(ts / 1000)  # Go integer division truncates toward zero
        return dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")

    return [
        meta.ulid,
        when(meta.min_time),
        when(meta.max_time),
        format_go_duration((meta.max_time - meta.min_time) * 1_000_000),
        str(meta.num_samples),
        str(meta.num_chunks),
        str(meta.num_series),
        format_base2_bytes(size) if human else str(size),
    ]


def _block_size(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _d, files in os.walk(path) for f in files)


def _list(args: argparse.Namespace, out: TextIO) -> int:
    with ReadOnlyDB(args.db_path, replay_wal=False) as db:
        rows = [_HEADER] + [_block_row(b.meta, b.size_bytes, args.human_readable) for b in db.blocks]
    out.write(tabwrite(rows))
    return 0


def _analyze(args: argparse.Namespace, out: TextIO) -> int:
    with ReadOnlyDB(args.db_path, replay_wal=False) as db:
        if not db.blocks:
            raise FileNotFoundError("no blocks found")
        if args.block_id:
            found = [b for b in db.blocks if b.meta.ulid == args.block_id]
            if not found:
                raise FileNotFoundError(f"invalid block ID {args.block_id}")
            block = found[0]
        else:
            block = max(db.blocks, key=lambda b: b.meta.ulid)
        out.write(analyze_block(block, args.limit, args.extended))
    return 0


def _select(db: ReadOnlyDB, mint: int, maxt: int, selectors: list[str]) -> list[Series]:
    matcher_sets = [parse_metric_selector(s) for s in selectors]
    q = db.querier(mint, maxt)
    if len(matcher_sets) == 1:
        return q.select(matcher_sets[0])
    merged: dict = {}
    for ms in matcher_sets:
        for s in q.select(ms):
            merged[s.labels] = s
    return [merged[k] for k in sorted(merged)]


def _write_lines(out: TextIO, lines: Iterable[str]) -> None:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= 10_000:
            out.write("".join(batch))
            batch.clear()
    out.write("".join(batch))


def _prom_lines(series: list[Series]) -> Iterable[str]:
    for s in series:
        prefix = labels_string(s.labels) + " "
        for v, t in zip(s.values.tolist(), s.timestamps.tolist(), strict=True):
            yield f"{prefix}{format_go_float(v)} {t}\n"


def _go_json(obj: dict) -> str:
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _seriesjson_lines(series: list[Series]) -> Iterable[str]:
    seen: set[str] = set()
    for s in series:
        text = _go_json(dict(s.labels))
        if text not in seen:
            seen.add(text)
            yield text + "\n"


def om_timestamp(t: int) -> str:
    """``t`` ms as OpenMetrics seconds (``%.3f`` as promtool), nudged up when needed so that
    ``int(float(text) * 1000)`` (how parsers read it back) gives ``t`` again."""
    text = f"{t / 1000:.3f}"
    f = float(text)
    for _ in range(4):
        if int(f * 1000.0) >= t:
            break
        f = math.nextafter(f, math.inf)
        text = repr(f)
    return text


def _openmetrics_lines(series: list[Series]) -> Iterable[str]:
    for s in series:
        name = dict(s.labels).get(METRIC_NAME, "")
        rest = tuple((k, v) for k, v in s.labels if k != METRIC_NAME)
        prefix = name + condensed_labels(rest) + " "
        stale = s.values.view(np.uint64) == _STALE_NAN_BITS
        for v, t, st in zip(s.values.tolist(), s.timestamps.tolist(), stale.tolist(), strict=True):
            if not st:
                yield f"{prefix}{format_go_float(v)} {om_timestamp(t)}\n"
    yield "# EOF\n"


def _dump(args: argparse.Namespace, out: TextIO, fmt: str) -> int:
    selectors = args.match or [DEFAULT_MATCH]
    with ReadOnlyDB(args.db_path) as db:
        series = _select(db, args.min_time, args.max_time, selectors)
        formatter: Callable[[list[Series]], Iterable[str]] = {
            "prom": _prom_lines,
            "seriesjson": _seriesjson_lines,
            "openmetrics": _openmetrics_lines,
        }[fmt]
        _write_lines(out, formatter(series))
    return 0


class _Progress:
    """A one-line progress bar on stderr, drawn only when stdout is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        frac = min(done / total, 1.0)
        bar = "#" * int(30 * frac)
        sys.stderr.write(f"\rparsing input [{bar:<30}] {100 * frac:3.0f}%")
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()
            self.shown = False


def _create_blocks(args: argparse.Namespace, out: TextIO) -> int:
    path = Path(args.input_file)
    if not path.exists():
        raise FileNotFoundError(f"stat {path}: no such file or directory")
    custom: dict[str, str] = {}
    for item in args.label or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise _ArgError(f"expected KEY=VALUE got '{item}'")
        custom[name] = value
    max_block_ms = 0
    if args.max_block_duration:
        try:
            max_block_ms = parse_go_duration(args.max_block_duration) // 1_000_000
        except ValueError as err:
            raise _ArgError(str(err)) from None
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    progress = _Progress(out.isatty())
    wrote_header = [False]

    def on_block(block_path: Path, meta: BlockMeta) -> None:
        progress.clear()
        if args.quiet:
            return
        rows = [] if wrote_header[0] else [_HEADER]
        rows.append(_block_row(meta, _block_size(block_path), args.human_readable))
        wrote_header[0] = True
        out.write(tabwrite(rows))
        out.flush()

    try:
        create_blocks_from_openmetrics(path, output, max_block_ms, custom, on_block, progress)
    finally:
        progress.clear()
    return 0


def _build_parser() -> _Parser:
    parser = _Parser(prog="narthex tsdb", description="Run tsdb commands.", allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="List tsdb blocks.", allow_abbrev=False)
    p.add_argument("-r", "--human-readable", action="store_true", help="Print human readable values.")
    p.add_argument("db_path", nargs="?", default=DEFAULT_DB_PATH, help="Database path (default is data/).")

    p = sub.add_parser(
        "analyze", help="Analyze churn, label pair cardinality and compaction efficiency.", allow_abbrev=False
    )
    p.add_argument("--limit", type=int, default=20, help="How many items to show in each list.")
    p.add_argument("--extended", action="store_true", help="Run extended analysis.")
    p.add_argument("db_path", nargs="?", default=DEFAULT_DB_PATH, help="Database path (default is data/).")
    p.add_argument("block_id", nargs="?", default="", help="Block to analyze (default is the last block).")

    for name, help_text in (
        ("dump", "Dump samples from a TSDB."),
        ("dump-openmetrics", "[Experimental] Dump samples from a TSDB into OpenMetrics text format."),
    ):
        p = sub.add_parser(name, help=help_text, allow_abbrev=False)
        p.add_argument("--min-time", type=int, default=INT64_MIN, help="Minimum timestamp to dump (ms).")
        p.add_argument("--max-time", type=int, default=INT64_MAX, help="Maximum timestamp to dump (ms).")
        p.add_argument("--match", action="append", help="Series selector. Can be specified multiple times.")
        if name == "dump":
            p.add_argument(
                "--format",
                choices=("prom", "seriesjson", "openmetrics"),
                default="prom",
                help="Output format of the dump.",
            )
        p.add_argument(
            "db_path", nargs="?", default=DEFAULT_DB_PATH, help="Database path (default is data/)."
        )

    create = sub.add_parser(
        "create-blocks-from",
        help="[Experimental] Import samples from input and produce TSDB blocks.",
        allow_abbrev=False,
    )
    kinds = create.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    om = kinds.add_parser(
        "openmetrics",
        help="Import samples from OpenMetrics input and produce TSDB blocks.",
        allow_abbrev=False,
    )
    # promtool's flags belong to create-blocks-from; accept them before or after "openmetrics".
    for target, default in ((create, None), (om, argparse.SUPPRESS)):
        target.add_argument(
            "-r",
            "--human-readable",
            action="store_true",
            default=default or False,
            help="Print human readable values.",
        )
        target.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            default=default or False,
            help="Do not print created blocks.",
        )
        target.add_argument(
            "--max-block-duration",
            default=default,
            metavar="<duration>",
            help="Maximum duration created blocks may span. Anything less than 2h is ignored.",
        )
    om.add_argument(
        "--label",
        action="append",
        help="Label to attach to metrics. Can be specified multiple times. "
        "Example --label=label_name=label_value",
    )
    om.add_argument("input_file", help="OpenMetrics file to read samples from.")
    om.add_argument(
        "output_dir", nargs="?", default=DEFAULT_DB_PATH, help="Output directory for generated blocks."
    )
    return parser


def tsdb_main(argv: Sequence[str], out: TextIO | None = None) -> int:
    """Run ``narthex tsdb <argv...>``; returns the exit status."""
    out = sys.stdout if out is None else out
    parser = _build_parser()
    try:
        args = parser.parse_args(list(argv))
    except _ArgError as err:
        sys.stderr.write(f"{err}\n")
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        if args.command == "list":
            return _list(args, out)
        if args.command == "analyze":
            return _analyze(args, out)
        if args.command == "dump":
            return _dump(args, out, args.format)
        if args.command == "dump-openmetrics":
            return _dump(args, out, "openmetrics")
        return _create_blocks(args, out)
    except _ArgError as err:
        sys.stderr.write(f"narthex tsdb: error: {err}\n")
        return 2
    except BackfillError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    except (OSError, ValueError) as err:
        sys.stderr.write(f"{err}\n")
        return 1


if __name__ == "__main__":
    sys.exit(tsdb_main(sys.argv[1:]))
