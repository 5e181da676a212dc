"""Loading prometheus.yml: YAML parsing, model validation, the checks that need the whole file, relative
paths, ``scrape_config_files`` and external label expansion. Errors become :class:`ConfigError` with the
file, the YAML path and the line."""

from __future__ import annotations

import glob
import os
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from narthex.config.errors import ConfigError, LocatedError, Path, format_path, go_quote
from narthex.config.http import join_dir
from narthex.config.model import OTLP_TRANSLATION_STRATEGIES, Config, ScrapeConfig
from narthex.config.relabel import RelabelConfig
from narthex.config.types import YAML_TYPE_ERROR, ConfigModel, no_nulls, unmarshal_error
from narthex.config.yamlsource import DuplicateKeyError, YAMLSyntaxError, parse_yaml
from narthex.util.log import get_logger

_log = get_logger("config")
_M = typing.TypeVar("_M", bound=BaseModel)
_PAT_RULE_PATH = re.compile(r"^[^*]*(\*[^/]*)?$")
_UNMARSHAL_TYPES = frozenset(
    {"extra_forbidden", YAML_TYPE_ERROR, "model_type", "model_attributes_type", "list_type", "dict_type"}
)


class ScrapeConfigsFile(ConfigModel):
    """The content of a ``scrape_config_files`` file: only ``scrape_configs``."""

    yaml_type = "config.ScrapeConfigs"

    scrape_configs: typing.Annotated[list[ScrapeConfig], no_nulls("empty or null scrape config section")] = (
        Field(default_factory=list)
    )


def load_config(path: str, *, expand_external_labels_env: bool = False) -> Config:
    """Load and validate a prometheus.yml file, with its ``scrape_config_files`` merged in.

    Relative paths (rule files, credentials, certificates, SD files) are resolved against the file's
    directory. With ``expand_external_labels_env``, ``${VAR}`` in external label values is replaced
    from the environment (Prometheus 3 always does this).
    """
    config = load_main_file(path, expand_external_labels_env=expand_external_labels_env)
    merge_scrape_config_files(config)
    return config


def load_config_from_string(
    text: str, filename: str = "", *, expand_external_labels_env: bool = False
) -> Config:
    """Validate prometheus.yml content; ``filename`` only names it in errors. Paths stay as written and
    ``scrape_config_files`` are not read."""
    return _parse(text, filename, expand_external_labels_env)


def load_main_file(path: str, *, expand_external_labels_env: bool = False) -> Config:
    """Load a prometheus.yml file without reading its ``scrape_config_files`` (``--syntax-only``)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    config = _parse(text, path, expand_external_labels_env)
    _set_directory(config, os.path.dirname(path))
    return config


def merge_scrape_config_files(config: Config) -> None:
    """Append the jobs of every file matched by ``scrape_config_files``, validated against the globals."""
    sources = {job.job_name: "main config file" for job in config.scrape_configs}
    for pattern in config.scrape_config_files:
        for filename in sorted(glob.glob(pattern)):
            abs_name = os.path.abspath(filename)
            try:
                with open(filename, encoding="utf-8", errors="surrogateescape") as fh:
                    text = fh.read()
            except OSError as exc:
                raise ConfigError(_scrape_files_error(abs_name, f"open {filename}: {exc.strerror}")) from None
            data, lines = _parse_yaml(text, ScrapeConfigsFile, _scrape_files_prefix(abs_name))
            part = _validate(ScrapeConfigsFile, data, lines, _scrape_files_prefix(abs_name))
            for index, job in enumerate(part.scrape_configs):
                path: Path = ("scrape_configs", index)
                try:
                    _apply_global(job, config, path)
                    if job.job_name in sources:
                        raise LocatedError(
                            f"found multiple scrape configs with job name {go_quote(job.job_name)}, "
                            f"first found in {sources[job.job_name]}",
                            path,
                        )
                except LocatedError as exc:
                    raise ConfigError(_located(exc, lines, _scrape_files_prefix(abs_name))) from None
                sources[job.job_name] = go_quote(abs_name)
                job.set_directory(os.path.dirname(filename))
                config.scrape_configs.append(job)


def _scrape_files_prefix(abs_name: str) -> str:
    return f"error loading scrape configs: {go_quote(abs_name)}: "


def _scrape_files_error(abs_name: str, message: str) -> str:
    return _scrape_files_prefix(abs_name) + message


def _parse(text: str, filename: str, expand_env: bool) -> Config:
    prefix = f"parsing YAML file {filename}: " if filename else ""
    data, lines = _parse_yaml(text, Config, prefix)
    config = _validate(Config, data, lines, prefix)
    try:
        _check_whole(config)
    except LocatedError as exc:
        raise ConfigError(_located(exc, lines, prefix)) from None
    if expand_env:
        _expand_external_labels(config)
    return config


def _parse_yaml(text: str, root: type[BaseModel], prefix: str) -> tuple[Any, dict[Path, int]]:
    try:
        data, lines = parse_yaml(text)
    except YAMLSyntaxError as exc:
        raise ConfigError(prefix + str(exc)) from None
    except DuplicateKeyError as exc:
        model = _model_at(root, exc.path)
        if model is not None:
            what = f"field {exc.key} already set in type {model.yaml_type}"
        else:
            what = f"key {go_quote(exc.key)} already set in map"
        where = format_path((*exc.path, exc.key))
        raise ConfigError(f"{prefix}yaml: unmarshal errors:\n  line {exc.line}: {what} ({where})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        error = unmarshal_error(data, root.yaml_type if issubclass(root, ConfigModel) else "config")
        raise ConfigError(f"{prefix}yaml: unmarshal errors:\n  line 1: {error.message()}")
    return data, lines


def _validate(model: type[_M], data: Any, lines: dict[Path, int], prefix: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(prefix + _describe(model, exc, lines)) from None
    except LocatedError as exc:
        raise ConfigError(_located(exc, lines, prefix)) from None


def _line_of(path: Path, lines: dict[Path, int]) -> int:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1


def _located(exc: LocatedError, lines: dict[Path, int], prefix: str) -> str:
    if not exc.path:
        return prefix + exc.message
    return f"{prefix}{exc.message} (line {_line_of(exc.path, lines)}, {format_path(exc.path)})"


def _describe(root: type[BaseModel], exc: ValidationError, lines: dict[Path, int]) -> str:
    """Turn pydantic's errors into yaml.v2-style unmarshal errors or the first validation message."""
    unmarshal: list[tuple[int, str]] = []
    others: list[tuple[int, str]] = []
    for err in exc.errors(include_url=False):
        path: Path = tuple(p for p in err["loc"] if isinstance(p, int | str))
        line = _line_of(path, lines)
        kind = err["type"]
        where = format_path(path)
        if kind == "extra_forbidden":
            model = _model_at(root, path[:-1])
            type_name = model.yaml_type if model is not None else "config.plain"
            text = f"field {path[-1]} not found in type {type_name}"
        elif kind == YAML_TYPE_ERROR:
            text = err["ctx"]["msg"] if err.get("ctx") else err["msg"]
        elif kind in _UNMARSHAL_TYPES:
            type_name = _go_type_name(_annotation_at(root, path))
            text = unmarshal_error(err["input"], type_name).message()
        else:
            error = (err.get("ctx") or {}).get("error")
            text = str(error) if error is not None else err["msg"]
            others.append((line, f"{text} (line {line}, {where})" if where else text))
            continue
        unmarshal.append((line, f"  line {line}: {text}" + (f" ({where})" if where else "")))
    if unmarshal:
        return "yaml: unmarshal errors:\n" + "\n".join(msg for _, msg in sorted(unmarshal))
    return sorted(others)[0][1]


def _field_annotation(model: type[BaseModel], key: str | int) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field.annotation
    return None


def _strip(annotation: Any) -> Any:
    """Drop ``Annotated`` and ``None`` from an annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation


def _annotation_at(root: type[BaseModel], path: Path) -> Any:
    """The (stripped) annotation found at ``path`` below ``root``; None when the path leaves the model."""
    current: Any = root
    for part in path:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            current = _field_annotation(current, part)
        elif typing.get_origin(current) is list and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
        if current is None:
            return None
    return _strip(current)


def _model_at(root: type[BaseModel], path: Path) -> type[ConfigModel] | None:
    """The model class found at ``path`` below ``root`` (None if the path ends in a scalar or map)."""
    found = _annotation_at(root, path)
    return found if isinstance(found, type) and issubclass(found, ConfigModel) else None


def _go_type_name(annotation: Any) -> str:
    """A Go-like name for an annotation, for "cannot unmarshal ... into T" errors."""
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, ConfigModel):
        return annotation.yaml_type
    origin = typing.get_origin(annotation)
    if origin is list:
        return "[]" + _go_type_name(typing.get_args(annotation)[0])
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"map[{_go_type_name(key)}]{_go_type_name(value)}"
    return {str: "string", int: "int", float: "float64", bool: "bool"}.get(annotation, "interface {}")


def _check_relabel(rule: RelabelConfig, scheme: str, path: Path) -> None:
    try:
        rule.validate_rule("legacy" if scheme == "legacy" else "utf8")
    except ValueError as exc:
        raise LocatedError(str(exc), path) from None


def _apply_global(job: ScrapeConfig, config: Config, path: Path) -> None:
    try:
        job.apply_global(config.global_config)
    except ValueError as exc:
        raise LocatedError(str(exc), path) from None
    for key, index, rule in job.relabel_rules():
        _check_relabel(rule, job.metric_name_validation_scheme, (*path, key, index))


def _check_whole(config: Config) -> None:
    """The checks of ``Config.UnmarshalYAML`` and ``Load`` that need more than one section."""
    for index, rule_file in enumerate(config.rule_files):
        if not _PAT_RULE_PATH.match(rule_file):
            raise LocatedError(f"invalid rule file path {go_quote(rule_file)}", ("rule_files", index))
    for index, scrape_file in enumerate(config.scrape_config_files):
        if not _PAT_RULE_PATH.match(scrape_file):
            raise LocatedError(
                f"invalid scrape config file path {go_quote(scrape_file)}", ("scrape_config_files", index)
            )
    seen: set[str] = set()
    for index, job in enumerate(config.scrape_configs):
        _apply_global(job, config, ("scrape_configs", index))
        if job.job_name in seen:
            raise LocatedError(
                f"found multiple scrape configs with job name {go_quote(job.job_name)}",
                ("scrape_configs", index),
            )
        seen.add(job.job_name)
    scheme = config.global_config.metric_name_validation_scheme
    for index, rule in enumerate(config.alerting.alert_relabel_configs):
        _check_relabel(rule, scheme, ("alerting", "alert_relabel_configs", index))
    for am_index, am in enumerate(config.alerting.alertmanagers):
        for key in ("alert_relabel_configs", "relabel_configs"):
            for index, rule in enumerate(getattr(am, key)):
                _check_relabel(rule, scheme, ("alerting", "alertmanagers", am_index, key, index))
    names: set[str] = set()
    for index, rw in enumerate(config.remote_write):
        if rw.name and rw.name in names:
            raise LocatedError(
                f"found multiple remote write configs with job name {go_quote(rw.name)}",
                ("remote_write", index),
            )
        names.add(rw.name)
        for rule_index, rule in enumerate(rw.write_relabel_configs):
            _check_relabel(rule, scheme, ("remote_write", index, "write_relabel_configs", rule_index))
    names = set()
    for index, rr in enumerate(config.remote_read):
        if rr.name and rr.name in names:
            raise LocatedError(
                f"found multiple remote read configs with job name {go_quote(rr.name)}",
                ("remote_read", index),
            )
        names.add(rr.name)
    strategy = config.otlp.translation_strategy
    if strategy in ("NoTranslation", "NoUTF8EscapingWithSuffixes"):
        if scheme == "legacy":
            raise LocatedError(
                f"OTLP translation strategy {go_quote(strategy)} is not allowed when UTF8 is disabled",
                ("otlp", "translation_strategy"),
            )
    elif strategy not in OTLP_TRANSLATION_STRATEGIES and strategy != "":
        raise LocatedError(
            f"unsupported OTLP translation strategy {go_quote(strategy)}", ("otlp", "translation_strategy")
        )


def _set_directory(config: Config, directory: str) -> None:
    """``Config.SetDirectory``: make relative paths relative to the configuration file."""
    config.global_config.set_directory(directory)
    for am in config.alerting.alertmanagers:
        am.set_directory(directory)
    config.tracing.tls_config.set_directory(directory)
    config.rule_files = [join_dir(directory, f) for f in config.rule_files]
    config.scrape_config_files = [join_dir(directory, f) for f in config.scrape_config_files]
    for job in config.scrape_configs:
        job.set_directory(directory)
    for endpoint in (*config.remote_write, *config.remote_read):
        endpoint.set_directory(directory)


def expand_env(value: str, lookup: typing.Callable[[str], str]) -> str:
    """Go's ``os.Expand``: ``$VAR``, ``${VAR}``; ``$$`` gives ``$`` through ``lookup("$")``."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch != "$" or i + 1 >= len(value):
            out.append(ch)
            i += 1
            continue
        rest = value[i + 1 :]
        name, width = _shell_name(rest)
        if name == "" and width > 0:
            pass  # invalid syntax: Go drops the characters
        elif name == "":
            out.append("$")
        else:
            out.append(lookup(name))
        i += 1 + width
    return "".join(out)


_SPECIAL = set("*#$@!?-0123456789")


def _shell_name(text: str) -> tuple[str, int]:
    if text[0] == "{":
        if len(text) > 2 and text[1] in _SPECIAL and text[2] == "}":
            return text[1], 3
        end = text.find("}", 1)
        if end == 1:
            return "", 2
        if end == -1:
            return "", 1
        return text[1:end], end + 1
    if text[0] in _SPECIAL:
        return text[0], 1
    width = 0
    while width < len(text) and (text[width].isascii() and (text[width].isalnum() or text[width] == "_")):
        width += 1
    return text[:width], width


def _expand_external_labels(config: Config) -> None:
    def lookup(name: str) -> str:
        if name == "$":
            return "$"
        value = os.environ.get(name, "")
        if value == "":
            _log.warn("Empty environment variable", name=name)
        return value

    labels = config.global_config.external_labels
    for name, value in list(labels.items()):
        expanded = expand_env(value, lookup)
        if expanded != value:
            _log.debug("External label replaced", label=name, input=value, output=expanded)
        labels[name] = expanded
