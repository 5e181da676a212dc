"""The OpenMetrics parser accepts exactly the shared corpus cases marked ``shouldParse: true``.

``pytest tests/model/test_openmetrics_corpus.py`` prints the tally in the conformance section.
"""

from __future__ import annotations

import json

import pytest

from narthex.model.exposition_families import check_openmetrics, parse_families
from narthex.model.textparse import Format, ParseError
from tests.conftest import shared_path

CORPUS = shared_path() / "openmetrics"


def _cases() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(p.name for p in CORPUS.iterdir() if (p / "test.json").is_file())


CASES = _cases()
pytestmark = pytest.mark.skipif(
    not CASES, reason=f"OpenMetrics corpus not found at {CORPUS} (set NARTHEX_SHARED to the shared folder)"
)


def _load(case: str) -> tuple[bytes, bool]:
    spec = json.loads((CORPUS / case / "test.json").read_text())
    assert spec.get("type", "text") == "text"
    return (CORPUS / case / spec.get("file", "metrics")).read_bytes(), bool(spec["shouldParse"])


def _accepts(body: bytes) -> tuple[bool, str]:
    try:
        check_openmetrics(body)
    except ParseError as exc:
        return False, str(exc)
    return True, ""


@pytest.mark.parametrize("case", CASES)
def test_case(case: str) -> None:
    body, should_parse = _load(case)
    accepted, error = _accepts(body)
    assert accepted == should_parse, f"{case}: expected shouldParse={should_parse}, got error {error!r}"


def test_counts(conformance_report: dict[str, str]) -> None:
    totals = {"accepted": 0, "rejected": 0, "expected_good": 0, "expected_bad": 0, "agree": 0}
    for case in CASES:
        body, should_parse = _load(case)
        accepted, _ = _accepts(body)
        totals["accepted" if accepted else "rejected"] += 1
        totals["expected_good" if should_parse else "expected_bad"] += 1
        totals["agree"] += accepted == should_parse
    summary = (
        f"{len(CASES)} cases, accepted {totals['accepted']} (expected {totals['expected_good']}), "
        f"rejected {totals['rejected']} (expected {totals['expected_bad']}), agreeing {totals['agree']}"
    )
    print(f"OpenMetrics corpus: {summary}")
    conformance_report["shared/openmetrics parser verdicts"] = summary
    assert totals["agree"] == len(CASES)


def test_good_cases_content() -> None:
    """Spot checks of what the good cases parse to."""
    fams = {f.name: f for f in parse_families(_load("escaping")[0], Format.OPENMETRICS)}
    a = fams["a"]
    assert a.type == "counter" and a.help == "he\n\\l\\tp"
    assert [dict(s.labels)["foo"] for s in a.samples] == ['b"a\nr', "b\\a\\z", 'b"a\nr # ', "b\\a\\z # "]
    fams = {f.name: f for f in parse_families(_load("timestamps")[0], Format.OPENMETRICS)}
    assert [s.timestamp_ms for s in fams["a"].samples][:4] == [0, 0, 1100, -(2**63) + 1]
    assert fams["a"].samples[4].timestamp_ms == 1_500_000
    fams = {f.name: f for f in parse_families(_load("counter_unit")[0], Format.OPENMETRICS)}
    cc = fams["cc_seconds"]
    assert (cc.type, cc.unit, [s.name for s in cc.samples]) == (
        "counter",
        "seconds",
        ["cc_seconds_total", "cc_seconds_created"],
    )
    hist = parse_families(_load("simple_histogram")[0], Format.OPENMETRICS)[0]
    assert [dict(s.labels).get("le") for s in hist.samples] == ["1.0", "+Inf", None, None]
    ex = parse_families(_load("gaugehistogram_exemplars")[0], Format.OPENMETRICS)[0].samples[2].exemplar
    assert ex is not None and ex.labels == (("a", "d"),) and ex.value == 4 and ex.timestamp_ms == 123_000
