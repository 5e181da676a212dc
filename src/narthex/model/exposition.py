"""Scrape-side exposition handling: content negotiation, body decoding and the cached fast parser.

:class:`ScrapeCache` is the per-target hot path. It turns a scrape body into numpy arrays of series refs
and values, keyed by the raw series text of each line (``name{labels}`` exactly as exposed): a line
whose series text is already cached costs a string split, a dict lookup and a bulk float conversion;
labels are parsed, and the caller's ``resolve`` callback (target labels, metric relabeling, limits,
series creation) runs, only on a cache miss. Its error behaviour follows Prometheus's scrape loop: a
malformed line fails the whole scrape (the caller should append nothing), the same series twice in one
scrape is counted and dropped, dropped series are cached as dropped.

Whole-body parsing into families (and the OpenMetrics spec checker) is in
:mod:`narthex.model.exposition_families`; the line grammar is in :mod:`narthex.model.textparse`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from narthex.model.labels import METRIC_NAME, Labels
from narthex.model.textparse import (
    EOF,
    HELP,
    TYPE,
    UNIT,
    Exemplar,
    Format,
    ParseError,
    ScannedSeries,
    build_labels,
    parse_go_float,
    scan_line,
    seconds_to_ms,
)

__all__ = [
    "DEFAULT_SCRAPE_PROTOCOLS",
    "NORMAL_NAN_BITS",
    "NO_TIMESTAMP",
    "PROTO_FIRST_SCRAPE_PROTOCOLS",
    "SCRAPE_PROTOCOL_HEADERS",
    "BodySizeLimitError",
    "ContentTypeError",
    "Format",
    "MetricMetadata",
    "ParseError",
    "ScrapeCache",
    "ScrapeError",
    "ScrapeResult",
    "accept_encoding_header",
    "accept_header",
    "check_label_limits",
    "decode_body",
    "protocol_media_type",
    "select_format",
]

# ---------------------------------------------------------------------------------------------------------
# Content negotiation (config.ScrapeProtocolsHeaders, scrape.acceptHeader, textparse.extractMediaType).

SCRAPE_PROTOCOL_HEADERS: dict[str, str] = {
    "PrometheusProto": (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
    ),
    "PrometheusText0.0.4": "text/plain;version=0.0.4",
    "PrometheusText1.0.0": "text/plain;version=1.0.0",
    "OpenMetricsText0.0.1": "application/openmetrics-text;version=0.0.1",
    "OpenMetricsText1.0.0": "application/openmetrics-text;version=1.0.0",
}
DEFAULT_SCRAPE_PROTOCOLS: tuple[str, ...] = (
    "OpenMetricsText1.0.0",
    "OpenMetricsText0.0.1",
    "PrometheusText1.0.0",
    "PrometheusText0.0.4",
)
PROTO_FIRST_SCRAPE_PROTOCOLS: tuple[str, ...] = ("PrometheusProto", *DEFAULT_SCRAPE_PROTOCOLS)
_ESCAPING_PROTOCOLS = frozenset({"PrometheusText1.0.0", "OpenMetricsText1.0.0"})
_MEDIA_FORMATS = {"text/plain": Format.TEXT, "application/openmetrics-text": Format.OPENMETRICS}
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA_TYPE = re.compile(rf"({_TOKEN})/({_TOKEN})")
_MEDIA_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*({_TOKEN}|"(?:[^"\\]|\\.)*")\s*')


class ContentTypeError(ValueError):
    """No parser can be chosen for a response's Content-Type."""


def accept_header(protocols: Sequence[str] = DEFAULT_SCRAPE_PROTOCOLS, escaping: str = "allow-utf-8") -> str:
    """The Accept header Prometheus sends for ``scrape_protocols`` (weights ``q=0.6`` downwards)."""
    weight = len(SCRAPE_PROTOCOL_HEADERS) + 1
    parts = []
    for proto in protocols:
        val = SCRAPE_PROTOCOL_HEADERS[proto]
        if proto in _ESCAPING_PROTOCOLS:
            val += f";escaping={escaping}"
        parts.append(f"{val};q=0.{weight}")
        weight -= 1
    parts.append(f"*/*;q=0.{weight}")
    return ",".join(parts)


def accept_encoding_header(enable_compression: bool = True) -> str:
    return "gzip" if enable_compression else "identity"


def _parse_media_type(content_type: str) -> str:
    """Go's ``mime.ParseMediaType``, media type only (lower-cased); raises ValueError."""
    head, _, params = content_type.partition(";")
    m = _MEDIA_TYPE.fullmatch(head.strip())
    if m is None:
        raise ValueError(
            "mime: expected slash after first token" if "/" not in head else "mime: invalid media type"
        )
    rest = params
    while rest.strip():
        pm = _MEDIA_PARAM.match(rest)
        if pm is None:
            raise ValueError("mime: invalid media parameter")
        rest = rest[pm.end() :]
        if rest and not rest.startswith(";"):
            raise ValueError("mime: invalid media parameter")
        rest = rest[1:]
    return head.strip().lower()


def protocol_media_type(protocol: str) -> str:
    """The media type (no parameters) of a scrape protocol name, or "" if unknown."""
    header = SCRAPE_PROTOCOL_HEADERS.get(protocol)
    return header.split(";", 1)[0] if header else ""


def select_format(content_type: str, fallback_protocol: str = "") -> tuple[Format, str | None]:
    """Choose the parser for a response as ``textparse.New`` does.

    Returns (format, warning): the warning is set when the fallback protocol was used. Raises
    :class:`ContentTypeError` when no parser applies (no usable type and no fallback, or protobuf, which
    Narthex does not parse).
    """
    fallback = protocol_media_type(fallback_protocol) if fallback_protocol else ""
    warning: str | None = None
    if not content_type:
        if not fallback:
            raise ContentTypeError(
                "non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol "
                "specified for target"
            )
        media = fallback
        warning = (
            f"non-compliant scrape target sending blank Content-Type, using fallback_scrape_protocol "
            f'"{fallback}"'
        )
    else:
        try:
            media = _parse_media_type(content_type)
        except ValueError as exc:
            if not fallback:
                raise ContentTypeError(
                    f'cannot parse Content-Type "{content_type}" and no fallback_scrape_protocol '
                    f"for target\n{exc}"
                ) from None
            media = fallback
            warning = (
                f'could not parse received Content-Type "{content_type}", using fallback_scrape_protocol '
                f'"{fallback}"\n{exc}'
            )
        else:
            if media not in _MEDIA_FORMATS and media != "application/vnd.google.protobuf":
                if not fallback:
                    raise ContentTypeError(
                        f'received unsupported Content-Type "{content_type}" and no fallback_scrape_protocol '
                        "specified for target"
                    )
                warning = (
                    f'received unsupported Content-Type "{content_type}", using fallback_scrape_protocol '
                    f'"{fallback}"'
                )
                media = fallback
    fmt = _MEDIA_FORMATS.get(media)
    if fmt is None:
        raise ContentTypeError(f'the protobuf exposition format ("{media}") is not supported by Narthex')
    return fmt, warning


# ---------------------------------------------------------------------------------------------------------
# Body decoding.


class BodySizeLimitError(ValueError):
    def __init__(self) -> None:
        super().__init__("body size limit exceeded")


def _is_zlib_stream(data: bytes) -> bool:
    """Whether ``data`` starts with a zlib (RFC 1950) header rather than raw deflate."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def decode_body(data: bytes, content_encoding: str = "", limit: int = 0) -> bytes:
    """Decompress a response body (``gzip``, ``x-gzip``, ``deflate``, ``identity``/empty).

    ``limit`` > 0 is ``body_size_limit``: a body (decompressed) of ``limit`` bytes or more raises
    :class:`BodySizeLimitError`, as Prometheus's ``n >= bodySizeLimit`` check. ``deflate`` accepts both
    zlib-wrapped and raw streams. Corrupt data raises :class:`zlib.error`.
    """
    enc = content_encoding.strip().lower()
    if enc in ("", "identity"):
        out = data
    else:
        if enc in ("gzip", "x-gzip"):
            wbits = 16 + zlib.MAX_WBITS
        elif enc == "deflate":
            wbits = zlib.MAX_WBITS if _is_zlib_stream(data) else -zlib.MAX_WBITS
        else:
            raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")
        dec = zlib.decompressobj(wbits)
        out = dec.decompress(data, limit if limit > 0 else 0)
        if limit > 0 and len(out) >= limit:
            raise BodySizeLimitError()
        if not dec.eof:
            raise zlib.error("incomplete or truncated compressed stream")
    if limit > 0 and len(out) >= limit:
        raise BodySizeLimitError()
    return out


# ---------------------------------------------------------------------------------------------------------
# Label limits (scrape.verifyLabelLimits), for use in a resolve callback.


def check_label_limits(
    labels: Labels, label_limit: int = 0, name_length_limit: int = 0, value_length_limit: int = 0
) -> str | None:
    """Prometheus's message when a label set breaks ``label_limit`` & co (0 = no limit), else None."""
    met = dict(labels).get(METRIC_NAME, "")
    if label_limit > 0 and len(labels) > label_limit:
        return (
            f"label_limit exceeded (metric: {met[:50]}, number of labels: {len(labels)}, "
            f"limit: {label_limit})"
        )
    if name_length_limit <= 0 and value_length_limit <= 0:
        return None
    for name, value in labels:
        if name_length_limit > 0 and len(name) > name_length_limit:
            return (
                f"label_name_length_limit exceeded (metric: {met[:50]}, label name: {name[:50]}, "
                f"length: {len(name)}, limit: {name_length_limit})"
            )
        if value_length_limit > 0 and len(value) > value_length_limit:
            quoted = '"' + value[:50].replace("\\", "\\\\").replace('"', '\\"') + '"'
            return (
                f"label_value_length_limit exceeded (metric: {met[:50]}, label name: {name[:50]}, "
                f"value: {quoted}, length: {len(value)}, limit: {value_length_limit})"
            )
    return None


# ---------------------------------------------------------------------------------------------------------
# The scrape cache.

NO_TIMESTAMP = np.iinfo(np.int64).min
"""Marks "no explicit timestamp" in :attr:`ScrapeResult.timestamps`."""
NORMAL_NAN_BITS = 0x7FF8000000000001
"""Prometheus's ``value.NormalNaN``: every parsed NaN gets this bit pattern (never the stale marker)."""
_DROPPED = -1
_INT64_MAX = (1 << 63) - 1
_BAD_VALUE_CHARS = ("_", "\t", "\r", "\x0b", "\x0c")


class ScrapeError(ValueError):
    """Raised by a ``resolve`` callback to fail the scrape (e.g. a label limit); its text is the error."""


@dataclass(slots=True)
class MetricMetadata:
    """TYPE/HELP/UNIT of a metric family as last exposed."""

    type: str = "unknown"
    help: str = ""
    unit: str = ""


@dataclass(slots=True)
class ScrapeResult:
    """The outcome of one scrape body.

    ``refs``/``values`` (and ``timestamps`` when any line had one) are aligned and hold the samples to
    append: dropped series and in-scrape duplicates are already removed. When ``error`` is set the scrape
    failed as a whole, like Prometheus (which appends nothing then); the arrays are empty.
    """

    refs: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray | None = None
    error: str | None = None
    total: int = 0  # sample lines (scrape_samples_scraped)
    added: int = 0  # samples left after relabeling (scrape_samples_post_metric_relabeling)
    series_added: int = 0  # series new to the cache (scrape_series_added)
    duplicates: int = 0  # samples dropped because their series already had one in this scrape
    exemplars: list[tuple[int, Exemplar]] = field(default_factory=list)  # (ref, exemplar)
    stale_refs: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    """Refs in the previous scrape (without explicit timestamps) that are absent now: write stale markers."""


class _Rescan(Exception):
    """The optimistic pass met something only the exact pass can judge."""


_EMPTY_I64 = np.empty(0, np.int64)
_EMPTY_F64 = np.empty(0, np.float64)


class ScrapeCache:
    """Per-target cache from series text to series ref, with a batch parser on top.

    ``resolve(labels)`` is called once per new series text with the parsed labels (``__name__``
    included, ``le``/``quantile`` normalised as Prometheus does) and returns the series ref (>= 0) to
    append to, or None to drop the series (remembered until the series disappears from the target). It
    may raise :class:`ScrapeError` to fail the scrape.
    """

    def __init__(
        self,
        resolve: Callable[[Labels], int | None],
        *,
        honor_timestamps: bool = True,
        track_timestamps_staleness: bool = False,
        sample_limit: int = 0,
    ) -> None:
        self.resolve = resolve
        self.honor_timestamps = honor_timestamps
        self.track_timestamps_staleness = track_timestamps_staleness
        self.sample_limit = sample_limit
        self.metadata: dict[str, MetricMetadata] = {}
        self._slots: dict[str, int] = {}
        self._keys: list[str | None] = []
        self._free: list[int] = []
        self._refs = np.empty(1024, np.int64)
        self._seen = np.zeros(1024, np.int64)
        self._iter = 0
        self._meta_lines: dict[str, _MetaLine] = {}
        self._meta_seen: list[_MetaLine] = []
        self._last_refs = _EMPTY_I64
        self._fmt: Format | None = None
        self._series_added = 0
        self._new: list[tuple[int, int]] = []

    # Cache bookkeeping -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slots)

    def clear(self) -> None:
        """Forget every cached series and metadata (e.g. after the relabeling config changed)."""
        self._forget_lines()
        self._meta_seen = []
        self.metadata = {}
        self._last_refs = _EMPTY_I64

    def _forget_lines(self) -> None:
        self._slots.clear()
        self._keys.clear()
        self._free.clear()
        self._new.clear()
        self._meta_lines.clear()

    def _new_slot(self, key: str, ref: int) -> int:
        """A slot for a new series text; its ref reaches ``_refs`` in :meth:`_flush_new`."""
        if self._free:
            slot = self._free.pop()
            self._keys[slot] = key
        else:
            slot = len(self._keys)
            self._keys.append(key)
        self._slots[key] = slot
        self._new.append((slot, ref))
        return slot

    def _flush_new(self) -> None:
        """Write the refs of the slots created since the last flush (one numpy assignment)."""
        new = self._new
        if not new:
            return
        size = len(self._refs)
        if len(self._keys) > size:
            while size < len(self._keys):
                size *= 2
            self._refs = np.resize(self._refs, size)
            self._seen = np.concatenate([self._seen, np.zeros(size - len(self._seen), np.int64)])
        pairs = np.array(new, dtype=np.int64)
        self._refs[pairs[:, 0]] = pairs[:, 1]
        self._seen[pairs[:, 0]] = self._iter
        new.clear()

    def _sweep(self, seen_count: int) -> None:
        """Drop entries not seen in this (successful) scrape, as Prometheus's ``iterDone(true)``."""
        if len(self._slots) > seen_count:
            n = len(self._keys)
            stale = np.nonzero(self._seen[:n] != self._iter)[0]
            keys = self._keys
            for slot in stale.tolist():
                key = keys[slot]
                if key is not None:
                    del self._slots[key]
                    keys[slot] = None
                    self._free.append(slot)
        if len(self._meta_lines) > len(self._meta_seen):
            self._meta_lines = {m.line: m for m in self._meta_seen}

    def get_metadata(self, metric_name: str) -> MetricMetadata | None:
        """Metadata for a sample name, trying its family name without type suffixes as Prometheus does."""
        md = self.metadata.get(metric_name)
        if md is not None:
            return md
        for suffix in ("_total", "_bucket", "_count", "_sum", "_created", "_gcount", "_gsum", "_info"):
            if metric_name.endswith(suffix):
                md = self.metadata.get(metric_name[: -len(suffix)])
                if md is not None:
                    return md
        return None

    # Parsing -----------------------------------------------------------------------------------------
    def scrape(self, body: bytes | str, fmt: Format = Format.TEXT) -> ScrapeResult:
        """Parse one scrape body. Never raises for bad input: see :attr:`ScrapeResult.error`."""
        self._iter += 1
        self._series_added = 0
        if fmt is not self._fmt:
            # Series texts valid in one format may not be in the other: start afresh on a switch.
            if self._fmt is not None:
                self._forget_lines()
            self._fmt = fmt
        text = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
        if not text:
            # An empty scrape: only stale markers (Prometheus keeps the cache as it is).
            return self._finish_failed(None)
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        try:
            try:
                parsed = self._parse_fast(lines, fmt)
            except _Rescan:
                parsed = self._parse_exact(lines, fmt)
        except (ParseError, ScrapeError) as exc:
            self._flush_new()
            return self._finish_failed(str(exc))
        self._flush_new()
        return self._finish(parsed)

    def _finish_failed(self, error: str | None) -> ScrapeResult:
        stale = self._last_refs
        self._last_refs = _EMPTY_I64
        return ScrapeResult(_EMPTY_I64, _EMPTY_F64, None, error, stale_refs=stale)

    def _parse_fast(self, lines: list[str], fmt: Format) -> _Parsed:
        """The optimistic pass: split each line at its last space and look the head up; only misses
        (metadata, timestamps, new or unusual series) are handled one by one, and values are converted
        and checked in bulk. Any doubt raises :class:`_Rescan` for the exact pass."""
        om = fmt is Format.OPENMETRICS
        if om:
            if not lines or lines[-1] != "# EOF":
                raise _Rescan
            lines = lines[:-1]
        get = self._slots.get
        meta_get = self._meta_lines.get
        slots: list[int] = []
        vals: list[str] = []
        tss: list[tuple[int, int | str]] = []
        exemplars: list[tuple[int, Exemplar]] = []
        meta_seen: list[_MetaLine] = []
        sapp = slots.append
        vapp = vals.append
        mtype: str | None = None
        for line in lines:
            head, _, v = line.rpartition(" ")
            slot = get(head)
            if slot is not None:
                sapp(slot)
                vapp(v)
                continue
            meta = meta_get(line)
            if meta is not None:
                meta_seen.append(meta)
                if meta.kind == TYPE:
                    mtype = meta.text
                continue
            head2, sep, v2 = head.rpartition(" ")
            slot = get(head2) if sep else None
            if slot is not None:
                # "series value timestamp"
                tss.append((len(slots), v))
                sapp(slot)
                vapp(v2)
                continue
            try:
                sc = scan_line(line, fmt)
            except ParseError:
                raise _Rescan from None
            if not isinstance(sc, ScannedSeries):
                if sc.kind == EOF:
                    raise _Rescan
                meta = self._meta_lines[line] = _MetaLine(sc.kind, sc.name, sc.text, line)
                meta_seen.append(meta)
                if sc.kind == TYPE:
                    mtype = sc.text
                continue
            try:
                slot = self._slot_for(line[: sc.key_end], sc, mtype)
            except ParseError:
                raise _Rescan from None
            if sc.timestamp_ms is not None:
                tss.append((len(slots), sc.timestamp_ms))
            if sc.exemplar is not None:
                exemplars.append((slot, sc.exemplar))
            sapp(slot)
            vapp(repr(sc.value))
        values = _convert_values(vals, True)
        timestamps = _timestamp_array(len(slots), tss, om) if tss else None
        self._set_metadata(meta_seen)
        return _Parsed(np.array(slots, dtype=np.intp), values, timestamps, exemplars, self._series_added)

    def _slot_for(self, key: str, sc: ScannedSeries, mtype: str | None) -> int:
        """The cache slot of a scanned series, resolving its labels when new."""
        slot = self._slots.get(key)
        if slot is None:
            ref = self.resolve(build_labels(sc.name, sc.pairs, mtype))
            if ref is None:
                return self._new_slot(key, _DROPPED)
            self._series_added += 1
            return self._new_slot(key, ref)
        return slot

    def _parse_exact(self, lines: list[str], fmt: Format) -> _Parsed:
        """Every line not already known is fully scanned; errors carry their line number."""
        om = fmt is Format.OPENMETRICS
        get = self._slots.get
        meta_get = self._meta_lines.get
        slots: list[int] = []
        vals: list[float] = []
        tss: list[tuple[int, int | str]] = []
        exemplars: list[tuple[int, Exemplar]] = []
        meta_seen: list[_MetaLine] = []
        mtype: str | None = None
        eof_at = -1
        for lineno, line in enumerate(lines, 1):
            meta = meta_get(line)
            if meta is not None:
                meta_seen.append(meta)
                if meta.kind == TYPE:
                    mtype = meta.text
                continue
            try:
                sc = scan_line(line, fmt)
                if not isinstance(sc, ScannedSeries):
                    if sc.kind == EOF:
                        eof_at = lineno
                        break
                    meta = self._meta_lines[line] = _MetaLine(sc.kind, sc.name, sc.text, line)
                    meta_seen.append(meta)
                    if sc.kind == TYPE:
                        mtype = sc.text
                    continue
                key = line[: sc.key_end]
                slot = get(key)
                if slot is None:
                    slot = self._slot_for(key, sc, mtype)
            except ParseError as exc:
                exc.line = lineno
                raise
            if sc.timestamp_ms is not None:
                tss.append((len(slots), sc.timestamp_ms))
            if sc.exemplar is not None:
                exemplars.append((slot, sc.exemplar))
            slots.append(slot)
            vals.append(sc.value)
        if om:
            if eof_at < 0:
                raise ParseError("data does not end with # EOF")
            if eof_at != len(lines):
                raise ParseError("unexpected data after # EOF", eof_at + 1)
        values = _convert_values(vals, False)
        timestamps = _timestamp_array(len(slots), tss, om) if tss else None
        self._set_metadata(meta_seen)
        return _Parsed(np.array(slots, dtype=np.intp), values, timestamps, exemplars, self._series_added)

    def _set_metadata(self, meta_seen: list[_MetaLine]) -> None:
        if meta_seen != self._meta_seen:
            self._meta_seen = meta_seen
            self._rebuild_metadata(meta_seen)

    def _rebuild_metadata(self, seen: Iterable[_MetaLine]) -> None:
        md: dict[str, MetricMetadata] = {}
        for kind, name, text, _ in seen:
            if kind != TYPE and kind != HELP and kind != UNIT:
                continue
            entry = md.get(name)
            if entry is None:
                entry = md[name] = MetricMetadata()
            if kind == TYPE:
                entry.type = text
            elif kind == HELP:
                entry.help = text
            else:
                entry.unit = text
        self.metadata = md

    def _finish(self, parsed: _Parsed) -> ScrapeResult:
        slot_arr, values, timestamps, exemplars, series_added = parsed
        n = len(slot_arr)
        self._seen[slot_arr] = self._iter
        all_refs = self._refs[slot_arr]
        if not self.honor_timestamps:
            timestamps = None
        keep = all_refs >= 0
        added = int(np.count_nonzero(keep))
        # Duplicates: a second sample of a series without an explicit timestamp in one scrape.
        untimed = keep if timestamps is None else keep & (timestamps == NO_TIMESTAMP)
        untimed_refs = all_refs[untimed] if added != n or timestamps is not None else all_refs
        order = np.sort(untimed_refs)
        duplicates = 0
        if len(order) > 1 and bool((order[1:] == order[:-1]).any()):
            order, first = np.unique(untimed_refs, return_index=True)
            duplicates = len(untimed_refs) - len(order)
            idx = np.nonzero(untimed)[0]
            keep = keep & ~untimed
            keep[idx[first]] = True
        if added != n or duplicates:
            refs, values = all_refs[keep], values[keep]
            if timestamps is not None:
                timestamps = timestamps[keep]
        else:
            refs = all_refs
        prev = self._last_refs
        if self.sample_limit > 0 and len(refs) > self.sample_limit:
            self._last_refs = _EMPTY_I64
            error = "sample limit exceeded"
            return ScrapeResult(
                _EMPTY_I64, _EMPTY_F64, None, error, n, added, series_added, duplicates, stale_refs=prev
            )
        if timestamps is not None and self.track_timestamps_staleness:
            order = np.unique(refs)
        if len(prev) and len(order):
            pos = np.searchsorted(order, prev)
            pos[pos >= len(order)] = 0
            stale = prev[order[pos] != prev]
        else:
            stale = prev
        self._last_refs = order
        ex_out = [(int(self._refs[slot]), ex) for slot, ex in exemplars if self._refs[slot] >= 0]
        self._sweep(int(np.count_nonzero(self._seen[: len(self._keys)] == self._iter)))
        return ScrapeResult(refs, values, timestamps, None, n, added, series_added, duplicates, ex_out, stale)


class _MetaLine(NamedTuple):
    """A cached non-sample line: metadata, comment or blank."""

    kind: int
    name: str
    text: str
    line: str


class _Parsed(NamedTuple):
    slots: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray | None
    exemplars: list[tuple[int, Exemplar]]
    series_added: int


def _convert_values(vals: list[str] | list[float], fast: bool) -> np.ndarray:
    """Values to float64. Strings come from the optimistic pass and must be Go-syntax floats: Python's
    parser is laxer (underscores, whitespace, ``+nan``, overflow to inf), so those are checked in bulk
    and any doubt means a rescan."""
    if not vals:
        return _EMPTY_F64
    if fast:
        joined = " ".join(vals)  # type: ignore[arg-type]
        if not joined.isascii() or any(c in joined for c in _BAD_VALUE_CHARS):
            raise _Rescan
    try:
        values = np.array(vals, dtype=np.float64)
    except ValueError:
        raise _Rescan from None
    special = ~np.isfinite(values)
    if special.any():
        idx = np.flatnonzero(special)
        if fast:
            for i in idx.tolist():
                try:
                    parse_go_float(vals[i])  # type: ignore[arg-type]
                except ValueError:
                    raise _Rescan from None
        nan = idx[np.isnan(values[idx])]
        if len(nan):
            values.view(np.uint64)[nan] = NORMAL_NAN_BITS
    return values


def _timestamp_array(n: int, tss: list[tuple[int, int | str]], om: bool) -> np.ndarray:
    """Explicit timestamps (ms) per sample, :data:`NO_TIMESTAMP` elsewhere."""
    out = np.full(n, NO_TIMESTAMP, np.int64)
    for i, ts in tss:
        if type(ts) is str:
            if om:
                try:
                    f = parse_go_float(ts)
                except ValueError:
                    raise _Rescan from None
                if f != f or f in (float("inf"), float("-inf")):
                    raise _Rescan
                ts = seconds_to_ms(f)
            else:
                if not (ts.isascii() and ts.isdigit()) or int(ts) > _INT64_MAX:
                    raise _Rescan
                ts = int(ts)
        out[i] = ts
    return out
