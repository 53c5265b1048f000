"""`python -m files_api serve` runs the API; `python -m files_api migrate` applies the schema."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import sys

from files_api.config import MigrateSettings, Settings, SettingsError
from files_api.errors import errno_name, one_line
from files_api.logs import configure_logging


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"files_api: bad configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _migrate_settings() -> MigrateSettings:
    try:
        return MigrateSettings.from_env()
    except SettingsError as exc:
        print(f"files_api migrate: bad configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def loop_and_parser() -> tuple[str, str]:
    """uvicorn's event loop and HTTP parser: uvloop and httptools where installed (several
    times the throughput of asyncio's loop and h11), else asyncio and h11."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return loop, http


def serve() -> int:
    import uvicorn

    from files_api.app import create_app

    settings = _settings()
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)
    # One line per failed reconnection is noise; the service logs the transitions itself.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    try:
        configure_logging(settings.log_dir, (settings.admin_token,))
    except OSError as exc:
        print(
            f"files_api: cannot write logs to LOG_DIR={settings.log_dir}: {exc}; "
            "point LOG_DIR at a writable folder",
            file=sys.stderr,
        )
        return 2
    loop, http = loop_and_parser()
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        loop=loop,
        http=http,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    server.run()  # handles SIGTERM/SIGINT: stops accepting, drains, runs the lifespan's stop
    return 0


def migrate() -> int:
    from files_api.migrate import apply_migrations

    settings = _migrate_settings()
    try:
        timeout_s = round(settings.connect_timeout_s)
        applied = asyncio.run(apply_migrations(settings.database_url, connect_timeout_s=timeout_s))
    except Exception as exc:
        print(
            f"files_api migrate: failed against {settings.redacted_database_url}: "
            f"{errno_name(exc)}: {one_line(exc)}",
            file=sys.stderr,
        )
        return 1
    print("applied: " + (", ".join(applied) if applied else "nothing (schema up to date)"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m files_api", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="run the HTTP API on API_HOST:API_PORT")
    serve_cmd.add_argument(
        "--instance",
        default="",
        help="a label for this process (shows in `ps`; lets one host tell its instances apart)",
    )
    sub.add_parser("migrate", help="apply pending schema migrations and exit")
    args = parser.parse_args(argv)
    return serve() if args.command == "serve" else migrate()


if __name__ == "__main__":
    raise SystemExit(main())
