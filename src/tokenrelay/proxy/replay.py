"""One replay on an upstream 401: when it applies, and keeping the request body so it can be sent twice.

An upstream 401 usually means the token was revoked or expired early (key rotation, clock skew, a restarted
authorization server). The handler then invalidates exactly that token, fetches a fresh one and replays the
request **once**; whatever the replay returns is final, so a misconfigured upstream cannot cause a loop.

A body can only be sent twice if it was kept. Bodies up to ``max_replay_body`` are buffered whole (bounded
memory); a larger body is streamed through — what was already read, then the rest — and its 401 is returned as
is. ``WWW-Authenticate: Bearer error="insufficient_scope"`` (RFC 6750 §3.1) is a permissions answer, not an
expired token: a new token would get the same answer, so it is never replayed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from aiohttp import StreamReader
from multidict import MultiMapping

from tokenrelay.proxy.routing import Route

__all__ = ["NO_BODY", "RequestBody", "read_body", "wants_replay"]

_INSUFFICIENT_SCOPE: Final = re.compile(r'error\s*=\s*"?insufficient_scope\b', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RequestBody:
    """The inbound body, either whole (``complete``: can be sent again) or a head plus the unread rest."""

    head: bytes
    rest: StreamReader | None  # None when ``head`` is the whole body
    present: bool  # False for a request without a body (GET): send no body at all

    @property
    def complete(self) -> bool:
        return self.rest is None

    def payload(self) -> bytes | AsyncIterator[bytes] | None:
        """What to hand the client session: the bytes, a stream of head + rest, or nothing."""
        if not self.present:
            return None
        if self.rest is None:
            return self.head
        return _chain(self.head, self.rest)


#: The body of every request without one (a value: shared rather than built per request, and no ``read_body``
#: coroutine for it).
NO_BODY: Final = RequestBody(b"", None, present=False)


async def read_body(content: StreamReader, limit: int) -> RequestBody:
    """Read a request's body up to ``limit`` bytes; stop early (memory stays bounded) once it is known to be larger.

    A negative ``limit`` means "no replay possible": nothing is buffered, the body streams straight through.
    For a request without a body use :data:`NO_BODY`.
    """
    if limit < 0:
        return RequestBody(b"", content, present=True)
    # Whole chunks as they arrived (``readany`` neither splits nor joins them), joined once at the end: a body
    # that came in one chunk (most small ones) is never copied. Memory stays within ``limit`` + one chunk.
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await content.readany()
        if not chunk:
            return RequestBody(chunks[0] if len(chunks) == 1 else b"".join(chunks), None, present=True)
        chunks.append(chunk)
        size += len(chunk)
    return RequestBody(b"".join(chunks), content, present=True)


async def _chain(head: bytes, rest: StreamReader) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest.iter_any():
        yield chunk


def wants_replay(route: Route, status: int, headers: MultiMapping[str]) -> bool:
    """Whether an upstream answer asks for a fresh token (before considering whether the body allows it)."""
    if route.binding is None or not route.retry_on_401 or status not in route.retry_statuses:
        return False
    return not any(_INSUFFICIENT_SCOPE.search(v) for v in headers.getall("WWW-Authenticate", ()))
