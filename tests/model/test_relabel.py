"""Relabeling: every action, Go template expansion, validation, hashmod shard numbers."""

from __future__ import annotations

import hashlib

import pytest

from narthex.model.labels import labels_from_dict
from narthex.model.regex import compile_regex
from narthex.model.relabel import RelabelRule, expand_template, relabel


def L(**kv: str) -> tuple[tuple[str, str], ...]:
    return labels_from_dict(kv)


def run(labels: dict[str, str], *rules: RelabelRule) -> dict[str, str] | None:
    out = relabel(labels, list(rules))
    return None if out is None else dict(out)


def shard(value: str, modulus: int) -> str:
    """Prometheus's hashmod, computed independently: last 8 bytes of MD5, big-endian, mod modulus."""
    digest = hashlib.md5(value.encode()).digest()
    return str(int.from_bytes(digest[8:16], byteorder="big", signed=False) % modulus)


# --- replace -----------------------------------------------------------------------------------------


def test_replace_with_groups_and_braces() -> None:
    rule = RelabelRule(
        source_labels=("a",), regex="f(.*)", target_label="d", replacement="ch${1}-ch${1}", separator=";"
    )
    assert run({"a": "foo", "b": "bar"}, rule) == {"a": "foo", "b": "bar", "d": "choo-choo"}


def test_replace_multiple_sources_and_separator() -> None:
    rule = RelabelRule(
        source_labels=("a", "b"), regex="f(.*);(.*)r", target_label="a", replacement="b${1}${2}m"
    )
    assert run({"a": "foo", "b": "bar", "c": "baz"}, rule) == {"a": "boobam", "b": "bar", "c": "baz"}


def test_replace_no_match_leaves_labels() -> None:
    rule = RelabelRule(source_labels=("a",), regex="x(.*)", target_label="d")
    assert run({"a": "foo"}, rule) == {"a": "foo"}


def test_replace_is_fully_anchored() -> None:
    rule = RelabelRule(source_labels=("a",), regex="o", target_label="d", replacement="hit")
    assert run({"a": "foo"}, rule) == {"a": "foo"}
    rule = RelabelRule(source_labels=("a",), regex="fo+", target_label="d", replacement="hit")
    assert run({"a": "foo"}, rule) == {"a": "foo", "d": "hit"}


def test_replace_dot_matches_newline() -> None:
    rule = RelabelRule(source_labels=("a",), regex="foo.bar", target_label="d", replacement="nl")
    assert run({"a": "foo\nbar"}, rule) == {"a": "foo\nbar", "d": "nl"}


def test_replace_empty_result_deletes_target() -> None:
    rule = RelabelRule(source_labels=("a",), regex="(f).*", target_label="b", replacement="$2")
    assert run({"a": "foo", "b": "bar"}, rule) == {"a": "foo"}


def test_replace_defaults_copy_source() -> None:
    rule = RelabelRule(source_labels=("a",), target_label="b")
    assert run({"a": "foo"}, rule) == {"a": "foo", "b": "foo"}


def test_replace_missing_source_sets_literal_or_deletes() -> None:
    # Missing source: value "" matches (.*); a literal replacement is set (the fast path).
    assert run({"a": "x"}, RelabelRule(source_labels=("nope",), target_label="t", replacement="lit")) == {
        "a": "x",
        "t": "lit",
    }
    # ... and "$1" of an empty match deletes the target.
    assert run({"a": "x", "t": "old"}, RelabelRule(source_labels=("nope",), target_label="t")) == {"a": "x"}


def test_replace_target_from_groups() -> None:
    rule = RelabelRule(
        source_labels=("a",), regex="some-([^-]+)-([^,]+)", replacement="${2}", target_label="${1}"
    )
    assert run({"a": "some-name-value"}, rule) == {"a": "some-name-value", "name": "value"}
    # A missing group in the replacement expands to "" and deletes the (absent) target.
    rule = RelabelRule(
        source_labels=("a",), regex="some-([^-]+)-([^,]+)", replacement="${3}", target_label="${1}"
    )
    assert run({"a": "some-name-value"}, rule) == {"a": "some-name-value"}


def test_replace_invalid_expanded_target_is_skipped() -> None:
    rule = RelabelRule(
        source_labels=("a",), regex="some-([^-]+)-([^,]+)", replacement="${1}", target_label="${3}"
    )
    assert run({"a": "some-name-0"}, rule) == {"a": "some-name-0"}
    legacy = RelabelRule(
        source_labels=("a",),
        regex="some-([^-]+)-([^,]+)",
        replacement="x",
        target_label="${2}",
        name_validation="legacy",
    )
    assert run({"a": "some-name-0"}, legacy) == {"a": "some-name-0"}  # "0" is not a legacy name
    utf8 = RelabelRule(
        source_labels=("a",), regex="some-([^-]+)-([^,]+)", replacement="x", target_label="${2}"
    )
    assert run({"a": "some-name-0"}, utf8) == {"a": "some-name-0", "0": "x"}


def test_replace_real_life_tags() -> None:
    tags = "path:/secret,job:some-job,label:foo=bar"
    rules = [
        RelabelRule(
            source_labels=("__meta_sd_tags",),
            regex="(?:.+,|^)path:(/[^,]+).*",
            replacement="${1}",
            target_label="__metrics_path__",
        ),
        RelabelRule(
            source_labels=("__meta_sd_tags",),
            regex="(?:.+,|^)job:([^,]+).*",
            replacement="${1}",
            target_label="job",
        ),
        RelabelRule(
            source_labels=("__meta_sd_tags",),
            regex="(?:.+,|^)label:([^=]+)=([^,]+).*",
            replacement="${2}",
            target_label="${1}",
        ),
    ]
    assert run({"__meta_sd_tags": tags}, *rules) == {
        "__meta_sd_tags": tags,
        "__metrics_path__": "/secret",
        "job": "some-job",
        "foo": "bar",
    }


def test_replace_utf8_target_and_named_groups() -> None:
    rules = [
        RelabelRule(
            source_labels=("a",),
            regex="(?P<first>[a-z]+)-(?P<second>[a-z]+)",
            target_label="label1_${1}",
            replacement="val_${second}",
        ),
        RelabelRule(
            source_labels=("a",),
            regex="(?P<first>[a-z]+)-(?P<second>[a-z]+)",
            target_label="label2_$1",
            replacement="val_$second",
        ),
        RelabelRule(source_labels=("a",), regex="(.*)", target_label="utf-8.label${1}", replacement="m${1}"),
    ]
    assert run({"a": "foo-bar"}, *rules) == {
        "a": "foo-bar",
        "label1_foo": "val_bar",
        "label2_foo": "val_bar",
        "utf-8.labelfoo-bar": "mfoo-bar",
    }


# --- template expansion (Go's Regexp.Expand) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$1", "ab"),
        ("${1}", "ab"),
        ("$1x", ""),  # the group named "1x"
        ("${1}x", "abx"),
        ("$2$1", "cdab"),
        ("$$1", "$1"),
        ("$", "$"),
        ("a$", "a$"),
        ("${1", "${1"),
        ("${}", "${}"),
        ("$-", "$-"),
        ("$0", "ab-cd"),
        ("$01", ""),  # leading zero: a name, not a number
        ("$name", "cd"),
        ("${name}s", "cds"),
        ("$names", ""),
        ("$9", ""),
        ("x$1_y", "x"),  # "$1_y" is one (missing) name
        ("no refs", "no refs"),
        ("$é", ""),  # unicode letters are name characters
    ],
)
def test_expand_template(template: str, expected: str) -> None:
    regex = compile_regex("(ab)-(?P<name>cd)")
    match = regex.fullmatch("ab-cd")
    assert expand_template(template, match, regex.group_names) == expected


def test_expand_unmatched_optional_group_is_empty() -> None:
    regex = compile_regex("(a)|(b)")
    assert expand_template("[$1|$2]", regex.fullmatch("b"), regex.group_names) == "[|b]"


# --- keep / drop / keepequal / dropequal ----------------------------------------------------------------


def test_keep_and_drop() -> None:
    keep = RelabelRule(source_labels=("a",), regex="f.*", action="keep")
    drop = RelabelRule(source_labels=("a",), regex="f.*", action="drop")
    assert run({"a": "foo"}, keep) == {"a": "foo"}
    assert run({"a": "bar"}, keep) is None
    assert run({"a": "foo"}, drop) is None
    assert run({"a": "bar"}, drop) == {"a": "bar"}


def test_keep_missing_label_matches_empty() -> None:
    assert run({"a": "foo"}, RelabelRule(source_labels=("b",), regex="", action="keep")) == {"a": "foo"}
    assert run({"a": "foo"}, RelabelRule(source_labels=("b",), regex=".+", action="keep")) is None


def test_keep_partial_match_is_not_a_match() -> None:
    assert run({"a": "foo"}, RelabelRule(source_labels=("a",), regex="fo", action="keep")) is None


def test_drop_stops_processing() -> None:
    rules = [
        RelabelRule(source_labels=("a",), regex=".*", action="drop"),
        RelabelRule(target_label="x", replacement="never"),
    ]
    assert run({"a": "1"}, *rules) is None


def test_keepequal_dropequal() -> None:
    keq = RelabelRule(source_labels=("a",), target_label="b", action="keepequal")
    deq = RelabelRule(source_labels=("a",), target_label="b", action="dropequal")
    same = {"a": "x", "b": "x"}
    diff = {"a": "x", "b": "y"}
    assert run(same, keq) == same
    assert run(diff, keq) is None
    assert run(same, deq) is None
    assert run(diff, deq) == diff
    # Both missing compare equal.
    assert run({"c": "1"}, keq) == {"c": "1"}


# --- hashmod -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["baz", "foo\nbar", "", "10.0.0.1:9100", "üñí©ødé", "x" * 1000])
@pytest.mark.parametrize("modulus", [1, 2, 7, 1000, 2**32 + 15, 2**64 - 1])
def test_hashmod_matches_independent_md5(value: str, modulus: int) -> None:
    rule = RelabelRule(source_labels=("a",), target_label="shard", action="hashmod", modulus=modulus)
    assert run({"a": value} if value else {"b": "1"}, rule)["shard"] == shard(value, modulus)  # type: ignore[index]


def test_hashmod_known_shards() -> None:
    # Values from Prometheus's relabel tests.
    rule = RelabelRule(source_labels=("c",), target_label="d", action="hashmod", modulus=1000)
    assert run({"a": "foo", "b": "bar", "c": "baz"}, rule) == {"a": "foo", "b": "bar", "c": "baz", "d": "976"}
    rule = RelabelRule(source_labels=("a",), target_label="b", action="hashmod", modulus=1000)
    assert run({"a": "foo\nbar"}, rule) == {"a": "foo\nbar", "b": "734"}


def test_hashmod_joins_sources_with_separator() -> None:
    rule = RelabelRule(
        source_labels=("a", "b"), separator="|", target_label="s", action="hashmod", modulus=97
    )
    assert run({"a": "x", "b": "y"}, rule)["s"] == shard("x|y", 97)  # type: ignore[index]


# --- labelmap / labeldrop / labelkeep --------------------------------------------------------------------


def test_labelmap() -> None:
    rule = RelabelRule(regex="(b.*)", replacement="bar_${1}", action="labelmap")
    assert run({"a": "foo", "b1": "bar", "b2": "baz"}, rule) == {
        "a": "foo",
        "b1": "bar",
        "b2": "baz",
        "bar_b1": "bar",
        "bar_b2": "baz",
    }
    rule = RelabelRule(regex="__meta_(my.*)", replacement="${1}", action="labelmap")
    assert run({"a": "foo", "__meta_my_bar": "aaa", "__meta_my_baz": "bbb", "__meta_other": "ccc"}, rule) == {
        "a": "foo",
        "__meta_my_bar": "aaa",
        "__meta_my_baz": "bbb",
        "__meta_other": "ccc",
        "my_bar": "aaa",
        "my_baz": "bbb",
    }


def test_labelmap_collision_last_in_order_wins() -> None:
    # Base labels are visited in sorted order, so "b_x" overwrites what "a_x" wrote.
    rule = RelabelRule(regex=".*_(x)", replacement="$1", action="labelmap")
    assert run({"a_x": "1", "b_x": "2"}, rule) == {"a_x": "1", "b_x": "2", "x": "2"}


def test_labelmap_visits_added_labels_after_base_labels() -> None:
    # "z" is added by the first rule, so the labelmap visits it after "y" even though it sorts later
    # anyway; "a" is re-set by the first rule, which moves it after the untouched base labels.
    rules = [
        RelabelRule(target_label="a", replacement="from_a"),
        RelabelRule(regex="(a|y)", replacement="copy", action="labelmap"),
    ]
    assert run({"a": "orig", "y": "from_y"}, *rules) == {"a": "from_a", "y": "from_y", "copy": "from_a"}


def test_labeldrop_and_labelkeep() -> None:
    base = {"a": "foo", "b1": "bar", "b2": "baz"}
    assert run(base, RelabelRule(regex="(b.*)", action="labeldrop")) == {"a": "foo"}
    assert run(base, RelabelRule(regex="(b.*)", action="labelkeep")) == {"b1": "bar", "b2": "baz"}
    assert run(base, RelabelRule(regex="b", action="labeldrop")) == base  # anchored


def test_labeldrop_then_replace_then_keep() -> None:
    # prometheus/prometheus#12283
    rules = [
        RelabelRule(regex="^__meta_kubernetes_pod_container_port_name$", action="labeldrop"),
        RelabelRule(
            source_labels=("__meta_kubernetes_pod_annotation_XXX_metrics_port",),
            regex="(.+)",
            replacement="metrics",
            target_label="__meta_kubernetes_pod_container_port_name",
        ),
        RelabelRule(
            source_labels=("__meta_kubernetes_pod_container_port_name",), regex="^metrics$", action="keep"
        ),
    ]
    out = run(
        {
            "__meta_kubernetes_pod_container_port_name": "foo",
            "__meta_kubernetes_pod_annotation_XXX_metrics_port": "9091",
        },
        *rules,
    )
    assert out == {
        "__meta_kubernetes_pod_annotation_XXX_metrics_port": "9091",
        "__meta_kubernetes_pod_container_port_name": "metrics",
    }


# --- lowercase / uppercase -------------------------------------------------------------------------------


def test_lowercase_uppercase() -> None:
    rules = [
        RelabelRule(source_labels=("foo",), target_label="foo_lower", action="lowercase"),
        RelabelRule(source_labels=("foo",), target_label="foo_upper", action="uppercase"),
    ]
    assert run({"foo": "bAr123Foo"}, *rules) == {
        "foo": "bAr123Foo",
        "foo_lower": "bar123foo",
        "foo_upper": "BAR123FOO",
    }
    assert run({"foo": "Straße"}, *rules)["foo_upper"] == "STRAßE"  # type: ignore[index]


def test_lowercase_empty_deletes() -> None:
    rule = RelabelRule(source_labels=("nope",), target_label="t", action="lowercase")
    assert run({"t": "x"}, rule) == {}


# --- misc ----------------------------------------------------------------------------------------------


def test_input_forms_and_empty_values() -> None:
    rule = RelabelRule(source_labels=("a",), target_label="b")
    assert relabel(L(a="x"), [rule]) == (("a", "x"), ("b", "x"))
    assert relabel({"a": "x", "e": ""}, [rule]) == (("a", "x"), ("b", "x"))
    assert relabel({"a": "x"}, []) == (("a", "x"),)


def test_action_is_case_insensitive() -> None:
    assert RelabelRule(source_labels=("a",), regex="x", action="Keep").action == "keep"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "explode"}, 'unknown relabel action "explode"'),
        ({"action": ""}, "relabel action cannot be empty"),
        ({"action": "hashmod", "target_label": "x"}, "requires non-zero modulus"),
        ({"action": "replace"}, "requires 'target_label' value"),
        ({"action": "lowercase"}, "requires 'target_label' value"),
        ({"action": "keepequal", "target_label": "x", "regex": "a"}, "requires only 'source_labels'"),
        ({"action": "labeldrop", "regex": "a", "target_label": "x"}, "requires only 'regex'"),
        ({"action": "labelkeep", "regex": "a", "source_labels": ("x",)}, "requires only 'regex'"),
        ({"action": "uppercase", "target_label": "x", "replacement": "y"}, "'replacement' can not be set"),
        ({"regex": "(", "target_label": "x"}, "error parsing regexp"),
        ({"target_label": "0abc", "name_validation": "legacy"}, "invalid 'target_label'"),
        ({"target_label": "-${1}", "name_validation": "legacy"}, "invalid 'target_label'"),
        (
            {"action": "labelmap", "replacement": "bar.${1}", "name_validation": "legacy"},
            "invalid 'replacement'",
        ),
        (
            {"action": "lowercase", "target_label": "${3}", "name_validation": "legacy"},
            "invalid 'target_label'",
        ),
    ],
)
def test_validation_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("$", r"\$")):
        RelabelRule(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target_label": "${3}"},  # UTF-8 names allow anything non-empty
        {"target_label": "0${3}"},
        {"target_label": "label${1}", "name_validation": "legacy"},
        {"target_label": "_${1}_", "name_validation": "legacy"},
        {"target_label": "foo${bar}foo", "name_validation": "legacy"},
        {"action": "labelmap", "replacement": "${1}", "name_validation": "legacy"},
        {"action": "lowercase", "target_label": "${3}"},
    ],
)
def test_valid_rules(kwargs: dict[str, object]) -> None:
    RelabelRule(**kwargs)  # type: ignore[arg-type]


def test_from_dict_defaults_and_null_regex() -> None:
    rule = RelabelRule.from_dict({"source_labels": ["a"], "target_label": "b", "action": "replace"})
    assert (rule.regex, rule.replacement, rule.separator) == ("(.*)", "$1", ";")
    assert RelabelRule.from_dict({"source_labels": ["a"], "regex": None, "action": "keep"}).regex == ""
