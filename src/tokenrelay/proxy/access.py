"""Inbound access control: who may borrow the proxy's credentials.

Two independent checks, each active only when configured: the peer address must be inside one of
``access.allow_clients`` (CIDRs), and the request must carry one of ``access.api_keys`` in
``access.api_key_header``. With neither configured every client is allowed; refusing to *listen* on a
non-loopback address without a policy is the startup check's job, not this module's.

Keys are compared in constant time against *every* configured key, so the response time says nothing about
which key (or which prefix of a key) was close.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from multidict import CIMultiDictProxy

from tokenrelay.proxy.errors import ProxyError
from tokenrelay.settings import AccessSettings

__all__ = ["AccessPolicy", "peer_address"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def peer_address(peer: str | None) -> _Address | None:
    """The peer's IP address as the access checks compare it, or ``None`` when there is none to check.

    An IPv6 zone (``fe80::1%eth0``) is dropped and an IPv4-mapped IPv6 address (``::ffff:10.0.0.1``, what a
    dual-stack socket reports for an IPv4 client) is unwrapped, so ``10.0.0.0/8`` matches it. ``None`` for a Unix
    socket, an unknown transport or garbage: such a peer never matches a network.
    """
    if peer is None:
        return None
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """A compiled :class:`~tokenrelay.settings.AccessSettings`."""

    networks: tuple[_Network, ...]
    keys: tuple[bytes, ...]
    key_header: str

    @classmethod
    def from_settings(cls, settings: AccessSettings) -> AccessPolicy:
        return cls(
            networks=tuple(settings.allow_clients),
            keys=tuple(k.get_secret_value().encode("utf-8") for k in settings.api_keys),
            key_header=settings.api_key_header,
        )

    def check(self, peer: str | None, headers: CIMultiDictProxy[str]) -> None:
        """Raise ``ProxyError("forbidden")`` unless the client passes every configured check."""
        if self.networks and not self._peer_allowed(peer):
            raise ProxyError("forbidden", "this client address is not allowed to use the proxy")
        if self.keys and not self._key_valid(headers.get(self.key_header)):
            raise ProxyError("forbidden", f"a valid {self.key_header} header is required")

    def _peer_allowed(self, peer: str | None) -> bool:
        address = peer_address(peer)
        return address is not None and any(address in network for network in self.networks)

    def _key_valid(self, presented: str | None) -> bool:
        if presented is None:
            return False
        candidate = presented.encode("utf-8", "surrogateescape")
        valid = False
        for key in self.keys:  # no early exit: every key is compared
            valid |= hmac.compare_digest(candidate, key)
        return valid
