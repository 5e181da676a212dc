"""URL checks with Go ``net/url.Parse`` semantics (which differ from ``urllib``: ``host:9090`` has scheme
``host``) and password redaction for display."""

from __future__ import annotations

import re
from dataclasses import dataclass

from narthex.config.errors import go_quote

_SCHEME_CHARS = re.compile(r"[A-Za-z0-9+.\-]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class URLError(ValueError):
    """A string Go's ``url.Parse`` refuses."""


@dataclass(frozen=True)
class ParsedURL:
    scheme: str
    host: str
    opaque: bool


def _scheme(raw: str) -> tuple[str, str]:
    for i, ch in enumerate(raw):
        if ch.isascii() and ch.isalpha():
            continue
        if _SCHEME_CHARS.match(ch):
            if i == 0:
                return "", raw
            continue
        if ch == ":":
            if i == 0:
                raise URLError(f"parse {go_quote(raw)}: missing protocol scheme")
            return raw[:i].lower(), raw[i + 1 :]
        return "", raw
    return "", raw


def parse_url(raw: str) -> ParsedURL:
    """Split ``raw`` as Go does; raise :class:`URLError` where Go's parser fails."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise URLError(f"parse {go_quote(raw)}: net/url: invalid control character in URL")
    text = raw.split("#", 1)[0]
    scheme, rest = _scheme(text)
    rest = rest.split("?", 1)[0]
    if _BAD_ESCAPE.search(rest):
        bad = rest[_BAD_ESCAPE.search(rest).start() :][:3]  # type: ignore[union-attr]
        raise URLError(f"parse {go_quote(raw)}: invalid URL escape {go_quote(bad)}")
    if scheme and not rest.startswith("/"):
        return ParsedURL(scheme, "", True)
    if not scheme and not rest.startswith("/"):
        segment = rest.split("/", 1)[0]
        if ":" in segment:
            raise URLError(f"parse {go_quote(raw)}: first path segment in URL cannot contain colon")
    host = ""
    if rest.startswith("//"):
        authority = rest[2:].split("/", 1)[0]
        host = authority.rsplit("@", 1)[-1]
        port = host.rsplit("]", 1)[-1] if host.startswith("[") else host
        if ":" in port:
            port_text = port.rsplit(":", 1)[1]
            if not port_text.isdigit() and port_text != "":
                raise URLError(f"parse {go_quote(raw)}: invalid port {go_quote(':' + port_text)} after host")
    return ParsedURL(scheme, host, False)


def redact_url(raw: str) -> str:
    """``http://user:pass@host`` -> ``http://user:xxxxx@host`` (as ``config.URL.Redacted``)."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/@]*):([^/@]*)@", raw)
    if match is None:
        return raw
    return f"{match.group(1)}{match.group(2)}:xxxxx@{raw[match.end() :]}"
