"""Prometheus's JSON encoding of API responses, byte for byte where it matters to clients.

Sample values are JSON strings in Go's ``strconv.FormatFloat`` shortest form ('f', switching to 'e'
outside [1e-6, 1e21)); timestamps are unix seconds written from int64 milliseconds (``1435781451.050``).
Matrices are formatted column-wise: orjson writes the shortest digits of every value in C, and each
distinct timestamp is formatted once.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np
import orjson

from narthex.model.labels import Labels
from narthex.util.gofmt import format_float as go_format_float

_REPLACE = "narthex-json-fffd"
LABELS_JSON_CACHE = 65_536  # label sets whose JSON text is kept


def _replacement(error: UnicodeError) -> tuple[bytes, int]:
    """Invalid UTF-8 (kept as surrogate escapes) becomes U+FFFD, as Go's JSON encoder writes it."""
    assert isinstance(error, UnicodeEncodeError)
    return b"\xef\xbf\xbd" * (error.end - error.start), error.end


codecs.register_error(_REPLACE, _replacement)
_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_LINESEP = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029"})


class RawJSON:
    """Already-encoded JSON embedded as-is by :func:`dumps`."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


# ---------------------------------------------------------------------------------------------
# Scalars.


# Strings that both json.dumps and Go's encoder write verbatim between quotes.
_PLAIN = re.compile('[^"\\\\\x00-\x1f\u2028\u2029]*')
_PLAIN_HTML = re.compile('[^"\\\\\x00-\x1f\u2028\u2029<>&]*')


def go_string(text: str, html: bool = True) -> str:
    """A JSON string literal as Go writes it (``html``: escape ``<>&`` like encoding/json)."""
    if (_PLAIN_HTML if html else _PLAIN).fullmatch(text):
        return f'"{text}"'
    out = json.dumps(text, ensure_ascii=False)
    if html and ("<" in out or ">" in out or "&" in out):
        out = out.translate(_HTML)
    if "\u2028" in out or "\u2029" in out:
        out = out.translate(_LINESEP)
    return out


def format_float(value: float) -> str:
    """``strconv.FormatFloat(v, fmt, -1, 64)`` with Prometheus's choice of fmt (``MarshalFloat``)."""
    magnitude = abs(value)
    exponent = magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21)
    return go_format_float(value, "e" if exponent else "f")


def format_float_f(value: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 64)``: never an exponent (scalar results)."""
    return go_format_float(value, "f")


def format_timestamp(ms: int) -> str:
    """``jsonutil.MarshalTimestamp``: seconds, then a 3-digit millisecond fraction when non-zero."""
    sign = "-" if ms < 0 else ""
    sec, frac = divmod(abs(ms), 1000)
    return f"{sign}{sec}.{frac:03d}" if frac else f"{sign}{sec}"


def go_float_json(value: float) -> str:
    """A float64 as Go's encoding/json writes it: shortest digits, 'e' below 1e-6 or from 1e21."""
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(value)
        if text[-4:-1] == "e-0":
            text = text[:-2] + text[-1]
        return text
    return format_float_f(value)


# ---------------------------------------------------------------------------------------------
# Columns.


_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _orjson_text(column: np.ndarray) -> str:
    """The elements as orjson writes them, comma-separated: repr()'s shortest digits, but in C."""
    return orjson.dumps(column, option=_NUMPY).decode()[1:-1]


def format_floats(values: np.ndarray) -> list[str]:
    """:func:`format_float` over a float64 array, with the per-value work in C.

    Integral values (below 1e15) print as integers; other plain values take orjson's shortest digits;
    the few where Go's form differs (exponents, non-finite, signed zero, tiny values) go through
    :func:`format_float` one by one.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    if len(values) == 0:
        return []
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(values)
        integral = (values == np.trunc(values)) & (magnitude < 1e15) & ~((values == 0) & np.signbit(values))
        odd = ~integral & (~np.isfinite(values) | (magnitude < 1e-4) | (magnitude >= 1e15))
    if integral.all():
        return _orjson_text(values.astype(np.int64)).split(",")
    text = _orjson_text(values)
    texts = text.split(",")
    if "e" in text:  # exponents are not expected in [1e-4, 1e15); kept exact regardless
        odd |= np.array(["e" in t for t in texts], dtype=bool)
    if integral.any():
        where = np.flatnonzero(integral)
        for k, t in zip(where.tolist(), _orjson_text(values[where].astype(np.int64)).split(","), strict=True):
            texts[k] = t
    for k in np.flatnonzero(odd).tolist():
        texts[k] = format_float(float(values[k]))
    return texts


def format_timestamps(ms: np.ndarray) -> list[str]:
    """:func:`format_timestamp` over an int64 array (each distinct time formatted once)."""
    ms = np.asarray(ms, dtype=np.int64)
    if len(ms) and ms[0] == ms[-1] and (ms == ms[0]).all():  # a vector: one time for all
        return [format_timestamp(int(ms[0]))] * len(ms)
    distinct, where = np.unique(ms, return_inverse=True)
    texts = np.array([format_timestamp(t) for t in distinct.tolist()], dtype=object)
    return texts[where].tolist()


def format_points(ms: np.ndarray, values: np.ndarray) -> list[str]:
    """``[ts,"v"]`` for every point of the two parallel arrays."""
    if len(ms) == 0:
        return []
    return [f'[{t},"{v}"]' for t, v in zip(format_timestamps(ms), format_floats(values), strict=True)]


# ---------------------------------------------------------------------------------------------
# Labels and values.


def labels_json(labels: Labels) -> str:
    """A label set as a JSON object in label order (``marshalLabelsJSON``: no HTML escaping).

    The texts of recently written label sets are kept: dashboards ask for the same series again.
    """
    if type(labels) is tuple:
        return _cached_labels_json(labels)
    return _labels_json(labels)


@functools.lru_cache(maxsize=LABELS_JSON_CACHE)
def _cached_labels_json(labels: Labels) -> str:
    return _labels_json(labels)


def _labels_json(labels: Labels) -> str:
    if not labels:
        return "{}"
    if _PLAIN.fullmatch("".join([k + v for k, v in labels])):  # nothing to escape: one check
        return '{"' + '","'.join([f'{k}":"{v}' for k, v in labels]) + '"}'
    return "{" + ",".join(f"{go_string(k, False)}:{go_string(v, False)}" for k, v in labels) + "}"


def _point_prefixes(ms: np.ndarray) -> list[str]:
    """``[ts,"`` for every timestamp (each distinct time formatted once)."""
    distinct, where = np.unique(np.asarray(ms, dtype=np.int64), return_inverse=True)
    texts = np.array([f'[{format_timestamp(t)},"' for t in distinct.tolist()], dtype=object)
    return texts[where].tolist()


def matrix_json(series: Sequence[tuple[Labels, np.ndarray, np.ndarray]]) -> str:
    """A matrix: ``[{"metric":{..},"values":[[ts,"v"],..]},..]``.

    Values and timestamps are formatted column-wise for all series at once; each series' points are
    then stitched with one ``str.join`` over interleaved pieces, so no Python code runs per point.
    """
    if not series:
        return "[]"
    lengths = [len(t) for _, t, _ in series]
    if sum(lengths):
        prefixes = _point_prefixes(np.concatenate([np.asarray(t, dtype=np.int64) for _, t, _ in series]))
        values = format_floats(np.concatenate([np.asarray(v, dtype=np.float64) for _, _, v in series]))
    else:
        prefixes = values = []
    parts = []
    start = 0
    for (labels, _, _), n in zip(series, lengths, strict=True):
        end = start + n
        pieces = zip(prefixes[start:end], values[start:end], repeat('"],', n), strict=True)
        body = "".join(chain.from_iterable(pieces))
        start = end
        parts.append(f'{{"metric":{labels_json(labels)},"values":[{body[:-1]}]}}')
    return "[" + ",".join(parts) + "]"


def vector_json(samples: Sequence[tuple[Labels, int, float]]) -> str:
    """A vector: ``[{"metric":{..},"value":[ts,"v"]},..]``."""
    if not samples:
        return "[]"
    points = format_points(
        np.fromiter((s[1] for s in samples), dtype=np.int64, count=len(samples)),
        np.fromiter((s[2] for s in samples), dtype=np.float64, count=len(samples)),
    )
    return (
        "["
        + ",".join(
            f'{{"metric":{labels_json(s[0])},"value":{p}}}' for s, p in zip(samples, points, strict=True)
        )
        + "]"
    )


def scalar_json(ms: int, value: float) -> str:
    """``promql.Scalar``: ``[ts, "v"]`` with the time as Go's float64 seconds and 'f' formatting."""
    return f'[{go_float_json(ms / 1000)},"{format_float_f(value)}"]'


def string_json(ms: int, value: str) -> str:
    """``promql.String``: ``[ts, "text"]``."""
    return f"[{go_float_json(ms / 1000)},{go_string(value)}]"


# ---------------------------------------------------------------------------------------------
# Generic values and the envelope.


def dumps(value: Any) -> str:
    """Encode plain data (dicts keep their order) as Go's encoding/json would; RawJSON is embedded."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, RawJSON):
        out.append(value.text)
    elif isinstance(value, str):
        out.append(go_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(go_float_json(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(go_string(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, Iterable):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def success_body(data: Any, warnings: Sequence[str] = (), infos: Sequence[str] = ()) -> bytes:
    """``{"status":"success","data":..,"warnings":[..],"infos":[..]}`` (empty lists omitted)."""
    parts = ['{"status":"success"']
    if data is not None:
        parts.append(',"data":')
        parts.append(dumps(data))
    if warnings:
        parts.append(',"warnings":' + dumps(list(warnings)))
    if infos:
        parts.append(',"infos":' + dumps(list(infos)))
    parts.append("}")
    return "".join(parts).encode("utf-8", _REPLACE)


def error_body(error_type: str, message: str, data: Any = None) -> bytes:
    """``{"status":"error","data":..?,"errorType":..,"error":..}`` in Go's field order."""
    parts = ['{"status":"error"']
    if data is not None:
        parts.append(',"data":' + dumps(data))
    parts.append(f',"errorType":{go_string(error_type)},"error":{go_string(message)}}}')
    return "".join(parts).encode("utf-8", _REPLACE)
