"""Counting the proxied requests being handled, so a graceful shutdown knows when it may stop waiting."""

from __future__ import annotations

import asyncio

__all__ = ["InFlight"]


class InFlight:
    """How many proxied requests are being handled; the drain waits for zero (and logs what it had to cut).

    ``draining`` turns true when the graceful shutdown starts, so ``/readyz`` fails at once. The proxy handler
    counts its own requests (one ``enter``/``leave`` pair per request, no wrapper around it).
    """

    __slots__ = ("_idle", "count", "draining")

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def start_draining(self) -> None:
        """Mark the shutdown as started (one way: a drained proxy never becomes ready again)."""
        self.draining = True

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no request is in flight."""
        await self._idle.wait()
