"""The dev IdP's mutable state: counters, pending faults, revoked tokens and seen assertion ids.

One :class:`DevIdpState` per app, reachable as ``app[DEV_IDP_STATE]``. Tests and ``tokenrelay demo`` use it in
process (read counters, revoke a token, queue faults); over HTTP the same things are under ``/_dev/``. Everything
runs on the event loop, so no locks are needed.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from tokenrelay.devidp.config import DevIdpConfig
from tokenrelay.devidp.keys import SigningKey, generate_signing_key
from tokenrelay.devidp.tokens import IssuedToken, mint_access_token

__all__ = ["DEV_IDP_STATE", "RECENT_TOKENS", "DevIdpState", "Fault", "FaultBody", "TokenRecord"]

FaultBody = Literal["json", "garbage", "empty"]


#: How many issued tokens :attr:`DevIdpState.recent` remembers (metadata only, never the token itself).
RECENT_TOKENS = 100


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the dev IdP remembers of a token it issued: enough to revoke it, nothing to replay it."""

    jti: str
    client_id: str
    fingerprint: str
    scope: str
    issued_at: int
    expires_at: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON form shown under ``recent_tokens`` in ``/_dev/stats``."""
        return {
            "jti": self.jti,
            "client_id": self.client_id,
            "token": self.fingerprint,
            "scope": self.scope,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class Fault:
    """What the next token request gets instead of (or before) a normal answer.

    ``delay`` seconds pass before answering. A non-2xx ``status`` answers with an RFC 6749 §5.2 error object
    (``body="json"``), non-JSON bytes (``"garbage"``) or nothing (``"empty"``). ``status=200`` without ``body``
    only delays the real answer; with ``body`` it is a broken 2xx (no ``access_token`` / unparseable / empty).
    """

    status: int = 503
    delay: float = 0.0
    body: FaultBody | None = None

    def __post_init__(self) -> None:
        if not 200 <= self.status <= 599:
            raise ValueError("status must be an HTTP status between 200 and 599")
        if not 0 <= self.delay <= 60:
            raise ValueError("delay must be between 0 and 60 seconds")

    @property
    def replaces_answer(self) -> bool:
        """Whether this fault answers instead of the token endpoint (rather than only delaying it)."""
        return self.status >= 300 or self.body is not None


class DevIdpState:
    """Counters, faults, revocations and the replay cache of one running dev IdP."""

    def __init__(self, config: DevIdpConfig) -> None:
        self.config = config
        self.key: SigningKey = config.signing_key or generate_signing_key()
        #: The issuer URL; ``None`` until the runner knows the bound port (then derived per request).
        self.issuer: str | None = config.issuer
        self.revoked: set[str] = set()
        self._faults: deque[Fault] = deque()
        self._requests: dict[str, Counter[tuple[str, str]]] = {}
        self._counters: Counter[str] = Counter()
        self._seen_assertions: dict[tuple[str, str], float] = {}
        #: The most recently issued tokens, oldest first (bounded).
        self.recent: deque[TokenRecord] = deque(maxlen=RECENT_TOKENS)

    # -- revocation -------------------------------------------------------------------------------------
    def revoke(self, jti: str) -> bool:
        """Revoke the token with this ``jti``; ``False`` if it was already revoked."""
        if jti in self.revoked:
            return False
        self.revoked.add(jti)
        self._counters["revocations"] += 1
        return True

    def revoke_recent(self, client_id: str | None = None) -> int:
        """Revoke every remembered token (of ``client_id`` only, if given); returns how many were newly revoked.

        This is how ``tokenrelay demo`` and proxy tests make the sample API answer 401 to a token the proxy
        holds, to show the forced refresh and replay.
        """
        return sum(self.revoke(r.jti) for r in list(self.recent) if client_id in (None, r.client_id))

    def is_revoked(self, jti: str) -> bool:
        """Whether the token with this ``jti`` was revoked (the sample API asks this in process)."""
        return jti in self.revoked

    # -- faults ---------------------------------------------------------------------------------------
    def inject_faults(self, count: int, fault: Fault) -> None:
        """Make the next ``count`` token requests get ``fault``; replaces any faults still pending."""
        if count < 0:
            raise ValueError("count must be >= 0")
        self._faults = deque([fault] * count)

    def reset_faults(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    @property
    def faults_pending(self) -> int:
        """How many token requests will still get an injected fault."""
        return len(self._faults)

    def take_fault(self) -> Fault | None:
        """The fault for the token request being served, if one is pending (consumes it)."""
        if not self._faults:
            return None
        self._counters["faults_served"] += 1
        return self._faults.popleft()

    # -- assertions -----------------------------------------------------------------------------------
    def remember_assertion(self, client_id: str, jti: str, expires_at: float) -> bool:
        """Record a client assertion's ``jti``; ``False`` if it was seen before (a replay, RFC 7523 §3 #7)."""
        now = time.time()
        expired = [k for k, exp in self._seen_assertions.items() if exp < now - self.config.assertion_leeway]
        for k in expired:
            del self._seen_assertions[k]
        key = (client_id, jti)
        if key in self._seen_assertions:
            return False
        self._seen_assertions[key] = expires_at
        return True

    # -- issuing and counting -------------------------------------------------------------------------
    def mint(
        self,
        client_id: str,
        *,
        issuer: str,
        scope: Sequence[str] = (),
        audience: str | Sequence[str] | None = None,
        lifetime: int | None = None,
    ) -> IssuedToken:
        """Sign a token directly (tests use ``lifetime<=0`` for an expired one); counts as issued."""
        issued = mint_access_token(
            self.key,
            issuer=issuer,
            client_id=client_id,
            scope=scope,
            audience=audience if audience is not None else self.config.default_audience,
            lifetime=self.config.expires_in if lifetime is None else lifetime,
        )
        self._counters["tokens_issued"] += 1
        self.recent.append(
            TokenRecord(issued.jti, client_id, issued.fingerprint, issued.scope, issued.issued_at, issued.expires_at)
        )
        return issued

    def record(self, counter: str, client_id: str | None, outcome: str) -> None:
        """Count one request to an endpoint (``token``, ``revoke``, ``introspect``) by client and outcome."""
        # "-": answered before any client was identified (an injected fault, a malformed body); unknown ids
        # are folded into one label so stats stay bounded whatever clients send.
        name = "-" if client_id is None else client_id if self.config.client(client_id) else "(unknown)"
        self._requests.setdefault(counter, Counter())[(name, outcome)] += 1
        self._counters[f"{counter}_requests"] += 1

    def count(self, name: str) -> int:
        """One named counter (``token_requests``, ``tokens_issued``, ``revocations``, ``faults_served``...)."""
        return self._counters[name]

    def outcomes(self, counter: str = "token") -> dict[str, dict[str, int]]:
        """Requests to one endpoint as ``{client_id: {outcome: n}}``."""
        result: dict[str, dict[str, int]] = {}
        for (client_id, outcome), n in sorted(self._requests.get(counter, Counter()).items()):
            result.setdefault(client_id, {})[outcome] = n
        return result

    def stats(self) -> dict[str, Any]:
        """The ``GET /_dev/stats`` document."""
        return {
            "token_requests": self.outcomes("token"),
            "revoke_requests": self.outcomes("revoke"),
            "introspect_requests": self.outcomes("introspect"),
            "totals": {
                name: self._counters[name]
                for name in ("token_requests", "tokens_issued", "revocations", "faults_served")
            },
            "faults_pending": self.faults_pending,
            "revoked": len(self.revoked),
            "recent_tokens": [r.to_dict() for r in self.recent],
        }

    def reset_stats(self) -> None:
        """Zero every counter (revocations and pending faults stay)."""
        self._requests.clear()
        self._counters.clear()


#: Where a dev IdP app keeps its state: ``app[DEV_IDP_STATE]``.
DEV_IDP_STATE = web.AppKey("tokenrelay.devidp.state", DevIdpState)
