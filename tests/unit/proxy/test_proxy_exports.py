"""The public surface of ``tokenrelay.proxy``: what other packages import is pinned here."""

from __future__ import annotations

import tokenrelay.proxy


def test_proxy_package_exports_exactly_its_public_api() -> None:
    assert set(tokenrelay.proxy.__all__) == {
        "ERRORS", "SERVER_OPTIONS", "AccessPolicy", "ErrorSpec", "ProxyError", "ProxyHandler", "Route",
        "RouteMatch", "RouteTable", "RuntimeView", "TokenBinding", "create_server", "error_response",
    }  # fmt: skip
    for name in tokenrelay.proxy.__all__:
        assert getattr(tokenrelay.proxy, name) is not None


def test_server_options_cancel_handlers_and_keep_bodies_compressed() -> None:
    assert tokenrelay.proxy.SERVER_OPTIONS == {"handler_cancellation": True, "auto_decompress": False}
