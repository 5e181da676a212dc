"""``test rules`` against promtool 2.42: same verdicts and the same failure messages."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from narthex.cli import rules as rules_cli
from tests.conftest import require_binary

DATA = pathlib.Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["unittest_pass.yml", "unittest_fail.yml", "unittest_scenarios.yml"])
def test_same_verdict_and_messages_as_promtool(name, monkeypatch, capsys):
    promtool = require_binary("promtool")
    monkeypatch.chdir(DATA)
    ref = subprocess.run([promtool, "test", "rules", name], capture_output=True, text=True, timeout=60)
    code = rules_cli.test_rules_main([name])
    ours = capsys.readouterr()
    assert code == ref.returncode
    assert ours.err == ref.stderr


def test_run_filter_and_unnamed_groups(tmp_path, capsys):
    (tmp_path / "t.yml").write_text(
        "tests:\n"
        "  - input_series: [{series: a, values: '1'}]\n"
        "    promql_expr_test: [{expr: a, eval_time: 0, exp_samples: [{labels: a, value: 2}]}]\n"
        "  - name: good\n"
        "    input_series: [{series: a, values: '1'}]\n"
        "    promql_expr_test: [{expr: a, eval_time: 0, exp_samples: [{labels: a, value: 1}]}]\n"
    )
    assert rules_cli.test_rules_main([str(tmp_path / "t.yml")]) == 1
    assert 'exp: {__name__="a"} 2E+00' in capsys.readouterr().err
    assert rules_cli.test_rules_main(["--run", "^go", str(tmp_path / "t.yml")]) == 0


def test_structure_errors(tmp_path, capsys):
    (tmp_path / "t.yml").write_text("tests:\n  - nme: x\n")
    assert rules_cli.test_rules_main([str(tmp_path / "t.yml")]) == 1
    assert "line 2: field nme not found in type main.testGroup" in capsys.readouterr().err
    (tmp_path / "o.yml").write_text("group_eval_order: [a, a]\ntests: []\n")
    assert rules_cli.test_rules_main([str(tmp_path / "o.yml")]) == 1
    assert "group name repeated in evaluation order: a" in capsys.readouterr().err
    (tmp_path / "n.yml").write_text("tests:\n  - alert_rule_test: [{eval_time: 1m}]\n")
    assert rules_cli.test_rules_main([str(tmp_path / "n.yml")]) == 1
    assert "misses required attribute alertname at eval_time 1m" in capsys.readouterr().err
