"""RFC 6749 §5.2 error answers and the no-store JSON answers every dev IdP endpoint gives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

__all__ = ["BASIC_CHALLENGE", "OAuthErrorResponse", "invalid_client", "invalid_request", "no_store_json"]

#: RFC 6749 §5.2: a 401 to a client that tried HTTP Basic carries this challenge.
BASIC_CHALLENGE = 'Basic realm="tokenrelay-dev-idp", charset="UTF-8"'

#: RFC 6749 §5.1: token answers (and anything else carrying credentials) must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthErrorResponse(Exception):
    """An RFC 6749 §5.2 error the endpoint answers with. ``description`` never contains a credential."""

    def __init__(
        self, error: str, description: str, *, status: int = 400, basic: bool = False, client_id: str | None = None
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        #: Whether the client used HTTP Basic, so a 401 must carry ``WWW-Authenticate``.
        self.basic = basic
        #: The client the request claimed to be, when known (for the stats; never shown to the caller).
        self.client_id = client_id

    def response(self) -> web.Response:
        """The JSON error answer, with the Basic challenge when RFC 6749 §5.2 asks for one."""
        headers = dict(_NO_STORE)
        if self.status == 401 and self.basic:
            headers["WWW-Authenticate"] = BASIC_CHALLENGE
        body = {"error": self.error, "error_description": self.description}
        return web.json_response(body, status=self.status, headers=headers)


def invalid_client(description: str, *, basic: bool, client_id: str | None = None) -> OAuthErrorResponse:
    """RFC 6749 §5.2 ``invalid_client``: always 401, so clients and proxies can tell it from a bad request."""
    return OAuthErrorResponse("invalid_client", description, status=401, basic=basic, client_id=client_id)


def invalid_request(description: str) -> OAuthErrorResponse:
    """RFC 6749 §5.2 ``invalid_request`` (400)."""
    return OAuthErrorResponse("invalid_request", description)


def no_store_json(body: Mapping[str, Any], *, status: int = 200) -> web.Response:
    """A JSON answer with ``Cache-Control: no-store`` and ``Pragma: no-cache``."""
    return web.json_response(dict(body), status=status, headers=_NO_STORE)
