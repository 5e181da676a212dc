"""Prometheus's template language (Go text/template plus Prometheus's functions) for rule labels,
annotations and console templates.

Typical use::

    expand_alert_template("{{ $labels.instance }} is {{ $value | humanize }}", labels, {}, url, 1e6, ts, qf)
    Expander(text, "name", data, timestamp_s=ts, query_func=qf, external_url=url).expand()
"""

from narthex.rules.template.exec import TemplateExecError
from narthex.rules.template.expander import (
    ALERT_DEFS,
    Expander,
    TemplateError,
    alert_template_data,
    expand_alert_template,
    html_escaper,
)
from narthex.rules.template.funcs import QueryFunc
from narthex.rules.template.gofmt import format_float, format_value, sprint, sprintf, sprintln
from narthex.rules.template.gofunc import FuncError, GoFunc
from narthex.rules.template.gotime import GoDuration, GoTime
from narthex.rules.template.parser import TemplateParseError, parse_template
from narthex.rules.template.values import HTML, AlertTemplateData, AnyMap, QueryResult, Sample, StringMap

__all__ = [
    "ALERT_DEFS",
    "HTML",
    "AlertTemplateData",
    "AnyMap",
    "Expander",
    "FuncError",
    "GoDuration",
    "GoFunc",
    "GoTime",
    "QueryFunc",
    "QueryResult",
    "Sample",
    "StringMap",
    "TemplateError",
    "TemplateExecError",
    "TemplateParseError",
    "alert_template_data",
    "expand_alert_template",
    "format_float",
    "format_value",
    "html_escaper",
    "parse_template",
    "sprint",
    "sprintf",
    "sprintln",
]
