"""The proxy's configuration: one YAML/TOML file plus ``TOKENRELAY_*`` environment overrides.

This module is the configuration *schema* and the only place that knows the source order. Sources, highest
priority first: keyword arguments (the CLI's flags), environment variables (``TOKENRELAY_`` prefix, ``__`` for
nesting, e.g. ``TOKENRELAY_LISTEN__PORT=9000``), then the config file. Validation errors name the dotted path of
every bad field so that a bad file fails at startup with something a person can fix.

Profiles carry a grant-core configuration (``client``/``auth``/``options``/``http`` in either snake_case or
simple-oauth2's camelCase keys), validated by the grant core's own models so there is one source of truth, plus
what only a long-running proxy needs: where the secret comes from (``secret_file`` is re-read on change, for
Kubernetes secret rotation) and the token request parameters shared by every route of the profile.

``build_settings`` is the one constructor that applies the source order (``tokenrelay.config_loader`` reads the
file and reports errors); ``tokenrelay.config_redaction.redacted`` is the printable form, secrets masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tokenrelay.grant.config import validate_config
from tokenrelay.grant.errors import ConfigError

__all__ = [
    "AccessSettings",
    "AdminSettings",
    "ByteSize",
    "Duration",
    "HeaderSettings",
    "ListenSettings",
    "LogSettings",
    "MatchSettings",
    "ProfileSettings",
    "RouteSettings",
    "RouteTlsSettings",
    "ServerSettings",
    "Settings",
    "TimeoutSettings",
    "build_settings",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "gb": 1000**3}
#: Where a profile's client secret may come from, in both key spellings (snake_case and simple-oauth2's camelCase).
_SECRET_KEYS = ("secret",)
_SECRET_FILE_KEYS = ("secret_file", "secretFile")
_SECRET_ENV_KEYS = ("secret_env", "secretEnv")


def _parse_duration(value: object) -> object:
    """``"60s"``, ``"5m"``, ``"250ms"``, ``"1h"`` or a plain number of seconds -> seconds (float)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 250ms, 30s, 5m, 1h or a number of seconds)")
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    return value


def _parse_size(value: object) -> object:
    """``"1MiB"``, ``"512KiB"``, ``"10MB"`` or a plain number of bytes -> bytes (int)."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"not a size: {value!r} (use e.g. 512KiB, 1MiB or a number of bytes)")
        unit = (match.group(2) or "b").lower()
        return int(match.group(1)) * _SIZE_UNITS[unit]
    return value


#: Seconds, written as a number or with a unit (``250ms``, ``30s``, ``5m``, ``1h``).
Duration = Annotated[float, BeforeValidator(_parse_duration), Field(ge=0)]
#: Bytes, written as a number or with a unit (``512KiB``, ``1MiB``).
ByteSize = Annotated[int, BeforeValidator(_parse_size), Field(ge=0)]


class _Section(BaseModel):
    """Every section rejects unknown keys: a typo must fail at startup, not be silently ignored.

    Validation errors never quote their input (``hide_input_in_errors``): next to a bad field may stand a secret.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, hide_input_in_errors=True)


class ListenSettings(_Section):
    """The proxy listener. Loopback by default: listening elsewhere needs an explicit access policy."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class AdminSettings(_Section):
    """The admin listener (``/healthz``, ``/readyz``, ``/metrics``, ``/tokens``), separate from proxied paths."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9901, ge=0, le=65535)
    #: What ``/readyz`` requires of ``prefetch`` profiles (``tokenrelay.admin``): ``startup`` (a token once),
    #: ``strict`` (a valid token now) or ``lenient`` (only permanent failures count). Read on every probe, so a
    #: reload changes it.
    readiness: Literal["startup", "strict", "lenient"] = "startup"


class AccessSettings(_Section):
    """Who may use the proxy. A proxy that lends credentials must never be reachable by anyone by accident."""

    allow_clients: tuple[IPvAnyNetwork, ...] = ()
    api_keys: tuple[SecretStr, ...] = ()
    api_key_header: str = "X-Tokenrelay-Key"
    open: bool = False


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    access_log: bool = True


class ProfileSettings(_Section):
    """A named set of client credentials plus the token request parameters shared by its routes.

    ``client``, ``auth``, ``options`` and ``http`` are the grant core's configuration (either key style); the
    secret may come from ``client.secret``, ``client.secret_file`` (re-read when it changes) or
    ``client.secret_env``. They are validated against the grant core's models when the profile is compiled.
    """

    #: Free-form until compiled, so a secret here is a plain ``str``: kept out of ``repr`` (as are ``http``'s
    #: headers, which may carry one), so that printing settings in a log, a traceback or a test cannot show it.
    client: dict[str, Any] = Field(repr=False)
    auth: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict)
    http: dict[str, Any] = Field(default_factory=dict, repr=False)
    scope: tuple[str, ...] | str | None = None
    audience: str | None = None
    resource: tuple[str, ...] = ()
    #: Any other token request parameters, sent as simple-oauth2 sends extra params.
    params: dict[str, str | int | float | bool | tuple[str, ...]] = Field(default_factory=dict)
    #: Refresh this long before expiry; ``None`` = automatic (min(60 s, 1/4 of the lifetime)).
    refresh_before_expiry: Duration | None = None
    #: Token lifetime assumed when the endpoint sends no ``expires_in`` and the token is not a JWT with ``exp``.
    default_expires_in: Duration = Field(default=300.0, gt=0)
    #: Ask for a token at startup (and make /readyz wait for it) instead of on the first request.
    prefetch: bool = True

    @field_validator("client")
    @classmethod
    def _one_secret_source(cls, client: dict[str, Any]) -> dict[str, Any]:
        sources = [k for k in (*_SECRET_KEYS, *_SECRET_FILE_KEYS, *_SECRET_ENV_KEYS) if client.get(k) is not None]
        if len(sources) > 1:
            raise ValueError(f"give only one of secret, secret_file, secret_env (got {', '.join(sources)})")
        return client

    @model_validator(mode="after")
    def _grant_config_is_valid(self) -> ProfileSettings:
        """Validate the grant part with the grant core's own models, so there is one source of truth.

        A secret that comes from a file or the environment is not read here (validation must not do I/O);
        a stand-in takes its place, and the loader resolves the real one afterwards.
        """
        stand_in = "stand-in" if self.secret_file is not None or self.secret_env is not None else None
        try:
            validate_config(self.grant_mapping(secret=stand_in))
        except ConfigError as exc:
            fields = tuple((error.path, error.message) for error in exc.errors)
            raise PydanticCustomError("grant_config", "{summary}", {"summary": str(exc), "fields": fields}) from exc
        return self

    @property
    def secret_file(self) -> Path | None:
        """``client.secret_file``: a file holding the client secret, re-read when it changes."""
        value = _first(self.client, _SECRET_FILE_KEYS)
        return None if value is None else Path(str(value))

    @property
    def secret_env(self) -> str | None:
        """``client.secret_env``: the name of an environment variable holding the client secret."""
        value = _first(self.client, _SECRET_ENV_KEYS)
        return None if value is None else str(value)

    def grant_mapping(self, *, secret: str | None = None) -> dict[str, Any]:
        """The grant core's configuration of this profile; ``secret`` (resolved by the caller) replaces the sources."""
        drop = {*_SECRET_FILE_KEYS, *_SECRET_ENV_KEYS}
        client = {key: value for key, value in self.client.items() if key not in drop}
        if secret is not None:
            for key in _SECRET_KEYS:
                client.pop(key, None)
            client["secret"] = secret
        return {"client": client, "auth": dict(self.auth), "options": dict(self.options), "http": dict(self.http)}

    def token_params(self) -> dict[str, object]:
        """The token request parameters every route of this profile sends (``ClientCredentials.get_token``)."""
        params: dict[str, object] = {}
        if self.scope is not None:
            params["scope"] = self.scope if isinstance(self.scope, str) else list(self.scope)
        if self.audience is not None:
            params["audience"] = self.audience
        if self.resource:
            params["resource"] = list(self.resource)
        for name, value in self.params.items():
            params[name] = list(value) if isinstance(value, tuple) else value
        return params


class MatchSettings(_Section):
    """How inbound requests select a route: by host (exact, or ``*.suffix``), by path prefix, or both."""

    host: str | None = None
    path_prefix: str | None = None

    @model_validator(mode="after")
    def _something_to_match(self) -> MatchSettings:
        if self.host is None and self.path_prefix is None:
            raise ValueError("give host, path_prefix or both")
        if self.path_prefix is not None and not self.path_prefix.startswith("/"):
            raise ValueError(f"path_prefix must start with '/': {self.path_prefix!r}")
        return self


class HeaderSettings(_Section):
    """Where the token goes on the upstream request. ``{token}`` is replaced by the access token."""

    name: str = "Authorization"
    format: str = "Bearer {token}"

    @field_validator("format")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if "{token}" not in value:
            raise ValueError("format must contain {token}")
        return value


class TimeoutSettings(_Section):
    connect: Duration = 5.0
    #: Whole exchange with the upstream, body streaming included; ``None`` = no limit (long downloads).
    total: Duration | None = 60.0
    #: Longest silence while reading the upstream's answer.
    read: Duration | None = None


class RouteTlsSettings(_Section):
    """TLS towards the upstream. Verification is on unless switched off explicitly."""

    verify: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


class RouteSettings(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    match: MatchSettings
    upstream: AnyHttpUrl
    strip_prefix: bool = False
    #: The profile whose token is injected; ``None`` forwards without a token (e.g. a public endpoint).
    profile: str | None
    header: HeaderSettings = HeaderSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    tls: RouteTlsSettings = RouteTlsSettings()
    preserve_host: bool = False
    forwarded_headers: bool = True
    retry_on_401: bool = True
    retry_statuses: tuple[int, ...] = (401,)
    max_replay_body: ByteSize = 1024 * 1024
    #: Largest WebSocket message relayed (either way): aiohttp holds a whole message in memory before passing it
    #: on, so this bounds the memory one connection can take. ``0`` = no limit. aiohttp's own default.
    max_websocket_message: ByteSize = 4 * 1024 * 1024


class ServerSettings(_Section):
    """Process-level knobs for the serving path."""

    #: Time given to in-flight requests after SIGTERM before connections are closed.
    shutdown_grace: Duration = 30.0
    #: Upstream connection pool: total and per-host connection limits.
    max_connections: int = Field(default=1000, ge=1)
    max_connections_per_host: int = Field(default=100, ge=0)
    #: Re-read the config file when it changes (in addition to SIGHUP).
    watch_config: bool = False
    #: Add ``Via`` to requests and responses.
    via: bool = True
    #: How often the config file is checked for changes when ``watch_config`` is on.
    watch_interval: Duration = Field(default=2.0, gt=0)
    #: How often ``secret_file`` / ``private_key_file`` contents are checked for rotation.
    secret_check_interval: Duration = Field(default=10.0, gt=0)


#: The parsed config file of the load in progress (``build_settings``); the file is the lowest-priority source.
_FILE_DATA: ContextVar[Mapping[str, Any] | None] = ContextVar("tokenrelay_settings_file", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """The already-parsed config file as a settings source (parsing and its errors belong to the loader)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_FILE_DATA.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get() or {})


class Settings(BaseSettings):
    """The root of the proxy configuration (file + ``TOKENRELAY_*`` environment + CLI flags)."""

    model_config = SettingsConfigDict(
        env_prefix="TOKENRELAY_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    listen: ListenSettings = ListenSettings()
    admin: AdminSettings = AdminSettings()
    access: AccessSettings = AccessSettings()
    log: LogSettings = LogSettings()
    server: ServerSettings = ServerSettings()
    profiles: dict[str, ProfileSettings] = Field(default_factory=dict)
    routes: tuple[RouteSettings, ...] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The source order, highest priority first: flags (init kwargs) > environment > config file."""
        return init_settings, env_settings, _FileSource(settings_cls)

    @model_validator(mode="after")
    def _routes_are_consistent(self) -> Settings:
        problems: list[str] = []
        names = [route.name for route in self.routes]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(f"routes: duplicate route names {duplicates}")
        known = ", ".join(sorted(self.profiles)) or "none defined"
        for index, route in enumerate(self.routes):
            if route.profile is not None and route.profile not in self.profiles:
                problems.append(f"routes.{index}.profile: unknown profile {route.profile!r} (known: {known})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


@contextmanager
def _file_data(data: Mapping[str, Any]) -> Iterator[None]:
    token = _FILE_DATA.set(data)
    try:
        yield
    finally:
        _FILE_DATA.reset(token)


def build_settings(file_data: Mapping[str, Any] | None = None, **flags: Any) -> Settings:
    """Build the settings from a parsed config file, the environment and the CLI's flags (highest first).

    ``flags`` are nested mappings (``listen={"port": 9000}``) and are merged into the other sources key by key.
    Raises pydantic's ``ValidationError``; ``tokenrelay.config_loader`` turns it into a list of field paths.
    """
    with _file_data(dict(file_data or {})):
        return Settings(**flags)


def _first(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    return next((mapping[key] for key in keys if mapping.get(key) is not None), None)
