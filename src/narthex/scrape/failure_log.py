"""``scrape_failure_log_file``: one JSON line per failed scrape, as Prometheus's JSON file logger."""

from __future__ import annotations

import json
import time
from typing import IO

from narthex.util.log import get_logger

log = get_logger("scrape")


class FailureLog:
    """An append-only JSON-lines file; reopened on every config reload (so it can be rotated)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)

    def write(self, target: str, error: str) -> None:
        if self._fh is None:
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        record = {"time": stamp, "level": "ERROR", "source": "scrape", "msg": error, "target": target}
        try:
            self._fh.write(json.dumps(record) + "\n")
            self._fh.flush()
        except OSError as exc:
            log.error("Writing the scrape failure log failed", file=self.path, err=exc)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def open_failure_logs(paths: set[str]) -> dict[str, FailureLog]:
    """One log per distinct file name; raises OSError worded as Prometheus's."""
    logs: dict[str, FailureLog] = {}
    try:
        for path in sorted(p for p in paths if p):
            try:
                logs[path] = FailureLog(path)
            except OSError as exc:
                raise OSError(f"can't create json log file: open {path}: {exc.strerror.lower()}") from None
    except OSError:
        for opened in logs.values():
            opened.close()
        raise
    return logs
