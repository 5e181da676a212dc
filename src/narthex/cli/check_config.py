"""``narthex check config [--syntax-only] FILE...``: promtool's ``check config`` output and exit codes.

The jobs of ``scrape_config_files`` are always loaded and validated (promtool skips them with
``--syntax-only``; Prometheus itself refuses such a file, and so does this check). Without
``--syntax-only`` the files a configuration names are checked too, as promtool does: rule files (globs
may match nothing, plain names must exist), authorization credential files, TLS client certificates and
keys, and file_sd target files (which must parse). Rule files are then validated as ``check rules`` does.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from typing import Any, TextIO

from narthex.config import ConfigError, ScrapeConfig
from narthex.config.errors import go_quote
from narthex.config.http import TLSConfig
from narthex.config.load import load_main_file, merge_scrape_config_files
from narthex.config.model import Config
from narthex.config.sd import FileSDConfig, KubernetesSDConfig, StaticConfig
from narthex.config.yamlsource import DuplicateKeyError, YAMLSyntaxError, parse_yaml

SUCCESS_EXIT_CODE = 0
FAILURE_EXIT_CODE = 1
_TARGET_GROUP_TYPE = (
    'struct { Targets []string "yaml:\\"targets\\""; Labels model.LabelSet "yaml:\\"labels\\"" }'
)


class CheckError(Exception):
    """A configuration that loads but names files that are missing or invalid."""


def check_config(
    files: list[str], *, syntax_only: bool = False, out: TextIO = sys.stdout, err: TextIO | None = None
) -> int:
    """Check each prometheus.yml in ``files``; return the exit code (0 valid, 1 not)."""
    err = err if err is not None else sys.stderr
    failed = False
    for filename in files:
        print("Checking", filename, file=out)
        try:
            rule_files = _check_file(filename, syntax_only, out)
        except (ConfigError, CheckError) as exc:
            print("  FAILED:", exc, file=err)
            failed = True
            rule_files = []
        else:
            if rule_files:
                print(f"  SUCCESS: {len(rule_files)} rule files found", file=out)
            print(f" SUCCESS: {filename} is valid prometheus config file syntax", file=out)
        print(file=out)
        if not syntax_only:
            failed = _check_rule_files(rule_files, out, err) or failed
    return FAILURE_EXIT_CODE if failed else SUCCESS_EXIT_CODE


def _stat_error(path: str) -> str | None:
    """Go's ``os.Stat`` error text for ``path``, or None if it exists (or is empty)."""
    if path == "":
        return None
    try:
        os.stat(path)
    except OSError as exc:
        return f"stat {path}: {(exc.strerror or str(exc)).lower()}"
    return None


def _check_file(filename: str, syntax_only: bool, out: TextIO) -> list[str]:
    config = load_main_file(filename)
    rule_files: list[str] = []
    if not syntax_only:
        for pattern in config.rule_files:
            matches = sorted(glob.glob(pattern))
            if "*" not in pattern:
                if not matches:
                    raise CheckError(f"{go_quote(pattern)} does not point to an existing file")
                if (problem := _stat_error(matches[0])) is not None:
                    raise CheckError(f"error checking rule file {go_quote(matches[0])}: {problem}")
            rule_files.extend(matches)
    # Unlike promtool, --syntax-only also reads scrape_config_files: Prometheus refuses a configuration
    # whose included jobs are invalid or duplicated, so its syntax check should too.
    merge_scrape_config_files(config)
    for job in config.scrape_configs:
        _check_job(job, syntax_only, out)
    _check_alertmanagers(config, syntax_only, out)
    return rule_files


def _check_tls(tls: TLSConfig, syntax_only: bool) -> None:
    if tls.cert_file and not tls.key_file:
        raise CheckError(f"client cert file {go_quote(tls.cert_file)} specified without client key file")
    if tls.key_file and not tls.cert_file:
        raise CheckError(f"client key file {go_quote(tls.key_file)} specified without client cert file")
    if syntax_only:
        return
    if (problem := _stat_error(tls.cert_file)) is not None:
        raise CheckError(f"error checking client cert file {go_quote(tls.cert_file)}: {problem}")
    if (problem := _stat_error(tls.key_file)) is not None:
        raise CheckError(f"error checking client key file {go_quote(tls.key_file)}: {problem}")


def _check_job(job: ScrapeConfig, syntax_only: bool, out: TextIO) -> None:
    if not syntax_only and job.authorization is not None:
        credentials = job.authorization.credentials_file
        if (problem := _stat_error(credentials)) is not None:
            raise CheckError(
                "error checking authorization credentials or bearer token file "
                f"{go_quote(credentials)}: {problem}"
            )
    _check_tls(job.tls_config, syntax_only)
    for _, sd in job.sd_configs():
        if isinstance(sd, KubernetesSDConfig):
            _check_tls(sd.tls_config, syntax_only)
        elif isinstance(sd, FileSDConfig) and not syntax_only:
            where = f"in scrape job {go_quote(job.job_name)}"
            _check_file_sd(sd, where, out)


def _check_alertmanagers(config: Config, syntax_only: bool, out: TextIO) -> None:
    if syntax_only:
        return
    for am in config.alerting.alertmanagers:
        for sd in am.file_sd_configs:
            _check_file_sd(sd, "in alertmanager config", out)


def _check_file_sd(sd: FileSDConfig, where: str, out: TextIO) -> None:
    for pattern in sd.files:
        matches = sorted(glob.glob(pattern))
        if not matches:
            print(f"  WARNING: file {go_quote(pattern)} for file_sd {where} does not exist", file=out)
            continue
        for match in matches:
            try:
                check_sd_file(match)
            except (OSError, ValueError) as exc:
                raise CheckError(f"checking SD file {go_quote(pattern)}: {exc}") from None


def check_sd_file(filename: str) -> list[StaticConfig]:
    """Parse a file_sd target file as promtool's ``checkSDFile``; raise ValueError when it is invalid."""
    with open(filename, encoding="utf-8", errors="surrogateescape") as fh:
        content = fh.read()
    ext = os.path.splitext(filename)[1]
    if ext.lower() == ".json":
        try:
            data: Any = json.loads(content)
        except json.JSONDecodeError as exc:
            raise ValueError(str(exc)) from None
        lines: dict[Any, int] = {}
    elif ext.lower() in (".yml", ".yaml"):
        try:
            data, lines = parse_yaml(content)
        except YAMLSyntaxError as exc:
            raise ValueError(str(exc)) from None
        except DuplicateKeyError as exc:
            raise ValueError(
                f"yaml: unmarshal errors:\n  line {exc.line}: field {exc.key} already set in type "
                f"{_TARGET_GROUP_TYPE}"
            ) from None
    else:
        raise ValueError(f"invalid file extension: {go_quote(ext)}")
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError(f"cannot unmarshal {type(data).__name__} into []*targetgroup.Group")
    groups = []
    for index, item in enumerate(data):
        if item is None:
            raise ValueError(f"nil target group item found (index {index})")
        if not isinstance(item, dict):
            raise ValueError(f"cannot unmarshal {type(item).__name__} into targetgroup.Group")
        if ext.lower() != ".json":
            unknown = [
                f"  line {lines.get((index, key), 1)}: field {key} not found in type {_TARGET_GROUP_TYPE}"
                for key in item
                if key not in ("targets", "labels")
            ]
            if unknown:
                raise ValueError("yaml: unmarshal errors:\n" + "\n".join(unknown))
        try:
            groups.append(
                StaticConfig.model_validate({k: v for k, v in item.items() if k in ("targets", "labels")})
            )
        except Exception as exc:  # pydantic's ValidationError: report its first message plainly
            raise ValueError(_first_error(exc)) from None
    return groups


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors(include_url=False)[0]
        ctx = first.get("ctx") or {}
        return str(ctx.get("error") or ctx.get("msg") or first["msg"])
    return str(exc)


def _check_rule_files(rule_files: list[str], out: TextIO, err: TextIO) -> bool:
    """Validate each rule file as ``check rules`` does and print promtool's lines; True if any failed."""
    from narthex.rules.rulefmt import parse_rule_file

    failed = False
    for filename in rule_files:
        print("Checking", filename, file=out)
        rule_file, errors = parse_rule_file(filename)
        if errors or rule_file is None:
            print("  FAILED:", file=err)
            for error in errors:
                print(error, file=err)
            failed = True
            continue
        print(f"  SUCCESS: {rule_file.rule_count} rules found", file=out)
        print(file=out)
    return failed
