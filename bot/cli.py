"""The `jobwatch` command: parses the arguments, checks the environment each command needs (one clear
line and exit 2 when something is missing), sets up logging and redaction, then wires and runs the
process (HTTP or Socket Mode server, worker, ops endpoints, signal handling); the work itself is in
the modules it calls."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.core.config import AppConfig, ConfigError, Settings, known_secrets, load_config
from bot.ops import logs

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.runtime import Runtime
    from bot.store.db import Database
    from bot.web import Background


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobwatch", description="Slack alerts for ML and batch jobs.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="answer Slack (HTTP on $PORT, or Socket Mode) and run the worker")
    serve.add_argument("--socket", action="store_true", help="Socket Mode (needs SLACK_APP_TOKEN)")
    serve.add_argument("--no-worker", action="store_true", help="web only; run `jobwatch worker` separately")
    worker = sub.add_parser(
        "worker", help="poll providers and deliver alerts (HTTP only for /healthz /readyz /metrics)"
    )
    worker.add_argument(
        "--port", type=int, default=None, help="port for /healthz, /readyz and /metrics (default $PORT; 0: none)"
    )
    poll = sub.add_parser("poll", help="poll every queue")
    poll.add_argument("--once", action="store_true", required=True, help="one poll of every queue, deliver, exit")
    demo = sub.add_parser("demo", help="the whole bot on simulated queues and a local stand-in for Slack")
    demo.add_argument("--seconds", type=float, default=45, help="how long to watch (default 45)")
    demo.add_argument(
        "--html", type=Path, metavar="PATH", help="also write the conversation as Slack shows it to this page"
    )
    demo.add_argument(
        "--open", action="store_true", help="open the page in a browser (default PATH: jobwatch-demo.html)"
    )
    sub.add_parser("check", help="validate the configuration and credentials")
    sub.add_parser(
        "reload",
        help="apply the queues file's [[subscriptions]] to the database now (running processes: SIGHUP does the same)",
    )
    subs = sub.add_parser("subscriptions", help="the subscriptions in the database")
    subs_sub = subs.add_subparsers(dest="subs_command", required=True)
    subs_sub.add_parser("export", help="print every subscription as [[subscriptions]] tables for the queues file")
    db = sub.add_parser("db", help="the database schema (Alembic migrations)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser(
        "upgrade", help="migrate DATABASE_URL to the latest schema (serve/worker/poll do it too)"
    )
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    db_sub.add_parser("current", help="print the schema's revision")
    return parser


def _secrets(redactor: logs.Redactor, settings: Settings, config: AppConfig | None = None) -> None:
    """Tell the log redactor every secret value this process now knows."""
    redactor.add(known_secrets(settings, config, os.environ))


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"environment: {problems}") from None


def _need(value: object, name: str, why: str) -> None:
    if not value:
        raise ConfigError(f"{name} is not set; it is required {why}")


def _need_token(settings: Settings, why: str) -> None:
    from bot.slack.install import token_problem

    problem = token_problem(settings, why)
    if problem is not None:
        raise ConfigError(problem)


def _log_level(command: str) -> int | str:
    """JOBWATCH_LOG_LEVEL (DEBUG, INFO, ...); default INFO, WARNING for the demo."""
    wanted = os.environ.get("JOBWATCH_LOG_LEVEL", "").strip().upper()
    if wanted in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        return wanted
    return logging.WARNING if command == "demo" else logging.INFO


def _log_format() -> bool | None:
    """JOBWATCH_LOG_FORMAT=json|text forces a format; otherwise JSON unless stderr is a TTY."""
    wanted = os.environ.get("JOBWATCH_LOG_FORMAT", "").strip().lower()
    return {"json": True, "text": False}.get(wanted)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `jobwatch` command; a configuration problem exits 2 with one clear line."""
    args = _parser().parse_args(argv)
    _stop_on_sigterm()
    redactor = logs.configure(_log_level(args.command), json_lines=_log_format())
    if _log_level(args.command) != "DEBUG":
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return _run(args, redactor)
    except ConfigError as err:
        print(f"jobwatch: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # SIGINT or SIGTERM (see _stop_on_sigterm); the finally blocks have run
        if args.command in ("serve", "worker"):
            return 0  # how a service is stopped, even while it starts
        print("jobwatch: interrupted", file=sys.stderr)
        return 130


def _stop_on_sigterm() -> None:
    """Make SIGTERM (a deploy, `docker stop`, systemd, Kubernetes) stop the process like Ctrl-C: a
    KeyboardInterrupt in the main thread, so the `finally` blocks run and the worker releases the
    poller lease for its successor. Python's default SIGTERM action ends the process without them."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)


def _run(args: argparse.Namespace, redactor: logs.Redactor) -> int:
    if args.command == "demo":
        from bot.demo import main as demo

        return demo(args.seconds, html=args.html, show=args.open)
    settings = _settings()
    _secrets(redactor, settings)
    if args.command == "check":
        from bot.check import check

        return check(settings)
    if args.command == "db":
        return _db(settings, args)
    if args.command in ("reload", "subscriptions"):
        return _subscriptions(settings, args)
    from bot.runtime import build_runtime, limit_malloc_arenas

    limit_malloc_arenas()  # before the scheduler's and the web server's threads start
    if args.command == "serve":
        _need_token(settings, "to serve")
        if args.socket:
            _need(settings.slack_app_token, "SLACK_APP_TOKEN", "for Socket Mode")
        else:
            _need(settings.slack_signing_secret, "SLACK_SIGNING_SECRET", "in HTTP mode")
        return _serve(settings, redactor, socket=args.socket, worker=not args.no_worker)
    _need_token(settings, "to post alerts")
    runtime = build_runtime(settings)
    _secrets(redactor, settings, runtime.config)
    if args.command == "poll":
        try:
            return _poll_once(runtime)
        finally:
            runtime.worker.close()  # releases the lease, and the scopes taken when sharded
    scheduler = None
    ops = None
    _reload_on_sighup(settings, runtime)
    try:
        scheduler = runtime.worker.start_background()
        ops = _ops_http(runtime, settings.port if args.port is None else args.port)
        _wait_for_signal()
    finally:
        if ops is not None:
            ops.close()
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        runtime.worker.close()
    return 0


def _poll_once(runtime: Runtime) -> int:
    """`jobwatch poll --once`: one poll of every queue, the log tails owed, one delivery round.

    With sharded polling it is one more worker for one renewal: it takes its share of the scopes
    (those no running worker holds), polls only their queues and says which; delivery and the log
    tails only when it also holds the poller lease, else the worker holding it does them."""
    worker = runtime.worker
    worker.renew()
    delivers = worker.lease.fence() is not None
    if worker.shards is None and not delivers:
        print("jobwatch: another worker holds the poller lease; nothing done", file=sys.stderr)
        return 1
    if worker.shards is not None:
        queues = worker.held_queues()
        scopes = sorted({worker.scopes[q] for q in queues})
        print(
            f"jobwatch: sharded by {runtime.config.bot.shard_by}: polling {len(queues)} of {len(worker.sources)} "
            f"queue(s) in the {len(scopes)} scope(s) taken: {', '.join(queues) or 'none'}"
            + (f" ({'; '.join(scopes)})" if runtime.config.bot.shard_by == "account" and scopes else "")
        )
        if not queues and not delivers:
            print("jobwatch: the running workers hold every scope and the poller lease; nothing done", file=sys.stderr)
            return 1
    worker.poll_all()
    if delivers:
        worker.log_tails()
        worker.deliver()
    else:
        print("jobwatch: another worker holds the poller lease and delivers what these polls found")
    return 0


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from bot.store.db import Database

    db = Database(settings.database_url)
    try:
        if args.db_command == "upgrade":
            db.upgrade(args.revision)
        print(f"jobwatch: database at revision {db.revision() or '(none)'}")
    finally:
        db.dispose()
    return 0


def _store(settings: Settings) -> Database:
    """The database, migrated (or refused when behind and JOBWATCH_AUTO_MIGRATE is off)."""
    from bot.store.db import Database

    db = Database(settings.database_url)
    if settings.jobwatch_auto_migrate:
        db.upgrade()
    elif not db.at_head():
        db.dispose()
        raise ConfigError("the database schema is not the latest; run `jobwatch db upgrade`")
    return db


def _subscriptions(settings: Settings, args: argparse.Namespace) -> int:
    """`jobwatch reload` and `jobwatch subscriptions export`."""
    from bot.features.routing import export_toml
    from bot.runtime import reload_subscriptions
    from bot.store import subscriptions

    db = _store(settings)
    try:
        if args.command == "reload":
            done = reload_subscriptions(settings, db)
            print(f"jobwatch: subscriptions from {settings.jobwatch_config}: {done.summary()}")
            return 0
        with db.read() as session:
            subs = subscriptions.every(session)
        sys.stdout.write(export_toml(subs))
        return 0
    finally:
        db.dispose()


def _reload_on_sighup(settings: Settings, runtime: Runtime) -> None:
    """SIGHUP re-reads the queues file's [[subscriptions]] (bot/features/routing.py), in a thread of its own so
    the signal never waits on the database; an invalid file is logged and changes nothing."""
    from bot.runtime import reload_subscriptions

    log = logging.getLogger("bot.cli")

    def reload() -> None:
        try:
            done = reload_subscriptions(settings, runtime.db, clock=runtime.worker.clock)
            log.info("reload_done %s", done.summary())
        except ConfigError as err:
            log.error("reload_refused %s", err)
        except Exception:
            log.exception("reload_failed")

    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=reload, name="reload", daemon=True).start())


def _ops_http(runtime: Runtime, port: int) -> Background | None:
    """The worker's own /healthz, /readyz and /metrics (no /slack/events); a busy port only warns:
    the poller matters more than its metrics."""
    from bot.runtime import readiness
    from bot.web import Background, WebApp

    if port == 0:
        return None
    web = WebApp(
        None,
        health=lambda: {"worker": True},
        ready=readiness(runtime, worker=True),
        metrics=runtime.metrics,
        webhooks=runtime.webhooks,
    )
    try:
        server = Background(web, host="0.0.0.0", port=port)
    except OSError as err:
        logging.getLogger("bot.cli").warning("ops_http_unavailable port=%d error=%s", port, err)
        return None
    logging.getLogger("bot.cli").info("ops_http_listening port=%d paths=/healthz,/readyz,/metrics", port)
    return server


def _serve(settings: Settings, redactor: logs.Redactor, *, socket: bool, worker: bool) -> int:
    from bot.runtime import build_runtime, command_client, readiness
    from bot.slack.app import build_app
    from bot.slack.install import oauth_settings
    from bot.web import WebApp, serve

    config = load_config(settings.jobwatch_config)  # fail fast with the file and key named
    _secrets(redactor, settings, config)
    runtime = build_runtime(settings, config=config)
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    oauth = oauth_settings(settings, runtime.installations) if runtime.installations is not None else None
    app = build_app(
        runtime.services,
        client=command_client(settings, metrics=runtime.metrics),
        signing_secret=secret,
        socket_mode=socket,
        timing=runtime.metrics.command,
        oauth=oauth,
    )
    scheduler = None
    _reload_on_sighup(settings, runtime)
    try:
        scheduler = runtime.worker.start_background() if worker else None
        if socket:
            _serve_socket(settings, runtime, app, worker=worker)
        else:
            web = WebApp(
                app,
                signing_secret=secret,
                health=lambda: {"worker": worker},
                ready=readiness(runtime, worker=worker),
                metrics=runtime.metrics,
                webhooks=runtime.webhooks,
            )
            serve(web, port=settings.port)  # until SIGINT/SIGTERM (waitress stops on the KeyboardInterrupt)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)  # a running poll finishes before its source is closed
        runtime.worker.close()  # releases the lease: a successor polls at once
    return 0


def _serve_socket(settings: Settings, runtime: Runtime, app: App, *, worker: bool) -> None:
    """Socket Mode until SIGINT/SIGTERM: Slack's requests come over the WebSocket that
    `apps.connections.open` names (reopened when it drops), and /healthz, /readyz and /metrics are
    still served on $PORT (0: not at all); /readyz also fails while the WebSocket is down."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.ops.health import Report
    from bot.runtime import readiness
    from bot.web import Background, WebApp

    assert settings.slack_app_token is not None
    handler = SocketModeHandler(
        app, settings.slack_app_token.get_secret_value(), ping_interval=settings.jobwatch_socket_ping
    )
    ready = readiness(runtime, worker=worker)

    def connected() -> bool:
        return bool(handler.client.is_connected())

    def socket_ready() -> Report:
        report = ready()
        body = {**report.body, "socket_mode": connected()}
        if connected():
            return Report(report.ready, body)
        reason = "; ".join(r for r in (report.body.get("reason"), "socket mode: not connected") if r)
        return Report(False, {**body, "status": "unavailable", "reason": reason})

    log = logging.getLogger("bot.cli")
    ops = None
    if settings.port:
        web = WebApp(
            None,
            health=lambda: {"worker": worker, "socket_mode": connected()},
            ready=socket_ready,
            metrics=runtime.metrics,
        )
        try:
            ops = Background(web, host="0.0.0.0", port=settings.port)
            log.info("ops_http_listening port=%d paths=/healthz,/readyz,/metrics", settings.port)
        except OSError as err:
            log.warning("ops_http_unavailable port=%d error=%s", settings.port, err)
    try:
        handler.start()  # type: ignore[no-untyped-call]  # until SIGINT/SIGTERM (a KeyboardInterrupt)
    finally:
        handler.close()  # type: ignore[no-untyped-call]
        if ops is not None:
            ops.close()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
