"""Request helpers shared by the dev IdP's endpoints: the issuer URL, form bodies, assertion audiences."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from tokenrelay.devidp.responses import invalid_request
from tokenrelay.devidp.state import DEV_IDP_STATE

__all__ = ["assertion_audiences", "issuer_for", "read_form"]


def issuer_for(request: web.Request) -> str:
    """The issuer URL: the configured/bound one, else derived from the request (loopback only, so trusted)."""
    state = request.app[DEV_IDP_STATE]
    return state.issuer or f"{request.scheme}://{request.host}"


async def read_form(request: web.Request) -> MultiDictProxy[str]:
    """The request's form parameters; RFC 6749 §3.2 requires ``application/x-www-form-urlencoded``."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise invalid_request("the body must be application/x-www-form-urlencoded")
    form = await request.post()
    return MultiDictProxy(MultiDict((k, v) for k, v in form.items() if isinstance(v, str)))


def assertion_audiences(request: web.Request) -> tuple[str, ...]:
    """What a client assertion's ``aud`` may name (RFC 7523 §3 #3): the token endpoint or the issuer.

    The URL of the endpoint being called is accepted too, for assertions sent to ``/revoke`` or ``/introspect``.
    """
    issuer = issuer_for(request)
    return (f"{issuer}/token", issuer, f"{issuer}{request.path}")
