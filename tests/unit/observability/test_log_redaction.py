"""The redaction backstop of ``tokenrelay.log``: secrets never reach the output, whatever path they take.

Each test configures the real pipeline on a StringIO, emits an event carrying a known secret, and asserts on the
rendered text (the secret must be absent) and on the parsed JSON (what replaced it).
"""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from tokenrelay.config_redaction import SENSITIVE_KEYS
from tokenrelay.log import REDACTED, configure_logging, redact

SECRET = "s3cr3t-VALUE-9f8e7d"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcGkiLCJleHAiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlLWJ5dGVz"


def _configured() -> io.StringIO:
    out = io.StringIO()
    configure_logging("debug", "json", stream=out, cache_loggers=False)
    return out


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_values_under_credential_keys_are_masked() -> None:
    """authorization, access_token, client_secret, password, ... are replaced by *** whatever their case."""
    out = _configured()
    keys = ["authorization", "Authorization", "access_token", "refresh_token", "client_secret", "secret"]
    keys += ["password", "private_key", "client_assertion", "token", "Proxy-Authorization", "api_key"]
    structlog.get_logger("tokenrelay.test").info("event", **dict.fromkeys(keys, SECRET))
    assert SECRET not in out.getvalue()
    (line,) = _lines(out)
    assert all(line[key] == REDACTED for key in keys)


def test_camel_case_and_plural_credential_keys_are_masked() -> None:
    """clientSecret, privateKey (simple-oauth2's spellings) and api_keys are masked, as check-config masks them."""
    out = _configured()
    structlog.get_logger("tokenrelay.test").info(
        "event", clientSecret=SECRET, privateKey=JWT, api_keys=[SECRET, "second-key-value"]
    )
    assert SECRET not in out.getvalue()
    assert JWT not in out.getvalue()
    assert "second-key-value" not in out.getvalue()
    (line,) = _lines(out)
    assert line["clientSecret"] == line["privateKey"] == line["api_keys"] == REDACTED


@pytest.mark.parametrize("key", ["accessToken", "refresh-token", "X-Api-Key", "CLIENT_SECRET", "clientAssertion"])
def test_credential_keys_are_masked_in_any_spelling(key: str) -> None:
    """camelCase, kebab-case and upper-case spellings of a credential key are masked like snake_case."""
    out = _configured()
    structlog.get_logger("tokenrelay.test").info("event", **{key: "plain-value-123"})
    assert "plain-value-123" not in out.getvalue()


def test_a_fingerprint_shaped_value_passes_only_under_token() -> None:
    """``token=<8 hex>`` is the access line's fingerprint; under any other credential key it may be a real secret."""
    out = _configured()
    structlog.get_logger("tokenrelay.test").info("event", token="1a2b3c4d", client_secret="12345678")
    (line,) = _lines(out)
    assert line["token"] == "1a2b3c4d"
    assert line["client_secret"] == REDACTED


@pytest.mark.parametrize("key", sorted(SENSITIVE_KEYS))
def test_every_key_check_config_masks_is_masked_in_log_lines(key: str) -> None:
    """One list of credential keys: a value check-config would print as *** never reaches a log line either."""
    out = _configured()
    structlog.get_logger("tokenrelay.test").info("event", **{key: "plain-value-123"})
    assert "plain-value-123" not in out.getvalue()
    (line,) = _lines(out)
    assert line[key] == REDACTED


def test_fingerprint_and_other_derived_keys_are_kept() -> None:
    """A fingerprint is how a token may appear: ``token_fingerprint`` and ``fingerprint`` pass unchanged."""
    out = _configured()
    structlog.get_logger("tokenrelay.test").info("event", token_fingerprint="3fdb1994", fingerprint="0badcafe")
    (line,) = _lines(out)
    assert (line["token_fingerprint"], line["fingerprint"]) == ("3fdb1994", "0badcafe")


def test_bearer_basic_and_dpop_credentials_inside_strings_are_masked() -> None:
    """The scheme stays readable, the credential after it does not."""
    out = _configured()
    structlog.get_logger("tokenrelay.test").info(
        "event",
        header=f"Authorization: Bearer {SECRET}",
        basic=f"basic {SECRET}",
        dpop=f"DPoP {SECRET}, more",
    )
    assert SECRET not in out.getvalue()
    (line,) = _lines(out)
    assert line["header"] == f"Authorization: Bearer {REDACTED}"
    assert line["basic"] == f"basic {REDACTED}"
    assert line["dpop"] == f"DPoP {REDACTED}, more"


def test_form_and_json_parameters_inside_strings_are_masked() -> None:
    """A token request body or a token response pasted into a message keeps its shape, not its secrets."""
    out = _configured()
    structlog.get_logger("tokenrelay.test").info(
        "event",
        form=f"grant_type=client_credentials&client_secret={SECRET}&scope=read",
        body=json.dumps({"access_token": SECRET, "expires_in": 300}),
    )
    assert SECRET not in out.getvalue()
    (line,) = _lines(out)
    assert line["form"] == f"grant_type=client_credentials&client_secret={REDACTED}&scope=read"
    assert json.loads(str(line["body"])) == {"access_token": REDACTED, "expires_in": 300}


def test_jws_shaped_tokens_anywhere_in_a_string_are_masked() -> None:
    """A JWT access token logged by mistake under an innocent key is still masked."""
    out = _configured()
    structlog.get_logger("tokenrelay.test").info(f"got {JWT} from the IdP", detail=f"value={JWT};")
    assert JWT not in out.getvalue()
    assert "eyJzdWIi" not in out.getvalue()


def test_nested_mappings_and_sequences_are_redacted() -> None:
    """Header dicts and lists of pairs are walked: keys and embedded credentials are masked inside them."""
    out = _configured()
    structlog.get_logger("tokenrelay.test").info(
        "event",
        headers={"Authorization": f"Bearer {SECRET}", "Accept": "application/json"},
        pairs=[("X-Note", f"Bearer {SECRET}")],
    )
    assert SECRET not in out.getvalue()
    (line,) = _lines(out)
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}


def test_credentials_in_formatted_tracebacks_are_masked() -> None:
    """Exceptions are formatted before redaction, so a message carrying a header is masked in the traceback."""
    out = _configured()
    try:
        raise RuntimeError(f"upstream rejected Authorization: Bearer {SECRET}")
    except RuntimeError:
        structlog.get_logger("tokenrelay.test").exception("upstream_failed")
    assert SECRET not in out.getvalue()
    (line,) = _lines(out)
    assert "RuntimeError: upstream rejected Authorization: Bearer ***" in str(line["exception"])


def test_context_variables_are_redacted_too() -> None:
    """Values bound in contextvars are merged before the redaction step."""
    out = _configured()
    structlog.contextvars.bind_contextvars(authorization=f"Bearer {SECRET}")
    structlog.get_logger("tokenrelay.test").info("event")
    assert SECRET not in out.getvalue()


def test_stdlib_records_with_credentials_are_masked() -> None:
    """aiohttp's own log lines pass through the same redaction as ours."""
    out = _configured()
    logging.getLogger("aiohttp.client").error("request failed: %s", f"Authorization: Basic {SECRET}")
    assert SECRET not in out.getvalue()
    (line,) = _lines(out)
    assert line["event"] == f"request failed: Authorization: Basic {REDACTED}"


def test_console_output_is_redacted_as_well() -> None:
    """The console renderer sits after the same redaction step."""
    out = io.StringIO()
    configure_logging("info", "console", stream=out, cache_loggers=False)
    structlog.get_logger("tokenrelay.test").info("event", client_secret=SECRET, note=f"Bearer {SECRET}")
    assert SECRET not in out.getvalue()
    assert "client_secret=***" in out.getvalue()


def test_redact_leaves_none_and_non_string_values_alone() -> None:
    """An absent header is not reported as present-but-masked; numbers are not touched."""
    event = {"event": "x", "authorization": None, "status": 401, "duration": 0.25}
    assert redact(None, "info", dict(event)) == event


def test_redact_masks_structures_nested_too_deeply() -> None:
    """Past the depth limit a value is masked rather than walked: unbounded input must not cost unbounded time."""
    deep: object = "plain"
    for _ in range(10):
        deep = {"level": deep}
    result = redact(None, "info", {"event": "x", "deep": deep, "shallow": {"level": {"level": "plain"}}})
    assert "plain" not in json.dumps(result["deep"])
    assert result["shallow"] == {"level": {"level": "plain"}}
