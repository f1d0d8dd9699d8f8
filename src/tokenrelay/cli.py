"""The ``tokenrelay`` command: serve, check-config, token, dev-idp, sample-api, demo.

Exit statuses: 0 success; 1 a runtime failure (``token`` could not get a token); 2 a configuration problem
(every bad field printed, no traceback); 3 a startup failure other than configuration (a port in use). Heavy
modules (the server, the dev IdP, the demo) are imported by the command that needs them, so ``--help`` and
``check-config`` stay fast.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from tokenrelay.config_loader import EXIT_CONFIG, format_config_error, load_settings
from tokenrelay.config_redaction import redacted
from tokenrelay.grant.errors import ConfigError, OAuth2Error
from tokenrelay.settings import Settings

__all__ = ["build_parser", "main"]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_STARTUP: Final = 3

_NO_CONFIG_HELP: Final = """\
tokenrelay serve needs a configuration file: tokenrelay serve --config FILE

  - to try tokenrelay without writing one, run: tokenrelay demo
  - to start from an example, copy examples/config/minimal.yaml (or full.yaml) and edit it
  - to check a file before serving it: tokenrelay check-config FILE
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script passes it to ``sys.exit``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    try:
        status: int = args.run(args)
    except ConfigError as exc:
        print(format_config_error(exc), file=sys.stderr)
        return EXIT_CONFIG
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (each sub-command's ``run`` is stored in its defaults)."""
    parser = argparse.ArgumentParser(
        prog="tokenrelay", description="OAuth 2.0 client-credentials token relay: an egress proxy that injects tokens."
    )
    parser.add_argument("--version", action="version", version=f"tokenrelay {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", type=Path, help="the config file (YAML or TOML)")
    serve.add_argument("--host", help="proxy listen address (listen.host)")
    serve.add_argument("--port", type=int, help="proxy listen port (listen.port)")
    serve.add_argument("--admin-port", type=int, help="admin listen port (admin.port)")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="log.level")
    serve.add_argument("--log-format", choices=("auto", "json", "console"), help="log.format")
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check-config", help="validate a config file and print it with secrets redacted")
    check.add_argument("file", type=Path)
    check.set_defaults(run=_check_config)

    token = commands.add_parser("token", help="print a fresh access token for a profile on stdout")
    token.add_argument("profile")
    token.add_argument("--config", type=Path, required=True)
    token.set_defaults(run=_token)

    idp = commands.add_parser("dev-idp", help="run the development authorization server (loopback only by default)")
    _dev_listen_arguments(idp)
    idp.add_argument("--issuer", type=_http_url, help="the issuer URL in discovery and tokens (default: the bound URL)")
    idp.add_argument("--clients-file", type=Path, help="YAML/JSON file declaring more clients")
    idp.add_argument("--with-sample-api", action="store_true", help="also serve the protected sample API")
    idp.set_defaults(run=_dev_idp)

    api = commands.add_parser("sample-api", help="run the protected sample API alone, against a dev IdP's JWKS")
    _dev_listen_arguments(api)
    api.add_argument("--issuer", type=_http_url, required=True, help="the issuer the tokens must name (iss)")
    api.add_argument("--jwks-url", type=_http_url, required=True, help="where the IdP's public keys are (JWKS)")
    api.add_argument("--audience", help="the audience the tokens must name (aud; default: the dev IdP's)")
    api.set_defaults(run=_sample_api)

    demo = commands.add_parser("demo", help="start a dev IdP, a sample API and the proxy, and show them working")
    demo.add_argument("--keep-running", action="store_true", help="keep everything up after the demo, until Ctrl-C")
    demo.set_defaults(run=_demo)
    return parser


def _serve(args: argparse.Namespace) -> int:
    if args.config is None:
        print(_NO_CONFIG_HELP, file=sys.stderr, end="")
        return EXIT_CONFIG
    flags = _serve_flags(args)
    settings = load_settings(args.config, flags=flags)
    from tokenrelay.log import configure_logging
    from tokenrelay.server import StartupError, run

    configure_logging(settings.log.level, settings.log.format)
    try:
        return run(settings, config_path=args.config, flags=flags)
    except StartupError as exc:
        print(f"tokenrelay: {exc}", file=sys.stderr)
        return EXIT_STARTUP


def _serve_flags(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """CLI flags as nested settings (the highest-priority source); flags not given are left out."""
    pairs = {
        ("listen", "host"): args.host,
        ("listen", "port"): args.port,
        ("admin", "port"): args.admin_port,
        ("log", "level"): args.log_level,
        ("log", "format"): args.log_format,
    }
    flags: dict[str, dict[str, Any]] = {}
    for (section, key), value in pairs.items():
        if value is not None:
            flags.setdefault(section, {})[key] = value
    return flags


def _check_config(args: argparse.Namespace) -> int:
    _quiet_logging()
    settings = load_settings(args.file)
    asyncio.run(_compile_only(settings))
    print(yaml.safe_dump(redacted(settings), sort_keys=False), end="")
    return EXIT_OK


async def _compile_only(settings: Settings) -> None:
    """Compile without serving (routes' TLS files, grant clients); nothing is sent to any server."""
    import aiohttp

    from tokenrelay.runtime import compile_runtime

    async with aiohttp.ClientSession() as session:
        await compile_runtime(settings, session=session, previous=None)


def _token(args: argparse.Namespace) -> int:
    _quiet_logging()
    settings = load_settings(args.config, check_exposure=False)
    if args.profile not in settings.profiles:
        known = ", ".join(sorted(settings.profiles)) or "none defined"
        print(f"tokenrelay: unknown profile {args.profile!r} (known: {known})", file=sys.stderr)
        return EXIT_CONFIG
    try:
        token = asyncio.run(_fetch_token(settings, args.profile))
    except OAuth2Error as exc:
        print(f"tokenrelay: cannot get a token for profile {args.profile!r}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(token)
    return EXIT_OK


async def _fetch_token(settings: Settings, profile: str) -> str:
    """One fresh token request for ``profile`` (no cache): the one place a token is printed on purpose."""
    import aiohttp

    from tokenrelay.runtime import compile_runtime

    async with aiohttp.ClientSession() as session:
        runtime = await compile_runtime(settings, session=session, previous=None)
        issued = await runtime.bindings[profile].fetch()
        return issued.access_token


def _dev_listen_arguments(parser: argparse.ArgumentParser) -> None:
    """The listening and logging flags shared by the development servers (dev-idp, sample-api)."""
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="listen port (default: 0, any free port)")
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow a non-loopback --host (e.g. 0.0.0.0 in a container); it is a development server",
    )
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    parser.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")


def _http_url(value: str) -> str:
    """An absolute http(s) URL, without a trailing slash (the dev servers append paths to it)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{value!r} is not an absolute http(s) URL")
    return value.rstrip("/")


def _dev_idp(args: argparse.Namespace) -> int:
    from tokenrelay.devidp.server import run_dev_idp

    if not _dev_server_may_listen(args):
        return EXIT_CONFIG
    try:
        run_dev_idp(
            args.host,
            args.port,
            args.clients_file,
            with_sample_api=args.with_sample_api,
            allow_non_loopback=args.allow_non_loopback,
            issuer=args.issuer,
        )
    except ConfigError as exc:
        print(f"tokenrelay dev-idp: {format_config_error(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _sample_api(args: argparse.Namespace) -> int:
    from tokenrelay.devidp.server import run_sample_api

    if not _dev_server_may_listen(args):
        return EXIT_CONFIG
    audience = {"audience": args.audience} if args.audience is not None else {}
    run_sample_api(
        args.host,
        args.port,
        issuer=args.issuer,
        jwks_url=args.jwks_url,
        allow_non_loopback=args.allow_non_loopback,
        **audience,
    )
    return EXIT_OK


def _dev_server_may_listen(args: argparse.Namespace) -> bool:
    """Configure logging, then refuse a non-loopback ``--host`` without ``--allow-non-loopback`` (False), or
    warn that a development server is about to listen where other hosts can reach it."""
    from tokenrelay.devidp.server import NonLoopbackError, check_loopback
    from tokenrelay.log import configure_logging

    configure_logging(args.log_level, args.log_format, stream=sys.stderr)
    try:
        check_loopback(args.host)
    except NonLoopbackError:
        if not args.allow_non_loopback:
            print(
                f"tokenrelay {args.command}: will not listen on {args.host!r}, which is not a loopback address; "
                "this is a development server. Pass --allow-non-loopback if you mean it (e.g. in a container).",
                file=sys.stderr,
            )
            return False
        print(
            f"tokenrelay {args.command}: WARNING: listening on {args.host!r}, reachable from other hosts. This is a "
            "development server (in-memory, unhardened, demo credentials): never expose it beyond a dev network.",
            file=sys.stderr,
            flush=True,
        )
    return True


def _demo(args: argparse.Namespace) -> int:
    from tokenrelay.demo import main as demo_main

    return demo_main(keep_running=args.keep_running)


def _quiet_logging() -> None:
    """Warnings and errors to stderr, so stdout carries only the command's output (a config, a token)."""
    from tokenrelay.log import configure_logging

    configure_logging("warning", "console", stream=sys.stderr)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokenrelay")
    except PackageNotFoundError:
        return "0+unknown"
