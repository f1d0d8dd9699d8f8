"""Replay of the simple-oauth2 capture vectors against the port (reference §12), over real loopback sockets.

Every vector runs: its canned responses are served by two capture servers, the clock is frozen at its
``now_ms``, the call is made, and the requests are compared byte for byte (method, target, body) along with
the headers the port sends (names in wire order, values). The outcome is compared directly where the port
matches simple-oauth2, through a systematic translation where only the error *class* differs (a Boom response
error is ``TokenRequestError`` with the same status, a timeout is ``TransportError``), and through
``DEVIATIONS`` where §13 of the reference makes the port differ on purpose. A test pins that every vector is
covered by one of the two.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic.alias_generators import to_snake

from tests.integration.grant.grant_vectors import (
    CaptureServers,
    FrozenClock,
    dead_port,
    decode_args,
    decode_input,
    load_vectors,
    node_config_to_python,
    placeholders_for,
    substitute,
    vectors_path,
)
from tokenrelay import AccessToken, ClientCredentials
from tokenrelay.errors import ConfigError, TokenRequestError, TokenResponseError, TransportError

META, VECTORS = load_vectors()
NOT_CHECKED: Any = object()
NOW_MS = 1_700_000_000_000


@dataclass(frozen=True)
class Expect:
    """The port's expected outcome for a vector."""

    kind: str  # "constructed" | "token" | "value" | "error"
    error: type[BaseException] | None = None
    status: int | None = None
    timeout: bool | None = None
    paths: tuple[str, ...] = ()
    payload: Any = NOT_CHECKED
    token: Mapping[str, Any] | None = None  # Python values; None: decode the vector's token
    token_json: Mapping[str, Any] | None = None
    expired_checks: tuple[tuple[float, bool], ...] | None = None
    value: Any = None


@dataclass(frozen=True)
class Deviation:
    """Where the port differs from simple-oauth2 on purpose (reference §13), and what it does instead."""

    reason: str
    expect: Expect
    no_requests: bool = False  # the port rejects the call before sending anything
    bodies: Mapping[int, str] = field(default_factory=dict)  # request index -> the body the port sends


def _at(offset_s: float) -> datetime:
    return datetime.fromtimestamp(NOW_MS / 1000 + offset_s, UTC)


def _refused_before_sending(reason: str, *paths: str) -> Deviation:
    """The port rejects the call with a ``ConfigError`` naming ``paths`` before anything is sent."""
    return Deviation(reason, Expect("error", ConfigError, paths=paths), no_requests=True)


_FORM_TOKEN = {"access_token": "at-123", "token_type": "bearer", "expires_in": "3600", "expires_at": _at(3600)}
_FORM_TOKEN_JSON = {**_FORM_TOKEN, "expires_at": "2023-11-14T23:13:20.000Z"}
_MAX = datetime.max.replace(tzinfo=UTC)

DEVIATIONS: dict[str, Deviation] = {
    "config/no-options": Deviation(
        "§13 details: no config raises ConfigError (Node crashes with a TypeError)", Expect("error", ConfigError)
    ),
    "config/client-empty-object": Deviation(
        "§13.7: client.id is required", Expect("error", ConfigError, paths=("client.id",))
    ),
    "config/http-unknown-keys-allowed": Deviation(
        "§13.6: http accepts headers, timeout and TLS options only",
        Expect("error", ConfigError, paths=("http.redirects", "http.whatever")),
    ),
    "headers/http-options-cannot-override-required": _refused_before_sending(
        "§13.6: per-call options accept headers, timeout and TLS only; 'payload' is rejected before sending",
        "http_options.payload",
    ),
    "get-token/scope-undefined": Deviation(
        "§13 last item: an undefined parameter is left out, so no 'scope=' is sent",
        Expect("token"),
        bodies={0: "grant_type=client_credentials"},
    ),
    "get-token/extra-params-form": Deviation(
        "§13 last item: the undefined 'undef' parameter is left out",
        Expect("token"),
        bodies={
            0: "grant_type=client_credentials&audience=https%3A%2F%2Fapi.example.com%2Fv1"
            "&resource=a%20b%2Bc%26d%3De~!*'()%C3%BC%E2%82%AC&n=42&f=1.5&t=true&arr=x&arr=y%20z"
            "&nested=&nul=&empty="
        },
    ),
    "get-token/missing-id-secret-body-form": _refused_before_sending(
        "§13.7: client.id is required; nothing is sent", "client.id"
    ),
    "get-token/missing-id-secret-body-json": _refused_before_sending(
        "§13.7: client.id is required; nothing is sent", "client.id"
    ),
    "http/json-force-text-plain": _refused_before_sending("§13.6: Wreck's json option is not accepted", "http.json"),
    "http/json-force-form-response": _refused_before_sending("§13.6: Wreck's json option is not accepted", "http.json"),
    "http/redirect-not-followed-html": Deviation(
        "§13.2/§13.3: a 3xx is TokenRequestError with the real status, not 406",
        Expect("error", TokenRequestError, status=302, payload='<a href="/">moved</a>'),
    ),
    "http/redirect-followed": _refused_before_sending(
        "§13.3/§13.6: redirects are never followed; the option is rejected", "http.redirects"
    ),
    "response/text-plain-json-body": Deviation(
        "§13.1: a non-JSON, non-form 2xx is TokenResponseError (not 406)",
        Expect("error", TokenResponseError, status=200),
    ),
    "response/form-urlencoded": Deviation(
        "§13.1: form-encoded token responses are parsed; fields stay strings",
        Expect(
            "token",
            token=_FORM_TOKEN,
            token_json=_FORM_TOKEN_JSON,
            expired_checks=((0, False), (60, False)),
        ),
    ),
    "response/expires-at-millis": Deviation(
        "Python datetimes end at year 9999: a date JavaScript holds beyond it is clamped to datetime.max",
        Expect(
            "token",
            token={"access_token": "a", "expires_at": _MAX},
            token_json={"access_token": "a", "expires_at": "9999-12-31T23:59:59.999Z"},
            expired_checks=((0, False), (60, False)),
        ),
    ),
    "response/oauth-error-with-200": Deviation(
        "§13.4: a 2xx without access_token is TokenResponseError carrying the OAuth error fields",
        Expect(
            "error",
            TokenResponseError,
            status=200,
            payload={"error": "invalid_client", "error_description": "bad secret"},
        ),
    ),
    "response/status-204-json-ct": Deviation(
        "§13.4: an empty 2xx is TokenResponseError", Expect("error", TokenResponseError, status=204)
    ),
    "response/json-null": Deviation(
        "§13.4: a null 2xx body is TokenResponseError", Expect("error", TokenResponseError, status=200)
    ),
    "response/json-string": Deviation(
        "§13.4: a non-object 2xx body is TokenResponseError", Expect("error", TokenResponseError, status=200)
    ),
    "response/invalid-json": Deviation(
        "§13.2: unparseable JSON on a 2xx is TokenResponseError (not Boom 502)",
        Expect("error", TokenResponseError, status=200),
    ),
    "response/bom-prefixed-json": Deviation(
        "§13 details: a BOM is rejected as simple-oauth2 rejects it, as TokenResponseError",
        Expect("error", TokenResponseError, status=200),
    ),
    "create-token/null": Deviation("§13 details: create_token(None) raises TypeError", Expect("error", TypeError)),
    "create-token/string": Deviation("§13 details: create_token('str') raises TypeError", Expect("error", TypeError)),
    "refresh/response-json-null": Deviation(
        "§13.4: a null refresh answer is TokenResponseError", Expect("error", TokenResponseError, status=200)
    ),
    "revoke/status-204-no-ct": Deviation(
        "§13.8: revoke accepts an empty 204 and returns None", Expect("value", value=None)
    ),
}


def _config_error_path(detail_path: list[Any]) -> str:
    return ".".join(str(part) for part in detail_path)


def translate(outcome: Mapping[str, Any]) -> Expect | None:
    """The port's outcome for a Node outcome that differs only in the error class; ``None`` if it differs more."""
    kind = outcome["kind"]
    if kind in ("constructed", "token"):
        return Expect(kind)
    if kind == "value":
        return Expect("value", value=outcome["value"])
    error = outcome["error"]
    data = error.get("data") or {}
    if error.get("details"):
        return Expect("error", ConfigError, paths=(_config_error_path(error["details"][0]["path"]),))
    if error.get("is_boom") and data.get("is_response_error"):
        return Expect("error", TokenRequestError, status=data["res_status_code"], payload=data["payload"])
    if error.get("is_boom") and error.get("status_code") == 504 and not data:
        return Expect("error", TransportError, timeout=True)
    if error.get("is_boom") and error.get("code") == "ECONNREFUSED":
        return Expect("error", TransportError, timeout=False)
    return None


def expectation(vector: Mapping[str, Any]) -> Expect:
    deviation = DEVIATIONS.get(vector["id"])
    if deviation is not None:
        return deviation.expect
    expect = translate(vector["outcome"])
    assert expect is not None, f"{vector['id']}: not translatable and not in DEVIATIONS"
    return expect


# --- running a vector ----------------------------------------------------------------------------------


@pytest.fixture
async def servers() -> AsyncIterator[CaptureServers]:
    capture = CaptureServers()
    await capture.start("BASE")
    await capture.start("BASE2")
    yield capture
    await capture.stop()


async def run_call(vector: Mapping[str, Any], config: Any, clock: FrozenClock) -> Any:
    """Build the client and run ``vector['call']``; returns the result (the test closes the client)."""
    call = vector["call"]
    method = call["method"]
    client = ClientCredentials(config, now=clock)
    try:
        args = decode_args(call.get("args", []))
        if method == "construct":
            return "constructed"
        if method == "getToken":
            return await client.get_token(*args)
        if method == "createToken":
            return client.create_token(*args)
        token = client.create_token(decode_input(vector["token_input"]))
        if method == "expired":
            clock.now_ms = call.get("now_ms", clock.now_ms)
            return token.expired(*args)
        if method == "refresh":
            return await token.refresh(*args)
        if method == "revoke":
            return await token.revoke(*args)
        if method == "revokeAll":
            return await token.revoke_all(*args)
        raise AssertionError(f"unknown call {method}")
    finally:
        await client.close()


def check_requests(vector: Mapping[str, Any], servers: CaptureServers, placeholders: dict[str, str]) -> None:
    deviation = DEVIATIONS.get(vector["id"])
    expected = [] if deviation and deviation.no_requests else substitute(vector["requests"], placeholders)
    assert len(servers.requests) == len(expected), "number of requests"
    for index, (ours, node) in enumerate(zip(servers.requests, expected, strict=True)):
        body = deviation.bodies.get(index, node["body"]) if deviation else node["body"]
        assert (ours.server, ours.method, ours.target) == (node["server"], node["method"], node["target"])
        assert ours.body == body.encode("utf-8"), "body bytes"
        names = [name for name, _ in ours.header_pairs if name.lower() not in ("host", "content-length")]
        node_names = [name for name in node["header_names"] if name.lower() not in ("host", "content-length")]
        assert names == node_names, "header names in wire order"
        for name, value in ours.header_pairs:
            if name.lower() == "content-length":
                assert value == str(len(ours.body))
            elif name.lower() != "host":
                assert value == node["headers"][name.lower()], f"header {name}"


def _expected_token(vector: Mapping[str, Any]) -> dict[str, Any]:
    token: dict[str, Any] = {}
    for key, value in vector["outcome"]["token"].items():
        if isinstance(value, dict) and "$undefined" in value:
            continue
        if isinstance(value, dict) and "$date" in value:
            stamp = value["$date"]
            value = None if stamp is None else datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        token[key] = value
    return token


def check_token(result: Any, expect: Expect, vector: Mapping[str, Any], clock: FrozenClock) -> None:
    assert isinstance(result, AccessToken), f"expected a token, got {result!r}"
    outcome = vector["outcome"]
    expected = dict(expect.token) if expect.token is not None else _expected_token(vector)
    assert dict(result.token) == expected
    assert list(result.token) == list(expected), "token key order"
    token_json = expect.token_json if expect.token_json is not None else outcome["token_json"]
    assert result.to_dict() == token_json
    checks = expect.expired_checks or tuple((c["window"], c["result"]) for c in outcome["expired_checks"])
    clock.now_ms = vector["now_ms"]
    assert [result.expired(window) for window, _ in checks] == [answer for _, answer in checks]


def check_error(raised: BaseException, expect: Expect) -> None:
    assert expect.error is not None
    assert isinstance(raised, expect.error), f"expected {expect.error.__name__}, got {raised!r}"
    if expect.status is not None:
        assert getattr(raised, "status", None) == expect.status
    if expect.timeout is not None:
        assert isinstance(raised, TransportError)
        assert raised.timeout is expect.timeout
    if expect.paths:
        assert isinstance(raised, ConfigError)
        assert {to_snake(p) for p in expect.paths} <= {to_snake(p) for p in raised.paths}, raised.paths
    if expect.payload is not NOT_CHECKED:
        assert getattr(raised, "payload", None) == expect.payload


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
async def test_vector(vector: dict[str, Any], servers: CaptureServers) -> None:
    placeholders = placeholders_for(servers.bases, dead_port())
    servers.responses.extend(substitute(vector["responses"], placeholders))
    config = node_config_to_python(substitute(vector["config"], placeholders))
    clock = FrozenClock(vector["now_ms"])
    expect = expectation(vector)
    raised: BaseException | None = None
    result: Any = None
    try:
        result = await run_call(vector, config, clock)
    except (ConfigError, TokenRequestError, TokenResponseError, TransportError, TypeError) as exc:
        raised = exc
    if raised is not None:
        assert expect.kind == "error", f"unexpected {raised!r}"
        check_error(raised, expect)
        node_headers = ((vector["outcome"].get("error") or {}).get("data") or {}).get("headers", {})
        if isinstance(raised, TokenRequestError) and "retry-after" in node_headers:
            assert raised.retry_after == node_headers["retry-after"]
    else:
        assert expect.kind != "error", f"expected {expect.error}, got {result!r}"
        if expect.kind == "token":
            check_token(result, expect, vector, clock)
        elif expect.kind == "value":
            assert result == expect.value
        else:
            assert result == "constructed"
    check_requests(vector, servers, placeholders)


def test_vectors_file_is_available() -> None:
    """CI must replay the vectors; locally a missing file is a visible skip, not a silent pass."""
    if vectors_path() is None:
        if os.environ.get("CI"):
            pytest.fail("the simple-oauth2 vectors are missing (set TOKENRELAY_VECTORS or provide ../shared)")
        pytest.skip("vectors file not found (set TOKENRELAY_VECTORS)")
    assert VECTORS, "the vectors file holds no vectors"


def test_every_vector_is_compared_directly_or_listed_as_a_deviation() -> None:
    if not VECTORS:
        pytest.skip("vectors file not found")
    uncovered = [v["id"] for v in VECTORS if v["id"] not in DEVIATIONS and translate(v["outcome"]) is None]
    assert uncovered == []


def test_every_deviation_names_a_vector_and_a_reason() -> None:
    if not VECTORS:
        pytest.skip("vectors file not found")
    ids = {v["id"] for v in VECTORS}
    if META.get("vector_count") == len(VECTORS) and len(VECTORS) >= len(DEVIATIONS):
        assert set(DEVIATIONS) <= ids, sorted(set(DEVIATIONS) - ids)
    assert all(deviation.reason for deviation in DEVIATIONS.values())
