"""Scalar field types that decode YAML the way Go's yaml.v2 does, and the base class of every model.

Each scalar type is an ``Annotated`` alias with a plain validator: a null value gives the Go zero value,
a value of the wrong YAML kind is refused with yaml.v2's wording (``cannot unmarshal !!str `x` into
int``). Durations are int milliseconds, byte sizes int bytes, secrets :class:`Secret` strings.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from narthex.config.yamlsource import RawFloat, RawInt
from narthex.model.duration import DurationError, parse_duration

YAML_TYPE_ERROR = "yaml_type"


class NullIsZero:
    """Field marker: an explicit YAML null gives the zero value (other fields treat null as absent)."""


class DurationField:
    """Field marker: int milliseconds, written back as a Prometheus duration."""


class ByteSizeField:
    """Field marker: int bytes, written back in base-2 units."""


class URLField:
    """Field marker: a URL string, written back with its password redacted."""


_NULL = NullIsZero()


class Secret(str):
    """A string shown as ``<secret>`` when the configuration is written out."""

    __slots__ = ()


def yaml_kind(value: Any) -> str:
    """The YAML tag of a decoded value, as yaml.v2 names it in errors."""
    if value is None:
        return "!!null"
    if isinstance(value, bool):
        return "!!bool"
    if isinstance(value, int):
        return "!!int"
    if isinstance(value, float):
        return "!!float"
    if isinstance(value, str):
        return "!!str"
    if isinstance(value, list):
        return "!!seq"
    if isinstance(value, dict):
        return "!!map"
    return "!!" + type(value).__name__


def scalar_text(value: Any) -> str:
    """How a scalar was written in the YAML source."""
    if isinstance(value, RawInt | RawFloat):
        return value.raw
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def unmarshal_error(value: Any, go_type: str) -> PydanticCustomError:
    """yaml.v2's type mismatch error."""
    if isinstance(value, list | dict):
        msg = f"cannot unmarshal {yaml_kind(value)} into {go_type}"
    else:
        msg = f"cannot unmarshal {yaml_kind(value)} `{scalar_text(value)}` into {go_type}"
    return PydanticCustomError(YAML_TYPE_ERROR, "{msg}", {"msg": msg})


def to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float):
        return scalar_text(value)
    raise unmarshal_error(value, "string")


def _to_secret(value: Any) -> Secret:
    return Secret(to_str(value))


def _to_int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise unmarshal_error(value, "int")


def _to_uint(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise unmarshal_error(value, "uint")
    return _to_int(value)


def _to_float(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise unmarshal_error(value, "float64")


def _to_bool(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise unmarshal_error(value, "bool")


def _to_opt_bool(value: Any) -> bool | None:
    return None if value is None else _to_bool(value)


def _to_duration(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, list | dict):
        raise unmarshal_error(value, "model.Duration")
    try:
        return parse_duration(scalar_text(value))
    except DurationError as exc:
        raise ValueError(str(exc)) from None


_BYTE_UNITS = {
    "B": 1,
    "KB": 1 << 10,
    "KiB": 1 << 10,
    "MB": 1 << 20,
    "MiB": 1 << 20,
    "GB": 1 << 30,
    "GiB": 1 << 30,
    "TB": 1 << 40,
    "TiB": 1 << 40,
    "PB": 1 << 50,
    "PiB": 1 << 50,
    "EB": 1 << 60,
    "EiB": 1 << 60,
}
_BYTE_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([^\d.]*)")


def parse_base2_bytes(text: str) -> int:
    """Parse a size such as ``512MB`` or ``1GiB`` (both base 2), as ``units.ParseBase2Bytes`` does."""
    if text == "0":
        return 0
    rest, sign = text, 1
    if rest[:1] in ("-", "+"):
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "":
        raise ValueError(f"units: invalid {text}")
    total = 0.0
    pos = 0
    while pos < len(rest):
        match = _BYTE_PART.match(rest, pos)
        if match is None:
            raise ValueError(f"units: invalid {text}")
        number, unit = match.groups()
        if unit not in _BYTE_UNITS:
            raise ValueError(f"units: unknown unit {unit} in {text}")
        total += float(number) * _BYTE_UNITS[unit]
        pos = match.end()
    return sign * int(total)


def format_base2_bytes(size: int) -> str:
    """Write a byte count with the largest exact base-2 unit (``15MiB``)."""
    if size == 0:
        return "0B"
    for unit in ("EiB", "PiB", "TiB", "GiB", "MiB", "KiB"):
        mult = _BYTE_UNITS[unit]
        if size % mult == 0:
            return f"{size // mult}{unit}"
    return f"{size}B"


def _to_bytes(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, list | dict):
        raise unmarshal_error(value, "units.Base2Bytes")
    return parse_base2_bytes(scalar_text(value))


Str = Annotated[str, PlainValidator(to_str), _NULL]
SecretValue = Annotated[Secret, PlainValidator(_to_secret), _NULL]
Int = Annotated[int, PlainValidator(_to_int), _NULL]
UInt = Annotated[int, PlainValidator(_to_uint), _NULL]
Float = Annotated[float, PlainValidator(_to_float), _NULL]
Bool = Annotated[bool, PlainValidator(_to_bool), _NULL]
OptBool = Annotated[bool | None, PlainValidator(_to_opt_bool), _NULL]
Duration = Annotated[int, PlainValidator(_to_duration), _NULL, DurationField()]
ByteSize = Annotated[int, PlainValidator(_to_bytes), _NULL, ByteSizeField()]
URL = Annotated[str, PlainValidator(to_str), _NULL, URLField()]


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise unmarshal_error(value, "[]string")
    return [to_str(v) for v in value]


def _str_map(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise unmarshal_error(value, "map[string]string")
    return {k: to_str(v) for k, v in value.items()}


StrList = Annotated[list[str], PlainValidator(_str_list), _NULL]
StrMap = Annotated[dict[str, str], PlainValidator(_str_map), _NULL]


def no_nulls(message: str) -> BeforeValidator:
    """A list validator refusing null items with ``message`` (Prometheus's "empty or null ..." errors)."""

    def check(value: Any) -> Any:
        if isinstance(value, list) and any(item is None for item in value):
            raise ValueError(message)
        return value

    return BeforeValidator(check)


@functools.cache
def _null_zero_keys(cls: type[ConfigModel]) -> frozenset[str]:
    keys = set()
    for name, field in cls.model_fields.items():
        if any(isinstance(m, NullIsZero) for m in field.metadata):
            keys.add(field.alias or name)
    return frozenset(keys)


class ConfigModel(BaseModel):
    """Base of every configuration section: unknown keys refused, null treated as Go does."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=False)

    # The Go type name yaml.v2 uses in errors about this section ("field x not found in type ...").
    yaml_type: ClassVar[str] = "config.plain"

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and None in data.values():
            keep = _null_zero_keys(cls)
            data = {k: v for k, v in data.items() if v is not None or k in keep}
        return data

    def is_set(self, name: str) -> bool:
        """Whether the YAML set this field explicitly."""
        return name in self.model_fields_set
