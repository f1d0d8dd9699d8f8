"""ClientCredentials / AccessToken against real token endpoints on 127.0.0.1: answers, errors, lifecycle."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import aiohttp.abc
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from tokenrelay import AccessToken, ClientCredentials
from tokenrelay.errors import ConfigError, TokenRequestError, TokenResponseError, TransportError
from tokenrelay.grant.response import MAX_RESPONSE_BYTES

AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECRET = "s3cr3t-value-never-logged"
TOKEN_BODY = {"access_token": "at-secret-token-value", "token_type": "Bearer", "expires_in": 3600}


class Endpoint:
    """A token endpoint whose answers are given per test; it records every request."""

    def __init__(self, *answers: web.StreamResponse | Handler) -> None:
        self.answers = list(answers)
        self.seen: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append({"path": request.path_qs, "headers": CIMultiDict(request.headers), "body": body.decode()})
        answer = self.answers.pop(0)
        return answer if isinstance(answer, web.StreamResponse) else await answer(request)

    async def serve(self, aiohttp_server: AiohttpServer) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        server = await aiohttp_server(app)
        return str(server.make_url("")).rstrip("/")


def ok(body: dict[str, Any] | None = None) -> web.Response:
    return web.json_response(body if body is not None else TOKEN_BODY)


def config(base: str, **sections: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"client": {"id": "client-id", "secret": SECRET}, "auth": {"token_host": base}}
    for name, value in sections.items():
        result[name] = {**result.get(name, {}), **value}
    return result


async def test_get_token_returns_the_parsed_token(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(ok())
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        token = await client.get_token({"scope": ["read", "write"]})
    assert token.access_token == "at-secret-token-value"
    assert endpoint.seen[0]["body"] == "grant_type=client_credentials&scope=read%20write"


async def test_form_encoded_token_response_is_parsed(aiohttp_server: AiohttpServer) -> None:
    answer = web.Response(text="access_token=at-1&expires_in=60", content_type="application/x-www-form-urlencoded")
    endpoint = Endpoint(answer)
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server)), now=lambda: 1000.0) as client:
        token = await client.get_token()
    assert token.token["expires_in"] == "60"
    assert token.expires_at is not None
    assert token.expires_at.timestamp() == 1060.0


async def test_resource_list_becomes_repeated_form_fields(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(ok())
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        await client.get_token({"resource": ["https://a.example/", "https://b.example/"], "audience": "x"})
    assert endpoint.seen[0]["body"] == (
        "grant_type=client_credentials&resource=https%3A%2F%2Fa.example%2F&resource=https%3A%2F%2Fb.example%2F&audience=x"
    )


async def test_oauth_error_400_raises_token_request_error_with_the_fields(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.json_response({"error": "invalid_scope", "error_description": "no"}, status=400))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token()
    assert (caught.value.status, caught.value.error, caught.value.error_description) == (400, "invalid_scope", "no")


async def test_401_without_body_keeps_the_real_status(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'}))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token()
    assert caught.value.status == 401
    assert caught.value.payload is None


async def test_500_html_keeps_the_status_and_the_raw_text(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.Response(status=500, text="<h1>boom</h1>", content_type="text/html"))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token()
    assert (caught.value.status, caught.value.payload) == (500, "<h1>boom</h1>")


async def test_400_with_invalid_json_keeps_the_raw_text(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.Response(status=400, text="{oops", content_type="application/json"))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token()
    assert caught.value.payload == "{oops"


async def test_429_exposes_retry_after(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.json_response({"error": "slow_down"}, status=429, headers={"Retry-After": "7"}))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token()
    assert caught.value.retry_after == "7"


async def test_redirect_is_an_error_and_is_not_followed(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.Response(status=307, headers={"Location": "/elsewhere"}), ok())
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token()
    assert caught.value.status == 307
    assert len(endpoint.seen) == 1


async def test_200_with_an_oauth_error_is_a_token_response_error(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.json_response({"error": "invalid_client", "access_token": 5}))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenResponseError) as caught:
            await client.get_token()
    assert caught.value.error == "invalid_client"
    assert caught.value.payload == {"error": "invalid_client"}


async def test_200_with_invalid_json_does_not_keep_the_body(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.Response(text='{"access_token": "at-leak",', content_type="application/json"))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenResponseError) as caught:
            await client.get_token()
    assert "at-leak" not in repr(caught.value.payload) + str(caught.value)


async def test_oversized_answer_is_refused(aiohttp_server: AiohttpServer) -> None:
    padding = "x" * (MAX_RESPONSE_BYTES + 10)
    endpoint = Endpoint(web.json_response({"access_token": "a", "pad": padding}))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenResponseError, match="larger than"):
            await client.get_token()


async def test_timeout_raises_transport_error_with_timeout_flag(aiohttp_server: AiohttpServer) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return ok()

    endpoint = Endpoint(slow)
    base = await endpoint.serve(aiohttp_server)
    async with ClientCredentials(config(base, http={"timeout": 5})) as client:
        with pytest.raises(TransportError) as caught:
            await client.get_token(http_options={"timeout": 0.05})
    assert caught.value.timeout is True


async def test_connection_refused_raises_transport_error(unused_loopback_port: int) -> None:
    async with ClientCredentials(config(f"http://127.0.0.1:{unused_loopback_port}")) as client:
        with pytest.raises(TransportError, match="connection failed") as caught:
            await client.get_token()
    assert caught.value.timeout is False
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)


class _NoSuchHost(aiohttp.abc.AbstractResolver):
    """A resolver that knows no host: name resolution fails without a DNS query leaving the machine."""

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[aiohttp.abc.ResolveResult]:
        raise OSError(f"no such host: {host}")

    async def close(self) -> None:
        return None


async def test_unknown_host_raises_transport_error() -> None:
    connector = aiohttp.TCPConnector(resolver=_NoSuchHost())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        ClientCredentials(config("http://tokenrelay-test.invalid"), session=session) as client,
    ):
        with pytest.raises(TransportError):
            await client.get_token(http_options={"timeout": 5})


async def test_server_closing_the_connection_raises_transport_error(aiohttp_server: AiohttpServer) -> None:
    async def hang_up(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.05)
        return ok()

    endpoint = Endpoint(hang_up)
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TransportError, match="connection broken"):
            await client.get_token()


async def test_per_call_headers_merge_over_config_headers(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(ok())
    base = await endpoint.serve(aiohttp_server)
    async with ClientCredentials(config(base, http={"headers": {"X-A": "config", "X-B": "config"}})) as client:
        await client.get_token(None, {"headers": {"x-b": "call", "Authorization": "Bearer nope"}})
    headers = endpoint.seen[0]["headers"]
    assert (headers["X-A"], headers["X-B"]) == ("config", "call")
    assert headers["Authorization"].startswith("Basic ")
    assert "User-Agent" not in headers
    assert "Accept-Encoding" not in headers


async def test_configured_user_agent_is_sent(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(ok())
    base = await endpoint.serve(aiohttp_server)
    async with ClientCredentials(config(base, http={"headers": {"User-Agent": "relay/1"}})) as client:
        await client.get_token()
    assert endpoint.seen[0]["headers"]["User-Agent"] == "relay/1"


async def test_per_call_unknown_option_is_a_config_error(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint()
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(ConfigError) as caught:
            await client.get_token(None, {"baseUrl": "http://elsewhere"})
    assert caught.value.paths == ("http_options.baseUrl",)
    assert endpoint.seen == []


async def test_refresh_keeps_the_previous_refresh_token_when_the_answer_has_none(
    aiohttp_server: AiohttpServer,
) -> None:
    endpoint = Endpoint(ok({"access_token": "at-2", "expires_in": 60}))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        token = client.create_token({"access_token": "at-1", "refresh_token": "rt-1"})
        refreshed = await token.refresh({"scope": ["a", "b"]})
    assert refreshed.token["refresh_token"] == "rt-1"
    assert endpoint.seen[0]["body"] == "grant_type=refresh_token&scope=a%20b&refresh_token=rt-1"


async def test_refresh_takes_the_new_refresh_token(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(ok({"access_token": "at-2", "refresh_token": "rt-2"}))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        refreshed = await client.create_token({"access_token": "at-1", "refresh_token": "rt-1"}).refresh()
    assert refreshed.token["refresh_token"] == "rt-2"


async def test_revoke_accepts_an_empty_200(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.Response(status=200))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        assert await client.create_token({"access_token": "at"}).revoke("access_token") is None
    assert endpoint.seen[0]["path"] == "/oauth/revoke"


async def test_revoke_rejects_an_unknown_token_type_before_sending(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint()
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(ConfigError):
            await client.create_token({"access_token": "at"}).revoke("id_token")
    assert endpoint.seen == []


async def test_revoke_with_invalid_json_answer_is_a_token_response_error(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.Response(text="{", content_type="application/json"))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenResponseError):
            await client.create_token({"access_token": "at"}).revoke("access_token")


async def test_revoke_all_revokes_access_then_refresh_token(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.Response(status=204), web.Response(status=204))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        await client.create_token({"access_token": "at", "refresh_token": "rt"}).revoke_all({"headers": {"X-T": "1"}})
    assert [seen["body"] for seen in endpoint.seen] == [
        "token=at&token_type_hint=access_token",
        "token=rt&token_type_hint=refresh_token",
    ]
    assert all(seen["headers"]["X-T"] == "1" for seen in endpoint.seen)


async def test_revoke_all_stops_after_the_first_failure(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(web.json_response({"error": "server_error"}, status=500), web.Response(status=204))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with pytest.raises(TokenRequestError):
            await client.create_token({"access_token": "at", "refresh_token": "rt"}).revoke_all()
    assert len(endpoint.seen) == 1


async def test_a_session_passed_in_is_used_and_left_open(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(ok())
    base = await endpoint.serve(aiohttp_server)
    async with aiohttp.ClientSession() as session:
        async with ClientCredentials(config(base), session=session) as client:
            await client.get_token()
        assert not session.closed


async def test_close_is_idempotent_and_the_client_can_reopen(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(ok(), ok())
    client = ClientCredentials(config(await endpoint.serve(aiohttp_server)))
    await client.get_token()
    await client.close()
    await client.close()
    await client.get_token()
    await client.close()
    assert len(endpoint.seen) == 2


async def test_debug_logs_show_the_fingerprint_never_secrets(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(ok())
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        with structlog.testing.capture_logs() as logs:
            token = await client.get_token()
    dumped = json.dumps(logs, default=str)
    assert token.fingerprint in dumped
    assert SECRET not in dumped
    assert token.access_token not in dumped
    assert "Basic " not in dumped


async def test_token_and_errors_never_show_secrets(aiohttp_server: AiohttpServer) -> None:
    endpoint = Endpoint(ok(), web.json_response({"error": "invalid_client"}, status=401))
    async with ClientCredentials(config(await endpoint.serve(aiohttp_server))) as client:
        token = await client.get_token()
        with pytest.raises(TokenRequestError) as caught:
            await client.get_token()
        shown = " ".join([repr(token), str(token), repr(caught.value), str(caught.value), repr(client)])
        shown += repr(client.config) + str(client.config)
    assert isinstance(token, AccessToken)
    assert SECRET not in shown
    assert token.access_token not in shown


async def test_a_closed_session_passed_in_is_a_transport_error() -> None:
    session = aiohttp.ClientSession()
    await session.close()
    async with ClientCredentials(config("http://127.0.0.1:1"), session=session) as client:
        with pytest.raises(TransportError, match="closed"):
            await client.get_token()
