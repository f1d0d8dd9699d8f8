"""Fixtures shared by the whole suite. Keep this small: layer-specific helpers live beside their tests."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def unused_loopback_port() -> int:
    """A 127.0.0.1 port with nothing listening (bound, then released): connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
