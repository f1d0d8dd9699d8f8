"""The printable form of the configuration (``check-config``): plain data with every credential masked.

A profile's grant part is free-form until it is compiled, so masking by type (``SecretStr``) is not enough:
values are also masked by the key they stand under (``secret``, ``private_key``, ``authorization``, a cookie,
an API key ...: the list :data:`tokenrelay.sensitive.SENSITIVE_KEYS` that the log
redaction shares), and the userinfo of a URL (``https://user:password@host``) is masked wherever a URL appears.
Where a secret *comes from* (``secret_file``, ``secret_env``) is not a secret and stays readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from pydantic import SecretStr

from tokenrelay.sensitive import REDACTED, SENSITIVE_KEYS, is_sensitive_key

if TYPE_CHECKING:
    from tokenrelay.settings import Settings

__all__ = ["REDACTED", "SENSITIVE_KEYS", "redacted"]

#: ``scheme://userinfo@`` in a URL: the userinfo may be a credential.
_USERINFO: Final = re.compile(r"(?<=://)[^/?#@\s]*@")


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data (YAML-dumpable) with every secret replaced by ``***``."""
    result = _plain(settings.model_dump(mode="python", by_alias=False))
    assert isinstance(result, dict)
    return result


def _plain(value: object, *, key: str = "") -> object:
    if is_sensitive_key(key) and value not in (None, (), [], {}):
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
