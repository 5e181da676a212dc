"""``file_sd_configs``: target groups from JSON/YAML files matched by globs.

Files are re-read when their listing or stat signature (mtime, size, inode) changes, checked every
:data:`WATCH_INTERVAL_S`, and in full every ``refresh_interval``. A file that cannot be read or decoded
keeps the groups it delivered last; the error is logged and kept on the provider. Groups carry
``__meta_filepath`` and have sources ``<path>:<index>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import time

from narthex.config.sd import FileSDConfig
from narthex.discovery.metrics import DiscoveryMetrics
from narthex.discovery.provider import Provider, Send
from narthex.discovery.targetgroup import TargetGroup, groups_from_json, groups_from_yaml
from narthex.util.log import get_logger

log = get_logger("discovery")

FILEPATH_LABEL = "__meta_filepath"
WATCH_INTERVAL_S = 1.0

_Signature = tuple[int, int, int]


def _signature(path: str) -> _Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def read_groups(path: str) -> tuple[list[TargetGroup], float]:
    """The groups of one file and its mtime; raises OSError or ValueError with the reason."""
    with open(path, "rb") as fh:
        content = fh.read()
        mtime = os.fstat(fh.fileno()).st_mtime
    if path.lower().endswith(".json"):
        groups = groups_from_json(content, path)
    else:
        groups = groups_from_yaml(content, path)
    for group in groups:
        group.labels[FILEPATH_LABEL] = path
    return groups, mtime


class FileProvider(Provider):
    """One ``file_sd_configs`` entry."""

    mechanism = "file_sd_configs"

    def __init__(
        self, cfg: FileSDConfig, metrics: DiscoveryMetrics, watch_interval_s: float = WATCH_INTERVAL_S
    ) -> None:
        super().__init__()
        self.patterns = list(cfg.files)
        self.refresh_s = max(cfg.refresh_interval / 1000, 0.001)
        self.watch_interval_s = watch_interval_s
        self.metrics = metrics
        self._last_counts: dict[str, int] = {}
        self._signatures: dict[str, _Signature | None] = {}
        self._errors: dict[str, str] = {}

    def list_files(self) -> list[str]:
        paths: set[str] = set()
        for pattern in self.patterns:
            paths.update(glob.glob(pattern))
        return sorted(paths)

    def _listing(self) -> dict[str, _Signature | None]:
        return {path: _signature(path) for path in self.list_files()}

    def refresh(self, send: Send) -> None:
        """Read every matching file and send its groups, plus empty groups for vanished sources."""
        start = time.monotonic()
        counts: dict[str, int] = {}
        listing = self._listing()
        for path in listing:
            try:
                groups, mtime = read_groups(path)
            except (OSError, ValueError) as exc:
                self.metrics.file_read_errors.inc()
                reason = f"open {path}: {exc.strerror.lower()}" if isinstance(exc, OSError) else str(exc)
                if self._errors.get(path) != reason:
                    log.error("Error reading file", path=path, err=reason)
                self._errors[path] = reason
                counts[path] = self._last_counts.get(path, 0)  # keep what it delivered last
                continue
            self._errors.pop(path, None)
            self.metrics.file_mtime.labels(path).set(mtime)
            send(groups)
            counts[path] = len(groups)
        for path, n in self._last_counts.items():
            m = counts.get(path, 0)
            if path not in counts or n > m:
                if path not in counts:
                    self._errors.pop(path, None)
                    with contextlib.suppress(KeyError):
                        self.metrics.file_mtime.remove(path)
                send([TargetGroup(f"{path}:{i}") for i in range(m, n)])
        self._last_counts = counts
        self._signatures = listing
        self.error = "; ".join(self._errors.values()) or None
        self.metrics.file_scan_duration.observe(time.monotonic() - start)

    async def run(self, send: Send) -> None:
        self.refresh(send)
        next_full = time.monotonic() + self.refresh_s
        while True:
            await asyncio.sleep(min(self.watch_interval_s, max(next_full - time.monotonic(), 0)))
            if time.monotonic() >= next_full or self._listing() != self._signatures:
                self.refresh(send)
                next_full = time.monotonic() + self.refresh_s
