"""Where a profile's credentials come from, and how a rotation is noticed.

A client secret is given inline (``client.secret``), in a file (``client.secret_file``) or in an environment
variable (``client.secret_env``). Files are what Kubernetes mounts: it rotates a mounted secret by swapping the
``..data`` symlink to a new directory, so the path keeps its name while the file behind it (device, inode,
mtime) changes. A :class:`FileSignature` records both the ``stat`` result and a digest of the content, so a
cheap ``stat`` comparison rules out "unchanged" and a content digest confirms "changed" (a ``touch`` is not a
rotation). The signatures of ``client.private_key_file`` and of the TLS client certificate and key
(``http.cert_file`` / ``http.key_file``, mTLS to the token endpoint) are kept too: the grant core reads those
files itself, but a rotated key or certificate must yield a new cache key, hence a new client that loads it.

The credential digest (:func:`tokenrelay.tokens.keys.digest_credential`, the same derivation the library's
``credential_digest`` uses) identifies the credential in a cache key without the secret ever being stored,
logged or compared in the clear.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tokenrelay.grant.errors import ConfigError, FieldError
from tokenrelay.settings import ProfileSettings
from tokenrelay.tokens.keys import digest_credential

__all__ = [
    "FileSignature",
    "ResolvedCredentials",
    "file_changed",
    "resolve_credentials",
    "resolve_profiles",
    "sign_file",
]

#: A secret file larger than this is certainly a mistake (a directory listing, a binary); refuse it.
MAX_SECRET_FILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class FileSignature:
    """What a credential file looked like when it was read: ``stat`` identity plus a content digest."""

    path: Path
    device: int
    inode: int
    size: int
    mtime_ns: int
    digest: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ResolvedCredentials:
    """A profile's secret as resolved now, the files to watch for rotation, and the credential digest."""

    secret: str | None = field(repr=False)
    watched: tuple[FileSignature, ...]
    digest: str


def sign_file(path: Path) -> tuple[FileSignature, bytes]:
    """Read ``path`` once and return its signature and content. Raises ``OSError``/``ValueError``."""
    with path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        if stat.st_size > MAX_SECRET_FILE_BYTES:
            raise ValueError(f"is larger than {MAX_SECRET_FILE_BYTES} bytes")
        content = handle.read(MAX_SECRET_FILE_BYTES + 1)
    signature = FileSignature(
        path=path,
        device=stat.st_dev,
        inode=stat.st_ino,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        digest=hashlib.sha256(content).hexdigest(),
    )
    return signature, content


def file_changed(signature: FileSignature) -> bool:
    """Whether the file now differs from ``signature`` (a vanished or unreadable file counts as changed).

    Blocking (``stat`` and, when the ``stat`` differs, a read): call it off the event loop.
    """
    try:
        stat = signature.path.stat()
    except OSError:
        return True
    same_stat = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns) == (
        signature.device,
        signature.inode,
        signature.size,
        signature.mtime_ns,
    )
    if same_stat:
        return False
    try:
        current, _ = sign_file(signature.path)
    except (OSError, ValueError):
        return True
    return current.digest != signature.digest


def resolve_credentials(
    name: str, profile: ProfileSettings, *, environ: Mapping[str, str] | None = None
) -> ResolvedCredentials:
    """Resolve a profile's secret from its source. Blocking (file reads): call it off the event loop.

    Raises :class:`ConfigError` whose paths name the source (``profiles.<name>.client.secret_file``); the
    message names the file or variable, never its content.
    """
    env = os.environ if environ is None else environ
    watched: list[FileSignature] = []
    secret = _inline_secret(profile)
    if profile.secret_env is not None:
        secret = _env_secret(name, profile.secret_env, env)
    if profile.secret_file is not None:
        signature, content = _read(name, "client.secret_file", profile.secret_file)
        watched.append(signature)
        secret = _decode_secret(name, content)
    files: dict[str, bytes | None] = {}
    for part, key, path in _credential_files(profile):
        signature, files[part] = _read(name, key, path)
        watched.append(signature)
    inline_key = _plain_text(profile.client.get("private_key") or profile.client.get("privateKey"))
    digest = digest_credential(secret=_utf8(secret), private_key=_utf8(inline_key), **files)
    return ResolvedCredentials(secret=secret, watched=tuple(watched), digest=digest)


def resolve_profiles(
    profiles: Mapping[str, ProfileSettings], *, environ: Mapping[str, str] | None = None
) -> dict[str, ResolvedCredentials]:
    """:func:`resolve_credentials` for every profile, with every problem of every profile in one
    :class:`ConfigError` (what the loader reports and what a compile needs alike). Blocking, as it is.
    """
    resolved: dict[str, ResolvedCredentials] = {}
    problems: list[FieldError] = []
    for name, profile in profiles.items():
        try:
            resolved[name] = resolve_credentials(name, profile, environ=environ)
        except ConfigError as exc:
            problems.extend(exc.errors)
    if problems:
        raise ConfigError(problems)
    return resolved


def _credential_files(profile: ProfileSettings) -> list[tuple[str, str, Path]]:
    """The files the grant core reads itself (signing key, TLS client certificate and key), as
    ``(digest part, config path, file)``: their content identifies the credential, so a rotation must be seen."""
    found: list[tuple[str, str, Path]] = []
    for where, part, camel in (
        ("client", "private_key_file", "privateKeyFile"),
        ("http", "cert_file", "certFile"),
        ("http", "key_file", "keyFile"),
    ):
        section = profile.client if where == "client" else profile.http
        value = section.get(part) if section.get(part) is not None else section.get(camel)
        if value is not None:
            found.append((part, f"{where}.{part}", Path(str(value))))
    return found


def _plain_text(value: object) -> str | None:
    """A configured credential as text; a ``SecretStr`` is unwrapped (its ``str`` is a mask, not the value)."""
    if value is None:
        return None
    get = getattr(value, "get_secret_value", None)
    return str(get() if callable(get) else value)


def _utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _inline_secret(profile: ProfileSettings) -> str | None:
    return _plain_text(profile.client.get("secret"))


def _env_secret(name: str, variable: str, env: Mapping[str, str]) -> str:
    value = env.get(variable)
    if not value:
        path = f"profiles.{name}.client.secret_env"
        raise ConfigError([FieldError(path, f"environment variable {variable} is not set or empty")])
    return value


def _read(name: str, key: str, path: Path) -> tuple[FileSignature, bytes]:
    """Sign and read ``path``; a problem is a :class:`ConfigError` at ``profiles.<name>.<key>``."""
    try:
        return sign_file(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([FieldError(f"profiles.{name}.{key}", f"cannot read {path}: {reason}")]) from None


def _decode_secret(name: str, content: bytes) -> str:
    """The file's text without the trailing newline editors and ``echo`` add (Kubernetes adds none)."""
    try:
        text = content.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ConfigError([FieldError(f"profiles.{name}.client.secret_file", "is not UTF-8 text")]) from None
    if not text:
        raise ConfigError([FieldError(f"profiles.{name}.client.secret_file", "is empty")])
    return text
