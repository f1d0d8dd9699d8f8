"""The printable form of the configuration (``check-config``): plain data with every credential masked.

A profile's grant part is free-form until it is compiled, so masking by type (``SecretStr``) is not enough:
values are also masked by the key they stand under (``secret``, ``private_key``, ``authorization``, a cookie,
an API key ...), and the userinfo of a URL (``https://user:password@host``) is masked wherever a URL appears.
Where a secret *comes from* (``secret_file``, ``secret_env``) is not a secret and stays readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from pydantic import SecretStr

if TYPE_CHECKING:
    from tokenrelay.settings import Settings

__all__ = ["REDACTED", "SENSITIVE_KEYS", "redacted"]

#: What a masked value is replaced with (the same mask the log pipeline uses).
REDACTED: Final = "***"
#: Keys whose values are masked, compared lower-case with ``-`` read as ``_`` (so header names match too).
#: camelCase spellings appear lower-cased (``privateKey`` -> ``privatekey``), as simple-oauth2's keys are allowed.
SENSITIVE_KEYS: Final = frozenset(
    {
        "secret",
        "client_secret",
        "clientsecret",
        "private_key",
        "privatekey",
        "password",
        "passphrase",
        "authorization",
        "proxy_authorization",
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "client_assertion",
        "assertion",
        "api_key",
        "api_keys",
        "x_api_key",
        "x_tokenrelay_key",
        "cookie",
        "set_cookie",
    }
)
#: ``scheme://userinfo@`` in a URL: the userinfo may be a credential.
_USERINFO: Final = re.compile(r"(?<=://)[^/?#@\s]*@")


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data (YAML-dumpable) with every secret replaced by ``***``."""
    result = _plain(settings.model_dump(mode="python", by_alias=False))
    assert isinstance(result, dict)
    return result


def _plain(value: object, *, key: str = "") -> object:
    if key.lower().replace("-", "_") in SENSITIVE_KEYS and value not in (None, (), [], {}):
        return REDACTED
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): _plain(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _USERINFO.sub(REDACTED + "@", str(value))
