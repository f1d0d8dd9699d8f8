"""Loading the configuration: read the file, merge the environment and flags, check it, report every problem.

``load_settings`` is what ``serve``, ``check-config``, ``token`` and a reload call. It either returns settings
that are safe to compile, or raises one :class:`~tokenrelay.grant.errors.ConfigError` that lists **every** bad
field by its dotted path (``profiles.billing.auth.token_host: ...``), so a person can fix a file in one go. The
checks, in order: the file parses (YAML or TOML, by extension); the schema validates (pydantic, the grant part of
each profile by the grant core's own models); every secret source resolves; and no listener is exposed beyond
loopback without an access policy. Blocking (file reads): call it off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError
from pydantic_settings import SettingsError

from tokenrelay.grant.errors import ConfigError, FieldError
from tokenrelay.grant.urls import is_loopback_host
from tokenrelay.secrets import resolve_profiles
from tokenrelay.settings import Settings, build_settings

__all__ = [
    "EXIT_CONFIG",
    "exposure_problems",
    "format_config_error",
    "load_settings",
    "read_config_file",
]

#: The exit status of every command that stops on a configuration problem.
EXIT_CONFIG: Final = 2

_YAML_SUFFIXES: Final = frozenset({".yaml", ".yml", ".json"})
_TOML_SUFFIXES: Final = frozenset({".toml"})
#: Why a file whose nesting exhausted the parser's recursion is refused (a ``ConfigError``, never a traceback
#: that would stop ``check-config`` or silently end a reload's file watch).
_TOO_DEEP: Final = "nested too deeply"


def load_settings(
    path: str | Path | None,
    *,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    check_exposure: bool = True,
) -> Settings:
    """Load, validate and check the configuration; sources: flags > ``TOKENRELAY_*`` environment > file.

    ``flags`` are nested mappings (``{"listen": {"port": 9000}}``). ``environ`` is only used to resolve
    ``secret_env`` (pydantic-settings reads the process environment for overrides). ``check_exposure=False``
    skips the listener checks, for commands that do not listen (``tokenrelay token``).
    """
    data = read_config_file(Path(path)) if path is not None else {}
    try:
        settings = build_settings(data, **dict(flags or {}))
    except ValidationError as exc:
        raise ConfigError(_validation_problems(exc), prefix=_prefix(path)) from None
    except SettingsError as exc:  # an environment value that is not the JSON a list/mapping needs
        raise ConfigError(
            [FieldError("", f"{exc} (lists and mappings are JSON there)")], prefix=_prefix(path)
        ) from None
    problems = _secret_problems(settings, environ)
    if check_exposure:
        problems.extend(exposure_problems(settings))
    if problems:
        raise ConfigError(problems, prefix=_prefix(path))
    return settings


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML (``.yaml``/``.yml``/``.json``) or TOML (``.toml``) file into a mapping."""
    suffix = path.suffix.lower()
    if suffix not in _YAML_SUFFIXES | _TOML_SUFFIXES:
        raise ConfigError(f"{path}: unknown config file type {suffix or '(none)'!r}; use .yaml, .yml or .toml")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{path}: cannot read the config file: {reason}") from None
    data = _parse_toml(path, text) if suffix in _TOML_SUFFIXES else _parse_yaml(path, text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, not {type(data).__name__}")
    return data


def format_config_error(exc: ConfigError) -> str:
    """One line per bad field, for a terminal or a log: the header, then ``  path: message`` lines."""
    text, details = str(exc), "; ".join(str(error) for error in exc.errors)
    header = text[: -len(details) - 2] if details and text.endswith(f": {details}") else "invalid configuration"
    lines = [f"{header}:"]
    lines.extend(f"  {error}" for error in exc.errors)
    return "\n".join(lines)


def exposure_problems(settings: Settings) -> list[FieldError]:
    """Listeners reachable beyond loopback without an access policy: a proxy that lends credentials, open to all.

    The proxy listener needs ``access.allow_clients``, ``access.api_keys`` or an explicit ``access.open: true``.
    The admin listener shows token status (never tokens) and config generation; beyond loopback it needs
    ``access.allow_clients`` (which the admin listener enforces too) or ``access.open: true``. API keys do not
    count for it: health probes do not send them.
    """
    access = settings.access
    problems: list[FieldError] = []
    if not is_loopback_host(settings.listen.host) and not (access.allow_clients or access.api_keys or access.open):
        problems.append(
            FieldError(
                "listen.host",
                f"{settings.listen.host!r} is not a loopback address, and anyone who can reach it could make "
                "requests with this proxy's credentials: set access.allow_clients or access.api_keys, "
                "or access.open: true to accept that on purpose",
            )
        )
    admin = settings.admin
    if admin.enabled and not is_loopback_host(admin.host) and not (access.allow_clients or access.open):
        problems.append(
            FieldError(
                "admin.host",
                f"{admin.host!r} is not a loopback address: the admin listener shows token status and metrics; "
                "set access.allow_clients (enforced on the admin listener too) or access.open: true",
            )
        )
    return problems


def _prefix(path: str | Path | None) -> str:
    return f"invalid configuration {path}" if path is not None else "invalid configuration"


def _parse_yaml(path: Path, text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:  # both parsers recurse per level: a few hundred nested brackets exhaust the stack
        raise ConfigError(f"{path}: not valid YAML: {_TOO_DEEP}") from None


def _parse_toml(path: Path, text: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: {_TOO_DEEP}") from None


def _validation_problems(exc: ValidationError) -> list[FieldError]:
    """Every pydantic error as a dotted path; grant-core errors re-pathed under their profile."""
    problems: list[FieldError] = []
    for error in exc.errors(include_input=False, include_url=False):
        path = ".".join(str(part) for part in error["loc"])
        context = error.get("ctx") or {}
        if error["type"] == "grant_config":
            for sub_path, message in context["fields"]:
                problems.append(FieldError(f"{path}.{sub_path}" if sub_path else path, message))
            continue
        message = error["msg"].removeprefix("Value error, ")
        if path:
            problems.append(FieldError(path, message))
        else:
            problems.extend(_split_root_message(message))
    return problems


def _split_root_message(message: str) -> list[FieldError]:
    """Cross-field checks on the root report ``path: message; path: message``; give each its own line."""
    problems = []
    for part in message.split("; "):
        path, sep, rest = part.partition(": ")
        problems.append(FieldError(path, rest) if sep and " " not in path else FieldError("", part))
    return problems


def _secret_problems(settings: Settings, environ: Mapping[str, str] | None) -> list[FieldError]:
    try:
        resolve_profiles(settings.profiles, environ=environ)
    except ConfigError as exc:
        return list(exc.errors)
    return []
