"""Target group documents: JSON and YAML decoding as strict as Prometheus's."""

from __future__ import annotations

import pytest

from narthex.discovery.targetgroup import TargetGroupError, groups_from_json, groups_from_yaml


def test_json_groups():
    groups = groups_from_json(b'[{"targets": ["a:1", "b:2"], "labels": {"env": "x"}}, {"targets": []}]', "f")
    assert [g.source for g in groups] == ["f:0", "f:1"]
    assert groups[0].targets == [{"__address__": "a:1"}, {"__address__": "b:2"}]
    assert groups[0].labels == {"env": "x"} and groups[1].labels == {}


def test_yaml_groups():
    groups = groups_from_yaml("- targets: [a:1]\n  labels: {env: x}\n", "f.yml")
    assert groups[0].targets == [{"__address__": "a:1"}] and groups[0].labels == {"env": "x"}
    assert groups_from_yaml("", "f.yml") == []


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"", "unexpected end of JSON input"),
        (b"[null]", "nil target group item found"),
        (b'[{"targets": ["a"], "foo": 1}]', 'json: unknown field "foo"'),
        (b'[{"targets": [1]}]', "cannot unmarshal number into a target (string)"),
        (b'[{"labels": {"": "x"}}]', '"" is not a valid label name'),
        (b"{", "Expecting property name"),
    ],
)
def test_json_errors(doc: bytes, message: str):
    with pytest.raises(TargetGroupError) as err:
        groups_from_json(doc, "f")
    assert message in str(err.value)


def test_yaml_unknown_field():
    with pytest.raises(TargetGroupError, match="field foo not found"):
        groups_from_yaml("- targets: [a]\n  foo: 1\n", "f.yml")
