"""Reading answers: status before media type, JSON and form tokens, what an error keeps of the body."""

from __future__ import annotations

import pytest

from tokenrelay.errors import TokenRequestError, TokenResponseError
from tokenrelay.grant.response import (
    RawResponse,
    parse_json_body,
    parse_metadata_response,
    parse_revoke_response,
    parse_token_response,
)


def answer(status: int = 200, body: str | bytes = "", content_type: str | None = "application/json") -> RawResponse:
    headers = {"Content-Type": content_type} if content_type else {}
    data = body.encode() if isinstance(body, str) else body
    return RawResponse(status, "Reason", headers, data)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=utf-8", "application/vnd.acme+json", "application/x-json"],
)
def test_json_media_types_are_parsed(content_type: str) -> None:
    assert parse_token_response(answer(body='{"access_token":"a"}', content_type=content_type)) == {"access_token": "a"}


def test_form_token_fields_stay_strings() -> None:
    form = answer(body="access_token=a&expires_in=60&scope=", content_type="application/x-www-form-urlencoded")
    assert parse_token_response(form) == {"access_token": "a", "expires_in": "60", "scope": ""}


@pytest.mark.parametrize("content_type", ["text/json", "text/plain", None])
def test_other_media_types_are_refused(content_type: str | None) -> None:
    with pytest.raises(TokenResponseError) as caught:
        parse_token_response(answer(body='{"access_token":"a"}', content_type=content_type))
    assert caught.value.status == 200


@pytest.mark.parametrize(
    "body", ["", "null", "[]", '"at"', '{"access_token": 1}', "{", '\ufeff{"access_token":"a"}', '{"a": NaN}', b"\xff"]
)
def test_unusable_2xx_bodies_are_token_response_errors(body: str | bytes) -> None:
    with pytest.raises(TokenResponseError):
        parse_token_response(answer(body=body))


def test_non_2xx_is_a_token_request_error_whatever_the_media_type() -> None:
    with pytest.raises(TokenRequestError) as caught:
        parse_token_response(answer(302, "<html/>", "text/html"))
    assert (caught.value.status, caught.value.payload) == (302, "<html/>")
    assert "302 Reason" in str(caught.value)


def test_form_encoded_error_fields_are_parsed() -> None:
    with pytest.raises(TokenRequestError) as caught:
        parse_token_response(answer(400, "error=invalid_grant", "application/x-www-form-urlencoded"))
    assert caught.value.error == "invalid_grant"


def test_long_error_text_is_bounded() -> None:
    with pytest.raises(TokenRequestError) as caught:
        parse_token_response(answer(502, "x" * 10_000, "text/html"))
    assert isinstance(caught.value.payload, str)
    assert len(caught.value.payload) < 3000


def test_parse_json_body_reads_empty_as_none() -> None:
    assert parse_json_body(b"") is None


def test_revoke_returns_json_or_none() -> None:
    assert parse_revoke_response(answer(body="{}")) == {}
    assert parse_revoke_response(answer(204, content_type=None)) is None
    assert parse_revoke_response(answer(200, "ok", "text/plain")) is None
    with pytest.raises(TokenResponseError):
        parse_revoke_response(answer(body="{"))
    with pytest.raises(TokenRequestError):
        parse_revoke_response(answer(400, '{"error":"unsupported_token_type"}'))


def test_metadata_needs_a_200_json_document() -> None:
    assert parse_metadata_response(answer(body='{"issuer":"x"}')) == {"issuer": "x"}
    with pytest.raises(TokenRequestError):
        parse_metadata_response(answer(404, "{}"))
    with pytest.raises(TokenResponseError):
        parse_metadata_response(answer(204, ""))
    with pytest.raises(TokenResponseError):
        parse_metadata_response(answer(200, "{}", "text/html"))
    with pytest.raises(TokenResponseError):
        parse_metadata_response(answer(200, "{"))


def test_raw_response_repr_leaves_the_body_out() -> None:
    assert "at-secret" not in repr(answer(body='{"access_token":"at-secret"}'))
