"""``narthex check config``: promtool's messages and exit codes."""

from __future__ import annotations

import io
import pathlib

import pytest

from narthex.cli.check_config import check_config, check_sd_file
from tests.config.conftest import corpus


def run(files: list[str], syntax_only: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check_config(files, syntax_only=syntax_only, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


GOOD = corpus(".good.yml")
BAD = corpus(".bad.yml")


@pytest.mark.parametrize("path", GOOD, ids=[p.name for p in GOOD])
def test_syntax_only_accepts_good_files(path: pathlib.Path) -> None:
    code, out, err = run([str(path)], syntax_only=True)
    assert code == 0, err
    assert out.startswith(f"Checking {path}\n")
    assert f" SUCCESS: {path} is valid prometheus config file syntax\n" in out


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_syntax_only_refuses_bad_files(path: pathlib.Path) -> None:
    code, _, err = run([str(path)], syntax_only=True)
    assert code == 1
    assert err.startswith("  FAILED: ")


def test_full_check_counts_rules_and_reports_success(tmp_path: pathlib.Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: up\n"
        "      - alert: A\n        expr: up == 0\n"
    )
    (rules / "b.yml").write_text("groups: []\n")
    (tmp_path / "targets.json").write_text('[{"targets": ["localhost:9090"], "labels": {"a": "b"}}]')
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    (tmp_path / "token").write_text("t")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "rule_files: [rules/*.yml]\nscrape_configs:\n  - job_name: a\n"
        "    authorization: {credentials_file: token}\n"
        "    tls_config: {cert_file: cert.pem, key_file: key.pem}\n"
        "    file_sd_configs: [{files: [targets.json, missing/*.json]}]\n"
    )
    code, out, err = run([str(config)])
    assert (code, err) == (0, "")
    assert "  SUCCESS: 2 rule files found\n" in out
    assert f" SUCCESS: {config} is valid prometheus config file syntax\n" in out
    assert (
        f'  WARNING: file "{tmp_path}/missing/*.json" for file_sd in scrape job "a" does not exist\n' in out
    )
    assert f"Checking {rules / 'a.yml'}\n  SUCCESS: 2 rules found\n" in out
    assert f"Checking {rules / 'b.yml'}\n  SUCCESS: 0 rules found\n" in out


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("rule_files: [nope.yml]\n", '"{dir}/nope.yml" does not point to an existing file'),
        (
            "scrape_configs:\n  - job_name: a\n    bearer_token_file: tok\n",
            'error checking authorization credentials or bearer token file "{dir}/tok": stat {dir}/tok: '
            "no such file or directory",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    tls_config: {cert_file: c, key_file: k}\n",
            'error checking client cert file "{dir}/c"',
        ),
        ("scrape_config_files: [jobs.yml]\n", 'error loading scrape configs: "{dir}/jobs.yml"'),
        (
            "scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: [t.yml]}]\n",
            'checking SD file "{dir}/t.yml": yaml: unmarshal errors:\n  line 1: field targats not found',
        ),
    ],
)
def test_full_check_failures(tmp_path: pathlib.Path, config: str, expected: str) -> None:
    (tmp_path / "jobs.yml").write_text(
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 1s\n    scrape_timeout: 2s\n"
    )
    (tmp_path / "t.yml").write_text("- targats: [a]\n")
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    code, out, err = run([str(path)])
    assert code == 1
    assert err.startswith("  FAILED: ")
    assert expected.format(dir=tmp_path) in err
    assert "SUCCESS" not in out


def test_rule_file_parse_error_fails(tmp_path: pathlib.Path) -> None:
    (tmp_path / "bad.rules").write_text("groups: [\n")
    path = tmp_path / "prometheus.yml"
    path.write_text("rule_files: [bad.rules]\n")
    code, out, err = run([str(path)])
    assert code == 1
    assert " SUCCESS: " in out and "  SUCCESS: 1 rule files found" in out
    assert err.startswith("  FAILED:\n") and "yaml: line" in err


def test_rule_file_with_invalid_expression_fails(tmp_path: pathlib.Path) -> None:
    (tmp_path / "bad.rules").write_text(
        "groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n        expr: sum(up\n"
    )
    path = tmp_path / "prometheus.yml"
    path.write_text("rule_files: [bad.rules]\n")
    code, _, err = run([str(path)])
    assert code == 1
    assert "unclosed left parenthesis" in err


def test_multiple_files_and_missing_file(tmp_path: pathlib.Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text("")
    code, out, err = run([str(good), str(tmp_path / "absent.yml")], syntax_only=True)
    assert code == 1
    assert out.count("Checking") == 2
    assert f"open {tmp_path / 'absent.yml'}: no such file or directory" in err


def test_sd_file_checks(shared_dir: pathlib.Path) -> None:
    rules = shared_dir / "rules"
    with pytest.raises(ValueError, match=r'invalid file extension: "\.nonexistent"'):
        check_sd_file(str(rules / "bad-sd-file-extension.nonexistent"))
    with pytest.raises(ValueError) as info:
        check_sd_file(str(rules / "bad-sd-file-format.yml"))
    assert str(info.value) == (
        "yaml: unmarshal errors:\n  line 1: field targats not found in type "
        'struct { Targets []string "yaml:\\"targets\\""; Labels model.LabelSet "yaml:\\"labels\\"" }'
    )


def test_sd_file_null_group(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("- targets: [a]\n- null\n")
    with pytest.raises(ValueError, match=r"nil target group item found \(index 1\)"):
        check_sd_file(str(path))
