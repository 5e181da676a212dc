"""The shared rule corpus (``../shared/rules``): ``check rules``/``test rules`` verdicts per EXPECTED.md."""

from __future__ import annotations

import os
import pathlib
import shlex
import subprocess

import pytest

from narthex.cli import rules as rules_cli
from narthex.rules.rulefmt import parse_rule_file
from tests.conftest import require_binary, shared_path

RULES_DIR = shared_path() / "rules"
_RESULTS: dict[str, dict[str, bool]] = {"check rules": {}, "test rules": {}}


def _expected_rows() -> tuple[list[tuple[str, int, str]], list[tuple[list[str], int]]]:
    """(file, exit, fragment) rows of the check table and (argv, exit) rows of the test table."""
    path = RULES_DIR / "EXPECTED.md"
    if not path.is_file():
        return [], []
    checks: list[tuple[str, int, str]] = []
    tests: list[tuple[list[str], int]] = []
    section = ""
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            section = line
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        if "check rules" in section and len(cells) == 3 and cells[1][:1].isdigit():
            fragment = cells[2].strip("`")
            for name in cells[0].split(","):
                checks.append((name.strip(), int(cells[1][0]), fragment))
        elif "test rules" in section and cells[0].startswith("`test rules"):
            tests.append((shlex.split(cells[0].strip("`"))[2:], int(cells[1])))
    return checks, tests


CHECK_ROWS, TEST_ROWS = _expected_rows()


@pytest.fixture(scope="module", autouse=True)
def _tally(conformance_report):
    yield
    for suite, results in _RESULTS.items():
        if results:
            ok = sum(results.values())
            conformance_report[f"shared/rules {suite} (EXPECTED.md)"] = (
                f"{ok} of {len(results)} match, {len(results) - ok} differ"
            )


@pytest.fixture
def in_rules_dir(shared_dir, monkeypatch):
    monkeypatch.chdir(shared_dir / "rules")


@pytest.mark.parametrize(("name", "exit_code", "fragment"), CHECK_ROWS, ids=[r[0] for r in CHECK_ROWS])
def test_check_rules_verdict(name, exit_code, fragment, in_rules_dir, capsys):
    legacy_only = name == "legacy_validation_annotation.bad.yaml"
    code = rules_cli.check_rules_main([name])
    err = capsys.readouterr().err
    if legacy_only:
        # Accepted under Prometheus 3's UTF-8 names, refused under legacy validation.
        _, errors = parse_rule_file(name, legacy=True)
        ok = code == 0 and any(fragment in e for e in errors)
    else:
        ok = code == exit_code and fragment in err
    _RESULTS["check rules"][name] = ok
    assert ok, (code, err)


@pytest.mark.parametrize(("argv", "exit_code"), TEST_ROWS, ids=[" ".join(r[0]) for r in TEST_ROWS])
def test_test_rules_verdict(argv, exit_code, in_rules_dir, capsys):
    code = rules_cli.test_rules_main(argv)
    out = capsys.readouterr()
    _RESULTS["test rules"][" ".join(argv)] = code == exit_code
    assert code == exit_code, out.err


def test_corpus_tables_were_read(shared_dir):
    assert len(CHECK_ROWS) >= 20
    assert len(TEST_ROWS) == 14


def test_failing_output_matches_promtool_format(in_rules_dir, capsys):
    assert rules_cli.test_rules_main(["failing.yml"]) == 1
    err = capsys.readouterr().err
    assert "    name: Failing test,\n    alertname: Test, time: 0s, \n        exp:[\n" in err
    assert '        exp: {__name__="test"} 1E+00\n        got: {__name__="test"} 0E+00' in err
    assert 'Labels:{alertname="InstanceDown", job="test", severity="page"}' in err


# Files whose verdict promtool 2.42 (legacy names, pre-3.0) shares with Prometheus 3.
PROMTOOL_242_FILES = [
    "bad_expr.bad.yaml",
    "duplicate_grp.bad.yaml",
    "invalid_label_name.bad.yaml",
    "invalid_record_name.bad.yaml",
    "no_rec_alert.bad.yaml",
    "noexpr.bad.yaml",
    "record_and_alert.bad.yaml",
    "record_and_for.bad.yaml",
    "record_and_keep_firing_for.bad.yaml",
    "legacy_validation_annotation.good.yaml",
    "test.yaml",
    "test_aliases.yaml",
    "rules.yml",
    "rules-bad.yml",
    "at-modifier.yml",
    "negative-offset.yml",
]

EXTRA_CASES = {
    "bad_duration.yml": "groups:\n  - name: a\n    interval: 5x\n    rules:\n      - record: x\n"
    "        expr: 1\n",
    "bad_types.yml": "groups:\n  - name: a\n    limit: abc\n    rules:\n      - record: x\n        expr: 1\n",
    "bad_syntax.yml": "groups:\n  - name: a\n   rules: x\n",
    "unknown_field.yml": "grups: []\n",
    "empty.yml": "",
    "dup_key.yml": "groups:\n- name: a\n  rules:\n  - record: x\n    expr: 1\n    expr: 2\n",
    "templated.yml": (
        "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: up == 0\n"
        "    for: 1m\n    keep_firing_for: 5m\n"
        "    annotations:\n      s: '{{ $labels.job }} {{ $value | humanize }}'\n"
    ),
    "bad_template.yml": (
        "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      x: '{{ .Labels.job'\n"
    ),
    "group_labels.yml": (
        "groups:\n- name: a\n  labels:\n    team: x\n  rules:\n"
        "  - record: r\n    expr: up\n  - record: r\n    expr: up\n"
    ),
}


def test_check_rules_verdicts_match_promtool_242(shared_dir, tmp_path, capsys):
    promtool = require_binary("promtool")
    files = [str(shared_dir / "rules" / f) for f in PROMTOOL_242_FILES]
    for name, text in EXTRA_CASES.items():
        (tmp_path / name).write_text(text)
        if name != "group_labels.yml":  # group labels are newer than 2.42
            files.append(str(tmp_path / name))
    differ = []
    for path in files:
        ref = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, timeout=60)
        ours = rules_cli.check_rules_main([path])
        capsys.readouterr()
        if ref.returncode != ours:
            differ.append((os.path.basename(path), ref.returncode, ours))
    assert differ == []
    for lint_args in (["--lint=none"], ["--lint-fatal"]):
        path = str(shared_dir / "rules" / "test.yaml")
        ref = subprocess.run([promtool, "check", "rules", *lint_args, path], capture_output=True, timeout=60)
        assert rules_cli.check_rules_main([*lint_args, path]) == ref.returncode
    capsys.readouterr()


def test_group_labels_count_in_duplicate_lint(tmp_path, capsys):
    path = tmp_path / "g.yml"
    path.write_text(EXTRA_CASES["group_labels.yml"])
    assert rules_cli.check_rules_main(["--lint-fatal", str(path)]) == 3
    err = capsys.readouterr().err
    assert "lint error 1 duplicate rule(s) found.\nMetric: r\nLabel(s):\n\tteam: x\n" in err


def test_messages_have_positions(tmp_path, capsys):
    cases = {
        "bad_duration.yml": 'not a valid duration string: "5x"',
        "bad_types.yml": "yaml: unmarshal errors:\n  line 3: cannot unmarshal !!str `abc` into int",
        "unknown_field.yml": "line 1: field grups not found in type rulefmt.RuleGroups",
        "dup_key.yml": 'line 6: mapping key "expr" already defined at line 5',
        "bad_template.yml": 'group "a", rule 1, "A": label "x": template: __alert_A:1: unclosed action',
    }
    for name, fragment in cases.items():
        path = tmp_path / name
        path.write_text(EXTRA_CASES[name])
        assert rules_cli.check_rules_main([str(path)]) == 1
        assert fragment in capsys.readouterr().err, name


def test_check_rules_reads_stdin(monkeypatch, capsys):
    import io

    monkeypatch.setattr(
        "sys.stdin", io.StringIO("groups:\n- name: a\n  rules:\n  - record: x\n    expr: 1\n")
    )
    assert rules_cli.check_rules_main([]) == 0
    assert capsys.readouterr().out == "Checking standard input\n  SUCCESS: 1 rules found\n\n"


def test_junit_report(in_rules_dir, tmp_path, capsys):
    report = tmp_path / "junit.xml"
    assert rules_cli.test_rules_main(["--junit", str(report), "failing.yml"]) == 1
    capsys.readouterr()
    text = report.read_text()
    assert '<testsuite name="failing.yml" tests="2" failures="2"' in text


def test_rules_dir_is_shared(shared_dir):
    assert pathlib.Path(RULES_DIR) == shared_dir / "rules"


SAME_MESSAGE_CASES = {
    "syntax_dash.yml": "groups:\n  - name: a\n   rules: x\n",
    "syntax_eos.yml": 'groups:\n- name: "a\n',
    "syntax_node.yml": "groups:\n- name: a\n  rules: [\n",
    "syntax_tab.yml": "groups:\n\t- name: a\n",
    "syntax_mapping.yml": "a: b: c\n",
    "bad_duration.yml": EXTRA_CASES["bad_duration.yml"],
    "unknown_field.yml": EXTRA_CASES["unknown_field.yml"],
    "dup_key.yml": EXTRA_CASES["dup_key.yml"],
}


def test_structure_error_messages_match_promtool_242(tmp_path, capsys, monkeypatch):
    promtool = require_binary("promtool")
    monkeypatch.chdir(tmp_path)
    for name, text in SAME_MESSAGE_CASES.items():
        (tmp_path / name).write_text(text)
        ref = subprocess.run([promtool, "check", "rules", name], capture_output=True, text=True, timeout=60)
        assert rules_cli.check_rules_main([name]) == ref.returncode
        assert capsys.readouterr().err == ref.stderr, name
