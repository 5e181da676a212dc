"""Structured logging in Prometheus's style: one logfmt (or JSON) line per event.

    ts=2026-11-21T22:52:26.123Z level=info component=web msg="Start listening" address=0.0.0.0:9090

Use ``get_logger("component")`` and pass key/value pairs as keyword arguments.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

LEVELS = ("debug", "info", "warn", "error")
_PY_LEVEL = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
_NAME = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}
_ROOT = "narthex"


def _timestamp(created: float) -> str:
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else _plain(value)
    if text == "" or any(c in text for c in ' ="\\\n\t\r') or not text.isprintable():
        return json.dumps(text, ensure_ascii=False)
    return text


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, BaseException):
        return str(value) or type(value).__name__
    return str(value)


def _fields(record: logging.LogRecord) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = [
        ("ts", _timestamp(record.created)),
        ("level", _NAME.get(record.levelno, "info")),
    ]
    component = record.name[len(_ROOT) + 1 :] if record.name.startswith(_ROOT + ".") else ""
    if component:
        fields.append(("component", component))
    fields.append(("msg", record.getMessage()))
    fields.extend(getattr(record, "kv", {}).items())
    if record.exc_info and record.exc_info[0] is not None:
        fields.append(("trace", logging.Formatter().formatException(record.exc_info)))
    return fields


class LogfmtFormatter(logging.Formatter):
    """``key=value`` pairs on one line; values quoted when they need it."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record))


class JSONFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({k: _plain(v) if not isinstance(v, int | float) else v for k, v in _fields(record)})


class Logger:
    """A component's logger: ``log.info("msg", key=value, ...)``."""

    def __init__(self, component: str) -> None:
        self._log = logging.getLogger(f"{_ROOT}.{component}" if component else _ROOT)

    def _emit(self, level: int, msg: str, kv: dict[str, Any], exc_info: bool = False) -> None:
        if self._log.isEnabledFor(level):
            self._log.log(level, msg, extra={"kv": kv}, exc_info=exc_info)

    def debug(self, msg: str, **kv: Any) -> None:
        self._emit(logging.DEBUG, msg, kv)

    def info(self, msg: str, **kv: Any) -> None:
        self._emit(logging.INFO, msg, kv)

    def warn(self, msg: str, **kv: Any) -> None:
        self._emit(logging.WARNING, msg, kv)

    def error(self, msg: str, **kv: Any) -> None:
        self._emit(logging.ERROR, msg, kv)

    def exception(self, msg: str, **kv: Any) -> None:
        """An unexpected error: logged with its traceback folded into one line's ``trace`` field."""
        self._emit(logging.ERROR, msg, kv, exc_info=True)


def get_logger(component: str) -> Logger:
    return Logger(component)


def setup_logging(level: str = "info", fmt: str = "logfmt", stream: TextIO | None = None) -> None:
    """Configure the ``narthex`` logger tree; called once by the CLI."""
    if level not in _PY_LEVEL:
        raise ValueError(f"unrecognized log level {level!r}")
    if fmt not in ("logfmt", "json"):
        raise ValueError(f"unrecognized log format {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger(_ROOT)
    root.handlers[:] = [handler]
    root.setLevel(_PY_LEVEL[level])
    root.propagate = False
    for noisy in ("aiohttp.access", "aiohttp.server", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
