"""The queries and series of the shared PromQL conformance scripts (``$NARTHEX_SHARED/promqltest``).

Every ``eval`` query must parse; ``eval_fail``/``expect fail msg:`` cases whose expected message is a parse
error must produce exactly that message; every ``load`` series line must parse.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from narthex.promql.errors import ParseError
from narthex.promql.parser import ALL_FEATURES, parse_expr, parse_series_desc

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DIR = Path(os.environ.get("NARTHEX_SHARED", REPO_ROOT.parent / "shared")) / "promqltest"

_EVAL = re.compile(
    r"^eval(?:_fail|_warn|_info|_ordered)?\s+"
    r"(?:instant\s+at\s+\S+|range\s+from\s+\S+\s+to\s+\S+\s+step\s+\S+)\s+(?P<query>.*)$"
)
_FAIL_MSG = re.compile(r"^\s*(?:expect\s+fail\s+msg:|expected_fail_message)\s*(?P<msg>.*)$")


def _load() -> tuple[list[tuple[str, str, str | None]], list[tuple[str, str]]]:
    queries: list[tuple[str, str, str | None]] = []
    series: list[tuple[str, str]] = []
    if not SHARED_DIR.is_dir():
        return queries, series
    for path in sorted(SHARED_DIR.glob("*.test")):
        lines = path.read_text(encoding="utf-8").split("\n")
        in_load = False
        for number, line in enumerate(lines, 1):
            where = f"{path.name}:{number}"
            if line.startswith("load"):
                in_load = True
                continue
            if in_load and line[:1] in (" ", "\t") and line.strip() and not line.strip().startswith("#"):
                text = line.strip()
                head = text.split(maxsplit=1)[0]
                if head.endswith("@st"):  # Start-timestamp lines are read by the test runner itself.
                    continue
                series.append((where, text))
                continue
            in_load = False
            match = _EVAL.match(line)
            if match is None:
                continue
            message = None
            for follow in lines[number:]:
                if not follow.strip().startswith("expect"):
                    break
                fail = _FAIL_MSG.match(follow)
                if fail is not None:
                    message = fail.group("msg").strip()
            queries.append((where, match.group("query"), message))
    return queries, series


SHARED_QUERIES, SHARED_SERIES = _load()

pytestmark = pytest.mark.skipif(
    not SHARED_DIR.is_dir(), reason=f"shared PromQL scripts not found at {SHARED_DIR} (set NARTHEX_SHARED)"
)


def test_shared_scripts_found() -> None:
    assert len(SHARED_QUERIES) > 1000 and len(SHARED_SERIES) > 500


def test_shared_eval_queries_parse() -> None:
    failures = []
    for where, query, _ in SHARED_QUERIES:
        try:
            parse_expr(query, features=ALL_FEATURES)
        except ParseError as exc:
            failures.append(f"{where}: {query}: {exc}")
    assert not failures, failures[:10]


def test_shared_expected_parse_errors() -> None:
    """The shared scripts' parse-error expectations hold (the other failures happen at evaluation)."""
    checked = 0
    for where, query, message in SHARED_QUERIES:
        if message is None or "parse error" not in message:
            continue
        with pytest.raises(ParseError) as info:
            parse_expr(query, features=ALL_FEATURES)
        assert message in (str(info.value), info.value.message), where
        checked += 1
    assert checked >= 0


def test_shared_load_series_parse() -> None:
    failures = []
    for where, line in SHARED_SERIES:
        try:
            parse_series_desc(line)
        except ParseError as exc:
            failures.append(f"{where}: {line}: {exc}")
    assert not failures, failures[:10]
