"""Contextual auto-escaping in the spirit of Go's html/template, for console templates.

The context of each action is found by scanning the template text emitted before it (HTML text, tag and
attribute names, quoted or unquoted attribute values, URL attributes, ``on*`` handlers, ``style``
attributes, ``<script>``, ``<style>``, ``<textarea>``/``<title>`` and HTML comments), then the value goes
through the escapers html/template would pick for that context. Unlike Go, contexts are tracked at run time
along the executed path, and the consistency checks across branches are not made.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from narthex.rules.template.gofmt import sprint
from narthex.rules.template.values import HTML

FILTERED = "ZgotmplZ"

_HTML_TABLE = {
    "\0": "\ufffd",
    '"': "&#34;",
    "&": "&amp;",
    "'": "&#39;",
    "+": "&#43;",
    "<": "&lt;",
    ">": "&gt;",
}
_HTML_NORM_TABLE = {k: v for k, v in _HTML_TABLE.items() if k != "&"}
_NOSPACE_TABLE = {
    **_HTML_TABLE,
    "\0": "&#xfffd;",
    "\t": "&#9;",
    "\n": "&#10;",
    "\v": "&#11;",
    "\f": "&#12;",
    "\r": "&#13;",
    " ": "&#32;",
    "=": "&#61;",
    "`": "&#96;",
}
_JS_STR_TABLE = {
    "\0": "\\u0000",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\u000b",
    "\f": "\\f",
    "\r": "\\r",
    '"': "\\u0022",
    "`": "\\u0060",
    "&": "\\u0026",
    "'": "\\u0027",
    "+": "\\u002b",
    "/": "\\/",
    "<": "\\u003c",
    ">": "\\u003e",
    "\\": "\\\\",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_JS_TMPL_EXTRA = {"$": "\\u0024", "{": "\\u007b", "}": "\\u007d"}
_JS_REGEXP_EXTRA = {c: "\\" + c for c in "$()*.?[]^{|}"}
_URL_ATTRS = frozenset(
    [
        "action",
        "archive",
        "background",
        "cite",
        "classid",
        "codebase",
        "data",
        "formaction",
        "href",
        "icon",
        "longdesc",
        "manifest",
        "poster",
        "profile",
        "src",
        "usemap",
        "xmlns",
    ]
)
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_ATTR_NAME = re.compile(r"[^\s\"'<>/=]+")
_SAFE_ATTR_NAME = re.compile(r"[A-Za-z0-9_:-]+")
# Comment states whose text html/template drops from the output, with the length of their opener.
_COMMENT_OPENERS = {"html_cmt": 4, "js_line_cmt": 2, "js_block_cmt": 2}
_SAFE_CSS_VALUE = re.compile(r"[A-Za-z0-9 \t#%+,\-./!]*")


def _replace(text: str, table: dict[str, str]) -> str:
    return "".join(table.get(ch, ch) for ch in text)


def _stringify(value: Any) -> tuple[str, bool]:
    """The value as text (nil prints nothing) and whether it is trusted HTML."""
    if value is None:
        return "", False
    if isinstance(value, HTML):
        return str.__str__(value), True
    if isinstance(value, str):
        return str.__str__(value), False
    return sprint(value), False


def _js_str(text: str, extra: dict[str, str] | None = None) -> str:
    table = {**_JS_STR_TABLE, **(extra or {})}
    out = []
    for ch in text:
        if ch in table:
            out.append(table[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _js_value(value: Any) -> str:
    """jsValEscaper: the value as a JavaScript (JSON) literal, padded if it could merge with a keyword."""
    if value is None:
        return " null "
    if isinstance(value, HTML):
        value = str(value)
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=sprint, separators=(",", ":"))
    except ValueError:
        text = json.dumps(sprint(value))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if text[:1].isalnum() or text[-1:].isalnum() or text[:1] in "_$" or text[-1:] in "_$":
        return f" {text} "
    return text


def _url_filter(text: str) -> str:
    scheme, sep, _ = text.partition(":")
    if sep and "/" not in scheme and scheme.lower() not in ("http", "https", "mailto"):
        return "#" + FILTERED
    return text


def _url_process(text: str, norm: bool) -> str:
    keep = "!#$&*+,/:;=?@[]" if norm else ""
    out = []
    for byte in text.encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        if ch.isascii() and (ch.isalnum() or ch in "-._~" or ch in keep or (norm and ch == "%")):
            out.append(ch)
        else:
            out.append(f"%{byte:02x}")
    return "".join(out)


@dataclass
class Context:
    """Where in an HTML document the next action's output lands."""

    state: str = "text"
    element: str = ""
    attr_type: str = ""
    delim: str = ""
    url_part: int = 0
    js_last: str = ""


class ContextScanner:
    """Follows template text through HTML, attribute, URL, JS and CSS states."""

    def __init__(self) -> None:
        self.ctx = Context()
        self._pending = ""

    def feed(self, text: str) -> str:
        """Advance over template text; returns it with HTML and JS comments removed, as Go does.

        A few trailing characters may be held back until the next call (or :meth:`flush`) when they do
        not yet decide the context (``<`` or an unfinished tag name)."""
        data = self._pending + text
        self._pending = ""
        out: list[str] = []
        i = 0
        while i < len(data):
            before = self.ctx.state
            stripping = self.ctx.delim == ""
            step = self._step(data, i)
            if step is None:
                self._pending = data[i:]
                break
            after = self.ctx.state
            if stripping and before in _COMMENT_OPENERS:
                pass
            elif stripping and after in _COMMENT_OPENERS:
                out.append(data[i : step - _COMMENT_OPENERS[after]])
            else:
                out.append(data[i:step])
            i = step
        return "".join(out)

    def flush(self) -> str:
        """Release held-back text (before an action's output, or at the end)."""
        pending, self._pending = self._pending, ""
        return pending

    # Each _state_* method consumes from data[i:] and returns the next index, or None when it needs more
    # text to decide (a split "<scr" or "</sty" at the end of a chunk).
    def _step(self, data: str, i: int) -> int | None:
        handler = getattr(self, "_state_" + self.ctx.state)
        result: int | None = handler(data, i)
        return result

    def _state_text(self, data: str, i: int) -> int | None:
        lt = data.find("<", i)
        if lt < 0:
            return len(data)
        if data.startswith("<!--", lt):
            self.ctx.state = "html_cmt"
            return lt + 4
        if lt + 1 >= len(data):
            return None
        closing = data[lt + 1] == "/"
        m = _TAG_NAME.match(data, lt + (2 if closing else 1))
        if m is None:
            return lt + 1
        if m.end() >= len(data):
            return None
        name = m.group(0).lower()
        self.ctx.state = "tag"
        self.ctx.element = "" if closing or name not in ("script", "style", "textarea", "title") else name
        return m.end()

    def _state_html_cmt(self, data: str, i: int) -> int | None:
        end = data.find("-->", i)
        if end < 0:
            return len(data)
        self.ctx.state = "text"
        return end + 3

    def _state_tag(self, data: str, i: int) -> int | None:
        while i < len(data) and (data[i].isspace() or data[i] == "/"):
            i += 1
        if i >= len(data):
            return i
        if data[i] == ">":
            self.ctx.state = {"script": "js", "style": "css", "textarea": "rcdata", "title": "rcdata"}.get(
                self.ctx.element, "text"
            )
            self.ctx.js_last = ""
            return i + 1
        m = _ATTR_NAME.match(data, i)
        if m is None:
            return i + 1
        self.ctx.attr_type = _attr_type(m.group(0))
        self.ctx.state = "after_name"
        return m.end()

    def _state_after_name(self, data: str, i: int) -> int | None:
        while i < len(data) and data[i].isspace():
            i += 1
        if i >= len(data):
            return i
        if data[i] == "=":
            self.ctx.state = "before_value"
            return i + 1
        self.ctx.state = "tag"
        return i

    def _state_before_value(self, data: str, i: int) -> int | None:
        while i < len(data) and data[i].isspace():
            i += 1
        if i >= len(data):
            return i
        if data[i] in "\"'":
            self.ctx.delim = data[i]
            i += 1
        else:
            self.ctx.delim = " "
        self._enter_value()
        return i

    def _enter_value(self) -> None:
        self.ctx.state = {"url": "url", "js": "js", "css": "css"}.get(self.ctx.attr_type, "attr")
        self.ctx.url_part = 0
        self.ctx.js_last = ""

    def _value_end(self, data: str, i: int) -> int:
        """Index where the current attribute value ends (or len(data))."""
        if self.ctx.delim == " ":
            for j in range(i, len(data)):
                if data[j].isspace() or data[j] == ">":
                    return j
            return len(data)
        end = data.find(self.ctx.delim, i)
        return len(data) if end < 0 else end

    def _in_attr(self) -> bool:
        return self.ctx.delim != ""

    def _leave_value(self, data: str, end: int) -> int:
        self.ctx.state, self.ctx.attr_type = "tag", ""
        quoted = self.ctx.delim in "\"'"
        self.ctx.delim = ""
        return end + 1 if quoted else end

    def _state_attr(self, data: str, i: int) -> int | None:
        end = self._value_end(data, i)
        return end if end >= len(data) else self._leave_value(data, end)

    def _state_url(self, data: str, i: int) -> int | None:
        end = self._value_end(data, i) if self._in_attr() else len(data)
        chunk = data[i:end]
        if chunk:
            self.ctx.url_part = 2 if ("?" in chunk or "#" in chunk or self.ctx.url_part == 2) else 1
        return end if end >= len(data) else self._leave_value(data, end)

    def _raw_text_end(self, data: str, i: int) -> tuple[int, bool]:
        """End of element content (``</script`` etc.), or of the attribute value; (index, found)."""
        if self._in_attr():
            end = self._value_end(data, i)
            return end, end < len(data)
        close = "</" + self.ctx.element
        pos = data.lower().find(close, i)
        if pos < 0:
            return len(data), False
        return pos, True

    def _finish_raw(self, data: str, end: int) -> int:
        if self._in_attr():
            return self._leave_value(data, end)
        close_len = 2 + len(self.ctx.element)
        self.ctx.state, self.ctx.element = "tag", ""
        return end + close_len

    def _state_rcdata(self, data: str, i: int) -> int | None:
        close = "</" + self.ctx.element
        pos = data.lower().find(close, i)
        if pos < 0:
            return len(data)
        self.ctx.state = "tag"
        end = pos + len(close)
        self.ctx.element = ""
        return end

    def _state_js(self, data: str, i: int) -> int | None:
        end, found = self._raw_text_end(data, i)
        while i < end:
            ch = data[i]
            if ch in "\"'`":
                self.ctx.state = {"'": "js_sq", '"': "js_dq", "`": "js_tmpl"}[ch]
                return self._state_js_string(data, i + 1)
            if data.startswith("//", i):
                self.ctx.state = "js_line_cmt"
                return i + 2
            if data.startswith("/*", i):
                self.ctx.state = "js_block_cmt"
                return i + 2
            if ch == "/" and (self.ctx.js_last == "" or self.ctx.js_last in "(,=:[!&|?{};+-*%<>~^"):
                self.ctx.state = "js_regexp"
                return i + 1
            if not ch.isspace():
                self.ctx.js_last = ch
            i += 1
        return self._finish_raw(data, end) if found else end

    def _state_js_string(self, data: str, i: int) -> int | None:
        quote = {"js_sq": "'", "js_dq": '"', "js_tmpl": "`", "js_regexp": "/"}[self.ctx.state]
        end, found = self._raw_text_end(data, i)
        in_class = False
        while i < end:
            ch = data[i]
            if ch == "\\":
                i += 2
                continue
            if quote == "/" and ch in "[]":
                in_class = ch == "["
            elif ch == quote and not in_class:
                self.ctx.state, self.ctx.js_last = "js", "a"
                return i + 1
            i += 1
        return self._finish_raw(data, end) if found else end

    _state_js_dq = _state_js_sq = _state_js_tmpl = _state_js_regexp = _state_js_string

    def _state_js_line_cmt(self, data: str, i: int) -> int | None:
        end, found = self._raw_text_end(data, i)
        newline = data.find("\n", i, end)
        if newline >= 0:
            self.ctx.state = "js"
            return newline
        if found:
            self.ctx.state = "js"
        return end

    def _state_js_block_cmt(self, data: str, i: int) -> int | None:
        end, found = self._raw_text_end(data, i)
        close = data.find("*/", i, end)
        if close >= 0:
            self.ctx.state = "js"
            return close + 2
        if found:
            self.ctx.state = "js"
        return end

    def _state_css(self, data: str, i: int) -> int | None:
        end, found = self._raw_text_end(data, i)
        while i < end:
            if data[i] in "\"'":
                self.ctx.state = "css_dq" if data[i] == '"' else "css_sq"
                return self._state_css_str(data, i + 1)
            if data.startswith("/*", i):
                close = data.find("*/", i + 2, end)
                i = end if close < 0 else close + 2
                continue
            i += 1
        return self._finish_raw(data, end) if found else end

    def _state_css_str(self, data: str, i: int) -> int | None:
        quote = '"' if self.ctx.state == "css_dq" else "'"
        end, found = self._raw_text_end(data, i)
        while i < end:
            if data[i] == "\\":
                i += 2
                continue
            if data[i] == quote:
                self.ctx.state = "css"
                return i + 1
            i += 1
        return self._finish_raw(data, end) if found else end

    _state_css_dq = _state_css_sq = _state_css_str


def _attr_type(name: str) -> str:
    name = name.lower()
    if name.startswith("data-"):
        name = name[5:]
    elif ":" in name:
        prefix, _, local = name.partition(":")
        if prefix == "xmlns":
            return "url"
        name = local
    if name.startswith("on"):
        return "js"
    if name == "style":
        return "css"
    if name in _URL_ATTRS or "src" in name or "uri" in name or "url" in name:
        return "url"
    return ""


def escape_in_context(ctx: Context, value: Any) -> str:
    """The action output for ``value`` in context ``ctx``."""
    if ctx.state == "before_value":
        # An action right after "=" is an unquoted attribute value (html/template's nudge).
        value_state = {"url": "url", "js": "js", "css": "css"}.get(ctx.attr_type, "attr")
        ctx = Context(value_state, ctx.element, ctx.attr_type, " ")
    state = ctx.state
    if state in ("html_cmt", "js_line_cmt", "js_block_cmt"):
        return ""
    text, trusted = _stringify(value)
    if state == "text":
        return text if trusted else _replace(text, _HTML_TABLE)
    if state == "rcdata":
        return _replace(text, _HTML_NORM_TABLE if trusted else _HTML_TABLE)
    if state in ("tag", "after_name"):
        return (
            text.lower()
            if _SAFE_ATTR_NAME.fullmatch(text) and not text.lower().startswith("on")
            else FILTERED
        )
    if state == "url":
        if ctx.url_part == 0:
            text = _url_process(_url_filter(text), norm=True)
        elif ctx.url_part == 1:
            text = _url_process(text, norm=True)
        else:
            text = _url_process(text, norm=False)
    elif state == "js":
        text = _js_value(value)
    elif state in ("js_dq", "js_sq"):
        text = _js_str(text)
    elif state == "js_tmpl":
        text = _js_str(text, _JS_TMPL_EXTRA)
    elif state == "js_regexp":
        text = _js_str(text, _JS_REGEXP_EXTRA) or "(?:)"
    elif state == "css":
        text = text if _SAFE_CSS_VALUE.fullmatch(text) and "expression" not in text.lower() else FILTERED
    elif state in ("css_dq", "css_sq"):
        text = "".join(ch if ch.isalnum() or ch in " -_.,#%" else f"\\{ord(ch):x} " for ch in text)
    if ctx.delim == " ":
        return _replace(text, _NOSPACE_TABLE) or FILTERED
    if ctx.delim:
        return _replace(text, _HTML_TABLE)
    return text
