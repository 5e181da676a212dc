"""Backfill: OpenMetrics text with timestamps -> blocks, as ``promtool tsdb create-blocks-from openmetrics``.

Semantics follow promtool (``cmd/promtool/backfill.go``):

* every sample needs a timestamp; the whole input must parse (including the final ``# EOF``);
* the block duration is 2h, or the largest of Prometheus's exponential ranges (2h, 6h, 18h, ...)
  not above ``max_block_duration`` when that is larger;
* samples are grouped into ranges ``[k*D, (k+1)*D)``; one level-1 block per non-empty range, with
  ``minTime`` = its first sample and ``maxTime`` = its last sample + 1 (as Prometheus's
  ``BlockWriter``);
* ``custom_labels`` are set on every series (overriding labels of the same name);
* a second sample of a series at the same timestamp is dropped when its value bits are equal and is
  an error ("duplicate sample for timestamp") otherwise; a series whose timestamps go backwards is
  an error ("out of order sample").

Parsing uses :func:`narthex.model.textparse.scan_line` (Prometheus's non-strict OpenMetrics rules).
Lines of an already seen series whose value and timestamp are plain decimal numbers take a fast path
that skips re-scanning the label set; anything else goes through the full scanner.
"""

from __future__ import annotations

import array
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from narthex.model.labels import Labels
from narthex.model.textparse import (
    EOF,
    TYPE,
    Format,
    ParseError,
    ScannedSeries,
    build_labels,
    scan_line,
    seconds_to_ms,
)
from narthex.tsdb.block import BlockMeta, BlockWriter
from narthex.tsdb.chunks import ChunkCodec
from narthex.tsdb.head import SeriesData
from narthex.tsdb.ulid import new_ulid

DEFAULT_BLOCK_DURATION_MS = 2 * 3_600_000
_SERIES_PER_WRITE = 10_000
# A value or timestamp every OpenMetrics parser reads the same way: the fast path accepts only these.
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\Z")


class BackfillError(Exception):
    """Input that cannot be turned into blocks; ``str()`` is promtool's message."""


@dataclass(slots=True)
class ParsedSamples:
    """All samples of an input: ``series[i]`` are the labels of samples with ``sid == i``."""

    series: list[Labels]
    sid: np.ndarray  # int64
    t: np.ndarray  # int64 ms
    v: np.ndarray  # float64


def compatible_block_duration(max_block_duration_ms: int) -> int:
    """promtool's ``getCompatibleBlockDuration``: 2h, or the largest of 2h*3^k (k < 10) <= the maximum."""
    duration = DEFAULT_BLOCK_DURATION_MS
    if max_block_duration_ms > DEFAULT_BLOCK_DURATION_MS:
        ranges = [DEFAULT_BLOCK_DURATION_MS * 3**k for k in range(10)]
        duration = ranges[-1]
        for i, r in enumerate(ranges):
            if r > max_block_duration_ms:
                duration = ranges[i - 1]
                break
    return duration


def _open_lines(source: bytes | str | Path) -> tuple[IO[str], int]:
    """A text stream split only on ``\\n`` (invalid UTF-8 kept as surrogates) and its size."""
    if isinstance(source, Path):
        size = source.stat().st_size
        return open(source, encoding="utf-8", errors="surrogateescape", newline="\n"), size
    text = source.decode("utf-8", "surrogateescape") if isinstance(source, bytes) else source
    return io.StringIO(text, newline="\n"), len(text)


def parse_openmetrics(
    source: bytes | str | Path, progress: Callable[[int, int], None] | None = None
) -> ParsedSamples:
    """Every sample of an OpenMetrics body (a file is streamed line by line); raises
    :class:`BackfillError` with promtool's wording. ``progress(done, total)`` is called about 100
    times, in characters read."""
    stream, total = _open_lines(source)
    with stream:
        return _parse_lines(stream, total, progress)


def _parse_lines(stream: IO[str], total: int, progress: Callable[[int, int], None] | None) -> ParsedSamples:
    fmt = Format.OPENMETRICS
    plain = _PLAIN_NUMBER.match
    cache: dict[str, tuple[int, str | None]] = {}
    series: list[Labels] = []
    sid_of: dict[Labels, int] = {}
    sids = array.array("q")
    ts = array.array("q")
    vs = array.array("d")
    mtype: str | None = None
    eof_seen = False
    step = max(1, total // 100)
    done = 0
    next_report = step
    for raw in stream:
        line = raw[:-1] if raw.endswith("\n") else raw
        if progress is not None:
            done += len(raw)
            if done >= next_report:
                progress(done, total)
                next_report = done + step
        if eof_seen:
            raise BackfillError("getting min and max timestamp: next: unexpected data after # EOF")
        if line and line[0] != "#":
            parts = line.rsplit(" ", 2)
            if len(parts) == 3:
                hit = cache.get(parts[0])
                if hit is not None and hit[1] == mtype and plain(parts[1]) and plain(parts[2]):
                    sids.append(hit[0])
                    vs.append(float(parts[1]))
                    ts.append(seconds_to_ms(float(parts[2])))
                    continue
        try:
            sc = scan_line(line, fmt)
        except ParseError as err:
            raise BackfillError(f"getting min and max timestamp: next: {err.message}") from None
        if isinstance(sc, ScannedSeries):
            if sc.timestamp_ms is None:
                raise BackfillError("getting min and max timestamp: expected timestamp for series got none")
            try:
                labels = build_labels(sc.name, sc.pairs, mtype)
            except ParseError as err:
                raise BackfillError(f"getting min and max timestamp: next: {err.message}") from None
            sid = sid_of.get(labels)
            if sid is None:
                sid = sid_of[labels] = len(series)
                series.append(labels)
            if sc.exemplar is None:
                cache[line[: sc.key_end]] = (sid, mtype)
            sids.append(sid)
            vs.append(sc.value)
            ts.append(sc.timestamp_ms)
        elif sc.kind == TYPE:
            mtype = sc.text
        elif sc.kind == EOF:
            eof_seen = True
    if not eof_seen:
        raise BackfillError("getting min and max timestamp: next: data does not end with # EOF")
    return ParsedSamples(
        series,
        np.frombuffer(sids, dtype=np.int64).copy(),
        np.frombuffer(ts, dtype=np.int64).copy(),
        np.frombuffer(vs, dtype=np.float64).copy(),
    )


def apply_labels(parsed: ParsedSamples, custom: dict[str, str]) -> ParsedSamples:
    """Set ``custom`` labels on every series (merging series that become identical)."""
    if not custom:
        return parsed
    new_series: list[Labels] = []
    index: dict[Labels, int] = {}
    remap = np.empty(len(parsed.series), dtype=np.int64)
    for i, labels in enumerate(parsed.series):
        merged = dict(labels)
        merged.update(custom)
        key = tuple(sorted((k, v) for k, v in merged.items() if v != ""))
        j = index.get(key)
        if j is None:
            j = index[key] = len(new_series)
            new_series.append(key)
        remap[i] = j
    return ParsedSamples(new_series, remap[parsed.sid], parsed.t, parsed.v)


def _block_samples(parsed: ParsedSamples, sel: np.ndarray) -> tuple[list[Labels], SeriesData]:
    """Samples ``sel`` (in input order) as label-sorted series data, checked like a head append."""
    sid, t, v = parsed.sid[sel], parsed.t[sel], parsed.v[sel]
    order = np.argsort(sid, kind="stable")
    sid, t, v = sid[order], t[order], v[order]
    same = sid[1:] == sid[:-1]
    back = same & (t[1:] < t[:-1])
    if back.any():
        i = int(np.flatnonzero(back)[0]) + 1
        raise BackfillError(
            "block creation: process blocks: add sample: out of order sample "
            f"(series {_fmt(parsed.series[sid[i]])}, t={t[i]})"
        )
    dup = same & (t[1:] == t[:-1])
    if dup.any():
        bits = v.view(np.uint64)
        conflict = dup & (bits[1:] != bits[:-1])
        if conflict.any():
            i = int(np.flatnonzero(conflict)[0]) + 1
            raise BackfillError(
                "block creation: process blocks: add sample: duplicate sample for timestamp "
                f"(series {_fmt(parsed.series[sid[i]])}, t={t[i]})"
            )
        keep = np.r_[True, ~dup]
        sid, t, v = sid[keep], t[keep], v[keep]
    present, counts = np.unique(sid, return_counts=True)
    labels = [parsed.series[i] for i in present.tolist()]
    by_label = sorted(range(len(labels)), key=labels.__getitem__)
    starts = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    idx = np.asarray(by_label, dtype=np.int64)
    c = counts[idx]
    take = np.repeat(starts[:-1][idx] - np.cumsum(c) + c, c) + np.arange(int(c.sum()))
    offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(c, out=offsets[1:])
    sorted_labels = [labels[i] for i in by_label]
    return sorted_labels, SeriesData(sorted_labels, t[take], v[take], offsets)


def _fmt(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def write_blocks(
    parsed: ParsedSamples,
    output_dir: str | Path,
    max_block_duration_ms: int = 0,
    on_block: Callable[[Path, BlockMeta], None] | None = None,
) -> list[BlockMeta]:
    """Write one block per non-empty aligned range; returns their metas in time order."""
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    if len(parsed.t) == 0:
        return []
    duration = compatible_block_duration(max_block_duration_ms)
    # Go's integer division truncates toward zero: with negative timestamps the first range starts
    # at the zero side and promtool skips the samples before it; so do we.
    mint = int(parsed.t.min())
    origin = -duration * (-mint // duration) if mint < 0 else duration * (mint // duration)
    range_of = (parsed.t - origin) // duration
    order = np.argsort(range_of, kind="stable")
    order = order[range_of[order] >= 0]
    keys, firsts = np.unique(range_of[order], return_index=True)
    bounds = np.r_[firsts, len(order)]
    codec = ChunkCodec()
    metas = []
    for k in range(len(keys)):
        sel = order[bounds[k] : bounds[k + 1]]
        labels, data = _block_samples(parsed, np.sort(sel))
        ulid = new_ulid()
        meta = BlockMeta(
            ulid=ulid,
            min_time=int(data.t.min()),
            max_time=int(data.t.max()) + 1,
            level=1,
            sources=[ulid],
        )
        writer = BlockWriter(root, ulid, codec)
        try:
            for i in range(0, len(labels), _SERIES_PER_WRITE):
                j = min(i + _SERIES_PER_WRITE, len(labels))
                a, b = int(data.offsets[i]), int(data.offsets[j])
                writer.add(SeriesData(labels[i:j], data.t[a:b], data.v[a:b], data.offsets[i : j + 1] - a))
            path = writer.finish(meta)
        except BaseException:
            writer.abort()
            raise
        metas.append(meta)
        if on_block is not None:
            on_block(path, meta)
    return metas


def create_blocks_from_openmetrics(
    data: bytes | str | Path,
    output_dir: str | Path,
    max_block_duration_ms: int = 0,
    custom_labels: dict[str, str] | None = None,
    on_block: Callable[[Path, BlockMeta], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[BlockMeta]:
    """Parse an OpenMetrics body (or file) and write its samples as blocks under ``output_dir``."""
    parsed = apply_labels(parse_openmetrics(data, progress), custom_labels or {})
    return write_blocks(parsed, output_dir, max_block_duration_ms, on_block)


__all__ = [
    "DEFAULT_BLOCK_DURATION_MS",
    "BackfillError",
    "ParsedSamples",
    "apply_labels",
    "compatible_block_duration",
    "create_blocks_from_openmetrics",
    "parse_openmetrics",
    "write_blocks",
]
