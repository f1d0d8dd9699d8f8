"""The request id: one identifier follows a request through the client, the proxy's logs and the upstream.

A client-supplied ``X-Request-Id`` is kept when it is sane (short, visible ASCII) so a caller can correlate its
own logs; anything else is replaced, so a hostile value cannot inject text into log lines or upstream headers.
A fresh id is 128 random bits as 32 hex digits — the shape of a ``uuid4().hex`` at a fraction of its cost (it is
made on every request); ids correlate log lines, they are not secrets. The bits come from ``os.urandom`` in
blocks of :data:`_BATCH` ids (one system call per block instead of one per request); a forked child drops the
parent's unused block so the two processes never hand out the same ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Final

from multidict import CIMultiDictProxy

__all__ = ["HEADER", "new_request_id", "request_id_for"]

HEADER: Final = "X-Request-Id"
_MAX_LENGTH: Final = 200
_BATCH: Final = 128
_HEX_DIGITS: Final = 32


def _fresh_ids() -> Iterator[str]:
    """Endless fresh ids, 32 hex digits each, cut from one ``os.urandom`` block per :data:`_BATCH` ids."""
    while True:
        block = os.urandom(_BATCH * _HEX_DIGITS // 2).hex()
        for start in range(0, len(block), _HEX_DIGITS):
            yield block[start : start + _HEX_DIGITS]


new_request_id = _fresh_ids().__next__


def _reset_after_fork() -> None:
    global new_request_id  # the generator is process-wide state; a child must not reuse the parent's block
    new_request_id = _fresh_ids().__next__


os.register_at_fork(after_in_child=_reset_after_fork)


def request_id_for(headers: CIMultiDictProxy[str]) -> str:
    """The inbound ``X-Request-Id`` when acceptable, else a fresh random one (32 hex digits)."""
    value = headers.get(HEADER)
    if value and len(value) <= _MAX_LENGTH and value.isascii() and value.isprintable() and " " not in value:
        return value
    return new_request_id()
