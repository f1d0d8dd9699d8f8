"""Build the image with buildah and run it with podman: health, one proxied request with an injected token.

No Docker daemon runs on the build machines; buildah and podman need none (see tests/deploy/build_image.sh).
The container shares the host network so it can reach the token endpoint and upstream this test serves on
127.0.0.1. It runs with a read-only root filesystem and a tmpfs /tmp, as the Helm chart runs it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.deploy.helpers import REPO

pytestmark = [pytest.mark.image, pytest.mark.timeout(600)]

TOOLS = ("buildah", "podman", "debootstrap")
CACHE = Path(os.environ.get("TOKENRELAY_IMAGE_CACHE", Path.home() / ".cache" / "tokenrelay-image"))
PODMAN = [
    "podman", "--root", str(CACHE / "storage"), "--runroot", str(CACHE / "run"), "--storage-driver", "vfs",
    "--runtime", "runc", "--cgroup-manager", "cgroupfs",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def image() -> str:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        reason = f"image smoke test needs root and {', '.join(TOOLS)} (missing: {', '.join(missing) or 'root'})"
        if os.environ.get("CI"):
            pytest.fail(reason + " — .ci/run installs them")
        pytest.skip("LOUD SKIP: " + reason + "; apt-get install buildah podman runc debootstrap")
    tag = "localhost/tokenrelay:smoke"
    build = subprocess.run(
        [str(REPO / "tests" / "deploy" / "build_image.sh"), str(CACHE), tag],
        capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    return tag


async def _podman(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [*PODMAN, *args], capture_output=True, text=True, check=False)


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _wait_healthy(url: str, container: str, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    logs = await _podman("logs", container)
    raise AssertionError(f"container never became healthy:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")


async def test_image_serves_health_and_proxies_with_an_injected_token(image: str, tmp_path: Path) -> None:
    secret, token = uuid.uuid4().hex, "smoke-" + uuid.uuid4().hex
    seen: list[str | None] = []

    async def token_endpoint(request: web.Request) -> web.Response:
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 300})

    async def upstream(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"path": request.path})

    idp_app, api_app = web.Application(), web.Application()
    idp_app.router.add_post("/token", token_endpoint)
    api_app.router.add_get("/{tail:.*}", upstream)
    idp_port, api_port, proxy_port, admin_port = (_free_port() for _ in range(4))
    runners = [await _serve(idp_app, idp_port), await _serve(api_app, api_port)]

    config_dir = tmp_path / "config"
    config_dir.mkdir(mode=0o755)
    config = {
        "access": {"allow_clients": ["127.0.0.1/32"]},
        "profiles": {
            "smoke": {
                "client": {"id": "smoke-client", "secret_env": "SMOKE_SECRET"},
                "auth": {"token_host": f"http://127.0.0.1:{idp_port}", "token_path": "/token"},
            }
        },
        "routes": [
            {
                "name": "smoke",
                "match": {"path_prefix": "/api/"},
                "upstream": f"http://127.0.0.1:{api_port}/",
                "strip_prefix": True,
                "profile": "smoke",
            }
        ],
    }
    (config_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (config_dir / "config.yaml").chmod(0o644)
    name = f"tokenrelay-smoke-{uuid.uuid4().hex[:8]}"
    run = [
        "run", "-d", "--name", name, "--pull=never", "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096",
        "-e", f"TOKENRELAY_LISTEN__PORT={proxy_port}", "-e", f"TOKENRELAY_ADMIN__PORT={admin_port}",
        "-e", f"SMOKE_SECRET={secret}", "-v", f"{config_dir}:/etc/tokenrelay:ro", image,
    ]  # fmt: skip
    started = await _podman(*run)
    assert started.returncode == 0, started.stderr
    try:
        deadline = asyncio.get_running_loop().time() + 60
        await _wait_healthy(f"http://127.0.0.1:{admin_port}/healthz", name, deadline)
        health = await _podman("healthcheck", "run", name)
        assert health.returncode == 0, health.stdout + health.stderr
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{proxy_port}/api/hello") as response,
        ):
            assert response.status == 200
            assert await response.json() == {"path": "/hello"}
        assert seen == [f"Bearer {token}"]
        logs = await _podman("logs", name)
        assert token not in logs.stdout + logs.stderr
        assert secret not in logs.stdout + logs.stderr
    finally:
        await _podman("rm", "-f", "-t", "5", name)
        for runner in runners:
            await runner.cleanup()
