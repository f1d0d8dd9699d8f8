"""``create_admin_app(draining=...)``: once a graceful shutdown starts, readiness fails whatever the tokens."""

from __future__ import annotations

from tests.integration.admin.conftest import AdminStack, ClientFactory


async def test_readyz_fails_with_draining_once_the_drain_starts(
    stack: AdminStack, aiohttp_client: ClientFactory
) -> None:
    """Ready before; 503 ``{"status": "draining"}`` after, though the token is still valid; healthz stays 200."""
    state = {"draining": False}
    client = await aiohttp_client(stack.admin_app(draining=lambda: state["draining"]))
    await stack.fetch("api")
    assert (await client.get("/readyz")).status == 200
    state["draining"] = True
    response = await client.get("/readyz")
    assert (response.status, await response.json()) == (503, {"status": "draining"})
    assert response.headers["Cache-Control"] == "no-store"
    assert (await client.get("/healthz")).status == 200
