"""``narthex serve`` flags: Prometheus's names, defaults, kingpin conventions and errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from narthex.cli.flags import FlagError
from narthex.server.options import OptionsError, build_options, compute_external_url, serve_flagset


def parse(*argv: str):
    values, positionals, explicit = serve_flagset().parse(argv)
    assert positionals == []
    return build_options(values, explicit)


def test_defaults_match_prometheus():
    opts = parse()
    assert opts["config.file"] == "prometheus.yml"
    assert opts.listen_addresses == ["0.0.0.0:9090"]
    assert opts["storage.tsdb.path"] == "data/"
    assert opts.retention_ms == 15 * 24 * 3600 * 1000
    assert opts.retention_bytes == 0
    assert opts["query.lookback-delta"] == 5 * 60 * 1000
    assert opts["query.timeout"] == 2 * 60 * 1000
    assert opts["query.max-samples"] == 50_000_000
    assert opts["query.max-concurrency"] == 20
    assert opts["rules.alert.for-outage-tolerance"] == 3600 * 1000
    assert opts["rules.alert.for-grace-period"] == 600 * 1000
    assert opts["rules.alert.resend-delay"] == 60 * 1000
    assert opts["web.enable-lifecycle"] is False
    assert opts["web.enable-admin-api"] is False
    assert opts["web.enable-remote-write-receiver"] is False
    assert opts["web.cors.origin"] == ".*"
    assert opts["log.level"] == "info"
    assert opts["log.format"] == "logfmt"
    assert opts.route_prefix == "/"


def test_values_in_both_spellings_and_booleans():
    opts = parse(
        "--config.file",
        "/etc/prometheus/prometheus.yml",
        "--storage.tsdb.retention.time=30d",
        "--web.enable-lifecycle",
        "--web.enable-admin-api=true",
        "--no-web.enable-remote-write-receiver",
        "--query.lookback-delta=1m30s",
        "--log.level=debug",
    )
    assert opts["config.file"] == "/etc/prometheus/prometheus.yml"
    assert opts.retention_ms == 30 * 24 * 3600 * 1000
    assert opts["web.enable-lifecycle"] is True
    assert opts["web.enable-admin-api"] is True
    assert opts["web.enable-remote-write-receiver"] is False
    assert opts["query.lookback-delta"] == 90_000


def test_size_retention_alone_disables_default_time_retention():
    opts = parse("--storage.tsdb.retention.size=512MB")
    assert opts.retention_bytes == 512 * 1024 * 1024
    assert opts.retention_ms == 0


def test_repeatable_flags_collect_values():
    opts = parse(
        "--web.listen-address=127.0.0.1:9090",
        "--web.listen-address=[::1]:9091",
        "--enable-feature=promql-experimental-functions,exemplar-storage",
        "--enable-feature=no-such-thing",
    )
    assert opts.listen_addresses == ["127.0.0.1:9090", "[::1]:9091"]
    assert opts.features == {"promql-experimental-functions", "exemplar-storage"}
    assert opts.unknown_features == ("no-such-thing",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--foo"], "unknown long flag '--foo'"),
        (["--web.enable-lifecyle"], "unknown long flag '--web.enable-lifecyle'"),
        (["--query.timeout=abc"], "invalid value 'abc' for flag '--query.timeout'"),
        (["--log.level=verbose"], "enum value must be one of debug,info,warn,error"),
        (["--config.file"], "expected argument for flag '--config.file'"),
        (["--storage.tsdb.retention.size=12"], "invalid value '12'"),
    ],
)
def test_bad_flags_name_the_problem(argv, message):
    with pytest.raises(FlagError, match=message.replace("(", r"\(")):
        parse(*argv)


def test_external_url_sets_route_prefix():
    opts = parse("--web.external-url=https://example.com/prometheus/")
    assert opts.external_url == "https://example.com/prometheus"
    assert opts.route_prefix == "/prometheus"
    assert parse("--web.route-prefix=api/").route_prefix == "/api"


def test_external_url_defaults_to_hostname_and_port():
    url = compute_external_url("", "0.0.0.0:9191")
    assert url.startswith("http://") and url.endswith(":9191")
    with pytest.raises(OptionsError, match="quotes"):
        compute_external_url('"http://x/"', "0.0.0.0:9090")


def test_bad_cors_regex_is_refused():
    with pytest.raises(OptionsError, match="CORS"):
        parse("--web.cors.origin=(unclosed")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "narthex", *args], capture_output=True, text=True, timeout=60
    )


def test_unknown_flag_exits_2_and_names_it():
    result = run_cli("serve", "--storage.tsdb.pth=/tmp/x")
    assert result.returncode == 2
    assert "unknown long flag '--storage.tsdb.pth'" in result.stderr


def test_version():
    for args in (("--version",), ("serve", "--version")):
        result = run_cli(*args)
        assert result.returncode == 0
        assert result.stdout.startswith("narthex, version ")
