"""Fixtures for the configuration tests: the upstream ``config/testdata`` corpus in ``shared/configs``."""

from __future__ import annotations

import pathlib

import pytest

from tests.conftest import shared_path

CONFIGS = shared_path() / "configs"


def corpus(suffix: str) -> list[pathlib.Path]:
    """The corpus files ending in ``suffix`` (empty when the shared data is absent)."""
    return sorted(CONFIGS.glob(f"*{suffix}")) if CONFIGS.is_dir() else []


@pytest.fixture(scope="session")
def configs_dir(shared_dir: pathlib.Path) -> pathlib.Path:
    path = shared_dir / "configs"
    if not path.is_dir():
        pytest.skip(f"upstream config corpus not found at {path}")
    return path
