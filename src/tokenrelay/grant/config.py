"""The grant core's configuration: simple-oauth2's options schema as pydantic models.

Keys are snake_case with simple-oauth2's camelCase spellings accepted as aliases (``tokenHost``), so a config
written for the Node package loads unchanged. Defaults and constraints are simple-oauth2's (§2 of the
reference) with the port policy's changes (§13): ``client.id`` is required, a secret is required by the
secret-based methods, ``http`` accepts only headers, timeout and TLS options, and *every* invalid field is
reported at once in one :class:`ConfigError` (pydantic's error, raised ``from``, never shows input values).

The RFC 8705 §2 methods (``tls_client_auth``, ``self_signed_tls_client_auth``) require ``http.cert_file``: the
client authenticates with its TLS client certificate. A ``client.secret`` configured alongside them is accepted
and never sent: a profile or a shared config may carry one for another method or for a migration between
methods, and refusing it would make switching ``authorization_method`` a two-step edit for no safety gain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from tokenrelay.grant.errors import ConfigError, FieldError
from tokenrelay.grant.urls import parse_http_url

__all__ = [
    "AUTH_METHOD_ALIASES",
    "DEFAULT_TIMEOUT",
    "TLS_METHODS",
    "AuthConfig",
    "AuthMethod",
    "ClientConfig",
    "HttpConfig",
    "OAuth2Config",
    "OptionsConfig",
    "validate_config",
    "validate_http_options",
]

#: The RFC 7591 ``token_endpoint_auth_method`` names this port implements.
AuthMethod = Literal[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
    "none",
    "tls_client_auth",
    "self_signed_tls_client_auth",
]

#: simple-oauth2's two names for the methods it knows.
AUTH_METHOD_ALIASES: Final[Mapping[str, AuthMethod]] = {
    "header": "client_secret_basic",
    "body": "client_secret_post",
}
#: ``http.timeout`` when none is configured, in seconds. simple-oauth2 has no default, so a token endpoint that
#: accepts the connection and never answers hangs ``get_token`` forever; an explicit ``None`` restores that.
DEFAULT_TIMEOUT: Final = 30.0
_SECRET_METHODS: Final = frozenset({"client_secret_basic", "client_secret_post", "client_secret_jwt"})
#: RFC 8705 §2: the client authenticates with its TLS certificate (PKI or self-signed), so it needs one; with
#: discovery it also uses the server's ``mtls_endpoint_aliases`` (§5).
TLS_METHODS: Final = frozenset({"tls_client_auth", "self_signed_tls_client_auth"})


def _printable_ascii(value: str) -> str:
    """simple-oauth2's VSCHAR rule (``/^[\\x20-\\x7E]*$/``); the message never echoes the value."""
    if any(not " " <= char <= "~" for char in value):
        raise ValueError("must contain only printable ASCII characters (\\x20-\\x7E)")
    return value


def _printable_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        _printable_ascii(value.get_secret_value())
    return value


def _http_uri(value: str | None) -> str | None:
    """Joi's ``uri({scheme: ['http', 'https']})``: an absolute http(s) URL with a host."""
    if value is None:
        return value
    try:
        parse_http_url(value)
    except ValueError as exc:
        raise ValueError("must be an absolute http(s) URL") from exc
    if value != value.strip() or "://" not in value:
        raise ValueError("must be an absolute http(s) URL")
    return value


PrintableStr = Annotated[str, AfterValidator(_printable_ascii)]
PrintableSecret = Annotated[SecretStr | None, AfterValidator(_printable_secret)]
HttpURI = Annotated[str | None, AfterValidator(_http_uri)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )


class ClientConfig(_Model):
    """``client``: who we are. ``id`` is required; the secret only by the secret-based auth methods."""

    id: PrintableStr
    secret: PrintableSecret = None
    id_param_name: NonEmptyStr = "client_id"
    secret_param_name: NonEmptyStr = "client_secret"  # noqa: S105 - a parameter name
    private_key: SecretStr | None = None
    private_key_file: str | None = None
    key_id: str | None = None
    assertion_alg: str | None = None
    assertion_lifetime: float = Field(default=60.0, gt=0)


class AuthConfig(_Model):
    """``auth``: where the endpoints are. ``token_host`` is optional only when discovery is configured."""

    token_host: HttpURI = None
    token_path: NonEmptyStr = "/oauth/token"  # noqa: S105 - a path
    refresh_path: NonEmptyStr | None = None
    revoke_path: NonEmptyStr = "/oauth/revoke"
    issuer: HttpURI = None
    discovery_url: HttpURI = None

    @model_validator(mode="after")
    def _refresh_path_defaults_to_token_path(self) -> Self:
        if self.refresh_path is None:
            object.__setattr__(self, "refresh_path", self.token_path)
        return self

    @property
    def uses_discovery(self) -> bool:
        """Whether the endpoints come from RFC 8414 / OIDC metadata instead of ``token_host``."""
        return self.issuer is not None or self.discovery_url is not None


class OptionsConfig(_Model):
    """``options``: how requests are shaped (simple-oauth2's four options plus opt-in extensions)."""

    scope_separator: NonEmptyStr = " "
    credentials_encoding_mode: Literal["strict", "loose"] = "strict"
    body_format: Literal["form", "json"] = "form"
    authorization_method: Literal["header", "body"] | AuthMethod = "header"
    default_expires_in: float | None = Field(default=None, ge=0)

    @property
    def auth_method(self) -> AuthMethod:
        """``authorization_method`` under its RFC 7591 name (``header`` is ``client_secret_basic``)."""
        method = self.authorization_method
        if method == "header" or method == "body":
            return AUTH_METHOD_ALIASES[method]
        return method


HeaderValue = str | bool | int | float
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token


def _safe_headers(headers: dict[str, HeaderValue]) -> dict[str, HeaderValue]:
    """Header names must be RFC 9110 tokens and values free of CR/LF/NUL (no header injection)."""
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"header name {name[:40]!r} is not a valid HTTP token")
        if isinstance(value, str) and any(char in value for char in "\r\n\0"):
            raise ValueError(f"header {name!r} has a CR, LF or NUL character in its value")
    return headers


class HttpConfig(_Model):
    """``http`` (and per-call ``http_options``): headers, timeout in seconds, TLS. Nothing else (§13.6).

    ``timeout`` bounds the whole request; it defaults to :data:`DEFAULT_TIMEOUT` and ``None`` means no timeout.
    """

    headers: Annotated[dict[str, HeaderValue], AfterValidator(_safe_headers)] = Field(default_factory=dict)
    timeout: float | None = Field(default=DEFAULT_TIMEOUT, gt=0)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True

    @model_validator(mode="after")
    def _key_needs_cert(self) -> Self:
        if self.key_file is not None and self.cert_file is None:
            raise _field_error("cert_file", "is required when key_file is set")
        return self

    @property
    def has_tls_options(self) -> bool:
        """Whether any TLS option differs from the defaults (then a dedicated ``SSLContext`` is needed)."""
        return bool(self.ca_file or self.cert_file or not self.verify)


class OAuth2Config(_Model):
    """The whole configuration of one client (``ClientCredentials(config)``)."""

    client: ClientConfig
    auth: AuthConfig
    options: OptionsConfig = Field(default_factory=OptionsConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        problems = _cross_field_problems(self)
        if problems:
            raise _CrossFieldErrors(problems)
        return self


class _CrossFieldErrors(ValueError):
    """Carries several cross-field problems out of a model validator, each with its own path."""

    def __init__(self, problems: list[FieldError]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _field_error(path: str, message: str) -> _CrossFieldErrors:
    return _CrossFieldErrors([FieldError(path, message)])


def _cross_field_problems(config: OAuth2Config) -> list[FieldError]:
    client, auth, method = config.client, config.auth, config.options.auth_method
    problems: list[FieldError] = []
    if auth.token_host is None and not auth.uses_discovery:
        problems.append(FieldError("auth.token_host", "is required (or configure auth.issuer)"))
    if method in _SECRET_METHODS and client.secret is None:
        problems.append(FieldError("client.secret", f"is required by authorization_method {method!r}"))
    if method == "private_key_jwt":
        if client.private_key is None and client.private_key_file is None:
            problems.append(FieldError("client.private_key", "is required by private_key_jwt"))
        elif client.private_key is not None and client.private_key_file is not None:
            problems.append(FieldError("client.private_key", "give private_key or private_key_file, not both"))
    if method in TLS_METHODS and config.http.cert_file is None:
        message = (
            f"is required by authorization_method {method!r}: the client authenticates with its TLS client"
            " certificate (RFC 8705 §2)"
        )
        problems.append(FieldError("http.cert_file", message))
    return problems


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _field_errors(exc: ValidationError) -> list[FieldError]:
    """Every problem pydantic found, as dotted paths in the spelling the user wrote (snake_case for a
    missing key or a cross-field rule, since the user wrote no spelling for those)."""
    found: list[FieldError] = []
    for error in exc.errors(include_input=False, include_url=False):
        context_error = (error.get("ctx") or {}).get("error")
        loc = tuple(error["loc"])
        if error["type"] == "missing" and loc:
            loc = (*loc[:-1], to_snake(str(loc[-1])))  # nothing was written: use the Python name
        prefix = _loc_to_path(loc)
        if isinstance(context_error, _CrossFieldErrors):
            for problem in context_error.problems:
                path = f"{prefix}.{problem.path}" if prefix else problem.path
                found.append(FieldError(path, problem.message))
            continue
        message = str(context_error) if isinstance(context_error, ValueError) else error["msg"]
        found.append(FieldError(prefix, message))
    return found


def validate_config(config: OAuth2Config | Mapping[str, Any] | None) -> OAuth2Config:
    """Validate a config given as a model or a mapping; raise :class:`ConfigError` listing every problem."""
    if isinstance(config, OAuth2Config):
        return config
    if config is None:
        raise ConfigError([FieldError("", "no configuration given")])
    if not isinstance(config, Mapping):
        raise ConfigError([FieldError("", "the configuration must be a mapping")])
    try:
        return OAuth2Config.model_validate(dict(config))
    except ValidationError as exc:
        raise ConfigError(_field_errors(exc)) from exc


def validate_http_options(options: HttpConfig | Mapping[str, Any] | None) -> HttpConfig | None:
    """Validate per-call ``http_options`` with the same rules as the config's ``http`` section."""
    if options is None or isinstance(options, HttpConfig):
        return options
    if not isinstance(options, Mapping):
        raise ConfigError([FieldError("http_options", "must be a mapping")], prefix="invalid http_options")
    try:
        return HttpConfig.model_validate(dict(options))
    except ValidationError as exc:
        errors = [
            FieldError(f"http_options.{e.path}" if e.path else "http_options", e.message) for e in _field_errors(exc)
        ]
        raise ConfigError(errors, prefix="invalid http_options") from exc
