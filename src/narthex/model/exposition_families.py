"""Whole-body exposition parsing into metric families, with the OpenMetrics 1.0 spec checks.

:func:`parse_families` is the complete (slow, exact) parser: every sample with its labels, metadata,
exemplars and timestamps, grouped into families the way OpenMetrics defines them (a family owns the
sample names its type allows: ``_total``/``_created`` for counters, ``_bucket``/``_count``/``_sum``/
``_created`` for histograms, ...). With ``strict=True`` (the default for OpenMetrics) it also enforces
the spec rules Prometheus's scraper does not: family names used once, metadata before samples and at most
once, no interleaved metric points, timestamps not going backwards, counter-like values neither NaN nor
negative, histogram bucket order/``+Inf``/``_count``/``_sum`` rules, ``le``/``quantile`` values, info and
stateset values, exemplars only on counters and buckets, units matching the name. The scrape hot path
(:class:`narthex.model.exposition.ScrapeCache`) does not use this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from narthex.model.labels import METRIC_NAME, Labels, is_valid_legacy_metric_name
from narthex.model.textparse import (
    BLANK,
    COMMENT,
    EOF,
    HELP,
    TYPE,
    UNIT,
    Exemplar,
    Format,
    ParseError,
    ScannedSeries,
    build_labels,
    format_go_float,
    parse_go_float,
    scan_line,
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One parsed sample line."""

    name: str
    labels: Labels  # includes __name__
    value: float
    timestamp_ms: int | None = None
    exemplar: Exemplar | None = None
    series: str = ""  # the raw series text as exposed


@dataclass(slots=True)
class MetricFamily:
    """A metric family: metadata and its samples in exposition order."""

    name: str
    type: str = "unknown"
    help: str | None = None
    unit: str | None = None
    samples: list[Sample] = field(default_factory=list)


# Sample-name suffixes each OpenMetrics type owns.
OM_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
# The text format: counters are named as exposed (usually ending in _total).
TEXT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "unknown": ("",),
}
_COUNTER_LIKE = ("_total", "_count", "_sum", "_bucket", "_gcount", "_gsum")


def _family_of(sample_name: str, name: str, mtype: str, om: bool) -> bool:
    suffixes = (OM_SUFFIXES if om else TEXT_SUFFIXES).get(mtype, ("",))
    return sample_name.startswith(name) and sample_name[len(name) :] in suffixes


class _Family:
    """Per-family state of the strict checker."""

    __slots__ = (
        "fam",
        "group",
        "group_series",
        "group_ts",
        "has_type",
        "point",
        "quoted",
        "seen_groups",
    )

    def __init__(self, fam: MetricFamily, quoted: bool) -> None:
        self.fam = fam
        self.quoted = quoted
        self.has_type = False
        self.group: Labels | None = None
        self.group_ts: float | None = None
        self.group_series: set[tuple[str, Labels]] = set()
        self.seen_groups: set[Labels] = set()
        self.point: _HistogramPoint | None = None


class _HistogramPoint:
    __slots__ = ("bucket", "bucket_value", "count", "gsum", "has_gsum", "has_sum", "key", "negative")

    def __init__(self, key: tuple[Labels, float | None]) -> None:
        self.key = key
        self.bucket: float | None = None
        self.bucket_value = 0.0
        self.count: float | None = None
        self.has_sum = False
        self.has_gsum = False
        self.gsum = 0.0
        self.negative = False

    def check(self, name: str) -> None:
        if self.bucket != math.inf:
            raise ParseError(f"histogram {name!r} metric point has no +Inf bucket")
        if self.count is not None and self.count != self.bucket_value:
            raise ParseError(f"histogram {name!r}: _count does not match the +Inf bucket")
        if self.has_sum and self.count is None:
            raise ParseError(f"histogram {name!r}: _count must be present if _sum is present")
        if self.has_gsum and self.count is None:
            raise ParseError(f"histogram {name!r}: _gcount must be present if _gsum is present")
        if self.count is not None and not (self.has_sum or self.has_gsum):
            raise ParseError(f"histogram {name!r}: _sum must be present if _count is present")
        if self.negative and self.has_sum:
            raise ParseError(f"histogram {name!r}: _sum is not allowed with negative buckets")
        if not self.negative and self.has_gsum and self.gsum < 0:
            raise ParseError(f"histogram {name!r}: negative _gsum needs negative buckets")


class _Checker:
    """Groups samples into families and (when strict) enforces the OpenMetrics rules."""

    def __init__(self, om: bool, strict: bool) -> None:
        self.om = om
        self.strict = strict
        self.families: list[MetricFamily] = []
        self.cur: _Family | None = None
        self.used_names: set[str] = set()
        self.mtype: str | None = None  # the type of the last TYPE line, for le/quantile normalisation

    # Family boundaries -------------------------------------------------------------------------------
    def _close(self) -> None:
        cur = self.cur
        if cur is None:
            return
        self.cur = None
        fam = cur.fam
        if not self.strict:
            return
        if cur.point is not None:
            cur.point.check(fam.name)
        suffixes = OM_SUFFIXES.get(fam.type, ("",))
        for suffix in {*suffixes, ""}:
            if fam.name + suffix in self.used_names:
                raise ParseError(f"clashing metric family name {fam.name + suffix!r}")
            self.used_names.add(fam.name + suffix)
        if fam.unit:
            if not fam.name.endswith("_" + fam.unit):
                raise ParseError(f"unit {fam.unit!r} is not a suffix of metric {fam.name!r}")
            if fam.type in ("info", "stateset"):
                raise ParseError(f"units are not allowed for {fam.type} metric {fam.name!r}")
        if not cur.quoted and not is_valid_legacy_metric_name(fam.name):
            raise ParseError(f"invalid metric name {fam.name!r}")

    def _open(self, name: str, quoted: bool) -> _Family:
        self._close()
        fam = MetricFamily(name)
        self.families.append(fam)
        self.cur = _Family(fam, quoted)
        return self.cur

    # Entries -----------------------------------------------------------------------------------------
    def metadata(self, kind: int, name: str, text: str, quoted: bool) -> None:
        cur = self.cur
        if cur is None or cur.fam.name != name:
            cur = self._open(name, quoted)
        elif self.strict and cur.fam.samples:
            raise ParseError(f"metadata for {name!r} after its samples")
        fam = cur.fam
        if kind == TYPE:
            self.mtype = text
            if self.strict and cur.has_type:
                raise ParseError(f"second TYPE line for {name!r}")
            cur.has_type = True
            fam.type = text
        elif kind == HELP:
            if self.strict and fam.help is not None:
                raise ParseError(f"second HELP line for {name!r}")
            fam.help = text
        else:
            if self.strict and fam.unit is not None:
                raise ParseError(f"second UNIT line for {name!r}")
            fam.unit = text

    def sample(self, sc: ScannedSeries, series: str, quoted: bool) -> None:
        cur = self.cur
        if cur is None or not _family_of(sc.name, cur.fam.name, cur.fam.type, self.om):
            cur = self._open(sc.name, quoted)
        fam = cur.fam
        labels = build_labels(sc.name, sc.pairs, self.mtype)
        sample = Sample(sc.name, labels, sc.value, sc.timestamp_ms, sc.exemplar, series)
        if self.strict:
            self._check_sample(cur, sc, labels)
        fam.samples.append(sample)

    def _check_sample(self, cur: _Family, sc: ScannedSeries, labels: Labels) -> None:
        fam = cur.fam
        name, mtype, value = fam.name, fam.type, sc.value
        suffix = sc.name[len(name) :]
        lmap = dict(sc.pairs)
        group_drop = None
        if mtype in ("histogram", "gaugehistogram") and suffix == "_bucket":
            le = lmap.get("le")
            if le is None:
                raise ParseError(f"histogram bucket {sc.name!r} without an le label")
            try:
                bound = parse_go_float(le)
            except ValueError:
                raise ParseError(f"invalid le label value {le!r}") from None
            if math.isnan(bound) or (math.isinf(bound) and le != format_go_float(bound)):
                raise ParseError(f"invalid le label value {le!r}")
            group_drop = "le"
            if not float(value).is_integer():
                raise ParseError(f"bucket value of {sc.name!r} must be an integer")
        elif mtype == "summary" and suffix == "":
            q = lmap.get("quantile")
            if q is None:
                raise ParseError(f"summary sample {sc.name!r} without a quantile label")
            try:
                qv = parse_go_float(q)
            except ValueError:
                raise ParseError(f"invalid quantile label value {q!r}") from None
            if not 0 <= qv <= 1:
                raise ParseError(f"invalid quantile label value {q!r}")
            if value < 0:
                raise ParseError(f"quantile values of {sc.name!r} cannot be negative")
            group_drop = "quantile"
        elif mtype == "stateset":
            if name not in lmap:
                raise ParseError(f"stateset sample {sc.name!r} without a {name!r} label")
            if value not in (0.0, 1.0):
                raise ParseError(f"stateset sample {sc.name!r} must have value 0 or 1")
            group_drop = name
        elif mtype == "info" and value != 1.0:
            raise ParseError(f"info sample {sc.name!r} must have value 1")
        if suffix in ("_count", "_gcount") and not float(value).is_integer():
            raise ParseError(f"count value of {sc.name!r} must be an integer")
        if mtype != "unknown" and mtype != "gauge" and suffix in _COUNTER_LIKE:
            if math.isnan(value):
                raise ParseError(f"counter-like sample {sc.name!r} cannot be NaN")
            if value < 0 and suffix != "_gsum":
                raise ParseError(f"counter-like sample {sc.name!r} cannot be negative")
        if sc.exemplar is not None and not (
            (mtype in ("histogram", "gaugehistogram") and suffix == "_bucket")
            or (mtype == "counter" and suffix == "_total")
        ):
            raise ParseError(f"exemplars are only allowed on counter totals and buckets: {sc.name!r}")

        # Grouping: metric points of one label set are contiguous and ordered by timestamp.
        group = tuple((k, v) for k, v in labels if k != group_drop and k != METRIC_NAME)
        ts = sc.timestamp if self.om else sc.timestamp_ms
        if group != cur.group:
            if group in cur.seen_groups:
                raise ParseError(f"interleaved metric points for {sc.name!r} {dict(group)}")
            cur.seen_groups.add(group)
            cur.group = group
            cur.group_series = set()
        else:
            if (ts is None) != (cur.group_ts is None):
                raise ParseError(f"mix of samples with and without timestamps for {sc.name!r}")
            if ts is not None and cur.group_ts is not None and ts < cur.group_ts:
                raise ParseError(f"timestamps went backwards for {sc.name!r}")
            if ts != cur.group_ts:
                cur.group_series = set()
        series_id = (sc.name, labels)
        if series_id in cur.group_series:
            raise ParseError(f"duplicate sample for {sc.name!r} {dict(labels)}")
        cur.group_series.add(series_id)
        cur.group_ts = ts

        if mtype in ("histogram", "gaugehistogram"):
            key = (group, ts)
            point = cur.point
            if point is None or point.key != key:
                if point is not None:
                    point.check(name)
                point = cur.point = _HistogramPoint(key)
            if suffix == "_bucket":
                bound = parse_go_float(lmap["le"])
                if bound < 0:
                    point.negative = True
                if point.bucket is not None and bound <= point.bucket:
                    raise ParseError(f"histogram {name!r} buckets out of order")
                if value < point.bucket_value:
                    raise ParseError(f"histogram {name!r} bucket values decrease")
                point.bucket = bound
                point.bucket_value = value
            elif suffix in ("_count", "_gcount"):
                point.count = value
            elif suffix == "_sum":
                point.has_sum = True
            elif suffix == "_gsum":
                point.has_gsum = True
                point.gsum = value


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_families(
    body: str | bytes, fmt: Format = Format.TEXT, *, strict: bool | None = None
) -> list[MetricFamily]:
    """Parse a whole exposition into families; raises :class:`ParseError` (with a line number).

    ``strict`` defaults to True for OpenMetrics (every spec rule) and False for the text format
    (Prometheus's rules only).
    """
    text = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
    om = fmt is Format.OPENMETRICS
    if strict is None:
        strict = om
    checker = _Checker(om, strict)
    lines = _split_lines(text)
    eof_seen = False
    lineno = 0
    try:
        for lineno, line in enumerate(lines, 1):  # noqa: B007 - lineno is used after the loop
            if eof_seen:
                raise ParseError("unexpected data after # EOF")
            sc = scan_line(line, fmt, strict)
            if isinstance(sc, ScannedSeries):
                series = line[: sc.key_end].lstrip(" \t")
                quoted = series.startswith("{") or series.startswith('"')
                checker.sample(sc, series, quoted)
                continue
            kind = sc.kind
            if kind in (BLANK, COMMENT):
                continue
            if kind == EOF:
                if not om:
                    break
                eof_seen = True
                continue
            quoted = om and line[7:8] == '"'
            checker.metadata(kind, sc.name, sc.text, quoted)
        lineno += 1
        if om and not eof_seen:
            raise ParseError("data does not end with # EOF")
        checker._close()
    except ParseError as exc:
        if exc.line is None:
            exc.line = min(lineno, len(lines)) or None
        raise
    return checker.families


def check_openmetrics(body: str | bytes) -> None:
    """Raise :class:`ParseError` unless ``body`` is valid OpenMetrics 1.0 text (every spec rule)."""
    parse_families(body, Format.OPENMETRICS, strict=True)


__all__ = [
    "EOF",
    "HELP",
    "OM_SUFFIXES",
    "TEXT_SUFFIXES",
    "TYPE",
    "UNIT",
    "MetricFamily",
    "Sample",
    "check_openmetrics",
    "parse_families",
]
