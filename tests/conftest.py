"""Shared test fixtures: the upstream conformance data and a real ``narthex serve`` subprocess."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


def shared_path() -> pathlib.Path:
    """``../shared`` beside the checkout, or wherever ``NARTHEX_SHARED`` points."""
    return pathlib.Path(os.environ.get("NARTHEX_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    path = shared_path()
    if not path.is_dir():
        pytest.skip(f"upstream conformance data not found at {path} (set NARTHEX_SHARED)")
    return path


def self_signed_cert(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A throwaway key and certificate for ``localhost`` (made with openssl)."""
    import subprocess

    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def require_binary(name: str) -> str:
    """The path of a reference binary, or skip the interop test that needs it (saying so)."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"interop: {name} is not installed (apt-get install it; .ci/run does)")
    return path


# Conformance suites from ../shared: parametrised tests whose outcomes are tallied at the end of the run.
CORPUS_TESTS = {
    "shared/configs *.good.yml load": "tests/config/test_corpus.py::test_good_config_loads",
    "shared/configs *.bad.yml refused": "tests/config/test_corpus.py::test_bad_config_is_refused",
}
_REPORT_KEY = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def conformance_report(request) -> dict[str, str]:
    """Suites that count for themselves (e.g. the promqltest runner) put a summary line here."""
    return request.config.stash.setdefault(_REPORT_KEY, {})


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = []
    for suite, prefix in CORPUS_TESTS.items():
        counts = {"passed": 0, "failed": 0, "skipped": 0}
        for outcome in counts:
            for report in terminalreporter.stats.get(outcome, []):
                if getattr(report, "when", "call") in ("call", "setup") and report.nodeid.startswith(prefix):
                    counts[outcome] += 1
        if any(counts.values()):
            lines.append(
                f"{suite}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
            )
    lines.extend(f"{suite}: {summary}" for suite, summary in config.stash.get(_REPORT_KEY, {}).items())
    if lines:
        terminalreporter.section("conformance (upstream suites from ../shared)")
        for line in lines:
            terminalreporter.write_line(line)
