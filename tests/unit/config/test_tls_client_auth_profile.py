"""A proxy profile that authenticates with its TLS client certificate (RFC 8705 ``tls_client_auth``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import yaml

from tokenrelay.config_loader import load_settings
from tokenrelay.config_redaction import redacted
from tokenrelay.grant.config import validate_config
from tokenrelay.grant.errors import ConfigError
from tokenrelay.runtime import compile_runtime
from tokenrelay.secrets import resolve_credentials
from tokenrelay.settings import ProfileSettings

WriteConfig = Callable[[str, str], Path]

ROUTES = """\
routes:
  - name: api
    match: {path_prefix: /api}
    upstream: https://api.example.com
    profile: mtls
"""


@pytest.fixture(name="tls_files")
def _tls_files(tmp_path: Path) -> dict[str, Path]:
    """Stand-in certificate, key and CA files: loading reads and digests them, it does not parse them."""
    files = {name: tmp_path / f"{name}.pem" for name in ("cert", "key", "ca")}
    for name, path in files.items():
        path.write_text(f"{name}-one", encoding="utf-8")
    return files


def profile_yaml(files: dict[str, Path], *, method: str = "tls_client_auth", camel: bool = False) -> str:
    options = f"authorizationMethod: {method}" if camel else f"authorization_method: {method}"
    http = (
        f"{{certFile: {files['cert']}, keyFile: {files['key']}, caFile: {files['ca']}}}"
        if camel
        else f"{{cert_file: {files['cert']}, key_file: {files['key']}, ca_file: {files['ca']}}}"
    )
    return f"""\
profiles:
  mtls:
    client: {{id: relay-client}}
    auth: {{token_host: https://idp.example.com}}
    options: {{{options}}}
    http: {http}
{ROUTES}"""


@pytest.mark.parametrize("method", ["tls_client_auth", "self_signed_tls_client_auth"])
@pytest.mark.parametrize("camel", [False, True], ids=["snake_case", "camelCase"])
def test_profile_with_a_client_certificate_and_no_secret_loads(
    write_config: WriteConfig, tls_files: dict[str, Path], method: str, camel: bool
) -> None:
    settings = load_settings(write_config("relay.yaml", profile_yaml(tls_files, method=method, camel=camel)))
    config = validate_config(settings.profiles["mtls"].grant_mapping())
    assert config.options.auth_method == method
    assert config.http.cert_file == str(tls_files["cert"])
    assert config.client.secret is None


async def test_check_config_compiles_the_profile_without_sending_anything(
    write_config: WriteConfig, tls_files: dict[str, Path]
) -> None:
    """What ``check-config`` does after loading: compile the runtime (no request) and print the redacted config."""
    settings = load_settings(write_config("relay.yaml", profile_yaml(tls_files)))
    async with aiohttp.ClientSession() as session:
        runtime = await compile_runtime(settings, session=session, previous=None)
    assert "mtls" in runtime.clients
    printed = yaml.safe_load(yaml.safe_dump(redacted(settings)))
    assert printed["profiles"]["mtls"]["options"] == {"authorization_method": "tls_client_auth"}


def test_profile_without_a_client_certificate_is_refused_at_its_path(write_config: WriteConfig) -> None:
    text = f"""\
profiles:
  mtls:
    client: {{id: relay-client}}
    auth: {{token_host: https://idp.example.com}}
    options: {{authorization_method: tls_client_auth}}
{ROUTES}"""
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config("relay.yaml", text))
    assert caught.value.paths == ("profiles.mtls.http.cert_file",)
    assert "tls_client_auth" in str(caught.value)


def test_a_rotated_client_certificate_gives_a_new_credential_digest(tls_files: dict[str, Path]) -> None:
    """With no secret, the certificate is the whole credential: rotating it must change the cache key."""
    profile = ProfileSettings(
        client={"id": "relay-client"},
        auth={"token_host": "https://idp.example.com"},
        options={"authorization_method": "tls_client_auth"},
        http={"cert_file": str(tls_files["cert"]), "key_file": str(tls_files["key"])},
    )
    first = resolve_credentials("mtls", profile).digest
    tls_files["cert"].write_text("cert-two", encoding="utf-8")
    assert resolve_credentials("mtls", profile).digest != first
