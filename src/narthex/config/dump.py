"""Writing a loaded configuration back as YAML, secrets hidden (``/api/v1/status/config``)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from narthex.config.relabel import RelabelConfig
from narthex.config.types import ByteSizeField, DurationField, Secret, URLField, format_base2_bytes
from narthex.config.urls import redact_url
from narthex.model.duration import format_duration

SECRET_TOKEN = "<secret>"

try:
    _Dumper: type[yaml.SafeDumper] = yaml.CSafeDumper  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Dumper = yaml.SafeDumper


def _plain(value: Any) -> Any:
    """Model values to plain YAML-ready values; secrets replaced by ``<secret>``."""
    if isinstance(value, BaseModel):
        return model_to_dict(value)
    if isinstance(value, Secret):
        return SECRET_TOKEN if value else ""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _is_empty(value: Any) -> bool:
    return (
        value is None
        or value == ""
        or value == []
        or value == {}
        or (type(value) in (int, float) and value == 0)
    )


def _field_order(model: BaseModel) -> list[str]:
    """The model's own fields first, then inherited ones (the job name before the HTTP settings)."""
    own = [name for name in type(model).__annotations__ if name in type(model).model_fields]
    return own + [name for name in type(model).model_fields if name not in own]


def model_to_dict(model: BaseModel) -> dict[str, Any]:
    """A model as a mapping keyed by YAML names, empty values left out."""
    out: dict[str, Any] = {}
    fields = type(model).model_fields
    for name in _field_order(model):
        field = fields[name]
        value = getattr(model, name)
        if any(isinstance(m, DurationField) for m in field.metadata):
            plain: Any = format_duration(value) if value else None
        elif any(isinstance(m, ByteSizeField) for m in field.metadata):
            plain = format_base2_bytes(value) if value else None
        elif any(isinstance(m, URLField) for m in field.metadata):
            plain = redact_url(value) if value else None
        else:
            plain = _plain(value)
        if isinstance(model, RelabelConfig) and name == "regex":
            # As Go's Regexp.IsZero: the default regex is left out, an explicit one (even "") kept.
            if model.is_set("regex"):
                out["regex"] = plain
            continue
        if _is_empty(plain):
            continue
        out[field.alias or name] = plain
    return out


def config_to_yaml(config: BaseModel) -> str:
    """The loaded configuration as YAML. ``scrape_config_files`` is left out (their jobs are already in
    ``scrape_configs``), and so is an unconfigured ``tracing`` section."""
    data = model_to_dict(config)
    data.pop("scrape_config_files", None)
    if not getattr(getattr(config, "tracing", None), "endpoint", ""):
        data.pop("tracing", None)
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000
    )
