"""Secret sources (inline, ``secret_file``, ``secret_env``) and rotation detection on secret files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tokenrelay.config_loader import load_settings
from tokenrelay.grant.config import validate_config
from tokenrelay.grant.errors import ConfigError
from tokenrelay.secrets import file_changed, resolve_credentials, sign_file
from tokenrelay.settings import ProfileSettings
from tokenrelay.tokens import credential_digest

WriteConfig = Callable[[str, str], Path]
AUTH = {"token_host": "https://idp.example.com"}


def profile(**client: Any) -> ProfileSettings:
    return ProfileSettings(client={"id": "relay", **client}, auth=AUTH)


def test_inline_secret_is_used_as_is() -> None:
    """``client.secret`` is the secret; nothing is watched."""
    creds = resolve_credentials("p", profile(secret="inline-value"))
    assert (creds.secret, creds.watched) == ("inline-value", ())


def test_secret_file_is_read_without_its_trailing_newline(tmp_path: Path) -> None:
    """``secret_file`` content is the secret, minus the newline ``echo`` or an editor adds."""
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("from-file-value\n")
    creds = resolve_credentials("p", profile(secret_file=str(secret_file)))
    assert creds.secret == "from-file-value"
    assert [signature.path for signature in creds.watched] == [secret_file]


def test_secret_env_is_read_from_the_environment() -> None:
    """``secret_env`` names the variable holding the secret."""
    creds = resolve_credentials("p", profile(secret_env="RELAY_SECRET"), environ={"RELAY_SECRET": "from-env"})
    assert creds.secret == "from-env"


def test_missing_secret_env_names_the_variable_and_the_path() -> None:
    """An unset variable is a config error at ``profiles.<name>.client.secret_env``."""
    with pytest.raises(ConfigError) as caught:
        resolve_credentials("billing", profile(secret_env="RELAY_SECRET"), environ={})
    assert caught.value.paths == ("profiles.billing.client.secret_env",)
    assert "RELAY_SECRET" in str(caught.value)


def test_missing_secret_file_names_the_path(tmp_path: Path) -> None:
    """An unreadable file is a config error at ``profiles.<name>.client.secret_file``."""
    with pytest.raises(ConfigError) as caught:
        resolve_credentials("billing", profile(secret_file=str(tmp_path / "absent")))
    assert caught.value.paths == ("profiles.billing.client.secret_file",)


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    """An empty file (a mount that is not populated yet) is an error, not an empty secret."""
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_credentials("p", profile(secret_file=str(secret_file)))


def test_two_secret_sources_are_refused() -> None:
    """Only one of secret, secret_file, secret_env may be given."""
    with pytest.raises(ValueError, match="give only one of"):
        profile(secret="a", secret_env="B")


def test_load_reports_secret_source_problems_for_every_profile(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At load time every unresolvable secret source is listed, each under its profile."""
    monkeypatch.delenv("RELAY_ABSENT_SECRET", raising=False)
    text = f"""\
profiles:
  a:
    client: {{id: a, secret_env: RELAY_ABSENT_SECRET}}
    auth: {{token_host: "https://idp.example.com"}}
  b:
    client: {{id: b, secret_file: "{tmp_path / "absent"}"}}
    auth: {{token_host: "https://idp.example.com"}}
"""
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config("relay.yaml", text))
    assert set(caught.value.paths) == {"profiles.a.client.secret_env", "profiles.b.client.secret_file"}


def test_credential_digest_changes_with_the_secret(tmp_path: Path) -> None:
    """The digest identifies the credential: a different secret gives a different digest, the same one the same."""
    one = resolve_credentials("p", profile(secret="one")).digest
    assert resolve_credentials("p", profile(secret="one")).digest == one
    assert resolve_credentials("p", profile(secret="two")).digest != one
    assert "one" not in one


def test_touched_but_unchanged_file_is_not_a_rotation(tmp_path: Path) -> None:
    """A new mtime with the same content is not a rotation (no needless recompile, no token dropped)."""
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("same")
    signature, _ = sign_file(secret_file)
    os.utime(secret_file, ns=(signature.mtime_ns + 5_000_000_000, signature.mtime_ns + 5_000_000_000))
    assert not file_changed(signature)


def test_rewritten_file_is_a_rotation(tmp_path: Path) -> None:
    """New content in the same file is a rotation."""
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("old-secret")
    signature, _ = sign_file(secret_file)
    secret_file.write_text("new-secret!")
    assert file_changed(signature)


def test_kubernetes_symlink_swap_is_a_rotation(tmp_path: Path) -> None:
    """Kubernetes swaps the ``..data`` symlink to a new directory; the path is the same, the file is not."""
    for version, value in (("v1", "old-secret"), ("v2", "new-secret")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "client-secret").write_text(value)
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "client-secret").symlink_to("..data/client-secret")
    creds = resolve_credentials("p", profile(secret_file=str(tmp_path / "client-secret")))
    (tmp_path / "..data_tmp").symlink_to("v2")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert file_changed(creds.watched[0])
    rotated = resolve_credentials("p", profile(secret_file=str(tmp_path / "client-secret")))
    assert (rotated.secret, rotated.digest != creds.digest) == ("new-secret", True)


def test_vanished_file_counts_as_changed(tmp_path: Path) -> None:
    """A file that disappears is reported as changed, so the recompile reports the problem."""
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("value")
    signature, _ = sign_file(secret_file)
    secret_file.unlink()
    assert file_changed(signature)


def test_private_key_file_is_watched_and_in_the_digest(tmp_path: Path) -> None:
    """``private_key_file`` is read by the grant core, but its content still identifies the credential."""
    key_file = tmp_path / "key.pem"
    key_file.write_text("key-one")
    jwt_profile = ProfileSettings(
        client={"id": "relay", "private_key_file": str(key_file)},
        auth=AUTH,
        options={"authorization_method": "private_key_jwt"},
    )
    first = resolve_credentials("p", jwt_profile)
    key_file.write_text("key-two")
    second = resolve_credentials("p", jwt_profile)
    assert [signature.path for signature in first.watched] == [key_file]
    assert first.digest != second.digest


def test_credential_digest_is_the_one_the_library_derives(tmp_path: Path) -> None:
    """The secret sources and ``tokens.credential_digest`` share one derivation: same credential, same digest."""
    key_file = tmp_path / "key.pem"
    key_file.write_text("key-material")
    jwt = {"authorization_method": "private_key_jwt"}
    for client, options in (
        ({"secret_file": str(key_file)}, {}),
        ({"secret": "inline"}, {}),
        ({"private_key_file": str(key_file)}, jwt),
        ({"private_key": "inline-key"}, jwt),
    ):
        settings = ProfileSettings(client={"id": "relay", **client}, auth=AUTH, options=options)
        creds = resolve_credentials("p", settings)
        assert creds.digest == credential_digest(validate_config(settings.grant_mapping(secret=creds.secret)))


def test_tls_client_certificate_files_are_watched_and_in_the_digest(tmp_path: Path) -> None:
    """``http.cert_file`` / ``http.key_file`` (either key style) identify a client over mTLS: a rotated
    certificate is noticed and gives a new digest, so the proxy builds a client that loads it."""
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    cert.write_text("cert-one")
    key.write_text("key-one")
    mtls = ProfileSettings(
        client={"id": "relay", "secret": "s"},
        auth=AUTH,
        http={"certFile": str(cert), "key_file": str(key)},
    )
    first = resolve_credentials("p", mtls)
    assert [signature.path for signature in first.watched] == [cert, key]
    cert.write_text("cert-two")
    assert file_changed(first.watched[0])
    assert resolve_credentials("p", mtls).digest != first.digest


def test_unreadable_tls_client_certificate_is_reported_at_its_path(tmp_path: Path) -> None:
    mtls = ProfileSettings(client={"id": "relay", "secret": "s"}, auth=AUTH, http={"cert_file": str(tmp_path / "no")})
    with pytest.raises(ConfigError) as caught:
        resolve_credentials("p", mtls)
    assert caught.value.paths == ("profiles.p.http.cert_file",)
