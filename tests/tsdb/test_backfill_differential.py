"""Differential test: the same OpenMetrics file backfilled by promtool and by narthex gives the same
samples (``promtool tsdb dump`` vs ``narthex tsdb dump``) and the same block time ranges."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from bench.common import generate_openmetrics

from narthex.cli.tsdb import tsdb_main
from tests.conftest import require_binary

EXTRA = r"""# TYPE weird gauge
weird{nl="a\nb",path="C:\\dir",quote="say \"hi\""} NaN 1700000000.001
weird{nl="a\nb",path="C:\\dir",quote="say \"hi\""} +Inf 1700000001.5
weird{nl="a\nb",path="C:\\dir",quote="say \"hi\""} -1.5e-7 1700000002
weird{nl="a\nb",path="C:\\dir",quote="say \"hi\""} 1e+21 1700000003.999
weird{nl="a\nb",path="C:\\dir",quote="say \"hi\""} -Inf 1700010003.007
# TYPE build info
build_info{version="1.2.3"} 1 1700000000.000
# TYPE c counter
c_total 5 1700000000.0
c_created 1699999000.0 1700000000.0
c_total 6 1700020000.0
c_created 1699999000.0 1700020000.0
# EOF
"""


def _narthex(*argv: str) -> str:
    out = io.StringIO()
    assert tsdb_main(list(argv), out=out) == 0
    return out.getvalue()


def _ranges(root: Path) -> list[tuple[int, int, int, int]]:
    metas = [json.loads((p / "meta.json").read_text()) for p in root.iterdir() if (p / "meta.json").is_file()]
    return sorted(
        (m["minTime"], m["maxTime"], m["stats"]["numSamples"], m["stats"]["numSeries"]) for m in metas
    )


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    promtool = require_binary("promtool")
    root = tmp_path_factory.mktemp("differential")
    src = root / "input.om"
    generate_openmetrics(src, targets=2, hours=4.5, interval_s=15, jitter_ms=40, seed=7)
    src.write_text(src.read_text().removesuffix("# EOF\n") + EXTRA)
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(src), str(root / "prom")],
        check=True,
    )
    (root / "prom" / "wal").mkdir(exist_ok=True)  # promtool 2.42's dump wants a WAL directory
    _narthex("create-blocks-from", "openmetrics", "-q", str(src), str(root / "narthex"))
    return root, promtool


def test_same_samples_and_block_ranges(backfilled: tuple[Path, str]) -> None:
    root, promtool = backfilled
    theirs = subprocess.run(
        [promtool, "tsdb", "dump", str(root / "prom")], check=True, capture_output=True, text=True
    ).stdout
    ours = _narthex("dump", str(root / "narthex"))
    assert len(ours.splitlines()) > 50_000
    assert sorted(ours.splitlines()) == sorted(theirs.splitlines())
    assert ours == theirs  # same order too: series in label order, samples in time order
    assert [r[:3] for r in _ranges(root / "narthex")] == [r[:3] for r in _ranges(root / "prom")]
    assert _ranges(root / "narthex") == _ranges(root / "prom")


def test_selectors_and_time_range_match_promtool(backfilled: tuple[Path, str]) -> None:
    root, promtool = backfilled
    args = [
        "--min-time=1700003000000",
        "--max-time=1700012345678",
        '--match=http_requests_total{code=~"5.."}',
    ]
    theirs = subprocess.run(
        [promtool, "tsdb", "dump", *args, str(root / "prom")], check=True, capture_output=True, text=True
    ).stdout
    ours = _narthex("dump", *args, str(root / "narthex"))
    assert ours == theirs and ours


def test_promtool_reads_our_openmetrics_dump(backfilled: tuple[Path, str]) -> None:
    """narthex dump-openmetrics -> promtool create-blocks-from -> promtool dump: the same samples
    (NaN values compared as text; staleness markers are never dumped)."""
    root, promtool = backfilled
    om = root / "roundtrip.om"
    om.write_text(_narthex("dump-openmetrics", str(root / "narthex")))
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(om), str(root / "again")],
        check=True,
    )
    (root / "again" / "wal").mkdir(exist_ok=True)
    again = subprocess.run(
        [promtool, "tsdb", "dump", str(root / "again")], check=True, capture_output=True, text=True
    ).stdout
    assert again == _narthex("dump", str(root / "narthex"))
