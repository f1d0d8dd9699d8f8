"""The grant core's only HTTP: sends prepared requests with aiohttp and translates its failures.

Requests go out exactly as prepared: the URL is already encoded (no re-quoting), aiohttp's automatic
``Accept-Encoding``/``User-Agent`` are suppressed (simple-oauth2 sends neither unless configured), redirects
are never followed (they would resend client credentials), and the body is read up to a bound. Every aiohttp
or TLS failure becomes a :class:`TransportError` here, ``from`` the original.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import Final

import aiohttp
import structlog
from multidict import CIMultiDict
from yarl import URL

from tokenrelay.grant.config import HttpConfig
from tokenrelay.grant.errors import TokenResponseError, TransportError
from tokenrelay.grant.request import PreparedRequest
from tokenrelay.grant.response import MAX_RESPONSE_BYTES, RawResponse

__all__ = ["Transport", "build_ssl_context", "safe_url"]

logger = structlog.get_logger("tokenrelay.grant")

_SKIP_AUTO_HEADERS: Final = ("Accept-Encoding", "User-Agent")
_TLSKey = tuple[str | None, str | None, str | None, bool]


def safe_url(url: str) -> str:
    """The URL without userinfo or query (either may carry credentials): fit for logs and messages."""
    parsed = URL(url, encoded=True)
    if not parsed.is_absolute():
        return parsed.path
    return str(parsed.with_user(None).with_query(None).with_fragment(None))


def build_ssl_context(http: HttpConfig) -> ssl.SSLContext:
    """A client TLS context: system CAs or ``ca_file``, an optional client certificate (mTLS), ``verify``."""
    context = ssl.create_default_context(cafile=http.ca_file)
    if http.cert_file is not None:
        context.load_cert_chain(http.cert_file, http.key_file)
    if not http.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _timeout(http: HttpConfig) -> aiohttp.ClientTimeout:
    # Seconds, the whole request. ``http.timeout`` defaults to 30 s (simple-oauth2 has none); ``None`` is no
    # timeout at all: ``total=None`` also overrides the session's own default.
    return aiohttp.ClientTimeout(total=http.timeout)


class Transport:
    """One aiohttp session per client (created lazily, closed by :meth:`close`) unless one is passed in."""

    def __init__(self, *, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owns_session = session is None
        self._ssl_contexts: dict[_TLSKey, ssl.SSLContext] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is not None and self._session.closed and not self._owns_session:
            raise TransportError("the aiohttp session given to the client is closed")
        if self._session is None or (self._owns_session and self._session.closed):
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    def _ssl_for(self, http: HttpConfig) -> ssl.SSLContext | bool:
        if not http.has_tls_options:
            return True
        key = (http.ca_file, http.cert_file, http.key_file, http.verify)
        if key not in self._ssl_contexts:
            try:
                self._ssl_contexts[key] = build_ssl_context(http)
            except (OSError, ssl.SSLError) as exc:
                raise TransportError(f"cannot load the TLS files: {type(exc).__name__}") from exc
        return self._ssl_contexts[key]

    async def post(self, request: PreparedRequest, http: HttpConfig) -> RawResponse:
        """POST a prepared request; the answer, whatever its status."""
        return await self._send(request.method, request.url, request.headers, request.body, http)

    async def get(self, url: str, http: HttpConfig, headers: Iterable[tuple[str, str]] = ()) -> RawResponse:
        """GET ``url`` (metadata discovery)."""
        return await self._send("GET", url, tuple(headers), None, http)

    async def _send(
        self, method: str, url: str, headers: tuple[tuple[str, str], ...], body: bytes | None, http: HttpConfig
    ) -> RawResponse:
        shown = safe_url(url)
        started = time.perf_counter()
        ssl_option = self._ssl_for(http)
        try:
            async with self._get_session().request(
                method,
                URL(url, encoded=True),
                data=body,
                headers=CIMultiDict(headers),
                skip_auto_headers=_SKIP_AUTO_HEADERS,
                allow_redirects=False,
                ssl=ssl_option,
                timeout=_timeout(http),
            ) as answer:
                raw = RawResponse(answer.status, answer.reason or "", dict(answer.headers), await _read(answer))
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as exc:
            logger.debug("grant.http.failed", method=method, url=shown, error=type(exc).__name__)
            raise _translate(exc, shown) from exc
        duration = round(time.perf_counter() - started, 6)
        logger.debug("grant.http", method=method, url=shown, status=raw.status, duration=duration)
        return raw

    async def close(self) -> None:
        """Close the session if this transport created it; a session passed in belongs to the caller."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()


async def _read(answer: aiohttp.ClientResponse) -> bytes:
    """The body, refusing more than :data:`MAX_RESPONSE_BYTES` (checked as it streams in)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise TokenResponseError(
                f"the answer is larger than {MAX_RESPONSE_BYTES} bytes",
                status=answer.status,
                headers=dict(answer.headers),
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _translate(exc: BaseException, url: str) -> TransportError:
    """The one place aiohttp's exception zoo becomes the grant core's ``TransportError``."""
    if isinstance(exc, TimeoutError):
        return TransportError("the request timed out", url=url, timeout=True)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError | ssl.SSLError):
        return TransportError(f"TLS failure: {type(exc).__name__}", url=url)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return TransportError("DNS lookup failed", url=url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return TransportError(f"connection failed: {reason}", url=url)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return TransportError(f"connection broken: {type(exc).__name__}", url=url)
    return TransportError(f"request failed: {type(exc).__name__}", url=url)
