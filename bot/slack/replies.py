"""Changes from commands and from the buttons under alerts, with their replies.

Buttons arrive as signed `block_actions` on the same /slack/events endpoint. They are authorised
exactly like the commands (the actor comes from the payload; bot/features/access.py decides), audited
with `via=button`, and answered ephemerally through the payload's response_url.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.blocks import render
from bot.core.audit import Via
from bot.core.errors import ServiceError
from bot.features.access import Actor
from bot.features.channel_settings import ChannelSettings, DigestChange
from bot.features.queries import Services
from bot.features.routing import follow_up_text
from bot.slack import commands, grammar
from bot.slack.commands import UsageError


def reply(message: render.Message) -> dict[str, Any]:
    """An ephemeral reply payload (for a button: a new message, never replacing the alert)."""
    return {"response_type": "ephemeral", "text": message.text, "blocks": message.blocks}


def change(settings: ChannelSettings, command: commands.Command, actor: Actor) -> render.Message:
    """Run a subscribe, unsubscribe, mute, unmute or digest and say what happened."""
    if isinstance(command, commands.Subscribe):
        return _subscribe(settings, command, actor)
    if isinstance(command, commands.Unsubscribe):
        if settings.unsubscribe(actor, command.queue):
            return render.plain(f"Unsubscribed from `{command.queue}`.")
        return render.plain(f"This channel was not subscribed to `{command.queue}`.")
    if isinstance(command, commands.Mute):
        mute, created = settings.mute(actor, command.queue, job=command.job, seconds=command.seconds)
        verb = "Muted" if created else "Mute extended:"
        return render.plain(
            f":no_bell: {verb} {render.safe(mute.label, 300)} in this channel until {render.when(mute.until)}. "
            "Alerts are recorded, not posted; the channel gets one summary when the mute ends. "
            f"`/jobs unmute {mute.queue}` ends it now."
        )
    if isinstance(command, commands.Unmute):
        ended = settings.unmute(actor, command.queue, job=command.job)
        if not ended.labels:
            return render.plain(f"Nothing of `{command.queue}` is muted in this channel.")
        names = render.safe(", ".join(ended.labels), 500)
        return render.plain(f":bell: Unmuted {names}; {ended.held} alert(s) were held back meanwhile.")
    if isinstance(command, commands.Digest):
        return _digest(settings, command, actor)
    raise ServiceError("that command is not available")


def _subscribe(settings: ChannelSettings, command: commands.Subscribe, actor: Actor) -> render.Message:
    sub, created = settings.subscribe(
        actor,
        command.queue,
        statuses=command.statuses,
        match=command.match,
        quiet_hours=command.quiet,
        quiet_tz=command.quiet_tz,
        quiet_all=command.quiet_all,
        owner=command.owner,
        flags=command.flags,
        causes=command.causes,
        recovery=command.recovery,
        follow_up=command.follow_up,
    )
    what = ", ".join([*(s.value for s in command.statuses), *command.flags]) or "every status change"
    what += f" (failures caused by {', '.join(command.causes)})" if command.causes else ""
    pattern = f" of jobs matching `{render.safe(command.match, 100)}`" if command.match else ""
    pattern += f" owned by <@{sub.filter.owner}>" if sub.filter.owner else ""
    verb = "Subscribed" if created else "Updated the subscription:"
    hush = ""
    if sub.quiet is not None:
        zone = render.safe(sub.quiet.tz or settings.config.bot.timezone, 60)
        spared = "every alert is held" if sub.quiet.everything else "failures still post; other alerts are held"
        hush = (
            f" :crescent_moon: Quiet {sub.quiet.start}-{sub.quiet.end} ({zone}): {spared}, and the channel "
            'gets one "While you were away" digest when the window ends.'
        )
    told = sub.filter.restricts and "succeeded" not in sub.filter.names
    if told and sub.filter.recovery:
        hush += " A job family's first success after 2 or more failures in a row is told too (`--no-recovery`: not)."
    if sub.filter.follow_up:
        hush += (
            f" :bell: A failure nobody has claimed after {follow_up_text(sub.filter.follow_up)} gets one"
            " follow-up in its thread."
        )
    return render.plain(f"{verb} this channel to `{sub.queue}` — {what}{pattern}.{hush}")


def _digest(settings: ChannelSettings, command: commands.Digest, actor: Actor) -> render.Message:
    sched, state = settings.schedule_digest(
        actor, command.queue, cadence=command.cadence, weekday=command.weekday, at=command.at, tz=command.tz
    )
    if sched is None:
        if state is DigestChange.NONE:
            return render.plain(f"This channel has no scheduled digest of `{command.queue}`.")
        return render.plain(f"Removed this channel's scheduled digest of `{command.queue}`.")
    zone = render.safe(sched.tz or settings.config.bot.timezone, 60)
    verb = "Scheduled" if state is DigestChange.NEW else "Rescheduled"
    return render.plain(
        f":calendar: {verb} a {render.safe(sched.label, 100)} digest of `{sched.queue}` ({zone}) "
        "in this channel: counts by status and failure cause, success rate, the slowest jobs and the "
        f"failures, once per period. `/jobs digest {sched.queue} off` removes it."
    )


Later = Callable[[Callable[[], None]], None]  # runs work off the listener thread, after the ack


def button_actor(body: dict[str, Any]) -> Actor:
    """Who pressed the button, where, from the signed payload."""
    return Actor(
        team_id=str((body.get("team") or {}).get("id", "")),
        channel_id=str((body.get("channel") or {}).get("id", "")),
        user_id=str((body.get("user") or {}).get("id", "")),
        trigger_id=str(body.get("trigger_id", ""))[:100],
        via=Via.BUTTON,
    )


def button_target(action: dict[str, Any], instead: str) -> tuple[str, str]:
    """(queue, job id) from a job button's value, checked like typed text."""
    queue, job, _ = _button_value(action, instead)
    return queue, job


def _button_value(action: dict[str, Any], instead: str) -> tuple[str, str, str]:
    """(queue, job id, reason) from a job button's value, checked like typed text (the reason: the
    one `/jobs stop` was given, on the Stop button of its confirmation)."""
    value = grammar.check_text(str(action.get("value", "")))
    try:
        target = json.loads(value)
        queue, job, reason = str(target["queue"]), str(target["job"]), str(target.get("reason") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UsageError(f"this button is damaged; use {instead} instead") from None
    if not grammar.QUEUE_RE.match(queue) or not job or len(job) > grammar.JOB_MAX or len(reason) > grammar.REASON_MAX:
        raise UsageError(f"this button is damaged; use {instead} instead")
    return queue, job, reason


def button_command(action: dict[str, Any]) -> commands.Command:
    """The command a button stands for, from its value (checked like typed text)."""
    if action.get("action_id") == render.UNSUBSCRIBE_ACTION:
        return grammar.parse(f"unsubscribe {grammar.check_text(str(action.get('value', '')))}")
    if action.get("action_id") == render.STOP_ACTION:
        return commands.Stop(*_button_value(action, "/jobs stop"))
    return commands.Mute(*button_target(action, "/jobs mute"), render.MUTE_BUTTON_SECONDS)


def on_button(services: Services, body: dict[str, Any], ack: Ack, respond: Respond) -> None:
    """Ack at once, run the change, answer only the presser."""
    ack()
    action = (body.get("actions") or [{}])[0]
    try:
        message = change(services.settings, button_command(action), button_actor(body))
    except UsageError as err:
        message = render.error(err.problem)
    except ServiceError as err:
        message = render.error(str(err))
    respond(**reply(message), replace_original=False)


def on_stop_button(services: Services, body: dict[str, Any], ack: Ack, respond: Respond, later: Later) -> None:
    """Ack at once; after it, stop the job (a provider call, with its deadline) and answer the presser."""
    ack()
    actor = button_actor(body)
    action = (body.get("actions") or [{}])[0]

    def run() -> None:
        try:
            command = button_command(action)
            assert isinstance(command, commands.Stop)
            message = services.stopper.stop(
                actor, command.queue, command.job, reason=command.reason, find=services.current
            )
        except UsageError as err:
            message = render.error(err.problem)
        except ServiceError as err:
            message = render.error(str(err))
        respond(**reply(message), replace_original=False)

    later(run)


def on_claim_button(services: Services, body: dict[str, Any], ack: Ack, respond: Respond) -> None:
    """Ack at once, record the claim (or the take-over) and answer only the presser; the cards are
    edited by delivery (bot/features/claiming.py)."""
    ack()
    action = (body.get("actions") or [{}])[0]
    try:
        queue, job = button_target(action, "the Claim button on the job's card")
        holder = None
        if action.get("action_id") == render.TAKE_OVER_ACTION:
            holder = str(json.loads(str(action.get("value", ""))).get("holder") or "")
        message = services.claimer.claim(button_actor(body), queue, job, holder=holder)
    except UsageError as err:
        message = render.error(err.problem)
    except ServiceError as err:
        message = render.error(str(err))
    respond(**reply(message), replace_original=False)


def on_watch_button(services: Services, body: dict[str, Any], ack: Ack, respond: Respond, later: Later) -> None:
    """Ack at once; after it, watch the job (its current state comes from the provider) or, for
    Unwatch, remove the watch; answer only the presser."""
    ack()
    actor = button_actor(body)
    action = (body.get("actions") or [{}])[0]

    def run() -> None:
        try:
            if action.get("action_id") == render.UNWATCH_ACTION:
                queue, job = button_target(action, "/jobs unwatch")
                message = services.watcher.unwatch(actor, queue, job)
            else:
                queue, job = button_target(action, "/jobs watch")
                message = services.watcher.watch(actor, queue, job, find=services.current)
        except UsageError as err:
            message = render.error(err.problem)
        except ServiceError as err:
            message = render.error(str(err))
        respond(**reply(message), replace_original=False)

    later(run)


def register(app: App, services: Services, *, later: Later) -> None:
    """Attach the alert buttons' handlers; `later` runs provider calls after the ack."""

    def pressed(body: dict[str, Any], ack: Ack, respond: Respond) -> None:
        on_button(services, body, ack, respond)

    @app.action(render.STOP_ACTION)
    def stop(body: dict[str, Any], ack: Ack, respond: Respond) -> None:
        on_stop_button(services, body, ack, respond, later)

    app.action(render.MUTE_ACTION)(pressed)

    @app.action(render.WATCH_ACTION)
    @app.action(render.UNWATCH_ACTION)
    def watch(body: dict[str, Any], ack: Ack, respond: Respond) -> None:
        on_watch_button(services, body, ack, respond, later)

    app.action(render.UNSUBSCRIBE_ACTION)(pressed)

    @app.action(render.CLAIM_ACTION)
    @app.action(render.TAKE_OVER_ACTION)
    def claim(body: dict[str, Any], ack: Ack, respond: Respond) -> None:
        on_claim_button(services, body, ack, respond)

    @app.action("console_link")
    def link(ack: Ack) -> None:
        ack()  # a link button still sends an action; Slack wants it acknowledged
