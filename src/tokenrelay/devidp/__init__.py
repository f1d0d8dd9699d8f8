"""The built-in development authorization server ("dev IdP") and the protected sample API.

Used by ``tokenrelay demo`` and ``tokenrelay dev-idp``, and by tests that need a real token endpoint on
loopback. A development tool: in-memory state, a key generated at start, loopback-only unless told otherwise.

Module map: ``keys`` (the RSA signing key, RFC 7638 kid), ``clients`` (registered clients, the clients file),
``config`` (``DevIdpConfig``), ``state`` (counters, faults, revocations), ``tokens`` (RFC 9068 JWTs),
``client_auth`` (RFC 6749 §2.3 / RFC 7523 client authentication), ``idp`` (discovery, JWKS, token endpoint),
``endpoints`` (revocation, introspection, ``/_dev/``), ``sample_api`` and ``key_sources`` (the resource
server), ``server`` (sockets, the CLI entry point).
"""

from __future__ import annotations

from tokenrelay.devidp.clients import DEMO_CLIENT_ID, DEMO_SCOPES, DevClient, demo_client, load_clients_file
from tokenrelay.devidp.config import DevIdpConfig
from tokenrelay.devidp.idp import create_idp_app
from tokenrelay.devidp.keys import SigningKey, generate_signing_key
from tokenrelay.devidp.sample_api import SAMPLE_API_STATE, SampleApiState, create_sample_api
from tokenrelay.devidp.server import DevStack, NonLoopbackError, run_dev_idp, start_dev_stack
from tokenrelay.devidp.state import DEV_IDP_STATE, DevIdpState, Fault

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_SCOPES",
    "DEV_IDP_STATE",
    "SAMPLE_API_STATE",
    "DevClient",
    "DevIdpConfig",
    "DevIdpState",
    "DevStack",
    "Fault",
    "NonLoopbackError",
    "SampleApiState",
    "SigningKey",
    "create_idp_app",
    "create_sample_api",
    "demo_client",
    "generate_signing_key",
    "load_clients_file",
    "run_dev_idp",
    "start_dev_stack",
]
