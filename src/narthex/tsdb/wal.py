"""Write-ahead log: numbered segment files of checksummed, length-prefixed records.

Frame: ``length u32 | crc32 u32 | body`` where ``body[0]`` is the record type. A commit is one
``write`` of all its frames followed by a flush to the OS, so a crash leaves at most a torn tail,
which :meth:`WAL.open` cuts at the last good frame. Checkpoints (``checkpoint.NNNNNNNN``) hold a
snapshot of the head covering every segment up to NNNNNNNN; those segments are then deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from narthex.tsdb.records import KNOWN_TYPES
from narthex.util.log import get_logger

_FRAME = struct.Struct("<II")
_log = get_logger("tsdb")


def _segment_name(index: int) -> str:
    return f"{index:08d}"


def _list_segments(directory: Path) -> list[int]:
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit() and p.is_file())


def frame(body: bytes) -> bytes:
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def _read_frames(data: bytes) -> tuple[list[memoryview], int]:
    """Good frames of a segment and the offset where the valid prefix ends."""
    view = memoryview(data)
    out: list[memoryview] = []
    pos = 0
    end = len(data)
    while pos < end:
        if pos + _FRAME.size > end:
            break
        length, crc = _FRAME.unpack_from(data, pos)
        start = pos + _FRAME.size
        if length == 0 or start + length > end:
            break
        body = view[start : start + length]
        if zlib.crc32(body) != crc or body[0] not in KNOWN_TYPES:
            break
        out.append(body)
        pos = start + length
    return out, pos


class WAL:
    """Segmented write-ahead log under ``<db>/wal``."""

    def __init__(self, directory: str | Path, segment_size: int = 128 * 1024 * 1024) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_size = segment_size
        self.corruptions = 0
        self.truncations = 0
        self.checkpoints = 0
        self.writes_failed = 0
        self.fsync_seconds = 0.0
        self._file = None
        self._current = -1
        self._current_size = 0

    # -- reading ---------------------------------------------------------------------------------

    def checkpoint_dirs(self) -> list[tuple[int, Path]]:
        found = []
        for p in self.dir.iterdir():
            if p.is_dir() and p.name.startswith("checkpoint."):
                suffix = p.name[len("checkpoint.") :]
                if suffix.isdigit():
                    found.append((int(suffix), p))
                else:
                    shutil.rmtree(p, ignore_errors=True)  # an unfinished checkpoint (.tmp)
        return sorted(found)

    def replay(self) -> Iterator[memoryview]:
        """Record bodies of the latest checkpoint then of later segments, repairing a bad tail."""
        checkpoints = self.checkpoint_dirs()
        first = 0
        if checkpoints:
            index, path = checkpoints[-1]
            first = index + 1
            for seg in _list_segments(path):
                data = (path / _segment_name(seg)).read_bytes()
                frames, good = _read_frames(data)
                if good != len(data):
                    raise OSError(f"corrupt WAL checkpoint {path}")
                yield from frames
        segments = [s for s in _list_segments(self.dir) if s >= first]
        for i, seg in enumerate(segments):
            path = self.dir / _segment_name(seg)
            data = path.read_bytes()
            frames, good = _read_frames(data)
            yield from frames
            if good != len(data):
                self._repair(path, good, segments[i + 1 :], len(data))
                return

    def _repair(self, path: Path, good: int, later: list[int], size: int) -> None:
        self.corruptions += 1
        _log.warn(
            "Encountered WAL read error, attempting repair",
            segment=path.name,
            offset=good,
            dropped_bytes=size - good,
            dropped_segments=len(later),
        )
        with open(path, "r+b") as f:
            f.truncate(good)
            f.flush()
            os.fsync(f.fileno())
        for seg in later:
            (self.dir / _segment_name(seg)).unlink(missing_ok=True)

    # -- writing ---------------------------------------------------------------------------------

    def open_for_append(self) -> None:
        """Start a fresh segment after the existing ones (as Prometheus does on start)."""
        segments = _list_segments(self.dir)
        checkpoints = self.checkpoint_dirs()
        last = max(segments[-1] if segments else -1, checkpoints[-1][0] if checkpoints else -1)
        self._open_segment(last + 1)

    def _open_segment(self, index: int) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        self._current = index
        self._file = open(self.dir / _segment_name(index), "ab")  # noqa: SIM115
        self._current_size = self._file.tell()

    @property
    def current_segment(self) -> int:
        return self._current

    def log(self, bodies: list[bytes]) -> None:
        """Append records as one write and flush them to the OS."""
        if not bodies:
            return
        data = b"".join(frame(b) for b in bodies)
        if self._current_size > 0 and self._current_size + len(data) > self.segment_size:
            self._open_segment(self._current + 1)
        assert self._file is not None
        try:
            self._file.write(data)
            self._file.flush()
        except OSError:
            self.writes_failed += 1
            # Drop a partial frame so later records are not cut off by replay's repair.
            with contextlib.suppress(OSError):
                self._file.truncate(self._current_size)
                self._file.seek(self._current_size)
            raise
        self._current_size += len(data)

    def roll(self) -> int:
        """Close the current segment and start the next; returns the index of the closed one."""
        closed = self._current
        self._open_segment(self._current + 1)
        return closed

    def checkpoint(self, upto: int, bodies: Iterator[bytes]) -> None:
        """Write ``checkpoint.<upto>`` from records, then delete segments and checkpoints before it."""
        final = self.dir / f"checkpoint.{_segment_name(upto)}"
        tmp = self.dir / f"checkpoint.{_segment_name(upto)}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with open(tmp / _segment_name(0), "wb") as f:
            for body in bodies:
                f.write(frame(body))
            f.flush()
            os.fsync(f.fileno())
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        self.checkpoints += 1
        for seg in _list_segments(self.dir):
            if seg <= upto:
                (self.dir / _segment_name(seg)).unlink(missing_ok=True)
        for index, path in self.checkpoint_dirs():
            if index < upto:
                shutil.rmtree(path, ignore_errors=True)
        self.truncations += 1

    def size(self) -> int:
        total = 0
        for root, _dirs, files in os.walk(self.dir):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.path.getsize(os.path.join(root, name))
        return total

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
