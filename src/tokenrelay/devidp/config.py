"""The dev IdP's configuration: one frozen value, built by the runner or by a test."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenrelay.devidp.clients import DEFAULT_AUDIENCE, DevClient
from tokenrelay.devidp.keys import SigningKey

__all__ = ["DevIdpConfig"]


@dataclass(frozen=True, slots=True)
class DevIdpConfig:
    """How a dev IdP behaves.

    ``issuer`` may stay ``None``: the runner sets it on the state once the port is bound, and until then it is
    derived from each request's scheme and ``Host`` (fine on loopback, which is all the dev IdP serves).
    ``expires_in`` is the token lifetime in seconds: it sets the JWT ``exp`` and, when ``include_expires_in``
    is true, the response's ``expires_in``. ``expires_in=0`` issues tokens that are already expired, and
    ``include_expires_in=False`` omits the field, so a client's fallback paths can be exercised.
    ``signing_key=None`` generates a fresh RSA key when the app is created.
    """

    issuer: str | None = None
    clients: tuple[DevClient, ...] = ()
    expires_in: int = 300
    include_expires_in: bool = True
    signing_key: SigningKey | None = field(default=None, repr=False)
    default_audience: str = DEFAULT_AUDIENCE
    #: Clock skew tolerated on client assertions (RFC 7523 ``exp``/``iat``/``nbf``), in seconds.
    assertion_leeway: float = 5.0
    #: Longest accepted assertion lifetime (``exp`` minus now), so the jti replay cache stays bounded.
    max_assertion_lifetime: float = 3600.0

    def __post_init__(self) -> None:
        if self.expires_in < 0:
            raise ValueError("expires_in must be >= 0")
        ids = [c.client_id for c in self.clients]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate client ids: {duplicates}")

    def client(self, client_id: str) -> DevClient | None:
        """The registered client with this id, if any."""
        return next((c for c in self.clients if c.client_id == client_id), None)
