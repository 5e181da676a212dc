"""Value serialisation: Prometheus's MarshalFloat / MarshalTimestamp / Scalar encodings."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from narthex.web.api.jsonout import (
    RawJSON,
    dumps,
    error_body,
    format_float,
    format_floats,
    format_timestamp,
    format_timestamps,
    go_float_json,
    labels_json,
    matrix_json,
    scalar_json,
    string_json,
    success_body,
    vector_json,
)

# strconv.FormatFloat(f, 'f' or 'e' (abs < 1e-6 || abs >= 1e21), -1, 64), as jsonutil.MarshalFloat.
MARSHAL_FLOAT = [
    (1.0, "1"),
    (0.1, "0.1"),
    (1e-5, "0.00001"),
    (1e-6, "0.000001"),
    (9.99e-7, "9.99e-07"),
    (2.5e-8, "2.5e-08"),
    (1e16, "10000000000000000"),
    (1.5e20, "150000000000000000000"),
    (1e21, "1e+21"),
    (-1234.5e17, "-123450000000000000000"),
    (-0.0, "-0"),
    (0.0, "0"),
    (math.nan, "NaN"),
    (math.inf, "+Inf"),
    (-math.inf, "-Inf"),
    (123456789.125, "123456789.125"),
    (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (0.30000000000000004, "0.30000000000000004"),
    (100.0, "100"),
]


@pytest.mark.parametrize(("value", "text"), MARSHAL_FLOAT)
def test_format_float_matches_go(value: float, text: str) -> None:
    assert format_float(value) == text


def test_vectorised_floats_equal_scalar_formatting() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            np.array([v for v, _ in MARSHAL_FLOAT]),
            rng.normal(size=2000) * 10.0 ** rng.integers(-12, 25, size=2000),
            rng.integers(-(10**6), 10**6, size=500).astype(float),
            np.array([struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]]),
        ]
    )
    assert format_floats(values) == [format_float(float(v)) for v in values]


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (1435781451781, "1435781451.781"),
        (1435781451050, "1435781451.050"),
        (1435781451780, "1435781451.780"),
        (1435781451000, "1435781451"),
        (5, "0.005"),
        (0, "0"),
        (-1500, "-1.500"),
        (-2000, "-2"),
        (1718000000000000, "1718000000000"),
    ],
)
def test_timestamps_are_seconds_with_millisecond_fraction(ms: int, text: str) -> None:
    assert format_timestamp(ms) == text
    assert format_timestamps(np.array([ms])) == [text]


def test_scalar_uses_f_format_and_go_float_time() -> None:
    assert scalar_json(4000, 2.0) == '[4,"2"]'
    assert scalar_json(1435781451050, 1e-7) == '[1435781451.05,"0.0000001"]'
    assert scalar_json(0, 1e22) == '[0,"10000000000000000000000"]'
    assert scalar_json(1000, math.nan) == '[1,"NaN"]'
    assert string_json(1500, 'a"b') == '[1.5,"a\\"b"]'


def test_go_float_json_exponent_rules() -> None:
    assert go_float_json(1e-7) == "1e-7"
    assert go_float_json(1.5e-10) == "1.5e-10"
    assert go_float_json(1e21) == "1e+21"
    assert go_float_json(0.000001) == "0.000001"
    assert go_float_json(12.5) == "12.5"


def test_matrix_and_vector_shapes() -> None:
    labels = (("__name__", "a<b"), ("x", "y"))
    text = matrix_json([(labels, np.array([1000, 2500]), np.array([1.0, math.nan])), ((), [], [])])
    assert text == (
        '[{"metric":{"__name__":"a<b","x":"y"},"values":[[1,"1"],[2.500,"NaN"]]},{"metric":{},"values":[]}]'
    )
    assert json.loads(text)[0]["values"][1] == [2.5, "NaN"]
    assert vector_json([(labels, 1001, -math.inf)]) == (
        '[{"metric":{"__name__":"a<b","x":"y"},"value":[1.001,"-Inf"]}]'
    )
    assert matrix_json([]) == "[]" and vector_json([]) == "[]"


def test_labels_and_strings_escape_like_go() -> None:
    assert labels_json((("a", 'q"\\\n\u2028'),)) == '{"a":"q\\"\\\\\\n\\u2028"}'
    # Label objects are written without HTML escaping; other strings use encoding/json's.
    assert labels_json((("a", "<&>"),)) == '{"a":"<&>"}'
    assert dumps(["<&>"]) == '["\\u003c\\u0026\\u003e"]'


def test_envelopes() -> None:
    assert success_body({"a": RawJSON("[1]")}) == b'{"status":"success","data":{"a":[1]}}'
    assert success_body([], ["w"], ["i"]) == b'{"status":"success","data":[],"warnings":["w"],"infos":["i"]}'
    assert error_body("bad_data", 'x "y"') == b'{"status":"error","errorType":"bad_data","error":"x \\"y\\""}'


def test_large_matrix_is_fast() -> None:
    import time

    n_series, n_points = 100, 2000
    series = [
        (
            ((("__name__", "m"), ("i", str(i)))),
            np.arange(n_points, dtype=np.int64) * 15_000 + 7,
            np.random.rand(n_points),
        )
        for i in range(n_series)
    ]
    started = time.perf_counter()
    text = matrix_json(series)
    elapsed = time.perf_counter() - started
    assert text.count("[") == 1 + n_series + n_series * n_points
    assert elapsed < 3, f"200k random points took {elapsed:.2f}s"


def test_invalid_utf8_becomes_replacement_character() -> None:
    body = success_body(RawJSON(labels_json((("a", "x\udcffy"),))))
    assert body == '{"status":"success","data":{"a":"x\ufffdy"}}'.encode()
