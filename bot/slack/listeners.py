"""Slash-command handlers: ack, parse, call a service, render, respond. No logic of their own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.blocks import overview, render
from bot.core import quiet
from bot.core.errors import ServiceError
from bot.features import routing
from bot.features.access import Actor
from bot.features.queries import Services, age
from bot.slack import commands, grammar, replies, steps, unfurl
from bot.slack.commands import UsageError
from bot.slack.replies import Later, reply

log = logging.getLogger(__name__)

PROVIDER_THREADS = 16  # provider-backed answers in flight at once; more wait their turn, already acked
ACK_PATIENCE = 0.5  # seconds provider-backed work waits for pending acks before starting anyway


def command_actor(body: dict[str, Any]) -> Actor:
    """Who sent this slash command, from the signed payload."""
    return Actor(
        team_id=str(body.get("team_id", "")),
        channel_id=str(body.get("channel_id", "")),
        user_id=str(body.get("user_id", "")),
        trigger_id=str(body.get("trigger_id", ""))[:100],
    )


Timing = Callable[[str, float], None]  # (subcommand, seconds), e.g. Metrics.command


def now(work: Callable[[], None]) -> None:
    """Run `work` right here (tests and tools that call `handle` directly)."""
    work()


class AcksFirst:
    """Provider-backed work starts once no command is between arrival and ack (or after `patience`).

    Acks have Slack's 3 s deadline and are what people wait on; a `status` answer waits for a
    provider round trip anyway. All threads share one GIL, so the status work started right
    after its ack (a store lookup, then building and signing the provider request: 1-2 ms of
    CPU each) delayed the acks of the `list` commands arriving meanwhile. bench/run.py (b), 25
    status + 25 list 10 at a time, back to back on a loaded machine: ack p99 86-113 ms before,
    66-118 ms after (docs/performance.md §Scale).
    """

    def __init__(self, patience: float = ACK_PATIENCE) -> None:
        self.patience = patience
        self._pending = 0
        self._idle = threading.Condition()

    @contextmanager
    def acking(self) -> Iterator[None]:
        """Around the handling of one command, up to and including its ack."""
        with self._idle:
            self._pending += 1
        try:
            yield
        finally:
            with self._idle:
                self._pending -= 1
                if not self._pending:
                    self._idle.notify_all()

    def wait(self) -> None:
        """Until no ack is pending, for at most `patience` seconds."""
        with self._idle:
            self._idle.wait_for(lambda: not self._pending, timeout=self.patience)


class ProviderPool:
    """A `Later`: runs provider-backed answers on their own threads, after the pending acks."""

    def __init__(self, acks: AcksFirst, *, threads: int = PROVIDER_THREADS) -> None:
        self.acks = acks
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="provider")

    def __call__(self, work: Callable[[], None]) -> None:
        def logged() -> None:
            self.acks.wait()
            try:
                work()
            except Exception:  # the reply is lost, the failure is not
                log.exception("command_failed")

        self._pool.submit(logged)


def handle(
    services: Services,
    body: dict[str, Any],
    ack: Ack,
    respond: Respond,
    *,
    timing: Timing | None = None,
    later: Later = now,
) -> None:
    """Answer one `/jobs` command: at once in the ack, or, when a provider must be asked, ack at
    once and answer through response_url from `later`, so a slow provider never holds a listener
    thread (and with it the acks of the commands queued behind it)."""
    started = time.monotonic()
    actor = command_actor(body)
    try:
        command = grammar.parse(str(body.get("text", "")))
    except UsageError as err:
        ack(**reply(render.error(err.problem, err.usage)))
        _timed(timing, "invalid", started)
        return
    name = subcommand(command)
    if isinstance(command, commands.ShowJob | commands.Stop | commands.Watch):
        ack()  # a provider call follows: answer through response_url
        pending = command

        def run() -> None:
            try:
                respond(**reply(provider_answer(services, pending, actor)))
            except ServiceError as err:
                respond(**reply(render.error(str(err), _usage_for(pending))))
            except Exception:  # as Bolt's error handler would: log it, apologise, lose nothing
                log.exception("command_failed command=%s", name)
                respond(**reply(render.error("something went wrong on our side; try again in a minute.")))
            finally:
                _timed(timing, name, started)

        later(run)
        return
    try:
        ack(**reply(answer(services, command, actor)))
    except ServiceError as err:
        ack(**reply(render.error(str(err), _usage_for(command))))
    _timed(timing, name, started)


def provider_answer(
    services: Services, command: commands.ShowJob | commands.Stop | commands.Watch, actor: Actor
) -> render.Message:
    """The reply to a command that asks a provider (run after the ack)."""
    if isinstance(command, commands.Watch):
        return services.watcher.watch(actor, command.queue, command.job, find=services.current)
    if isinstance(command, commands.Stop):
        return services.stopper.confirm(actor, command.queue, command.job, reason=command.reason, find=services.find)
    found = services.find(command.queue, command.job)
    stop_by = services.stop_by.get(command.queue, "")
    return render.job_status(found.job, others=found.others, note=found.note, stop_by=stop_by)


def _timed(timing: Timing | None, name: str, started: float) -> None:
    if timing is not None:
        timing(name, time.monotonic() - started)


def queue_rows(services: Services, team_id: str) -> list[overview.QueueRow]:
    """What `/jobs queues` and the App Home show of each queue."""
    now = services.clock()
    return [
        overview.QueueRow(
            name=q.config.name,
            provider=q.config.provider,
            scope=q.config.scope_text(),
            health=q.health + (f": {q.state.last_error}" if q.state and q.state.consecutive_failures else ""),
            last_poll=age(q.state.last_poll_at if q.state else None, now),
            subscribers=q.subscribers,
        )
        for q in services.queues(team_id)
    ]


def subscription_rows(services: Services, team_id: str, channel_id: str | None) -> list[overview.SubscriptionRow]:
    """Subscriptions of one channel (or, with None, of the team, naming each channel)."""
    return [
        overview.SubscriptionRow(
            s.queue,
            s.filter.names,
            s.filter.match,
            s.paused_reason,
            "" if channel_id else s.channel_id,
            source=s.source,
            quiet=quiet.label(s.quiet),
            owner=s.filter.owner,
            follow_up=routing.follow_up_text(s.filter.follow_up) if s.filter.follow_up else "",
            recovery=s.filter.recovery,
        )
        for s in services.subscriptions(team_id=team_id, channel_id=channel_id)
    ]


def answer(services: Services, command: commands.Command, actor: Actor) -> render.Message:
    """The reply to every command that reads only the store, or changes it."""
    if isinstance(command, commands.Help):
        return render.help_message()
    if isinstance(command, commands.Queues):
        return overview.queue_list(queue_rows(services, actor.team_id))
    if isinstance(command, commands.ListJobs) and command.mine:
        jobs, total = services.mine(
            actor.team_id, actor.user_id, queue=command.queue, status=command.status, limit=command.limit
        )
        return render.my_jobs(command.queue, jobs, total=total, status=command.status)
    if isinstance(command, commands.ListJobs):
        jobs, total = services.recent(command.queue, status=command.status, limit=command.limit)
        return render.job_list(
            command.queue, jobs, total=total, status=command.status, note=services.poll_note(command.queue)
        )
    if isinstance(command, commands.ExportSubscriptions):
        subs = services.subscriptions(team_id=actor.team_id, channel_id=actor.channel_id)
        return routing.export_message(routing.export_toml(subs), path=services.config.path.name)
    if isinstance(command, commands.Subscribe) and command.dry_run:
        queue = services.queue(command.queue)  # an unknown queue is named
        found = routing.dry_run(
            services.db,
            command.queue,
            statuses=command.statuses,
            match=command.match,
            now=services.clock(),
            tz=services.config.bot.zone(),
            causes=command.causes,
            flags=command.flags,
            provider=queue.provider,
        )
        return routing.dry_run_message(
            found, statuses=command.statuses, match=command.match, causes=command.causes, flags=command.flags
        )
    if isinstance(command, commands.Stats):
        return render.stats_message(command.queue, command.family, services.stats(command.queue, command.family))
    if isinstance(command, commands.Subscriptions):
        muted = services.mutes(team_id=actor.team_id, channel_id=actor.channel_id)
        digests = services.schedules(team_id=actor.team_id, channel_id=actor.channel_id)
        return overview.subscription_list(
            subscription_rows(services, actor.team_id, actor.channel_id),
            [overview.MuteRow(m.label, m.until) for m in muted],
            [f"{d.queue}: {d.label}" for d in digests],
        )
    if isinstance(command, commands.OpenFailures):
        names = [services.queue(command.queue).name] if command.queue else [q.name for q in services.config.queues]
        unclaimed = services.claimer.open_failures(actor.team_id, names)
        now = services.clock()
        rows = [(f.job, age(f.ended, now)) for f in unclaimed]
        return render.open_failures(rows, scope=f"queue {command.queue}" if command.queue else "every queue")
    if isinstance(command, commands.Unwatch):
        return services.watcher.unwatch(actor, command.queue, command.job)
    if isinstance(command, commands.Watching):
        return services.watcher.watching(actor)
    return replies.change(services.settings, command, actor)


SUBCOMMANDS: dict[type, str] = {
    commands.Help: "help",
    commands.Queues: "queues",
    commands.ListJobs: "list",
    commands.ShowJob: "status",
    commands.Subscribe: "subscribe",
    commands.Unsubscribe: "unsubscribe",
    commands.Subscriptions: "subscriptions",
    commands.ExportSubscriptions: "subscriptions",
    commands.Mute: "mute",
    commands.Unmute: "unmute",
    commands.Stop: "stop",
    commands.Watch: "watch",
    commands.Unwatch: "unwatch",
    commands.Watching: "watching",
    commands.Digest: "digest",
    commands.Stats: "stats",
    commands.OpenFailures: "open",
}


def subcommand(command: commands.Command) -> str:
    """The subcommand's name, as typed (`list`, `status`, ...)."""
    return SUBCOMMANDS.get(type(command), "other")


def _usage_for(command: commands.Command) -> str:
    name = subcommand(command)
    return (
        commands.USAGE[name]
        if name
        in (
            "list",
            "status",
            "subscribe",
            "unsubscribe",
            "mute",
            "unmute",
            "stop",
            "watch",
            "unwatch",
            "digest",
            "stats",
            "open",
        )
        else ""
    )


def register(app: App, services: Services, *, timing: Timing | None = None) -> None:
    """Attach the handlers to a Bolt app; any slash command of this app is `/jobs`.
    `timing` is told how long each command took (the /metrics command latency)."""

    acks = AcksFirst()
    later = ProviderPool(acks)

    @app.command(grammar.COMMAND_PATTERN)
    def jobs(body: dict[str, Any], ack: Ack, respond: Respond) -> None:
        with acks.acking():
            handle(services, body, ack, respond, timing=timing, later=later)

    @app.event("app_home_opened")
    def home(event: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") == "home":
            user = str(event.get("user", ""))
            client.views_publish(user_id=user, view=home_view(services, str(body["team_id"]), user=user))

    replies.register(app, services, later=later)
    steps.register(app, services, later=later)
    unfurl.register(app, services, later=later)


HOME_MINE = 10  # jobs shown in the App Home's "My jobs"; `/jobs watching` and `/jobs list mine` list them all


def home_view(services: Services, team_id: str, *, user: str = "") -> dict[str, Any]:
    """The App Home of this workspace for `user`: their jobs (watched ones first, with Unwatch, then
    the newest they own), queues, its subscriptions, its recent alerts."""
    alerts = [
        overview.AlertRow(job=a.job, queue=a.queue, old=a.old, new=a.new, state=a.state, at=a.at)
        for a in services.recent_alerts(team_id, limit=overview.HOME_ALERTS)
    ]
    mine: list[dict[str, Any]] = []
    if user:
        watched = services.watcher.rows(team_id, user)
        seen = {(queue, job_id) for queue, job_id, _, _ in watched}
        jobs, _ = services.mine(team_id, user, queue="", status=None, limit=HOME_MINE + len(seen))
        owned = [(j.queue, j.id, j.name, j.status.value) for j in jobs if (j.queue, j.id) not in seen]
        rows = watched + owned
        mine = render.watch_rows(rows, limit=HOME_MINE, owned={(q, i) for q, i, _, _ in owned})
    return overview.home_view(
        queues=queue_rows(services, team_id),
        subscriptions=subscription_rows(services, team_id, None),
        alerts=alerts,
        mine=mine,
    )
