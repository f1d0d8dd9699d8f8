"""Encoded path traversal: segments that climb out of the upstream's base path once *someone* decodes them.

The proxy forwards the raw path byte-for-byte, so the danger is the upstream: one that decodes ``%2F`` before
normalising turns ``%2e%2e%2fadmin`` into ``../admin``, and a servlet container (Tomcat) drops ``;`` path
parameters, turning ``..;`` into ``..``. Such segments are refused; ordinary encoded slashes are not.
"""

from __future__ import annotations

from typing import Any

import pytest

from tokenrelay.proxy import ProxyError, RouteTable, TokenBinding
from tokenrelay.settings import RouteSettings
from tokenrelay.tokens import IssuedToken, RefreshPolicy, cache_key


async def _never() -> IssuedToken:  # pragma: no cover - routing never fetches
    raise AssertionError("not called")


BINDING = TokenBinding(
    key=cache_key(
        "p", token_endpoint="http://idp/token", client_id="c", credential_digest="0" * 64,
        auth_method="client_secret_basic", scope=None, audience=None, resource=(), params={},
    ),
    fetch=_never,
    policy=RefreshPolicy(),
)  # fmt: skip


def billing_table(**route: Any) -> RouteTable:
    settings = RouteSettings.model_validate(
        {
            "name": "billing",
            "match": {"path_prefix": "/billing"},
            "upstream": "http://up.internal/v1",
            "strip_prefix": True,
            "profile": "p",
        }
        | route
    )
    return RouteTable.build([settings], {"p": BINDING})


def refusal(path: str) -> ProxyError:
    with pytest.raises(ProxyError) as caught:
        billing_table().match("h", path)
    return caught.value


@pytest.mark.parametrize(
    "path",
    [
        "/billing/%2e%2e%2fadmin",  # the brief's example: ../admin once %2F is decoded
        "/billing/%2E%2E%2Fadmin",  # any case
        "/billing/..%2fadmin",
        "/billing/x%2f..%2fadmin",  # the climb in the middle of a segment
        "/billing/x%2F.",
        "/billing/..%5cadmin",  # an encoded backslash
        "/billing/%2e%2e%5Cadmin",
        "/billing/x\\..\\admin",  # a raw backslash
        "/billing/%252e%252e%252fadmin",  # double encoding
        "/billing/%25252e%25252e%25252fadmin",  # triple encoding
    ],
)
def test_segments_hiding_a_climb_behind_an_encoded_separator_are_refused(path: str) -> None:
    assert refusal(path).code == "bad_request"


@pytest.mark.parametrize(
    "path",
    [
        "/billing/..;/x",  # Tomcat: "..;" is ".." with an empty path parameter
        "/billing/..;jsessionid=1/x",
        "/billing/.;/x",
        "/billing/%2e%2e;/x",
        "/billing/%2E%2e;p=1/x",
        "/billing/.%2e;/x",
        "/billing/%252e%252e;/x",  # double-encoded dots before the ';'
        "/billing/..%3b/x",  # an encoded ';'
    ],
)
def test_dot_segments_with_path_parameters_are_refused(path: str) -> None:
    assert refusal(path).code == "bad_request"


@pytest.mark.parametrize("path", ["/billing/%252e%252e/admin", "/billing/%2525%32%65%2e/admin"])
def test_double_encoded_plain_dot_segments_are_refused(path: str) -> None:
    assert refusal(path).code == "bad_request"


def test_the_refusal_says_what_is_wrong() -> None:
    message = refusal("/billing/..;/x").detail or ""
    assert "'..'" in message
    assert "';'" in message


def nested(char: str, times: int) -> str:
    """``char`` percent-encoded ``times`` times over: ``A`` -> ``%41`` -> ``%2541`` -> ``%252541`` ..."""
    text = f"%{ord(char):02X}"
    for _ in range(times - 1):
        text = text.replace("%", "%25")
    return text


def test_a_segment_decoded_in_eight_rounds_passes() -> None:
    assert billing_table().match("h", f"/billing/{nested('A', 8)}/x") is not None


def test_a_segment_needing_more_than_eight_decoding_rounds_is_refused() -> None:
    assert "encoded more than 8 times" in (refusal(f"/billing/{nested('A', 9)}/x").detail or "")


@pytest.mark.parametrize(
    ("inbound", "upstream"),
    [
        ("/billing/projects/group%2Fproject", "/v1/projects/group%2Fproject"),  # GitLab's project ids
        ("/billing/projects/group%2Fsub%2Fproject/repository/files/docs%2FREADME.md/raw", None),
        ("/billing/files/a%2F.hidden%2Fb", None),  # a dot file under an encoded slash is not a climb
        ("/billing/files/v1.2%2F..hidden%5Ca..b", None),
        ("/billing/x;p=1/y", None),  # ordinary path parameters
        ("/billing/a.b;c=..", None),  # '..' after the ';' is a parameter value, not a segment
    ],
)
def test_ordinary_encoded_segments_pass_byte_for_byte(inbound: str, upstream: str | None) -> None:
    match = billing_table().match("h", inbound)
    assert match is not None
    expected = upstream if upstream is not None else "/v1" + inbound.removeprefix("/billing")
    assert match.url.raw_path == expected
