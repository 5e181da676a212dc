"""Defaults, global inheritance, durations, external labels, error locations, secrets and SD names."""

from __future__ import annotations

import os
import pathlib

import pytest

from narthex.config import ConfigError, RelabelConfig, load_config, load_config_from_string
from narthex.config.load import expand_env
from narthex.config.model import DEFAULT_PROTO_FIRST_SCRAPE_PROTOCOLS, DEFAULT_SCRAPE_PROTOCOLS
from narthex.model.duration import MINUTE, SECOND
from tests.config.conftest import CONFIGS


def load(text: str) -> object:
    return load_config_from_string(text, "test.yml")


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config_from_string(text, "test.yml")
    return str(info.value)


def test_empty_file_gets_defaults() -> None:
    cfg = load_config_from_string("")
    g = cfg.global_config
    assert (g.scrape_interval, g.scrape_timeout, g.evaluation_interval) == (MINUTE, 10 * SECOND, MINUTE)
    assert g.rule_query_offset == 0
    assert g.metric_name_validation_scheme == "utf8"
    assert g.scrape_native_histograms is False
    assert g.extra_scrape_metrics is False
    assert g.scrape_protocols is None
    assert cfg.scrape_configs == [] and cfg.rule_files == [] and cfg.remote_write == []
    assert cfg.runtime.gogc in (75, int(os.environ.get("GOGC", "75") or 75))
    assert cfg.otlp.translation_strategy == "UnderscoreEscapingWithSuffixes"
    assert cfg.otlp.label_name_underscore_sanitization is True
    assert cfg.storage.tsdb.retention.time == 0
    assert cfg.storage.exemplars is None
    assert cfg.tracing.endpoint == ""


def test_empty_global_block_restores_defaults() -> None:
    cfg = load_config_from_string("global:\n")
    assert cfg.global_config.scrape_interval == MINUTE


def test_scrape_job_defaults_and_global_inheritance() -> None:
    cfg = load(
        """
global:
  scrape_interval: 15s
  sample_limit: 100
  body_size_limit: 1MB
scrape_configs:
  - job_name: a
  - job_name: b
    scrape_interval: 5s
    sample_limit: 7
    scrape_native_histograms: true
"""
    )
    a, b = cfg.scrape_configs
    assert (a.scrape_interval, a.scrape_timeout) == (15 * SECOND, 10 * SECOND)
    assert (b.scrape_interval, b.scrape_timeout) == (5 * SECOND, 5 * SECOND)
    assert (a.sample_limit, b.sample_limit) == (100, 7)
    assert a.body_size_limit == 1 << 20
    assert a.metrics_path == "/metrics" and a.scheme == "http"
    assert a.honor_timestamps is True and a.honor_labels is False and a.enable_compression is True
    assert a.follow_redirects is True and a.enable_http2 is True
    assert a.scrape_protocols == DEFAULT_SCRAPE_PROTOCOLS
    assert b.scrape_protocols == DEFAULT_PROTO_FIRST_SCRAPE_PROTOCOLS
    assert a.metric_name_escaping_scheme == "allow-utf-8"
    assert a.convert_classic_histograms_to_nhcb is False


def test_durations_in_milliseconds() -> None:
    cfg = load("global:\n  scrape_interval: 1m30s\n  evaluation_interval: 1500ms\n  scrape_timeout: 0\n")
    assert cfg.global_config.scrape_interval == 90 * SECOND
    assert cfg.global_config.evaluation_interval == 1500
    assert cfg.global_config.scrape_timeout == 10 * SECOND


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("global:\n  scrape_interval: 15\n", 'not a valid duration string: "15"'),
        ("global:\n  scrape_interval: 1x\n", 'not a valid duration string: "1x"'),
        ("global:\n  scrape_interval: [1]\n", "cannot unmarshal !!seq into model.Duration"),
        (
            "global:\n  scrape_interval: 10s\n  scrape_timeout: 20s\n",
            "global scrape timeout greater than scrape interval",
        ),
    ],
)
def test_bad_durations(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_relabel_defaults() -> None:
    rule = (
        load("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - target_label: x\n")
        .scrape_configs[0]
        .relabel_configs[0]
    )
    assert isinstance(rule, RelabelConfig)
    assert (rule.source_labels, rule.separator, rule.regex) == ([], ";", "(.*)")
    assert (rule.modulus, rule.target_label, rule.replacement, rule.action) == (0, "x", "$1", "replace")
    assert rule.compiled_regex.matches("anything")


def test_relabel_action_case_and_null_regex() -> None:
    rules = (
        load(
            "scrape_configs:\n  - job_name: a\n    relabel_configs:\n"
            "      - action: Drop\n        source_labels: [x]\n      - regex:\n        target_label: y\n"
        )
        .scrape_configs[0]
        .relabel_configs
    )
    assert rules[0].action == "drop"
    assert rules[1].regex == ""


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "action: hashmod\n        target_label: x",
            "relabel configuration for hashmod requires non-zero modulus",
        ),
        (
            "action: labeldrop\n        regex: a\n        target_label: x",
            "labeldrop action requires only 'regex'",
        ),
        ("action: lowercase\n        source_labels: [a]", "lowercase action requires 'target_label' value"),
        ("action: explode", 'unknown relabel action "explode"'),
        ("regex: '(['\n        target_label: x", "error parsing regexp"),
        ("source_labels: ['']\n        target_label: x", '"" is not a valid label name'),
    ],
)
def test_relabel_errors(rule: str, expected: str) -> None:
    assert expected in error_of(f"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {rule}\n")


def test_legacy_validation_scheme_applies_to_relabel_targets() -> None:
    text = "{}scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - target_label: a.b\n"
    load(text.format(""))
    legacy = "global:\n  metric_name_validation_scheme: legacy\n"
    assert "\"a.b\" is invalid 'target_label' for replace action" in error_of(text.format(legacy))


def test_external_labels_sorted_and_validated() -> None:
    cfg = load("global:\n  external_labels:\n    zone: b\n    a: x\n")
    assert list(cfg.global_config.external_labels.items()) == [("a", "x"), ("zone", "b")]
    assert '"a-b" is not a valid label name' in error_of(
        "global:\n  metric_name_validation_scheme: legacy\n  external_labels:\n    a-b: x\n"
    )


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("foo", {}, "foo"),
        ("${TEST}", {"TEST": "v"}, "v"),
        ("foo${TEST}bar", {"TEST": "v"}, "foovbar"),
        ("foo$${TEST}", {"TEST": "v"}, "foo${TEST}"),
        ("foo$$bar", {}, "foo$bar"),
        ("$TEST-x", {"TEST": "v"}, "v-x"),
        ("cost$", {}, "cost$"),
        ("${}x", {}, "x"),
        ("${TEST}", {}, ""),
    ],
)
def test_expand_env(value: str, env: dict[str, str], expected: str) -> None:
    assert expand_env(value, lambda name: "$" if name == "$" else env.get(name, "")) == expected


def test_external_labels_env_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(CONFIGS / "external_labels.good.yml")
    if not CONFIGS.is_dir():
        pytest.skip(f"upstream config corpus not found at {CONFIGS}")
    monkeypatch.setenv("TEST", "TestValue")
    labels = load_config(path, expand_external_labels_env=True).global_config.external_labels
    assert labels == {
        "bar": "foo",
        "baz": "fooTestValuebar",
        "foo": "TestValue",
        "qux": "foo${TEST}",
        "xyz": "foo$bar",
    }
    monkeypatch.setenv("TEST", "")
    labels = load_config(path, expand_external_labels_env=True).global_config.external_labels
    assert labels["foo"] == "" and labels["baz"] == "foobar"
    assert load_config(path).global_config.external_labels["foo"] == "${TEST}"


def test_error_names_file_path_and_line() -> None:
    text = """global:
  scrape_interval: 15s
scrape_configs:
  - job_name: ok
  - job_name: broken
    relabel_configs:
      - action: keep
        source_labels: [a]
      - action: hashmod
        target_label: b
"""
    message = error_of(text)
    assert message.startswith(
        "parsing YAML file test.yml: relabel configuration for hashmod requires non-zero modulus"
    )
    assert "line 9" in message and "scrape_configs[1].relabel_configs[1]" in message


def test_unknown_field_error_like_yaml_v2() -> None:
    message = error_of("scrape_configs:\n  - job_name: a\n    consult_sd_configs: []\n")
    assert "yaml: unmarshal errors:" in message
    assert "line 3: field consult_sd_configs not found in type config.ScrapeConfig" in message
    assert "field nonexistent not found in type config.plain" in error_of("global:\n  nonexistent: 1\n")


def test_duplicate_keys_refused() -> None:
    message = error_of("scrape_configs: []\nscrape_configs: []\n")
    assert "line 2: field scrape_configs already set in type config.plain" in message
    assert 'key "a" already set in map' in error_of("global:\n  external_labels:\n    a: x\n    a: y\n")


def test_type_errors() -> None:
    assert "cannot unmarshal !!str `yes` into bool" in error_of(
        "scrape_configs:\n  - job_name: a\n    honor_labels: 'yes'\n"
    )
    assert "cannot unmarshal !!int `-1` into uint" in error_of(
        "scrape_configs:\n  - job_name: a\n    sample_limit: -1\n"
    )
    assert "cannot unmarshal !!str `x` into config.plain" in error_of("global: x\n")


def test_yaml_syntax_error_has_line() -> None:
    assert error_of("global:\n  a: [\n").startswith("parsing YAML file test.yml: yaml: line")


def test_numbers_in_string_fields_keep_their_text() -> None:
    cfg = load(
        "scrape_configs:\n  - job_name: 0123\n    relabel_configs:\n"
        "      - regex: 1.50\n        action: keep\n"
    )
    assert cfg.scrape_configs[0].job_name == "0123"
    assert cfg.scrape_configs[0].relabel_configs[0].regex == "1.50"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "basic_auth: {username: a}\n    authorization: {credentials: b}",
            "at most one of basic_auth, oauth2 & authorization",
        ),
        ("oauth2: {client_id: a}", "oauth2 token_url must be configured"),
        ("authorization: {type: Basic}", 'authorization type cannot be set to "basic"'),
        ("tls_config: {cert_file: a}", "exactly one of key or key_file must be configured"),
        ("tls_config: {min_version: TLS9}", "unknown TLS version: TLS9"),
        ("no_proxy: localhost", "if no_proxy is configured, proxy_url must also be configured"),
        (
            "proxy_from_environment: true\n    proxy_url: http://p",
            "if proxy_from_environment is configured, proxy_url",
        ),
        ("http_headers: {User-Agent: {values: [x]}}", 'setting header "User-Agent" is not allowed'),
    ],
)
def test_http_client_validation(section: str, expected: str) -> None:
    assert expected in error_of(f"scrape_configs:\n  - job_name: a\n    {section}\n")


def test_bearer_token_becomes_authorization() -> None:
    job = load("scrape_configs:\n  - job_name: a\n    bearer_token: tok\n").scrape_configs[0]
    assert job.authorization is not None
    assert (job.authorization.type, job.authorization.credentials, job.bearer_token) == ("Bearer", "tok", "")


def test_remote_write_defaults_and_checks() -> None:
    rw = load("remote_write:\n  - url: http://x/push\n").remote_write[0]
    assert rw.remote_timeout == 30 * SECOND and rw.enable_http2 is False and rw.follow_redirects is True
    assert (rw.queue_config.capacity, rw.queue_config.max_shards, rw.queue_config.min_backoff) == (
        10000,
        50,
        30,
    )
    assert rw.metadata_config.send is True and rw.protobuf_message == "prometheus.WriteRequest"
    both = "remote_write:\n  - url: http://x\n    basic_auth: {username: a}\n    sigv4: {region: r}\n"
    assert "Currently configured: [basic_auth sigv4]" in error_of(both)
    dup = "remote_write:\n  - url: http://x\n    name: q\n  - url: http://y\n    name: q\n"
    assert 'found multiple remote write configs with job name "q"' in error_of(dup)


def test_remote_read_defaults() -> None:
    rr = load("remote_read:\n  - url: http://x/read\n    required_matchers: {job: a}\n").remote_read[0]
    assert rr.remote_timeout == MINUTE and rr.filter_external_labels is True
    assert rr.chunked_read_limit == 50_000_000 and rr.required_matchers == {"job": "a"}


def test_storage_and_tracing() -> None:
    cfg = load(
        "storage:\n  tsdb:\n    out_of_order_time_window: 30m\n    retention: {time: 15d, size: 1GB}\n"
        "  exemplars: {max_exemplars: 5}\ntracing:\n  endpoint: localhost:4317\n"
    )
    assert cfg.storage.tsdb.out_of_order_time_window == 30 * MINUTE
    assert cfg.storage.tsdb.retention.time == 15 * 24 * 60 * MINUTE
    assert cfg.storage.tsdb.retention.size == 1 << 30
    assert cfg.storage.exemplars is not None and cfg.storage.exemplars.max_exemplars == 5
    assert cfg.tracing.client_type == "grpc"
    assert "tracing endpoint must be set" in error_of("tracing: {}\n")


def test_sd_mechanisms() -> None:
    cfg = load(
        """
scrape_configs:
  - job_name: a
    kubernetes_sd_configs:
      - role: pod
    static_configs:
      - targets: [localhost:9090]
    file_sd_configs: []
  - job_name: b
alerting:
  alertmanagers:
    - dns_sd_configs:
        - names: [am.example]
"""
    )
    assert cfg.scrape_configs[0].sd_mechanisms() == ["static_configs", "kubernetes_sd_configs"]
    assert cfg.scrape_configs[1].sd_mechanisms() == []
    assert cfg.alerting.alertmanagers[0].sd_mechanisms() == ["dns_sd_configs"]


def test_sd_defaults() -> None:
    job = load(
        "scrape_configs:\n  - job_name: a\n    consul_sd_configs: [{}]\n    dns_sd_configs: [{names: [x]}]\n"
        "    file_sd_configs: [{files: [a.json]}]\n"
    ).scrape_configs[0]
    consul = job.consul_sd_configs[0]
    assert (consul.server, consul.scheme, consul.allow_stale, consul.refresh_interval) == (
        "localhost:8500",
        "http",
        True,
        30 * SECOND,
    )
    assert (job.dns_sd_configs[0].type, job.dns_sd_configs[0].refresh_interval) == ("SRV", 30 * SECOND)
    assert job.file_sd_configs[0].refresh_interval == 5 * MINUTE


def test_secrets_are_redacted_in_yaml() -> None:
    cfg = load(
        """
scrape_configs:
  - job_name: a
    basic_auth: {username: u, password: hunter2}
    consul_sd_configs:
      - token: tok3n
remote_write:
  - url: http://user:pass@example/push
    oauth2: {client_id: c, client_secret: s3cret, token_url: http://t}
"""
    )
    text = cfg.to_yaml()
    for secret in ("hunter2", "tok3n", "s3cret", ":pass@"):
        assert secret not in text
    assert text.count("<secret>") == 3
    assert "http://user:xxxxx@example/push" in text
    assert "scrape_interval: 1m" in text


def test_rule_files_resolved_against_config_dir(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text("rule_files: [rules/*.yml, /abs/x.yml]\nglobal:\n  query_log_file: q.log\n")
    cfg = load_config(str(path))
    assert cfg.rule_files == [str(tmp_path / "rules/*.yml"), "/abs/x.yml"]
    assert cfg.global_config.query_log_file == str(tmp_path / "q.log")
    assert "invalid rule file path" in error_of("rule_files: ['a/*/b.yml']\n")


def test_scrape_config_files_merged(tmp_path: pathlib.Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "one.yml").write_text(
        "scrape_configs:\n  - job_name: one\n    tls_config: {cert_file: c.pem, key_file: k.pem}\n"
    )
    (tmp_path / "jobs" / "two.yml").write_text(
        "scrape_configs:\n  - job_name: two\n    scrape_interval: 5s\n"
    )
    path = tmp_path / "prometheus.yml"
    path.write_text(
        "global: {scrape_interval: 30s}\nscrape_config_files: [jobs/*.yml]\n"
        "scrape_configs:\n  - job_name: main\n"
    )
    cfg = load_config(str(path))
    assert [j.job_name for j in cfg.scrape_configs] == ["main", "one", "two"]
    assert cfg.scrape_configs[1].scrape_interval == 30 * SECOND
    assert cfg.scrape_configs[1].tls_config.cert_file == str(tmp_path / "jobs" / "c.pem")
    assert cfg.scrape_configs[2].scrape_timeout == 5 * SECOND
    (tmp_path / "jobs" / "three.yml").write_text("global: {}\nscrape_configs: []\n")
    with pytest.raises(ConfigError, match=r"field global not found in type config\.ScrapeConfigs"):
        load_config(str(path))


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such file or directory"):
        load_config("/nonexistent/prometheus.yml")


def test_yaml_merge_keys() -> None:
    cfg = load("scrape_configs:\n  - &job {job_name: a, sample_limit: 5}\n  - <<: *job\n    job_name: b\n")
    assert [(j.job_name, j.sample_limit) for j in cfg.scrape_configs] == [("a", 5), ("b", 5)]


def test_proxy_connect_header_is_secret() -> None:
    cfg = load(
        "scrape_configs:\n  - job_name: a\n    proxy_url: http://proxy:3128\n"
        "    proxy_connect_header:\n      X-Auth: [s3cr3t]\n"
    )
    assert cfg.scrape_configs[0].proxy_connect_header == {"X-Auth": ["s3cr3t"]}
    assert "s3cr3t" not in cfg.to_yaml()
    assert "if proxy_connect_header is configured" in error_of(
        "scrape_configs:\n  - job_name: a\n    proxy_connect_header: {X-Auth: [x]}\n"
    )


def test_wrong_kind_names_the_expected_type() -> None:
    assert "cannot unmarshal !!map into []config.ScrapeConfig" in error_of("scrape_configs: {a: 1}\n")
