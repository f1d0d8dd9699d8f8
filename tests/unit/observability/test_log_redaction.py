"""The redaction backstop of ``tokenrelay.log``: secrets never reach the output, whatever path they take.

Each test configures the real pipeline on a StringIO, emits an event carrying a known secret, and asserts on the
rendered text (the secret must be absent) and on the parsed JSON (what replaced it).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenrelay.config_redaction import SENSITIVE_KEYS
from tokenrelay.log import REDACTED, configure_logging, redact
from tokenrelay.log_redaction import HINTS, may_hint, scrub

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


# --- credentials embedded in text, under every spelling of the parameter name --------------------------------------

#: Credential parameter names as words; each is tried in every spelling people write.
_PARAMETER_WORDS = [
    ("access", "token"),
    ("refresh", "token"),
    ("id", "token"),
    ("client", "secret"),
    ("client", "assertion"),
    ("password",),
    ("api", "key"),
    ("x", "api", "key"),
]
_SPELLINGS: dict[str, Callable[[tuple[str, ...]], str]] = {
    "snake": "_".join,
    "camel": lambda words: words[0] + "".join(word.capitalize() for word in words[1:]),
    "pascal": lambda words: "".join(word.capitalize() for word in words),
    "kebab": "-".join,
    "upper": lambda words: "_".join(words).upper(),
    "run-together": "".join,
}
_QUOTINGS = {"bare": "", "double": '"', "single": "'", "escaped": '\\"'}
VALUE = "v4lue-Qx9"


@pytest.mark.parametrize("quote", _QUOTINGS.values(), ids=_QUOTINGS.keys())
@pytest.mark.parametrize("separator", ["=", ": ", " = "])
@pytest.mark.parametrize("spelling", _SPELLINGS.values(), ids=_SPELLINGS.keys())
@pytest.mark.parametrize("words", _PARAMETER_WORDS, ids="_".join)
def test_parameters_in_text_are_masked_in_every_spelling(
    words: tuple[str, ...], spelling: Callable[[tuple[str, ...]], str], separator: str, quote: str
) -> None:
    """``accessToken=``, ``"client-secret": "…"``, ``ACCESS_TOKEN=``, ``RefreshToken=``, ``x-api-key: …``: masked."""
    name = spelling(words)
    text = f"failed {{{quote}{name}{quote}{separator}{quote}@{quote}, {quote}scope{quote}: {quote}read{quote}}}"
    assert scrub(text.replace("@", VALUE)) == text.replace("@", REDACTED)


@pytest.mark.parametrize("key", sorted(SENSITIVE_KEYS - {"authorization", "proxyauthorization", "cookie", "setcookie"}))
def test_every_credential_key_name_is_masked_as_a_parameter_in_text(key: str) -> None:
    """The key layer's vocabulary is the text layer's: a value masked as a keyword argument is masked in a message.

    The header names are left to other rules: the scheme rule masks an ``Authorization`` credential, the key rule
    a header mapping.
    """
    assert scrub(f"query {key}={VALUE}&next=1") == f"query {key}={REDACTED}&next=1"


@pytest.mark.parametrize(
    "text",
    [
        "token endpoint answered 500",
        "refresh_token grant is not supported by this server",
        "the client secret was rotated at 12:00",
        "passwordless login: enabled",
        "accessTokenExpiry=300",
        "token_type=Bearer",
        "secret_file=/run/secrets/idp",
        "client_secret_env=IDP_SECRET",
        "keyId: 2024-01",
        "token=3fdb1994",
        "Authorization: Bearer",
    ],
)
def test_text_naming_credentials_without_a_value_is_left_alone(text: str) -> None:
    """Words alone, other names (``token_type``, ``secret_file``) and a fingerprint after ``token`` stay readable."""
    assert scrub(text) == text


def test_the_scheme_after_authorization_stays_readable() -> None:
    """``Authorization`` is left to the scheme rule: the credential goes, the scheme says what kind it was."""
    assert scrub(f"'Authorization': 'Bearer {VALUE}'") == f"'Authorization': 'Bearer {REDACTED}'"


def test_a_backslash_inside_a_value_is_masked_with_it() -> None:
    """Only an escaped quote ends a value: a secret holding a backslash is not cut in two."""
    assert scrub(r'password="a\b\"c"') == rf'password="{REDACTED}\"c"'


def test_camel_case_parameters_in_messages_never_reach_the_output() -> None:
    """Through the whole pipeline: message, string fields and a traceback with JSON and kebab-case fragments."""
    out = _configured()
    try:
        raise RuntimeError(json.dumps({"accessToken": SECRET, "expiresIn": 300}))
    except RuntimeError:
        structlog.get_logger("tokenrelay.test").exception(
            f"clientSecret={SECRET}", detail=f"client-secret: {SECRET}", env=f"REFRESH_TOKEN={SECRET}"
        )
    assert SECRET not in out.getvalue()
    (line,) = _lines(out)
    assert (line["event"], line["detail"]) == (f"clientSecret={REDACTED}", f"client-secret: {REDACTED}")
    assert f'{{"accessToken": "{REDACTED}", "expiresIn": 300}}' in str(line["exception"])


# --- the pre-filters: never a false negative ------------------------------------------------------------------------

_NAME_SPELLING = st.builds(
    lambda words, joiner, flips: "".join(
        char.swapcase() if flip else char for char, flip in zip(joiner.join(words), flips + [False] * 40, strict=False)
    ),
    st.sampled_from(_PARAMETER_WORDS),
    st.sampled_from(["", "_", "-"]),
    st.lists(st.booleans(), max_size=40),
)
_FRAGMENT = st.builds(
    "{1}{0}{1}{2}{1}{3}".format,
    _NAME_SPELLING | st.sampled_from(["token", "Secret", "PASSPHRASE", "bearer", "dPoP", "Basic", "eyJa.b.c"]),
    st.sampled_from(["", '"', "'", '\\"']),
    st.sampled_from(["=", ":", " : ", " "]),
    st.text(max_size=6),
)
_NEAR_MISS = st.text(alphabet=st.sampled_from("tokenTOKENsecrtSpaswdkyKYbrBRiIcCjJ_-=:\"' \\&.ſK\u212a"), max_size=30)


@settings(max_examples=500)
@given(text=st.lists(_FRAGMENT | _NEAR_MISS | st.text(max_size=8), max_size=4).map("".join))
def test_may_hint_says_yes_whenever_scrub_would_change_the_text(text: str) -> None:
    """The fast path skips :func:`scrub` when ``may_hint`` says no: it must then have had nothing to mask."""
    assert may_hint(text) or scrub(text) == text


@given(text=(st.text(alphabet=st.characters(max_codepoint=127), max_size=40) | _FRAGMENT).filter(str.isascii))
def test_hints_and_may_hint_name_the_same_words(text: str) -> None:
    """The documented pattern and the fast substring tests agree on ASCII text (beyond it may_hint says more)."""
    assert may_hint(text) == (HINTS.search(text) is not None)


@pytest.mark.parametrize("text", ["Long ſecret=x", "paſſword=x", "baſic x", "\u212aEY=x"])
def test_unicode_case_folding_does_not_let_a_pattern_past_may_hint(text: str) -> None:
    """``ſ`` folds to ``s`` under ``(?i)`` but not under ``str.lower``: the patterns match ASCII letters only."""
    assert may_hint(text) or scrub(text) == text
