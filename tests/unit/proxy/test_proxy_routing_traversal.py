"""Encoded path traversal: segments that climb out of the upstream's base path once *someone* decodes them.

The proxy forwards the raw path byte-for-byte, so the danger is the upstream: one that decodes ``%2F`` before
normalising turns ``%2e%2e%2fadmin`` into ``../admin``, and a servlet container (Tomcat) drops ``;`` path
parameters, turning ``..;`` into ``..``. Such segments are refused; ordinary encoded slashes are not.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.proxy.routing_support import BINDING
from tokenrelay.proxy import ProxyError, RouteTable, routing
from tokenrelay.settings import RouteSettings


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


# Overlong UTF-8 (CVE-2000-0884 and many since): strict decoders reject these non-shortest forms, lenient ones (old
# IIS, some servlet and C decoders) read them as the ASCII character. Listed by hand, as the oracle for the code
# that computes them.
OVERLONG_DOTS = ["%c0%ae", "%e0%80%ae", "%f0%80%80%ae"]
OVERLONG_SLASHES = ["%c0%af", "%e0%80%af", "%f0%80%80%af"]
OVERLONG_BACKSLASHES = ["%c1%9c", "%e0%81%9c", "%f0%80%81%9c"]


@pytest.mark.parametrize("dot", OVERLONG_DOTS)
@pytest.mark.parametrize("template", ["{d}{d}", "{d}.", ".{d}", "{d}", "{D}{D}"])
def test_overlong_dot_segments_are_refused(dot: str, template: str) -> None:
    segment = template.format(d=dot, D=dot.upper())
    assert refusal(f"/billing/{segment}/admin").code == "bad_request"


@pytest.mark.parametrize("separator", OVERLONG_SLASHES + OVERLONG_BACKSLASHES)
@pytest.mark.parametrize("template", ["a{s}..", "..{s}admin", "a{s}%c0%ae%c0%ae{s}admin", "a{s}.", "a{S}.."])
def test_a_climb_hidden_behind_an_overlong_separator_is_refused(separator: str, template: str) -> None:
    segment = template.format(s=separator, S=separator.upper())
    assert refusal(f"/billing/{segment}").code == "bad_request"


@pytest.mark.parametrize(
    "segment",
    [
        "%25c0%25ae%25c0%25ae",  # double-encoded overlong dots
        "%25e0%2580%25ae%25e0%2580%25ae",
        "%2525f0%252580%252580%2525ae.",  # triple encoding, then a plain dot
        "%c0%25ae%c0%25ae",  # only the continuation bytes double-encoded
        "a%25c0%25af..",  # a double-encoded overlong slash
        "..%25c1%259cadmin",  # a double-encoded overlong backslash
    ],
)
def test_overlong_forms_mixed_with_double_encoding_are_refused(segment: str) -> None:
    assert refusal(f"/billing/{segment}/x").code == "bad_request"


@pytest.mark.parametrize(
    "segment",
    [
        "%c0%ae%c0%ae;",
        "%c0%ae%c0%ae;jsessionid=1",
        "%e0%80%ae;p=1",
        ".%f0%80%80%ae%3b",  # an encoded ';'
        "a%c0%af..;p=1",
        "%25c0%25ae%25c0%25ae;",
    ],
)
def test_overlong_dot_segments_with_path_parameters_are_refused(segment: str) -> None:
    assert refusal(f"/billing/{segment}/x").code == "bad_request"


def test_an_overlong_refusal_says_the_same_as_a_plain_one() -> None:
    assert refusal("/billing/%c0%ae%c0%ae/x").detail == refusal("/billing/../x").detail


@pytest.mark.parametrize(
    "segment",
    [
        "caf%c3%a9",  # é
        "%e2%80%a6",  # … (E2: not an overlong lead)
        "%e0%a4%85",  # अ: a valid E0 sequence (E0 followed by A0-BF)
        "%f0%9f%98%80",  # 😀: a valid F0 sequence (F0 followed by 90-BF)
        "%c3%a9..%c3%a9",  # dots inside a name
        "a%c0%afb",  # an overlong slash with no climb is no more than group%2Fproject
        "%c3%ae%c3%ae",  # îî: the continuation byte of an overlong dot behind a valid lead
        "%c2%ae%c2%ae",  # ®®
    ],
)
def test_legitimate_utf8_segments_pass_byte_for_byte(segment: str) -> None:
    match = billing_table().match("h", f"/billing/{segment}/x")
    assert match is not None
    assert match.url.raw_path == f"/v1/{segment}/x"


@pytest.mark.parametrize(
    "path",
    [
        "/billing/\udcc0\udcae\udcc0\udcae/admin",  # raw C0 AE C0 AE, as aiohttp's pure-Python parser hands it over
        "/billing/x\udcc0\udcaf\udcc0\udcae\udcc0\udcae",  # raw overlong slash, then a raw overlong ..
    ],
)
def test_raw_overlong_bytes_are_refused_like_their_percent_encoded_form(path: str) -> None:
    assert refusal(path).detail == refusal("/billing/../x").detail


def test_raw_valid_utf8_passes() -> None:
    match = billing_table().match("h", "/billing/café/x")
    assert match is not None
    assert match.url.raw_path == "/v1/café/x"


def test_a_plain_path_is_never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse_to_decode(text: str) -> str:  # pragma: no cover - the test fails if it runs
        raise AssertionError(f"decoded {text!r}")

    monkeypatch.setattr(routing, "_segment_problem", refuse_to_decode)
    monkeypatch.setattr(routing, "_undo_overlong", refuse_to_decode)
    match = billing_table().match("h", "/billing/projects/group/raw?ref=main")
    assert match is not None
    assert match.url.raw_path == "/v1/projects/group/raw"
