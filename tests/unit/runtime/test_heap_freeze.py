"""The startup heap freeze: garbage is collected first, survivors leave the collector's walks."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from tokenrelay.heap import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Leave the test process as it was: nothing frozen before, nothing frozen after."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_freeze_moves_the_live_objects_out_of_the_collectors_walks() -> None:
    kept = [_Node() for _ in range(10)]
    frozen = freeze_startup_heap()
    assert frozen == gc.get_freeze_count()
    assert frozen > len(kept)
    assert all(not gc.is_finalized(node) for node in kept)  # still alive, only frozen
    # what the collector still walks is what was created after the freeze
    assert len(gc.get_objects()) < frozen


@pytest.mark.usefixtures("unfrozen")
def test_garbage_cycles_from_startup_are_collected_before_the_freeze() -> None:
    """A cycle that is garbage at freeze time would otherwise stay forever: it is collected first."""
    first, second = _Node(), _Node()
    first.peer, second.peer = second, first
    probe = weakref.ref(first)
    del first, second
    freeze_startup_heap()
    assert probe() is None
