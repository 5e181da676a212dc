"""Prometheus's template ``Expander`` and the alerting rule's label/annotation expansion."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from narthex.rules.template.builtins import builtin_funcs
from narthex.rules.template.exec import Executor, TemplateExecError
from narthex.rules.template.gofmt import go_quote
from narthex.rules.template.gofunc import ANY, FuncError, GoFunc
from narthex.rules.template.htmlescape import Context, escape_in_context
from narthex.rules.template.parser import TemplateParseError, Tree, parse_template
from narthex.rules.template.values import HTML, AlertTemplateData, StringMap

QueryFn = Callable[[str, float], Any]


class TemplateError(Exception):
    """Expansion failed; the message is Prometheus's (``error executing template x: template: ...``)."""


def _missing_key_mode(options: Sequence[str]) -> str:
    mode = "invalid"
    for option in options:
        if option == "":
            raise ValueError("empty option string")
        key, sep, value = option.partition("=")
        if sep and key == "missingkey" and value in ("invalid", "default", "zero", "error"):
            mode = "invalid" if value == "default" else value
            continue
        raise ValueError(f"unrecognized option: {option}")
    return mode


def html_escaper(value: Any) -> str:
    """html/template's escaper for the HTML text context: nil prints nothing, ``HTML`` passes through."""
    return escape_in_context(Context(), value)


class Expander:
    """Expands one template text with Prometheus's functions (``template.NewTemplateExpander``)."""

    def __init__(
        self,
        text: str,
        name: str,
        data: Any,
        *,
        timestamp_s: float = 0.0,
        query_func: QueryFn | None = None,
        external_url: str | None = None,
        options: Sequence[str] | None = None,
    ) -> None:
        from narthex.rules.template.funcs import prometheus_funcs

        self.text = text
        self.name = name
        self.data = data
        self.options = ["missingkey=zero"] if options is None else list(options)
        timestamp_ms = round(timestamp_s * 1000)
        url = external_url or ""
        self.funcs: dict[str, GoFunc] = builtin_funcs()
        self.funcs.update(
            prometheus_funcs(
                query_func=query_func,
                timestamp_s=timestamp_ms / 1000.0,
                external_url=url,
                path_prefix=urllib.parse.urlsplit(url).path,
            )
        )

    def add_funcs(self, extra: Mapping[str, GoFunc | Callable[..., Any]]) -> None:
        """Add or replace functions (plain callables take ``interface {}`` arguments)."""
        for fname, fn in extra.items():
            if isinstance(fn, GoFunc):
                self.funcs[fname] = fn
            else:
                self.funcs[fname] = GoFunc(fn, (), ANY)

    def _parse(self, funcs: Mapping[str, GoFunc]) -> dict[str, Tree]:
        try:
            return parse_template(self.name, self.text, funcs.keys())
        except TemplateParseError as exc:
            raise TemplateError(f"error parsing template {self.name}: {exc}") from None

    def _mode(self) -> str:
        try:
            return _missing_key_mode(self.options)
        except ValueError as exc:
            raise TemplateError(f"panic expanding template {self.name}: {exc}") from None

    def _run(self, executor: Executor) -> str:
        try:
            return executor.execute(self.name, self.data)
        except TemplateExecError as exc:
            raise TemplateError(f"error executing template {self.name}: {exc}") from None

    def expand(self) -> str:
        """Expand in text mode; raises :class:`TemplateError`."""
        mode = self._mode()
        trees = self._parse(self.funcs)
        return self._run(Executor(trees, self.funcs, mode))

    def expand_html(self, template_files: Sequence[str | os.PathLike[str]] = ()) -> str:
        """Expand with html/template-style contextual escaping of action output; ``tmpl`` is available."""
        mode = self._mode()
        trees: dict[str, Tree] = {}
        funcs = dict(self.funcs)

        def tmpl(name: str, data: Any) -> HTML:
            if name not in trees:
                raise FuncError(f"html/template: {go_quote(name)} is undefined")
            try:
                return HTML(Executor(trees, funcs, mode, html=True).execute(name, data))
            except TemplateExecError as exc:
                raise FuncError(str(exc)) from None

        funcs["tmpl"] = GoFunc(tmpl, ("string", ANY))
        trees.update(self._parse(funcs))
        for path in template_files:
            file_name = os.path.basename(os.fspath(path))
            try:
                with open(path, encoding="utf-8") as handle:
                    content = handle.read()
                parsed = parse_template(file_name, content, funcs.keys())
            except (OSError, TemplateParseError) as exc:
                raise TemplateError(f"error parsing template files for {self.name}: {exc}") from None
            for tree_name, tree in parsed.items():
                if tree_name not in trees or tree.root.nodes:
                    trees[tree_name] = tree
        return self._run(Executor(trees, funcs, mode, html=True))

    def parse_test(self) -> None:
        """Only parse (as ``ParseTest``); raises :class:`TemplateParseError` on syntax errors."""
        parse_template(self.name, self.text, self.funcs.keys())


ALERT_DEFS = (
    "{{$labels := .Labels}}"
    "{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}"
    "{{$value := .Value}}"
)


LabelsLike = Mapping[str, str] | Iterable[tuple[str, str]]


def alert_template_data(
    labels: LabelsLike, external_labels: LabelsLike, external_url: str, value: Any
) -> AlertTemplateData:
    """``template.AlertTemplateData``: what ``.`` is while expanding alert labels and annotations."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # sample values are float64 in Prometheus
    return AlertTemplateData(StringMap(labels), StringMap(external_labels), external_url, value)


def expand_alert_template(
    text: str,
    labels: LabelsLike,
    external_labels: LabelsLike,
    external_url: str,
    value: Any,
    ts: float,
    query_func: QueryFn | None,
    *,
    alert_name: str = "",
) -> str:
    """Expand one alert label or annotation as rules/alerting.go does; errors become the value
    ``<error expanding template: ...>``. ``labels`` are the alert sample's labels (a mapping or label
    pairs), ``value`` its float value (or histogram), ``ts`` the evaluation time in seconds."""
    data = alert_template_data(labels, external_labels, external_url, value)
    expander = Expander(
        ALERT_DEFS + text,
        "__alert_" + alert_name,
        data,
        timestamp_s=ts,
        query_func=query_func,
        external_url=external_url,
    )
    try:
        return expander.expand()
    except TemplateError as exc:
        return f"<error expanding template: {exc}>"
