"""RFC 7523 client assertions: key loading, signing, public JWKs, and that key material never leaks."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tokenrelay.grant import assertion
from tokenrelay.grant.assertion import (
    CLIENT_ASSERTION_TYPE,
    build_client_assertion,
    hmac_key,
    load_private_key,
    load_private_key_file,
    public_jwk,
)
from tokenrelay.grant.errors import ConfigError

TOKEN_URL = "https://as.example/oauth2/token"
CLIENT_ID = "relay-client"
HMAC_SECRET = "s3cr3t-HMAC-value-that-is-long-enough-0123456789"
NOW = 1_700_000_000


# --- key fixtures (generated, never committed) --------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_private() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_private() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(key: Any, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
    data: bytes = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    return data.decode()


def public_pem(key: Any) -> str:
    data: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data.decode()


def private_jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, **extra: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(key, as_dict=True)
    jwk.pop("key_ops", None)
    jwk.update(extra)
    return jwk


def pem_body_lines(text: str) -> list[str]:
    """The base64 lines of a PEM: the key material that must never be shown."""
    return [line for line in text.splitlines() if line and not line.startswith("-----") and ":" not in line]


def decode(token: str, verify_key: Any, alg: str, **options: bool) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        verify_key,
        algorithms=[alg],
        audience=TOKEN_URL,
        issuer=CLIENT_ID,
        options={"require": ["iss", "sub", "aud", "jti", "iat", "exp"], **options},
    )
    return claims


# --- signing and verifying with the public key ---------------------------------------------------------------


def test_client_assertion_type_is_the_rfc7523_urn() -> None:
    assert CLIENT_ASSERTION_TYPE == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL], ids=["pkcs8", "pkcs1"]
)
def test_rsa_pem_key_signs_an_rs256_assertion_that_verifies_with_the_public_key(
    rsa_private: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat
) -> None:
    key = load_private_key(pem(rsa_private, fmt), kid="rsa-1")

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)

    assert key.alg == "RS256"
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}
    claims = decode(token, rsa_private.public_key(), "RS256")
    assert claims["sub"] == CLIENT_ID
    assert claims["exp"] - claims["iat"] == 60
    assert "nbf" not in claims


def test_rsa_jwk_takes_kid_and_alg_from_the_jwk(rsa_private: rsa.RSAPrivateKey) -> None:
    key = load_private_key(json.dumps(private_jwk(rsa_private, kid="jwk-kid", alg="RS384")))

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)

    assert (key.alg, key.kid) == ("RS384", "jwk-kid")
    assert jwt.get_unverified_header(token) == {"alg": "RS384", "typ": "JWT", "kid": "jwk-kid"}
    assert decode(token, rsa_private.public_key(), "RS384")["iss"] == CLIENT_ID


def test_pem_bundle_with_a_certificate_loads_the_private_key(ec_private: ec.EllipticCurvePrivateKey) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay-client")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ec_private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ec_private, hashes.SHA256())
    )
    bundle = certificate.public_bytes(serialization.Encoding.PEM).decode() + pem(ec_private)

    assert load_private_key(bundle) == load_private_key(pem(ec_private))


@pytest.mark.parametrize("mangle", [lambda t: t.replace("\n", "\r\n"), lambda t: "\ufeff\n  " + t + "\n\n"])
def test_key_text_with_crlf_bom_or_blank_lines_loads(
    rsa_private: rsa.RSAPrivateKey, mangle: Callable[[str], str]
) -> None:
    as_pem, as_jwk = pem(rsa_private), json.dumps(private_jwk(rsa_private), indent=2)

    assert load_private_key(mangle(as_pem)) == load_private_key(mangle(as_jwk)) == load_private_key(as_pem)


def test_explicit_alg_and_kid_override_the_jwk(rsa_private: rsa.RSAPrivateKey) -> None:
    key = load_private_key(json.dumps(private_jwk(rsa_private, kid="jwk", alg="RS384")), alg="PS512", kid="mine")

    assert (key.alg, key.kid) == ("PS512", "mine")


def test_rsa_jwk_without_crt_parameters_loads(rsa_private: rsa.RSAPrivateKey) -> None:
    jwk = {k: v for k, v in private_jwk(rsa_private).items() if k in ("kty", "n", "e", "d")}

    key = load_private_key(json.dumps(jwk))

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)
    assert decode(token, rsa_private.public_key(), "RS256")["aud"] == TOKEN_URL


@pytest.mark.parametrize("alg", ["PS256", "PS384", "PS512", "RS512"])
def test_rsa_key_signs_with_an_explicit_rsa_alg(rsa_private: rsa.RSAPrivateKey, alg: str) -> None:
    key = load_private_key(pem(rsa_private), alg=alg)

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)

    assert jwt.get_unverified_header(token)["alg"] == alg
    assert decode(token, rsa_private.public_key(), alg)["sub"] == CLIENT_ID


def test_header_has_no_kid_when_none_is_known(rsa_private: rsa.RSAPrivateKey) -> None:
    key = load_private_key(pem(rsa_private))

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)

    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT"}


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL], ids=["pkcs8", "sec1"]
)
def test_ec_p256_pem_key_signs_an_es256_assertion(
    ec_private: ec.EllipticCurvePrivateKey, fmt: serialization.PrivateFormat
) -> None:
    key = load_private_key(pem(ec_private, fmt), kid="ec-1")

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)

    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT", "kid": "ec-1"}
    assert decode(token, ec_private.public_key(), "ES256")["sub"] == CLIENT_ID


def test_ec_p256_jwk_signs_an_es256_assertion(ec_private: ec.EllipticCurvePrivateKey) -> None:
    key = load_private_key(json.dumps(private_jwk(ec_private, kid="ec-jwk")))

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)

    assert (key.alg, key.kid) == ("ES256", "ec-jwk")
    assert decode(token, ec_private.public_key(), "ES256")["iss"] == CLIENT_ID


@pytest.mark.parametrize(("curve", "alg"), [(ec.SECP384R1(), "ES384"), (ec.SECP521R1(), "ES512")])
def test_ec_curve_determines_the_alg(curve: ec.EllipticCurve, alg: str) -> None:
    private = ec.generate_private_key(curve)
    key = load_private_key(pem(private))

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)

    assert key.alg == alg
    assert decode(token, private.public_key(), alg)["sub"] == CLIENT_ID


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_key_signs_a_client_secret_jwt(alg: str) -> None:
    secret = HMAC_SECRET * 2
    key = hmac_key(secret, alg=alg)

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)

    assert jwt.get_unverified_header(token) == {"alg": alg, "typ": "JWT"}
    assert decode(token, secret.encode(), alg)["sub"] == CLIENT_ID


def test_hmac_key_defaults_to_hs256() -> None:
    assert hmac_key(HMAC_SECRET).alg == "HS256"


def test_all_claims_follow_rfc7523(rsa_private: rsa.RSAPrivateKey) -> None:
    key = load_private_key(pem(rsa_private))

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL, lifetime=120, now=NOW + 0.9)

    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"iss", "sub", "aud", "jti", "iat", "exp"}
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == TOKEN_URL
    assert (claims["iat"], claims["exp"]) == (NOW, NOW + 120)
    assert isinstance(claims["exp"], int)
    assert len(claims["jti"]) >= 22  # >= 128 bits of base64url


def test_default_now_is_the_wall_clock(rsa_private: rsa.RSAPrivateKey) -> None:
    key = load_private_key(pem(rsa_private))
    before = int(time.time())

    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL, lifetime=30)

    claims = decode(token, rsa_private.public_key(), "RS256")
    assert before <= claims["iat"] <= before + 5
    assert claims["exp"] == claims["iat"] + 30


def test_jti_is_unique_across_1000_assertions() -> None:
    key = hmac_key(HMAC_SECRET)

    tokens = [build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL, now=NOW) for _ in range(1000)]

    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}
    assert len(jtis) == 1000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"client_id": ""},
        {"audience": ""},
        {"lifetime": 0.5},
        {"lifetime": -60},
        {"lifetime": float("inf")},
        {"lifetime": float("nan")},
    ],
)
def test_build_client_assertion_rejects_unusable_arguments(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"client_id": CLIENT_ID, "audience": TOKEN_URL, **kwargs}

    with pytest.raises(ConfigError):
        build_client_assertion(hmac_key(HMAC_SECRET), **args)


# --- public JWK -----------------------------------------------------------------------------------------------


def test_public_jwk_of_an_rsa_key_verifies_its_assertions(rsa_private: rsa.RSAPrivateKey) -> None:
    key = load_private_key(pem(rsa_private), alg="PS256", kid="k1")

    jwk = public_jwk(key)

    assert set(jwk) == {"kty", "n", "e", "alg", "use", "kid"}
    assert (jwk["kty"], jwk["alg"], jwk["use"], jwk["kid"]) == ("RSA", "PS256", "sig", "k1")
    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)
    assert decode(token, jwt.PyJWK(jwk).key, "PS256")["sub"] == CLIENT_ID


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP521R1()])
def test_public_jwk_of_an_ec_key_verifies_its_assertions(curve: ec.EllipticCurve) -> None:
    key = load_private_key(pem(ec.generate_private_key(curve)))

    jwk = public_jwk(key)

    assert set(jwk) == {"kty", "crv", "x", "y", "alg", "use"}
    token = build_client_assertion(key, client_id=CLIENT_ID, audience=TOKEN_URL)
    assert decode(token, jwt.PyJWK(jwk).key, key.alg)["sub"] == CLIENT_ID


def test_public_jwk_has_no_private_members(ec_private: ec.EllipticCurvePrivateKey) -> None:
    jwk = public_jwk(load_private_key(json.dumps(private_jwk(ec_private))))

    assert "d" not in jwk


def test_public_jwk_of_an_hmac_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="no public JWK"):
        public_jwk(hmac_key(HMAC_SECRET))


def test_public_jwk_of_an_rsa_key_is_the_same_public_key(rsa_private: rsa.RSAPrivateKey) -> None:
    jwk = public_jwk(load_private_key(pem(rsa_private)))

    assert jwt.PyJWK(jwk).key.public_numbers() == rsa_private.public_key().public_numbers()


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_thumbprint_is_rfc7638_of_the_public_jwk_as_pyjwt_encodes_it(
    rsa_private: rsa.RSAPrivateKey, ec_private: ec.EllipticCurvePrivateKey, kind: str
) -> None:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "rsa":
        private, members = rsa_private, ("e", "kty", "n")
        pyjwt_jwk = RSAAlgorithm.to_jwk(rsa_private.public_key(), as_dict=True)
    else:
        private, members = ec_private, ("crv", "kty", "x", "y")
        pyjwt_jwk = ECAlgorithm.to_jwk(ec_private.public_key(), as_dict=True)

    key = load_private_key(pem(private))

    assert key.thumbprint == _rfc7638({m: pyjwt_jwk[m] for m in members})


def test_thumbprint_canonicalisation_matches_the_rfc7638_example() -> None:
    """RFC 7638 §3.1's worked example gives the published thumbprint."""
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
        "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZ"
        "Hzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEg"
        "U8awapJzKnqDKgw"
    )

    thumbprint = assertion._thumbprint({"e": "AQAB", "kty": "RSA", "n": n})

    assert thumbprint == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _rfc7638(members: dict[str, str]) -> str:
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


# --- SigningKey as a value ------------------------------------------------------------------------------------


def test_signing_key_repr_shows_alg_kid_and_thumbprint_only(rsa_private: rsa.RSAPrivateKey) -> None:
    text = pem(rsa_private)
    key = load_private_key(text, kid="k1")

    for shown in (repr(key), str(key), f"{key}", f"{key!r}"):
        assert shown == f"SigningKey(alg='RS256', kid='k1', thumbprint={key.thumbprint!r})"
        assert not any(line in shown for line in pem_body_lines(text))


def test_signing_key_repr_never_shows_the_jwk_private_exponent(ec_private: ec.EllipticCurvePrivateKey) -> None:
    jwk = private_jwk(ec_private)
    key = load_private_key(json.dumps(jwk))

    assert jwk["d"] not in repr(key)
    assert jwk["d"] not in str(key)


def test_hmac_signing_key_repr_shows_hmac_not_the_secret() -> None:
    key = hmac_key(HMAC_SECRET)

    assert repr(key) == "SigningKey(alg='HS256', kid=None, hmac)"
    assert HMAC_SECRET not in str(key)
    assert key.thumbprint is None


def test_signing_keys_from_the_same_key_material_are_equal(rsa_private: rsa.RSAPrivateKey) -> None:
    from_pem = load_private_key(pem(rsa_private))
    from_jwk = load_private_key(json.dumps(private_jwk(rsa_private)))

    assert from_pem == from_jwk
    assert hash(from_pem) == hash(from_jwk)
    assert len({from_pem, from_jwk}) == 1


def test_signing_keys_differ_by_key_alg_kid_and_kind(
    rsa_private: rsa.RSAPrivateKey, ec_private: ec.EllipticCurvePrivateKey
) -> None:
    base = load_private_key(pem(rsa_private))

    assert base != load_private_key(pem(rsa_private), alg="PS256")
    assert base != load_private_key(pem(rsa_private), kid="other")
    assert base != load_private_key(pem(ec_private), alg=None)
    assert base != hmac_key(HMAC_SECRET, alg="HS256")
    assert hmac_key(HMAC_SECRET) == hmac_key(HMAC_SECRET)
    assert hmac_key(HMAC_SECRET) != hmac_key(HMAC_SECRET + "x")
    assert hmac_key(HMAC_SECRET) != load_private_key(pem(rsa_private), alg="RS256")
    assert base != "not a key"


def test_signing_key_is_immutable(rsa_private: rsa.RSAPrivateKey) -> None:
    key = load_private_key(pem(rsa_private))

    with pytest.raises(AttributeError):
        key.alg = "PS256"  # type: ignore[misc]


# --- bad input: ConfigError, never echoing the key ------------------------------------------------------------


def _assert_config_error_hides(call: Callable[[], object], *secrets: str, match: str) -> ConfigError:
    with pytest.raises(ConfigError, match=match) as info:
        call()
    error = info.value
    rendered = " ".join([str(error), repr(error), *(str(e) for e in error.errors)])
    for secret in secrets:
        assert secret not in rendered
    # No chained exception either: a cause such as JSONDecodeError carries the whole input (its ``doc``).
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert error.paths == ("",)
    return error


def test_rsa_key_with_an_ec_alg_is_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    text = pem(rsa_private)

    _assert_config_error_hides(lambda: load_private_key(text, alg="ES256"), *pem_body_lines(text), match="RSA key")


@pytest.mark.parametrize("alg", ["ES384", "RS256", "PS256", "HS256"])
def test_ec_p256_key_with_another_alg_is_refused(ec_private: ec.EllipticCurvePrivateKey, alg: str) -> None:
    text = pem(ec_private)

    _assert_config_error_hides(lambda: load_private_key(text, alg=alg), *pem_body_lines(text), match="ES256 expected")


@pytest.mark.parametrize("alg", ["HS256", "HS512", "none", "EdDSA", "rs256", ""])
def test_non_rsa_algs_are_refused_for_an_rsa_key(rsa_private: rsa.RSAPrivateKey, alg: str) -> None:
    text = pem(rsa_private)

    _assert_config_error_hides(lambda: load_private_key(text, alg=alg), *pem_body_lines(text), match="cannot be used")


def test_jwk_alg_that_does_not_fit_the_key_is_refused(ec_private: ec.EllipticCurvePrivateKey) -> None:
    jwk = private_jwk(ec_private, alg="RS256")

    _assert_config_error_hides(lambda: load_private_key(json.dumps(jwk)), jwk["d"], match="EC P-256")


def test_public_key_pem_is_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    text = public_pem(rsa_private)

    _assert_config_error_hides(lambda: load_private_key(text), *pem_body_lines(text), match="no private key")


def test_public_only_jwk_is_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    jwk = {k: v for k, v in private_jwk(rsa_private).items() if k in ("kty", "n", "e")}

    _assert_config_error_hides(lambda: load_private_key(json.dumps(jwk)), jwk["n"], match="public key")


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL], ids=["pkcs8", "legacy"]
)
def test_encrypted_pem_is_refused(rsa_private: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat) -> None:
    data = rsa_private.private_bytes(
        serialization.Encoding.PEM, fmt, serialization.BestAvailableEncryption(b"passphrase")
    )
    text = data.decode()

    _assert_config_error_hides(lambda: load_private_key(text), *pem_body_lines(text), match="encrypted")


@pytest.mark.parametrize(
    "text",
    [
        "SECRET-GARBAGE-not-a-key",
        "",
        "-----BEGIN PRIVATE KEY-----\nSECRETGARBAGEAAAA\n-----END PRIVATE KEY-----\n",
        '{"kty": "RSA", "d": "SECRETGARBAGE", "n": "SECRETGARBAGE", "e": "AQAB"}',
        '{"kty": "EC", "crv": "P-256", "x": "SECRETGARBAGE", "y": "AA", "d": "SECRETGARBAGE"}',
        '{"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA", "d": "SECRETGARBAGE"}',
        '{"SECRETGARBAGE": ',
        '{"kty": "RSA", "d": "SECRETGARBAGE"',
    ],
    ids=["text", "empty", "pem-body", "rsa-jwk", "ec-jwk", "ec-curve", "json-1", "json-2"],
)
def test_garbage_is_refused_without_echoing_it(text: str) -> None:
    _assert_config_error_hides(lambda: load_private_key(text), "SECRETGARBAGE", "SECRET-GARBAGE", match=".")


@pytest.mark.parametrize(
    ("jwk", "match"),
    [
        ('["not", "an", "object"]', "not a PEM private key or a JWK"),
        ('{"keys": [{"kty": "RSA", "d": "SECRETGARBAGE"}]}', "JWK Set"),
        ('{"kty": "oct", "k": "SECRETGARBAGE"}', "client_secret_jwt"),
        ('{"kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "SECRETGARBAGE"}', "unsupported JWK key type 'OKP'"),
        ('{"d": "SECRETGARBAGE"}', "unsupported JWK key type None"),
        ('{"kty": "SECRETGARBAGE-long-member", "d": "x"}', r"unsupported JWK key type \(not shown\)"),
        pytest.param('{"kty": ' * 100_000, "not valid JSON", id="deeply-nested-json"),
    ],
)
def test_unsupported_jwk_shapes_are_refused(jwk: str, match: str) -> None:
    _assert_config_error_hides(lambda: load_private_key(jwk), "SECRETGARBAGE", match=match)


def test_long_alg_is_not_echoed(rsa_private: rsa.RSAPrivateKey) -> None:
    text = pem(rsa_private)

    _assert_config_error_hides(
        lambda: load_private_key(text, alg="SECRETGARBAGE" * 3), "SECRETGARBAGE", match=r"algorithm \(not shown\)"
    )


def test_jwk_for_encryption_is_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    jwk = private_jwk(rsa_private, use="enc")

    _assert_config_error_hides(lambda: load_private_key(json.dumps(jwk)), jwk["d"], match="not 'sig'")


@pytest.mark.parametrize("member", ["kid", "alg"])
def test_jwk_with_a_non_string_kid_or_alg_is_refused(ec_private: ec.EllipticCurvePrivateKey, member: str) -> None:
    jwk: dict[str, Any] = {**private_jwk(ec_private), member: 7}

    _assert_config_error_hides(lambda: load_private_key(json.dumps(jwk)), jwk["d"], match=f"'{member}' is not a string")


def test_empty_kid_is_refused(ec_private: ec.EllipticCurvePrivateKey) -> None:
    _assert_config_error_hides(lambda: load_private_key(pem(ec_private), kid=""), match="kid must not be empty")


def test_rsa_key_under_2048_bits_is_refused() -> None:
    text = pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505 - the weak key under test

    _assert_config_error_hides(lambda: load_private_key(text), *pem_body_lines(text), match="1024 bits")


def test_unsupported_curve_is_refused() -> None:
    text = pem(ec.generate_private_key(ec.SECP256K1()))

    _assert_config_error_hides(lambda: load_private_key(text), *pem_body_lines(text), match="secp256k1")


def test_unsupported_key_type_is_refused() -> None:
    text = pem(ed25519.Ed25519PrivateKey.generate())

    _assert_config_error_hides(lambda: load_private_key(text), *pem_body_lines(text), match="Ed25519")


@pytest.mark.parametrize("alg", ["RS256", "HS1", "none", "hs256"])
def test_hmac_key_refuses_non_hmac_algs(alg: str) -> None:
    _assert_config_error_hides(lambda: hmac_key(HMAC_SECRET, alg=alg), HMAC_SECRET, match="not an HMAC algorithm")


@pytest.mark.parametrize(("alg", "minimum"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_hmac_key_refuses_secrets_shorter_than_the_hash(alg: str, minimum: int) -> None:
    short = "x" * (minimum - 1)

    _assert_config_error_hides(lambda: hmac_key(short, alg=alg), short, match=f"at least {minimum}")


def test_hmac_key_accepts_a_secret_exactly_the_hash_length() -> None:
    assert hmac_key("y" * 32).alg == "HS256"


# --- files ----------------------------------------------------------------------------------------------------


def test_key_file_loads_pem(tmp_path: Path, ec_private: ec.EllipticCurvePrivateKey) -> None:
    path = tmp_path / "client.pem"
    path.write_text(pem(ec_private))

    key = load_private_key_file(path, kid="file-kid")

    assert (key.alg, key.kid) == ("ES256", "file-kid")
    assert key == load_private_key(pem(ec_private), kid="file-kid")


def test_key_file_loads_jwk_given_as_str_path(tmp_path: Path, rsa_private: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "client.jwk.json"
    path.write_text(json.dumps(private_jwk(rsa_private, kid="k")))

    assert load_private_key_file(str(path), alg="PS384").alg == "PS384"


def test_missing_key_file_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.pem"

    error = _assert_config_error_hides(lambda: load_private_key_file(path), match="cannot read private key file")

    assert str(path) in str(error)


def test_unreadable_key_file_error_names_the_path(tmp_path: Path) -> None:
    error = _assert_config_error_hides(lambda: load_private_key_file(tmp_path), match="cannot read")

    assert str(tmp_path) in str(error)


def test_binary_key_file_is_refused_without_its_content(tmp_path: Path, rsa_private: rsa.RSAPrivateKey) -> None:
    der = rsa_private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "client.der"
    path.write_bytes(der)

    error = _assert_config_error_hides(lambda: load_private_key_file(path), match="not text")

    assert str(path) in str(error)


def test_bad_key_file_error_names_the_path_and_hides_the_content(
    tmp_path: Path, rsa_private: rsa.RSAPrivateKey
) -> None:
    text = public_pem(rsa_private)
    path = tmp_path / "public.pem"
    path.write_text(text)

    error = _assert_config_error_hides(
        lambda: load_private_key_file(path), *pem_body_lines(text), match="no private key"
    )

    assert re.search(re.escape(str(path)), str(error))
