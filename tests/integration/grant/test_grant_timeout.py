"""A token endpoint that accepts the connection and never answers: ``get_token`` gives up after ``http.timeout``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tokenrelay import ClientCredentials
from tokenrelay.errors import TransportError


@pytest.fixture(name="silent_endpoint")
async def _silent_endpoint() -> AsyncIterator[str]:
    """A loopback server that reads the request and never writes a byte back."""
    connections: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()


def config(base: str, timeout: float | None) -> dict[str, object]:
    return {
        "client": {"id": "client-id", "secret": "s3cr3t"},
        "auth": {"token_host": base},
        "http": {"timeout": timeout},
    }


async def test_get_token_against_a_silent_endpoint_times_out(silent_endpoint: str) -> None:
    """The configured timeout ends the wait with ``TransportError(timeout=True)`` instead of hanging."""
    async with ClientCredentials(config(silent_endpoint, 0.2)) as client:
        with pytest.raises(TransportError) as caught:
            await asyncio.wait_for(client.get_token(), 5)
    assert caught.value.timeout is True


async def test_get_token_with_a_null_timeout_keeps_waiting(silent_endpoint: str) -> None:
    """``http.timeout: null`` is simple-oauth2's behaviour: the request waits as long as the endpoint does."""
    async with ClientCredentials(config(silent_endpoint, None)) as client:
        pending = asyncio.create_task(client.get_token())
        done, _ = await asyncio.wait({pending}, timeout=0.3)
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
    assert not done
