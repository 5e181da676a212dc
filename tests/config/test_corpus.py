"""Every upstream ``*.good.yml`` loads; every ``*.bad.yml`` is refused with an error naming the problem."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from narthex.config import ConfigError, load_config
from tests.config.conftest import CONFIGS, corpus

# What each upstream bad file is about: a substring our error must contain.
BAD_FILE_ERRORS: dict[str, str] = yaml.safe_load(
    (pathlib.Path(__file__).parent / "bad_config_errors.yml").read_text(encoding="utf-8")
)


def _ids(paths: list[pathlib.Path]) -> list[str]:
    return [p.name for p in paths]


GOOD = corpus(".good.yml")
BAD = corpus(".bad.yml")


@pytest.mark.parametrize("path", GOOD, ids=_ids(GOOD))
def test_good_config_loads(path: pathlib.Path) -> None:
    load_config(str(path))


@pytest.mark.parametrize("path", BAD, ids=_ids(BAD))
def test_bad_config_is_refused(path: pathlib.Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    expected = BAD_FILE_ERRORS.get(path.name)
    assert expected is not None, f"no expectation recorded for {path.name}: {info.value}"
    assert expected in str(info.value)


def test_corpus_present(configs_dir: pathlib.Path) -> None:
    """The corpus is there and every bad file has an expectation (skips with a message otherwise)."""
    assert GOOD and BAD
    assert set(BAD_FILE_ERRORS) == {p.name for p in BAD}


@pytest.mark.parametrize(
    "name",
    [
        "agent_mode.with_alert_manager.yml",
        "agent_mode.with_alert_relabels.yml",
        "agent_mode.with_rule_files.yml",
        "agent_mode.without_remote_writes.yml",
        "otlp_empty.yml",
        "scrape_config_default_validation_mode.yml",
        "scrape_config_local_global_validation_mode.yml",
        "scrape_config_local_infer_escaping.yml",
        "scrape_config_local_validation_mode.yml",
    ],
)
def test_unsuffixed_configs_load(configs_dir: pathlib.Path, name: str) -> None:
    """Files upstream loads outside agent mode (agent-mode refusals are a server-flag matter)."""
    load_config(str(CONFIGS / name))


@pytest.mark.parametrize(
    ("name", "scheme", "escaping"),
    [
        ("scrape_config_default_validation_mode.yml", "utf8", "allow-utf-8"),
        ("scrape_config_local_validation_mode.yml", "legacy", "values"),
        ("scrape_config_local_global_validation_mode.yml", "utf8", "dots"),
        ("scrape_config_local_infer_escaping.yml", "legacy", "underscores"),
    ],
)
def test_name_validation_and_escaping(
    configs_dir: pathlib.Path, name: str, scheme: str, escaping: str
) -> None:
    job = load_config(str(CONFIGS / name)).scrape_configs[0]
    assert job.metric_name_validation_scheme == scheme
    assert job.metric_name_escaping_scheme == escaping


@pytest.mark.parametrize("path", GOOD, ids=_ids(GOOD))
def test_to_yaml_round_trips(path: pathlib.Path) -> None:
    from narthex.config import load_config_from_string

    text = load_config(str(path)).to_yaml()
    assert load_config_from_string(text).to_yaml() == text
