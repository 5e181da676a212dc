"""The PromQL function table: argument types, variadic arity, return type and experimental flag."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ValueType(enum.StrEnum):
    """The type of a PromQL expression's value."""

    NONE = "none"
    VECTOR = "vector"
    SCALAR = "scalar"
    MATRIX = "matrix"
    STRING = "string"

    @property
    def documented(self) -> str:
        """The name used in error messages (upstream's DocumentedType)."""
        if self is ValueType.VECTOR:
            return "instant vector"
        if self is ValueType.MATRIX:
            return "range vector"
        return self.value


@dataclass(frozen=True, slots=True)
class Function:
    """A PromQL function signature.

    ``variadic`` is 0 for a fixed arity, ``n > 0`` when up to n more arguments of the last type may
    follow, and -1 for any number (the last argument type may then be omitted or repeated).
    """

    name: str
    arg_types: tuple[ValueType, ...]
    return_type: ValueType
    variadic: int = 0
    experimental: bool = False


_V, _M, _S, _T = ValueType.VECTOR, ValueType.MATRIX, ValueType.SCALAR, ValueType.STRING


def _f(
    name: str, args: tuple[ValueType, ...], ret: ValueType, *, variadic: int = 0, experimental: bool = False
) -> tuple[str, Function]:
    return name, Function(name, args, ret, variadic, experimental)


FUNCTIONS: dict[str, Function] = dict(
    [
        _f("abs", (_V,), _V),
        _f("absent", (_V,), _V),
        _f("absent_over_time", (_M,), _V),
        _f("acos", (_V,), _V),
        _f("acosh", (_V,), _V),
        _f("asin", (_V,), _V),
        _f("asinh", (_V,), _V),
        _f("atan", (_V,), _V),
        _f("atanh", (_V,), _V),
        _f("avg_over_time", (_M,), _V),
        _f("ceil", (_V,), _V),
        _f("changes", (_M,), _V),
        _f("clamp", (_V, _S, _S), _V),
        _f("clamp_max", (_V, _S), _V),
        _f("clamp_min", (_V, _S), _V),
        _f("cos", (_V,), _V),
        _f("cosh", (_V,), _V),
        _f("count_over_time", (_M,), _V),
        _f("days_in_month", (_V,), _V, variadic=1),
        _f("day_of_month", (_V,), _V, variadic=1),
        _f("day_of_week", (_V,), _V, variadic=1),
        _f("day_of_year", (_V,), _V, variadic=1),
        _f("deg", (_V,), _V),
        _f("end", (), _S, experimental=True),
        _f("delta", (_M,), _V),
        _f("deriv", (_M,), _V),
        _f("exp", (_V,), _V),
        _f("first_over_time", (_M,), _V),
        _f("floor", (_V,), _V),
        _f("histogram_avg", (_V,), _V),
        _f("histogram_count", (_V,), _V),
        _f("histogram_sum", (_V,), _V),
        _f("histogram_stddev", (_V,), _V),
        _f("histogram_stdvar", (_V,), _V),
        _f("histogram_fraction", (_S, _S, _V), _V),
        _f("histogram_quantile", (_S, _V), _V),
        _f("histogram_quantiles", (_V, _T, _S, _S), _V, variadic=9, experimental=True),
        _f("double_exponential_smoothing", (_M, _S, _S), _V, experimental=True),
        _f("hour", (_V,), _V, variadic=1),
        _f("idelta", (_M,), _V),
        _f("increase", (_M,), _V),
        _f("info", (_V, _V), _V, variadic=1, experimental=True),
        _f("irate", (_M,), _V),
        _f("label_replace", (_V, _T, _T, _T, _T), _V),
        _f("label_join", (_V, _T, _T, _T), _V, variadic=-1),
        _f("max_of", (_S, _S), _S, experimental=True),
        _f("last_over_time", (_M,), _V),
        _f("min_of", (_S, _S), _S, experimental=True),
        _f("ln", (_V,), _V),
        _f("log10", (_V,), _V),
        _f("log2", (_V,), _V),
        _f("mad_over_time", (_M,), _V, experimental=True),
        _f("max_over_time", (_M,), _V),
        _f("min_over_time", (_M,), _V),
        _f("ts_of_first_over_time", (_M,), _V, experimental=True),
        _f("ts_of_max_over_time", (_M,), _V, experimental=True),
        _f("ts_of_min_over_time", (_M,), _V, experimental=True),
        _f("ts_of_last_over_time", (_M,), _V, experimental=True),
        _f("minute", (_V,), _V, variadic=1),
        _f("month", (_V,), _V, variadic=1),
        _f("pi", (), _S),
        _f("predict_linear", (_M, _S), _V),
        _f("present_over_time", (_M,), _V),
        _f("quantile_over_time", (_S, _M), _V),
        _f("rad", (_V,), _V),
        _f("range", (), _S, experimental=True),
        _f("rate", (_M,), _V),
        _f("resets", (_M,), _V),
        _f("round", (_V, _S), _V, variadic=1),
        _f("scalar", (_V,), _S),
        _f("sgn", (_V,), _V),
        _f("sin", (_V,), _V),
        _f("sinh", (_V,), _V),
        _f("sort", (_V,), _V),
        _f("sort_desc", (_V,), _V),
        _f("sort_by_label", (_V, _T), _V, variadic=-1, experimental=True),
        _f("sort_by_label_desc", (_V, _T), _V, variadic=-1, experimental=True),
        _f("sqrt", (_V,), _V),
        _f("start", (), _S, experimental=True),
        _f("start_timestamp", (_V,), _V, experimental=True),
        _f("step", (), _S, experimental=True),
        _f("stddev_over_time", (_M,), _V),
        _f("stdvar_over_time", (_M,), _V),
        _f("sum_over_time", (_M,), _V),
        _f("tan", (_V,), _V),
        _f("tanh", (_V,), _V),
        _f("time", (), _S),
        _f("timestamp", (_V,), _V),
        _f("vector", (_S,), _V),
        _f("year", (_V,), _V, variadic=1),
    ]
)

# Functions whose result depends on the evaluation step, so they may not be wrapped as step invariant.
AT_MODIFIER_UNSAFE_FUNCTIONS = frozenset(
    {
        "days_in_month", "day_of_month", "day_of_week", "day_of_year", "end", "hour", "minute", "month",
        "year", "predict_linear", "range", "start", "step", "time", "timestamp",
    }
)  # fmt: skip


def get_function(name: str) -> Function | None:
    """The function called ``name``, or None."""
    return FUNCTIONS.get(name)
