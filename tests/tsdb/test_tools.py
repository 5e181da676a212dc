"""``narthex tsdb list|analyze|dump|dump-openmetrics`` and the Go formatting they reproduce."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from bench.common import generate_openmetrics

from narthex.cli.tsdb import tsdb_main
from narthex.tsdb.gofmt import format_go_duration, parse_go_duration, tabwrite
from narthex.util.gofmt import go_quote

from .conftest import STALE_NAN, add, lbl


def ok(*argv: str) -> str:
    out = io.StringIO()
    assert tsdb_main(list(argv), out=out) == 0
    return out.getvalue()


def test_list_and_analyze(tmp_path: Path) -> None:
    src = tmp_path / "in.om"
    generate_openmetrics(src, targets=2, hours=3, interval_s=60)
    created = ok("create-blocks-from", "openmetrics", str(src), str(tmp_path / "db"))
    listed = ok("list", str(tmp_path / "db"))
    assert listed == created  # one header; rows as promtool's tabwriter aligns them here
    rows = [line.split() for line in listed.splitlines()[1:]]
    assert len(rows) == 2 and all(len(r) == 8 for r in rows)
    human = ok("list", "-r", str(tmp_path / "db"))
    assert "+0000 UTC" in human and "KiB" in human
    report = ok("analyze", "--limit=3", str(tmp_path / "db"))
    lines = report.splitlines()
    assert lines[0] == f"Block ID: {max(r[0] for r in rows)}"
    assert lines[2] == "Series: 94"
    assert "Highest cardinality metric names:" in lines
    top = lines[lines.index("Highest cardinality metric names:") + 1 :]
    assert top == [
        "48 http_request_duration_seconds_bucket",
        "16 http_requests_total",
        "8 node_memory_free_bytes",
    ]
    report = ok("analyze", "--extended", str(tmp_path / "db"))
    assert "Fullness: Amount of samples in chunks (100% is 120 samples)" in report


def test_dump_reads_wal_and_formats(tmp_path: Path, open_test_db) -> None:
    db = open_test_db(tmp_path / "live")
    add(db, [lbl("m", a='q"\n'), lbl("m", a="z")], 1000, [1e6, STALE_NAN])
    add(db, [lbl("m", a='q"\n')], 2000, [0.25])
    text = ok("dump", str(tmp_path / "live"))  # the DB is open and locked: read-only access
    assert text.splitlines() == [
        '{__name__="m", a="q\\"\\n"} 1e+06 1000',
        '{__name__="m", a="q\\"\\n"} 0.25 2000',
        '{__name__="m", a="z"} NaN 1000',
    ]
    text = ok("dump", "--min-time=1500", "--match", '{a="z"}', "--match", "m", str(tmp_path / "live"))
    assert text.splitlines() == ['{__name__="m", a="q\\"\\n"} 0.25 2000']
    text = ok("dump-openmetrics", str(tmp_path / "live"))
    assert text.splitlines() == ['m{a="q\\"\\n"} 1e+06 1.000', 'm{a="q\\"\\n"} 0.25 2.000', "# EOF"]
    text = ok("dump", "--format=seriesjson", str(tmp_path / "live"))
    assert text.splitlines() == ['{"__name__":"m","a":"q\\"\\n"}', '{"__name__":"m","a":"z"}']


def test_go_formatting() -> None:
    assert format_go_duration(7_200_000 * 10**6) == "2h0m0s"
    assert format_go_duration(6_398_946 * 10**6) == "1h46m38.946s"
    assert format_go_duration(999 * 10**6) == "999ms"
    assert parse_go_duration("1h30m") == 5400 * 10**9
    with pytest.raises(ValueError):
        parse_go_duration("2x")
    assert go_quote('a"\\\x01é') == '"a\\"\\\\\\x01é"'
    assert tabwrite([["A", "BB", "C"], ["long-cell-value", "x", "y"]]) == (
        "A                BB           C\nlong-cell-value  x            y\n"
    )
