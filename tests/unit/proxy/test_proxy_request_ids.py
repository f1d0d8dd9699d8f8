"""Fresh request ids: 32 hex digits, never repeated across the blocks they are cut from, nor across a fork."""

from __future__ import annotations

import os
import re

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from tokenrelay.proxy import request_id

_HEX32 = re.compile(r"[0-9a-f]{32}")


def test_fresh_ids_are_32_lowercase_hex_digits_across_several_blocks() -> None:
    ids = [request_id.new_request_id() for _ in range(3 * request_id._BATCH + 5)]
    assert all(_HEX32.fullmatch(value) for value in ids)


def test_fresh_ids_never_repeat_across_several_blocks() -> None:
    ids = [request_id.new_request_id() for _ in range(3 * request_id._BATCH + 5)]
    assert len(set(ids)) == len(ids)


def test_request_id_for_an_absent_header_is_a_fresh_id() -> None:
    first = request_id.request_id_for(CIMultiDictProxy(CIMultiDict()))
    second = request_id.request_id_for(CIMultiDictProxy(CIMultiDict()))
    assert _HEX32.fullmatch(first)
    assert _HEX32.fullmatch(second)
    assert first != second


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parents_unused_ids() -> None:
    request_id.new_request_id()  # a block is now cut and partly unused
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave without running any cleanup
        os.write(writer, request_id.new_request_id().encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(pid, 0)
    with os.fdopen(reader, "rb") as pipe:
        child = pipe.read().decode()
    assert _HEX32.fullmatch(child)
    assert child != request_id.new_request_id()
