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


def require_binary(name: str) -> str:
    """The path of a reference binary, or skip the interop test that needs it (saying so)."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"interop: {name} is not installed (apt-get install it; .ci/run does)")
    return path
