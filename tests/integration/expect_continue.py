"""``Expect: 100-continue`` spoken on a raw socket: HTTP clients hide the interim answer these tests assert on.

Shared by the forwarding-path tests (``proxy/``) and the ``serve`` tests (``through_proxy/``), which check the
same protocol rule from two entry points.
"""

from __future__ import annotations

import asyncio

#: How long to wait for each answer the server owes.
_TIMEOUT = 5.0


async def first_answer_head(address: tuple[str, int], path: str) -> bytes:
    """Send a PUT head with ``Expect: 100-continue`` and no body; return the first answer head that comes back."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(f"PUT {path} HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode())
        await writer.drain()
        async with asyncio.timeout(_TIMEOUT):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
        await writer.wait_closed()


async def put_after_continue(address: tuple[str, int], path: str, body: bytes = b"hello") -> tuple[bytes, bytes]:
    """PUT ``body`` with ``Expect: 100-continue``, sending it only after the interim answer.

    Returns the first answer head and everything after it (the connection is closed by the request).
    """
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(
            f"PUT {path} HTTP/1.1\r\nHost: h\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        async with asyncio.timeout(_TIMEOUT):
            interim = await reader.readuntil(b"\r\n\r\n")
        writer.write(body)
        await writer.drain()
        async with asyncio.timeout(_TIMEOUT):
            rest = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    return interim, rest
