"""The dev IdP's registered clients: the value type, the embedded demo client, and the clients file.

A clients file (YAML or JSON; JSON is YAML) declares extra clients for local development and CI::

    clients:
      - client_id: billing
        client_secret: s3cret            # or client_secret_env: BILLING_SECRET
        auth_methods: [client_secret_basic, client_secret_post]
        scopes: [invoices.read]
        audience: https://billing.internal
      - client_id: signer
        auth_methods: [private_key_jwt]
        jwks_file: signer.jwks.json      # a JWKS document or a single public JWK; relative to the clients file
        # or inline: jwks: {keys: [...]}  /  jwk: {...}

pydantic validates the file (this is a configuration edge); every problem is reported as one
:class:`~tokenrelay.grant.errors.ConfigError` with dotted field paths.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tokenrelay.grant.errors import ConfigError, FieldError

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_AUDIENCE",
    "DEMO_CLIENT_ID",
    "DEMO_SCOPES",
    "SECRET_ENV",
    "DevClient",
    "demo_client",
    "load_clients_file",
    "resolve_demo_secret",
]

#: The client authentication methods the dev IdP implements, by their RFC 7591 names.
AuthMethod = Literal["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"]
AUTH_METHODS: tuple[str, ...] = get_args(AuthMethod)
_SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post", "client_secret_jwt"})

DEMO_CLIENT_ID = "demo-client"
DEMO_SCOPES = ("sample.read", "sample.write")
#: The ``aud`` of a token whose request named no audience/resource and whose client has no default.
DEFAULT_AUDIENCE = "tokenrelay-sample-api"
#: Environment variable with a fixed demo-client secret, so scripts can know it in advance.
SECRET_ENV = "TOKENRELAY_DEV_IDP_SECRET"  # noqa: S105 (a variable name, not a secret)


@dataclass(frozen=True, slots=True)
class DevClient:
    """A registered client. ``secret`` never appears in the repr; ``jwks`` holds only public keys."""

    client_id: str
    secret: str | None = field(default=None, repr=False)
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")
    jwks: tuple[Mapping[str, Any], ...] = ()
    allowed_scopes: tuple[str, ...] = ()
    audience: str | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.auth_methods if m not in AUTH_METHODS]
        if unknown:
            raise ValueError(f"client {self.client_id!r}: unsupported auth methods {unknown}")
        if _SECRET_METHODS.intersection(self.auth_methods) and not self.secret:
            raise ValueError(f"client {self.client_id!r}: a secret-based auth method needs a secret")
        if "private_key_jwt" in self.auth_methods and not self.jwks:
            raise ValueError(f"client {self.client_id!r}: private_key_jwt needs a public JWK")


def resolve_demo_secret(secret: str | None = None) -> str:
    """The demo client's secret: the argument, else ``$TOKENRELAY_DEV_IDP_SECRET``, else a fresh random one."""
    return secret or os.environ.get(SECRET_ENV) or secrets.token_urlsafe(24)


def demo_client(secret: str) -> DevClient:
    """The embedded client of ``tokenrelay demo`` / ``dev-idp``: every secret-based method, the sample scopes."""
    return DevClient(
        client_id=DEMO_CLIENT_ID,
        secret=secret,
        auth_methods=("client_secret_basic", "client_secret_post", "client_secret_jwt"),
        allowed_scopes=DEMO_SCOPES,
    )


class _ClientModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    client_id: str = Field(min_length=1)
    client_secret: str | None = Field(default=None, alias="secret")
    client_secret_env: str | None = None
    auth_methods: tuple[AuthMethod, ...] = ("client_secret_basic", "client_secret_post")
    scopes: tuple[str, ...] = Field(default=(), alias="allowed_scopes")
    audience: str | None = None
    jwk: dict[str, Any] | None = None
    jwks: dict[str, Any] | None = None
    jwks_file: Path | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> _ClientModel:
        if sum(x is not None for x in (self.jwk, self.jwks, self.jwks_file)) > 1:
            raise ValueError("give at most one of jwk, jwks, jwks_file")
        if self.client_secret is not None and self.client_secret_env is not None:
            raise ValueError("give client_secret or client_secret_env, not both")
        return self


class _ClientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clients: list[_ClientModel] = Field(default_factory=list)


def load_clients_file(path: str | Path) -> tuple[DevClient, ...]:
    """Read a YAML/JSON clients file into :class:`DevClient` values; raise ``ConfigError`` on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _ClientsFile.model_validate(raw if raw is not None else {})
    except OSError as exc:
        raise ConfigError(f"cannot read clients file {path}: {exc.strerror}") from exc
    # ``from None`` below: YAML errors quote the offending line and pydantic's carry the input (secrets
    # included); chained, they would print in a traceback. The paths and messages say what to fix.
    except yaml.YAMLError:
        raise ConfigError(f"clients file {path} is not valid YAML/JSON") from None
    except ValidationError as exc:
        errors = [FieldError(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors(include_input=False)]
        raise ConfigError(errors, prefix=f"invalid clients file {path}") from None
    clients: list[DevClient] = []
    for index, model in enumerate(parsed.clients):
        try:
            clients.append(_to_client(model, path.parent))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                [FieldError(f"clients.{index}", str(exc))], prefix=f"invalid clients file {path}"
            ) from exc
    return tuple(clients)


def _to_client(model: _ClientModel, base: Path) -> DevClient:
    secret = model.client_secret
    if model.client_secret_env is not None:
        secret = os.environ.get(model.client_secret_env)
        if not secret:
            raise ValueError(f"environment variable {model.client_secret_env} is not set")
    return DevClient(
        client_id=model.client_id,
        secret=secret,
        auth_methods=model.auth_methods,
        jwks=_public_keys(model, base),
        allowed_scopes=model.scopes,
        audience=model.audience,
    )


def _public_keys(model: _ClientModel, base: Path) -> tuple[Mapping[str, Any], ...]:
    document: Mapping[str, Any] | None = model.jwks or model.jwk
    if model.jwks_file is not None:
        file = model.jwks_file if model.jwks_file.is_absolute() else base / model.jwks_file
        document = json.loads(file.read_text(encoding="utf-8"))
    if document is None:
        return ()
    keys = document.get("keys", [document])
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise ValueError("a JWKS must be an object with a 'keys' list of JWK objects")
    for key in keys:
        if any(name in key for name in ("d", "p", "q", "k")):
            raise ValueError("a client JWK must be a public key (found private key material)")
    return tuple(keys)
