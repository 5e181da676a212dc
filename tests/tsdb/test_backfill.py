"""``narthex tsdb create-blocks-from openmetrics``: blocks, flags, errors, round trip, serving."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from bench.common import generate_openmetrics
from prometheus_client import CollectorRegistry

from narthex.cli.tsdb import om_timestamp, tsdb_main
from narthex.model.matcher import Matcher, MatchType
from narthex.tsdb import TSDBOptions, open_db
from narthex.tsdb.backfill import (
    BackfillError,
    compatible_block_duration,
    create_blocks_from_openmetrics,
    parse_openmetrics,
)
from tests.server.harness import ServerProcess

H = 3_600_000


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = tsdb_main(list(argv), out=out)
    return code, out.getvalue()


def ok(*argv: str) -> str:
    code, text = run(*argv)
    assert code == 0, text
    return text


def metas(root: Path) -> list[dict]:
    found = [json.loads((p / "meta.json").read_text()) for p in root.iterdir() if (p / "meta.json").exists()]
    return sorted(found, key=lambda m: m["minTime"])


OM = """# TYPE a counter
a_total{x="1"} 1 0.5
a_total{x="1"} 2 3600.0
a_total{x="1"} 3 7200.001
# TYPE h histogram
h_bucket{le="1"} 1 10.000
h_bucket{le="+Inf"} 2 10.000
h_count 2 10.000
h_sum 3.5 10.000
# EOF
"""


def test_blocks_per_aligned_range(tmp_path: Path) -> None:
    out = create_blocks_from_openmetrics(OM, tmp_path)
    assert [(m.min_time, m.max_time) for m in out] == [(500, 3_600_001), (7_200_001, 7_200_002)]
    found = metas(tmp_path)
    assert [(m["minTime"], m["maxTime"], m["stats"]["numSamples"]) for m in found] == [
        (500, 3_600_001, 6),
        (7_200_001, 7_200_002, 1),
    ]
    assert all(m["compaction"] == {"level": 1, "sources": [m["ulid"]]} for m in found)
    # classic histogram le values are normalised as Prometheus 3 does
    text = ok("dump", "--match", "h_bucket", str(tmp_path))
    assert text.splitlines() == [
        '{__name__="h_bucket", le="+Inf"} 2 10000',
        '{__name__="h_bucket", le="1.0"} 1 10000',
    ]


def test_max_block_duration() -> None:
    assert compatible_block_duration(0) == 2 * H
    assert compatible_block_duration(5 * H) == 2 * H
    assert compatible_block_duration(6 * H) == 6 * H
    assert compatible_block_duration(24 * H) == 18 * H
    assert compatible_block_duration(10**15) == 2 * H * 3**9


def test_max_block_duration_flag_and_labels(tmp_path: Path) -> None:
    src = tmp_path / "in.om"
    src.write_text(OM)
    text = ok(
        "create-blocks-from",
        "--max-block-duration=6h",
        "openmetrics",
        "--label=env=prod",
        "--label=x=9",
        str(src),
        str(tmp_path / "out"),
    )
    assert text.splitlines()[0].split() == [
        "BLOCK",
        "ULID",
        "MIN",
        "TIME",
        "MAX",
        "TIME",
        "DURATION",
        "NUM",
        "SAMPLES",
        "NUM",
        "CHUNKS",
        "NUM",
        "SERIES",
        "SIZE",
    ]
    assert [(m["minTime"], m["maxTime"]) for m in metas(tmp_path / "out")] == [(500, 7_200_002)]
    text = ok("dump", "--match", "a_total", str(tmp_path / "out"))
    assert text.splitlines()[0] == '{__name__="a_total", env="prod", x="9"} 1 500'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("a 1\n# EOF\n", "expected timestamp for series got none"),
        ("a 1 1\n", "data does not end with # EOF"),
        ("a 1 1\n# EOF\na 2 2\n", "unexpected data after # EOF"),
        ("a 1 1\na 2 1\n# EOF\n", "add sample: duplicate sample for timestamp"),
        ("a 1 2\na 2 1\n# EOF\n", "add sample: out of order sample"),
        ("a{ 1 1\n# EOF\n", "getting min and max timestamp: next:"),
    ],
)
def test_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(BackfillError, match=message):
        create_blocks_from_openmetrics(body, tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_cli_error_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tsdb_main(["create-blocks-from", "openmetrics", str(tmp_path / "missing"), str(tmp_path)]) == 1
    assert "no such file or directory" in capsys.readouterr().err
    (tmp_path / "bad.om").write_text("a 1\n# EOF\n")
    assert (
        tsdb_main(["create-blocks-from", "openmetrics", str(tmp_path / "bad.om"), str(tmp_path / "o")]) == 1
    )
    assert capsys.readouterr().err.startswith("getting min and max timestamp: expected timestamp")


def test_equal_duplicate_is_dropped_and_fast_path_matches_full_parse() -> None:
    body = 'a{b="c d"} 1 1\na{b="c d"} 1 1\na{b="c d"} 0x1 2\na{b="c d"} 2.5e0 3 # {t="x"} 1\n# EOF\n'
    with pytest.raises(BackfillError):
        parse_openmetrics(body)  # 0x1 is not a valid value: the fast path must not accept it
    parsed = parse_openmetrics(body.replace("0x1", "7"))
    assert parsed.t.tolist() == [1000, 1000, 2000, 3000]
    assert parsed.v.tolist() == [1.0, 1.0, 7.0, 2.5]
    assert parsed.sid.tolist() == [0, 0, 0, 0]


def test_served_by_open_db(tmp_path: Path) -> None:
    create_blocks_from_openmetrics(OM, tmp_path)
    db = open_db(tmp_path, TSDBOptions(background_compaction=False), registry=CollectorRegistry())
    try:
        got = db.querier(0, 10 * H).select([Matcher(MatchType.EQUAL, "__name__", "a_total")])
        assert got[0].timestamps.tolist() == [500, 3_600_000, 7_200_001]
    finally:
        db.close()


def test_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "in.om"
    generate_openmetrics(src, targets=2, hours=2.5, interval_s=30)
    assert run("create-blocks-from", "openmetrics", "-q", str(src), str(tmp_path / "one"))[0] == 0
    dumped = ok("dump", str(tmp_path / "one"))
    om = ok("dump", "--format=openmetrics", str(tmp_path / "one"))
    (tmp_path / "dump.om").write_text(om)
    assert (
        run("create-blocks-from", "openmetrics", "-q", str(tmp_path / "dump.om"), str(tmp_path / "two"))[0]
        == 0
    )
    assert run("dump", str(tmp_path / "two"))[1] == dumped
    assert [(m["minTime"], m["maxTime"]) for m in metas(tmp_path / "one")] == [
        (m["minTime"], m["maxTime"]) for m in metas(tmp_path / "two")
    ]


def test_om_timestamp_survives_truncating_parsers() -> None:
    rng = np.random.default_rng(3)
    for t in rng.integers(0, 4_000_000_000_000, 20_000).tolist():
        assert int(float(om_timestamp(t)) * 1000.0) == t


def test_narthex_serve_serves_backfilled_blocks(tmp_path: Path) -> None:
    """The output directory is a TSDB directory ``narthex serve --storage.tsdb.path`` serves."""
    create_blocks_from_openmetrics(OM, tmp_path / "data")
    server = ServerProcess(tmp_path)
    server.config_path.write_text("global:\n  scrape_interval: 1h\n")
    try:
        server.start()
        resp = server.request("GET", "/api/v1/query?query=a_total&time=3600.5")
        assert resp.status == 200, resp.body
        result = json.loads(resp.body)["data"]["result"]
        assert result == [{"metric": {"__name__": "a_total", "x": "1"}, "value": [3600.5, "2"]}]
    finally:
        server.stop()
