"""Keeping the garbage collector's full collections cheap in a long-running server.

Python's cyclic garbage collector now and then runs a *full* collection, which walks every container object the
process holds. Most of a tokenrelay process is what startup left behind and never frees: imported modules,
pydantic's validators, the compiled configuration, TLS and crypto objects. Walking them on every full collection
cost the proxy about 8 µs per request in ``bench/run.py`` (a concurrent A/B, 5 pairs, every pair 8–11 µs lower
with the freeze; ``docs/performance.md``), for nothing: none of it is garbage.

``gc.freeze()`` (Python's documented tool for this) moves everything alive at that moment into a permanent
generation the collector no longer walks. Frozen objects are still freed by reference counting as usual; only a
frozen object caught in a reference *cycle* would stay until exit. That can happen at most once — to what the
startup configuration left when a reload replaces it — so the cost is bounded by one configuration's objects and
never grows. Raising the collection thresholds was measured too and made no difference (docs/performance.md).
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]


def freeze_startup_heap() -> int:
    """Collect startup's garbage, then exclude every surviving object from future collections.

    Call it once, after startup (listeners bound, first configuration compiled) and before traffic: what is
    alive then is what the process keeps. Returns how many objects are frozen (for the log).
    """
    gc.collect()  # garbage frozen now would never be collected
    gc.freeze()
    return gc.get_freeze_count()
