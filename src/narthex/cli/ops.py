"""Everyday operations against a running server (Narthex or Prometheus) over its HTTP API.

``narthex query EXPR``, ``query-range EXPR``, ``series MATCH...``, ``labels [NAME]``, ``targets``,
``alerts``, ``rules``, ``health``, ``ready``; ``--server`` (or ``NARTHEX_URL``) names the server.
Query results print as promtool prints them (``-o promql``) or as the API's JSON (``-o json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

DEFAULT_SERVER = "http://localhost:9090"
COMMANDS = ("query", "query-range", "series", "labels", "targets", "alerts", "rules", "health", "ready")


class OpsError(Exception):
    """A request the server refused or could not answer."""


def _request(server: str, path: str, params: list[tuple[str, str]] | None = None, raw: bool = False) -> Any:
    url = server.rstrip("/") + path
    body = urllib.parse.urlencode(params or []).encode() if params is not None else None
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            data = resp.read()
    except urllib.error.HTTPError as err:
        data = err.read()
        try:
            payload = json.loads(data)
        except ValueError:
            raise OpsError(
                f"server returned HTTP status {err.code}: {data.decode(errors='replace').strip()}"
            ) from None
        raise OpsError(f"{payload.get('errorType', 'error')}: {payload.get('error', '')}") from None
    except (urllib.error.URLError, OSError) as err:
        raise OpsError(f"cannot reach {url}: {getattr(err, 'reason', err)}") from None
    return data.decode() if raw else json.loads(data)


def _go_float(text: str) -> str:
    value = float(text)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return text


def _go_time(seconds: float) -> str:
    """``model.Time.String()``: seconds with up to millisecond decimals, trailing zeros dropped."""
    millis = round(seconds * 1000)
    whole, frac = divmod(millis, 1000)
    return f"{whole}.{frac:03d}".rstrip("0").rstrip(".") if frac else str(whole)


def _metric(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ", ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items()) if k != "__name__"
    )
    return f"{name}{{{rest}}}"


def format_promql(data: dict[str, Any]) -> str:
    """A query result as promtool's ``-o promql`` prints it."""
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return f"scalar: {_go_float(result[1])} @[{_go_time(result[0])}]"
    if kind == "string":
        return f"{result[1]} @[{_go_time(result[0])}]"
    if kind == "vector":
        return "\n".join(
            f"{_metric(s['metric'])} => {_go_float(s['value'][1])} @[{_go_time(s['value'][0])}]"
            for s in result
        )
    lines = []
    for stream in result:
        lines.append(f"{_metric(stream['metric'])} =>")
        lines.extend(f"{_go_float(v)} @[{_go_time(t)}]" for t, v in stream.get("values", []))
    return "\n".join(lines)


def _print_query(payload: dict[str, Any], fmt: str) -> None:
    for warning in payload.get("warnings", []) + payload.get("infos", []):
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(payload["data"]) if fmt == "json" else format_promql(payload["data"]))


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        default=os.environ.get("NARTHEX_URL", DEFAULT_SERVER),
        help="Server to talk to (default $NARTHEX_URL or http://localhost:9090).",
    )
    parser = argparse.ArgumentParser(prog="narthex", allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, parents=[common], allow_abbrev=False)

    query = add("query", "Run an instant query.")
    query.add_argument("expr")
    query.add_argument("--time", help="Evaluation time (RFC3339 or Unix timestamp); default now.")
    query.add_argument("-o", "--format", choices=("promql", "json"), default="promql")
    query_range = add("query-range", "Run a range query.")
    query_range.add_argument("expr")
    query_range.add_argument("--start", help="Start (RFC3339 or Unix timestamp); default end - 5m.")
    query_range.add_argument("--end", help="End (RFC3339 or Unix timestamp); default now.")
    query_range.add_argument("--step", help="Resolution (duration or seconds); default (end - start) / 60.")
    query_range.add_argument("-o", "--format", choices=("promql", "json"), default="promql")
    series = add("series", "List series matching selectors.")
    series.add_argument("match", nargs="+")
    labels = add("labels", "List label names, or the values of one label.")
    labels.add_argument("name", nargs="?")
    for name, text in (
        ("targets", "List active targets and their health."),
        ("alerts", "List active alerts."),
        ("rules", "List rule groups and rules."),
        ("health", "Check /-/healthy."),
        ("ready", "Check /-/ready."),
    ):
        add(name, text)
    return parser


def _seconds(text: str | None, default: float) -> str:
    return text if text else f"{default:.3f}"


def _run(args: argparse.Namespace) -> int:
    server = args.server
    if args.command == "query":
        params = [("query", args.expr), ("time", _seconds(args.time, time.time()))]
        _print_query(_request(server, "/api/v1/query", params), args.format)
    elif args.command == "query-range":
        now = time.time()
        end = _seconds(args.end, now)
        start = _seconds(args.start, now - 300)
        step = args.step or "15s"
        params = [("query", args.expr), ("start", start), ("end", end), ("step", step)]
        _print_query(_request(server, "/api/v1/query_range", params), args.format)
    elif args.command == "series":
        for series in _request(server, "/api/v1/series", [("match[]", m) for m in args.match])["data"]:
            print(_metric(series))
    elif args.command == "labels":
        path = (
            f"/api/v1/label/{urllib.parse.quote(args.name, safe='')}/values"
            if args.name
            else "/api/v1/labels"
        )
        for value in _request(server, path)["data"]:
            print(value)
    elif args.command == "targets":
        for target in _request(server, "/api/v1/targets?state=active")["data"]["activeTargets"]:
            error = f"  {target['lastError']}" if target.get("lastError") else ""
            print(f"{target['scrapePool']}\t{target['scrapeUrl']}\t{target['health']}{error}")
    elif args.command == "alerts":
        for alert in _request(server, "/api/v1/alerts")["data"]["alerts"]:
            print(f"{alert['state']}\t{_metric(alert['labels'])}\tactiveAt={alert.get('activeAt', '')}")
    elif args.command == "rules":
        for group in _request(server, "/api/v1/rules")["data"]["groups"]:
            print(f"group {group['name']} ({group['file']}, every {group['interval']}s)")
            for rule in group["rules"]:
                state = rule.get("state", "")
                print(f"  {rule['type']}\t{rule['name']}\t{rule['health']}{chr(9) + state if state else ''}")
    else:
        print(_request(server, "/-/healthy" if args.command == "health" else "/-/ready", raw=True).strip())
    return 0


def ops_main(argv: Sequence[str]) -> int:
    """Run one operations command; exit 1 when the server refuses or cannot be reached."""
    args = _parser().parse_args(list(argv))
    try:
        return _run(args)
    except OpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
