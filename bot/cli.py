"""The `jobwatch` command: argument parsing only; the work is in the modules it calls."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from pydantic import ValidationError

from bot.config import ConfigError, Settings, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobwatch", description="Slack alerts for ML and batch jobs.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="answer Slack (HTTP on $PORT, or Socket Mode) and run the worker")
    serve.add_argument("--socket", action="store_true", help="Socket Mode (needs SLACK_APP_TOKEN)")
    serve.add_argument("--no-worker", action="store_true", help="web only; run `jobwatch worker` separately")
    sub.add_parser("worker", help="poll providers and deliver alerts (no HTTP)")
    poll = sub.add_parser("poll", help="poll every queue")
    poll.add_argument("--once", action="store_true", required=True, help="one poll of every queue, deliver, exit")
    demo = sub.add_parser("demo", help="the whole bot on simulated queues and a local stand-in for Slack")
    demo.add_argument("--seconds", type=float, default=45, help="how long to watch (default 45)")
    sub.add_parser("check", help="validate the configuration and credentials")
    db = sub.add_parser("db", help="the database schema (Alembic migrations)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser(
        "upgrade", help="migrate DATABASE_URL to the latest schema (serve/worker/poll do it too)"
    )
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    db_sub.add_parser("current", help="print the schema's revision")
    return parser


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"environment: {problems}") from None


def _need(value: object, name: str, why: str) -> None:
    if not value:
        raise ConfigError(f"{name} is not set; it is required {why}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `jobwatch` command; a configuration problem exits 2 with one clear line."""
    args = _parser().parse_args(argv)
    level = logging.WARNING if args.command == "demo" else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return _run(args)
    except ConfigError as err:
        print(f"jobwatch: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from bot.demo import main as demo

        return demo(args.seconds)
    settings = _settings()
    if args.command == "check":
        from bot.check import check

        return check(settings)
    if args.command == "db":
        return _db(settings, args)
    from bot.runtime import build_runtime

    if args.command == "serve":
        _need(settings.slack_bot_token, "SLACK_BOT_TOKEN", "to serve")
        if args.socket:
            _need(settings.slack_app_token, "SLACK_APP_TOKEN", "for Socket Mode")
        else:
            _need(settings.slack_signing_secret, "SLACK_SIGNING_SECRET", "in HTTP mode")
        return _serve(settings, socket=args.socket, worker=not args.no_worker)
    _need(settings.slack_bot_token, "SLACK_BOT_TOKEN", "to post alerts")
    runtime = build_runtime(settings)
    if args.command == "poll":
        runtime.worker.renew()
        if runtime.worker.lease.fence() is None:
            print("jobwatch: another worker holds the poller lease; nothing done", file=sys.stderr)
            return 1
        runtime.worker.poll_all()
        runtime.worker.deliver()
        runtime.worker.close()
        return 0
    scheduler = runtime.worker.start_background()
    _wait_for_signal()
    scheduler.shutdown(wait=True)
    runtime.worker.close()
    return 0


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from bot.db import Database

    db = Database(settings.database_url)
    try:
        if args.db_command == "upgrade":
            db.upgrade(args.revision)
        print(f"jobwatch: database at revision {db.revision() or '(none)'}")
    finally:
        db.dispose()
    return 0


def _serve(settings: Settings, *, socket: bool, worker: bool) -> int:
    from bot.app import build_app
    from bot.runtime import build_runtime, command_client
    from bot.web import WebApp, serve

    load_config(settings.jobwatch_config)  # fail fast with the file and key named
    runtime = build_runtime(settings)
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    app = build_app(runtime.services, client=command_client(settings), signing_secret=secret, socket_mode=socket)
    scheduler = runtime.worker.start_background() if worker else None
    try:
        if socket:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            assert settings.slack_app_token is not None
            SocketModeHandler(app, settings.slack_app_token.get_secret_value()).start()  # type: ignore[no-untyped-call]
        else:
            serve(WebApp(app, health=lambda: {"worker": worker}), port=settings.port)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        runtime.worker.close()
    return 0


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
