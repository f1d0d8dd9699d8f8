"""The request id: one identifier follows a request through the client, the proxy's logs and the upstream.

A client-supplied ``X-Request-Id`` is kept when it is sane (short, visible ASCII) so a caller can correlate its
own logs; anything else is replaced, so a hostile value cannot inject text into log lines or upstream headers.
A fresh id is 128 random bits as 32 hex digits — the shape of a ``uuid4().hex`` at a quarter of its cost (it is
made on every request); ids correlate log lines, they are not secrets.
"""

from __future__ import annotations

import os
from typing import Final

from multidict import CIMultiDictProxy

__all__ = ["HEADER", "request_id_for"]

HEADER: Final = "X-Request-Id"
_MAX_LENGTH: Final = 200


def request_id_for(headers: CIMultiDictProxy[str]) -> str:
    """The inbound ``X-Request-Id`` when acceptable, else a fresh random one (32 hex digits)."""
    value = headers.get(HEADER)
    if value and len(value) <= _MAX_LENGTH and value.isascii() and value.isprintable() and " " not in value:
        return value
    return os.urandom(16).hex()
