"""text/template's predefined functions: and, or, not, len, index, slice, print*, html, js, urlquery,
call and the comparisons eq, ne, lt, le, gt, ge (text/template/funcs.go semantics and messages)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from narthex.rules.template.exec import is_true
from narthex.rules.template.gofmt import format_value, go_type_name, sprint, sprintf, sprintln
from narthex.rules.template.gofunc import ANY, VALUE, FuncError, GoFunc
from narthex.rules.template.values import map_zero

ERR_BAD_COMPARISON_TYPE = "invalid type for comparison"
ERR_BAD_COMPARISON = "incompatible types for comparison"
ERR_NO_COMPARISON = "missing argument for comparison"


def _basic_kind(value: Any) -> str:
    if value is None:
        raise FuncError(ERR_BAD_COMPARISON_TYPE)
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if value < 2**63 else "uint"
    if isinstance(value, float):
        return "float"
    if isinstance(value, complex):
        return "complex"
    if isinstance(value, str):
        return "string"
    raise FuncError(ERR_BAD_COMPARISON_TYPE)


def _kind_or_none(value: Any) -> str | None:
    try:
        return _basic_kind(value)
    except FuncError:
        return None


def _comparable(value: Any) -> bool:
    return not isinstance(value, Mapping | list) and not callable(value)


def eq(arg1: Any, *args: Any) -> bool:
    """True if arg1 equals any of args (integers compare across signedness)."""
    if not args:
        raise FuncError(ERR_NO_COMPARISON)
    k1 = _kind_or_none(arg1)
    for arg in args:
        k2 = _kind_or_none(arg)
        if k1 != k2:
            if {k1, k2} == {"int", "uint"}:
                truth = arg1 == arg
            elif arg1 is not None and arg is not None:
                raise FuncError(ERR_BAD_COMPARISON)
            else:
                truth = False
        elif k1 is not None:
            truth = arg1 == arg
        else:
            if not _comparable(arg1) or not _comparable(arg):
                raise FuncError(
                    f"non-comparable types {format_value(arg1)}: {go_type_name(arg1)}, "
                    f"{go_type_name(arg)}: {format_value(arg)}"
                )
            if arg1 is None or arg is None:
                truth = arg1 is None and arg is None
            else:
                truth = go_type_name(arg1) == go_type_name(arg) and arg1 == arg
        if truth:
            return True
    return False


def ne(arg1: Any, arg2: Any) -> bool:
    return not eq(arg1, arg2)


def lt(arg1: Any, arg2: Any) -> bool:
    k1 = _basic_kind(arg1)
    k2 = _basic_kind(arg2)
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return bool(arg1 < arg2)
        raise FuncError(ERR_BAD_COMPARISON)
    if k1 in ("bool", "complex"):
        raise FuncError(ERR_BAD_COMPARISON_TYPE)
    return bool(arg1 < arg2)


def le(arg1: Any, arg2: Any) -> bool:
    return lt(arg1, arg2) or eq(arg1, arg2)


def gt(arg1: Any, arg2: Any) -> bool:
    return not le(arg1, arg2)


def ge(arg1: Any, arg2: Any) -> bool:
    return not lt(arg1, arg2)


def not_(arg: Any) -> bool:
    return not is_true(arg)[0]


def length(item: Any) -> int:
    """len: strings count bytes, as in Go."""
    if item is None:
        raise FuncError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogatepass"))
    if isinstance(item, Mapping | Sequence):
        return len(item)
    raise FuncError(f"len of type {go_type_name(item)}")


def _index_of(index: Any, cap: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        if index is None:
            raise FuncError("cannot index slice/array with nil")
        raise FuncError(f"cannot index slice/array with type {go_type_name(index)}")
    if index < 0 or index > cap:
        raise FuncError(f"index out of range: {index}")
    return index


def index(item: Any, *indexes: Any) -> Any:
    """index: successive slice, string (byte) or map lookups; a missing map key is the zero value."""
    if item is None:
        raise FuncError("index of untyped nil")
    for idx in indexes:
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, str):
            data = item.encode("utf-8", "surrogatepass")
            i = _index_of(idx, len(data))
            if i == len(data):
                raise FuncError(f"index out of range: {i}")
            item = data[i]
        elif isinstance(item, Mapping):
            if not isinstance(idx, str):
                raise FuncError(f"value has type {go_type_name(idx)}; should be string")
            item = item[idx] if idx in item else map_zero(item)
        elif isinstance(item, Sequence):
            i = _index_of(idx, len(item))
            if i == len(item):
                raise FuncError(f"index out of range: {i}")
            item = item[i]
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def slice_(item: Any, *indexes: Any) -> Any:
    """slice: item[i:j] (item[i:j:k] for slices); strings slice by byte."""
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        data = item.encode("utf-8", "surrogatepass")
        cap = len(data)
    elif isinstance(item, Sequence):
        cap = len(item)
    else:
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    bounds = [0, len(data) if isinstance(item, str) else len(item)]
    for i, idx in enumerate(indexes):
        bounds_value = _index_of(idx, cap)
        if i < 2:
            bounds[i] = bounds_value
    if bounds[0] > bounds[1]:
        raise FuncError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indexes) == 3 and bounds[1] > indexes[2]:
        raise FuncError(f"invalid slice index: {bounds[1]} > {indexes[2]}")
    if isinstance(item, str):
        return data[bounds[0] : bounds[1]].decode("utf-8", "replace")
    return (
        type(item)(item[bounds[0] : bounds[1]])
        if isinstance(item, list)
        else list(item[bounds[0] : bounds[1]])
    )


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return str.__str__(args[0])
    return sprint(*args)


_HTML_ESCAPES = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}


def html_escape_string(text: str) -> str:
    """template.HTMLEscapeString."""
    return "".join(_HTML_ESCAPES.get(ch, ch) for ch in text)


def js_escape_string(text: str) -> str:
    """template.JSEscapeString."""
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == '"':
            out.append('\\"')
        elif ch in "<>&=" or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        elif ord(ch) < 0x80 or ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04X}")
    return "".join(out)


def query_escape(text: str) -> str:
    """url.QueryEscape (space becomes ``+``)."""
    return urllib.parse.quote_plus(text, safe="-_.~")


def call(fn: Any, *args: Any) -> Any:
    """call: invoke a function value held in the data."""
    if fn is None:
        raise FuncError("call of nil")
    if isinstance(fn, GoFunc):
        return fn.fn(*args)
    if not callable(fn):
        raise FuncError(f"non-function of type {go_type_name(fn)}")
    return fn(*args)


def builtin_funcs() -> dict[str, GoFunc]:
    """The functions every template has, by name."""
    return {
        "and": GoFunc(lambda *a: None, (VALUE,), VALUE, builtin=True),
        "or": GoFunc(lambda *a: None, (VALUE,), VALUE, builtin=True),
        "not": GoFunc(not_, (VALUE,), builtin=True),
        "len": GoFunc(length, (VALUE,), builtin=True),
        "index": GoFunc(index, (VALUE,), VALUE, builtin=True),
        "slice": GoFunc(slice_, (VALUE,), VALUE, builtin=True),
        "call": GoFunc(call, (VALUE,), VALUE, builtin=True),
        "print": GoFunc(sprint, (), ANY, builtin=True),
        "printf": GoFunc(sprintf, ("string",), ANY, builtin=True),
        "println": GoFunc(sprintln, (), ANY, builtin=True),
        "html": GoFunc(lambda *a: html_escape_string(_eval_args(a)), (), ANY, builtin=True),
        "js": GoFunc(lambda *a: js_escape_string(_eval_args(a)), (), ANY, builtin=True),
        "urlquery": GoFunc(lambda *a: query_escape(_eval_args(a)), (), ANY, builtin=True),
        "eq": GoFunc(eq, (VALUE,), VALUE, builtin=True),
        "ne": GoFunc(ne, (VALUE, VALUE), builtin=True),
        "lt": GoFunc(lt, (VALUE, VALUE), builtin=True),
        "le": GoFunc(le, (VALUE, VALUE), builtin=True),
        "gt": GoFunc(gt, (VALUE, VALUE), builtin=True),
        "ge": GoFunc(ge, (VALUE, VALUE), builtin=True),
    }
