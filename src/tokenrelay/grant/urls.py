"""WHATWG URL resolution of ``token_path`` / ``refresh_path`` / ``revoke_path`` against ``token_host``.

simple-oauth2 resolves endpoint paths with ``new URL(path, tokenHost)``. Python's ``urljoin`` follows RFC 3986
and differs where users get surprised (percent-encoding of spaces and non-ASCII, ``\\`` as ``/``, ``%2e``
dot segments, the default port), so this module implements the WHATWG algorithm for the two schemes a token
endpoint can have (``http``/``https``). Only what resolution needs is implemented; the result is an
already-encoded absolute URL that the transport sends verbatim.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["ParsedURL", "is_loopback_host", "parse_http_url", "resolve_url"]

_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_TAB_OR_NEWLINE: Final = re.compile(r"[\t\n\r]")
_C0_OR_SPACE: Final = "".join(chr(c) for c in range(0x21))
_PATH_EXTRA: Final = frozenset(' "#<>?`{}')
_QUERY_EXTRA: Final = frozenset(" \"#<>'")
_DOT: Final = frozenset({".", "%2e"})
_DOT_DOT: Final = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})


@dataclass(frozen=True, slots=True)
class ParsedURL:
    """An absolute http(s) URL split into the parts resolution works on (path already split on ``/``)."""

    scheme: str
    authority: str
    segments: tuple[str, ...]
    query: str | None

    def __str__(self) -> str:
        path = "/" + "/".join(_encode(s, _PATH_EXTRA) for s in self.segments)
        query = "" if self.query is None else "?" + _encode(self.query, _QUERY_EXTRA)
        return f"{self.scheme}://{self.authority}{path}{query}"


def _encode(text: str, extra: frozenset[str]) -> str:
    """Percent-encode C0 controls, non-ASCII (as UTF-8) and ``extra``; existing ``%XX`` stay as they are."""
    out: list[str] = []
    for char in text:
        if char <= "\x1f" or char >= "\x7f" or char in extra:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            out.append(char)
    return "".join(out)


def _clean(text: str) -> str:
    return _TAB_OR_NEWLINE.sub("", text.strip(_C0_OR_SPACE)).replace("\\", "/")


def _split_rest(rest: str) -> tuple[str, str | None]:
    """Split ``path?query#fragment`` into path and query; the fragment is never sent."""
    rest = rest.split("#", 1)[0]
    path, sep, query = rest.partition("?")
    return path, (query if sep else None)


def _normalize_authority(scheme: str, authority: str) -> str:
    userinfo, at, hostport = authority.rpartition("@")
    if hostport.startswith("["):
        host, _, port_part = hostport.partition("]")
        host += "]"
        port = port_part[1:] if port_part.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    if not host:
        raise ValueError("URL has an empty host")
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    host = host.lower()
    if port and not port.isdigit():
        raise ValueError("URL has an invalid port")
    port = str(int(port)) if port else ""
    port_text = "" if not port or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{userinfo}{at}{host}{port_text}"


def _apply_segments(base: list[str], path: str) -> tuple[str, ...]:
    """Append the ``/``-separated ``path`` to ``base`` resolving ``.`` and ``..`` the WHATWG way."""
    parts = path.split("/")
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        lowered = part.lower()
        if lowered in _DOT_DOT:
            if base:
                base.pop()
            if last:
                base.append("")
        elif lowered in _DOT:
            if last:
                base.append("")
        else:
            base.append(part)
    return tuple(base)


def parse_http_url(text: str) -> ParsedURL:
    """Parse an absolute ``http``/``https`` URL; raise ``ValueError`` for anything else."""
    cleaned = _clean(text)
    match = _SCHEME.match(cleaned)
    scheme = match.group(1).lower() if match else ""
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("URL must use the http or https scheme")
    rest = cleaned[match.end() :].lstrip("/") if match else ""
    return _parse_after_scheme(scheme, rest)


def _parse_after_scheme(scheme: str, rest: str) -> ParsedURL:
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = _normalize_authority(scheme, rest[:end])
    path, query = _split_rest(rest[end:])
    return ParsedURL(scheme, authority, _apply_segments([], path[1:] if path else ""), query)


def resolve_url(reference: str, base: str | ParsedURL) -> str:
    """``new URL(reference, base).href`` without the fragment, for an http(s) ``base``."""
    base_url = base if isinstance(base, ParsedURL) else parse_http_url(base)
    ref = _clean(reference)
    match = _SCHEME.match(ref)
    if match:
        scheme = match.group(1).lower()
        rest = ref[match.end() :]
        if scheme != base_url.scheme or rest.startswith("/"):
            return str(parse_http_url(ref))
        ref = rest  # "http:path" against an http base is relative (WHATWG "special relative" state)
    if ref.startswith("//"):
        return str(_parse_after_scheme(base_url.scheme, ref[2:]))
    path, query = _split_rest(ref)
    if not path:
        chosen_query = query if query is not None else base_url.query
        return str(ParsedURL(base_url.scheme, base_url.authority, base_url.segments, chosen_query))
    if path.startswith("/"):
        segments = _apply_segments([], path[1:])
    else:
        segments = _apply_segments(list(base_url.segments[:-1]), path)
    return str(ParsedURL(base_url.scheme, base_url.authority, segments, query))


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) only reaches this machine.

    ``localhost`` and loopback addresses (127.0.0.0/8, ``::1``) count; any other name counts as remote, because
    what it resolves to is not known here. The one answer to "is this loopback?" for every place that relaxes
    a rule for local use (plain-http discovery, listeners without an access policy, the development servers).
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
