"""The fields of one ordinary access line, in the order the proxy passes them to ``log_access``."""

from __future__ import annotations

from typing import Any

ACCESS_FIELDS: dict[str, Any] = {
    "route": "orders",
    "method": "GET",
    "path": "/o?id=",
    "status": 200,
    "upstream_status": 200,
    "duration_ms": 1.5,
    "token": "0123abcd",
    "replayed": False,
    "request_id": "0123456789abcdef0123456789abcdef",
}
