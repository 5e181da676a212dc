"""Go function signatures for template functions and methods, and Go's assignability rules for them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from narthex.rules.template.gotime import GoDuration, GoTime
from narthex.rules.template.values import HTML, QueryResult, Sample

ANY = "interface {}"
VALUE = "reflect.Value"


class FuncError(Exception):
    """The error a template function returns; execution stops with ``error calling <name>: <message>``."""


@dataclass(frozen=True)
class GoFunc:
    """A callable with the Go parameter types the executor checks and converts arguments against."""

    fn: Callable[..., Any]
    params: tuple[str, ...] = ()
    variadic: str | None = None
    builtin: bool = False


def _is_int(value: Any) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


_CHECKS: dict[str, Callable[[Any], bool]] = {
    ANY: lambda v: True,
    VALUE: lambda v: True,
    "string": lambda v: isinstance(v, str) and not isinstance(v, HTML),
    "int": _is_int,
    "float64": lambda v: type(v) is float,
    "bool": lambda v: isinstance(v, bool),
    "*template.sample": lambda v: isinstance(v, Sample),
    "template.queryResult": lambda v: isinstance(v, QueryResult),
    "time.Duration": lambda v: isinstance(v, GoDuration),
    "time.Time": lambda v: isinstance(v, GoTime),
}

# Types whose zero value is nil, so a missing value converts to None instead of failing.
NILABLE = frozenset({ANY, VALUE, "*template.sample", "template.queryResult"})


def assignable(value: Any, typ: str) -> bool:
    """Whether ``value`` can be passed for a parameter of Go type ``typ``."""
    check = _CHECKS.get(typ)
    return True if check is None else check(value)


_METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "Format": ("string",),
    "Add": ("time.Duration",),
    "Sub": ("time.Time",),
    "AddDate": ("int", "int", "int"),
    "Before": ("time.Time",),
    "After": ("time.Time",),
    "Equal": ("time.Time",),
    "Truncate": ("time.Duration",),
    "Round": ("time.Duration",),
}


def method_of(receiver: Any, name: str) -> GoFunc | None:
    """The exported Go-style method ``name`` of ``receiver`` (an upper-case Python method), if any."""
    if not name[:1].isupper():
        return None
    attr = getattr(type(receiver), name, None)
    if attr is None or not callable(attr) or isinstance(attr, type):
        return None
    bound = getattr(receiver, name)
    params = _METHOD_PARAMS.get(name)
    if params is None:
        try:
            count = len(inspect.signature(bound).parameters)
        except (TypeError, ValueError):
            count = 0
        params = (ANY,) * count
    return GoFunc(bound, params)
