"""Slash-command handlers: ack, parse, call a service, render, respond. No logic of their own."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond

from bot import commands, render
from bot.commands import UsageError
from bot.services import ServiceError, Services, age

log = logging.getLogger(__name__)


def reply(message: render.Message) -> dict[str, Any]:
    """An ephemeral reply payload."""
    return {"response_type": "ephemeral", "text": message.text, "blocks": message.blocks}


def handle(services: Services, body: dict[str, Any], ack: Ack, respond: Respond) -> None:
    """Answer one `/jobs` command: at once in the ack, or via response_url after a provider call."""
    team = str(body.get("team_id", ""))
    channel = str(body.get("channel_id", ""))
    user = str(body.get("user_id", ""))
    try:
        command = commands.parse(str(body.get("text", "")))
    except UsageError as err:
        ack(**reply(render.error(err.problem, err.usage)))
        return
    try:
        if isinstance(command, commands.ShowJob):
            ack()  # a provider call follows: answer through response_url
            found = services.find(command.queue, command.job)
            respond(**reply(render.job_status(found.job, others=found.others, note=found.note)))
            return
        ack(**reply(answer(services, command, team=team, channel=channel, user=user)))
    except ServiceError as err:
        message = render.error(str(err), _usage_for(command))
        if isinstance(command, commands.ShowJob):
            respond(**reply(message))
        else:
            ack(**reply(message))


def answer(services: Services, command: commands.Command, *, team: str, channel: str, user: str) -> render.Message:
    """The reply to every command that reads only the store."""
    if isinstance(command, commands.Help):
        return render.help_message()
    if isinstance(command, commands.Queues):
        now = services.clock()
        return render.queue_list(
            [
                render.QueueRow(
                    name=q.config.name,
                    provider=q.config.provider,
                    scope=q.config.scope_text(),
                    health=q.health + (f": {q.state.last_error}" if q.state and q.state.consecutive_failures else ""),
                    last_poll=age(q.state.last_poll_at if q.state else None, now),
                    subscribers=q.subscribers,
                )
                for q in services.queues(team)
            ]
        )
    if isinstance(command, commands.ListJobs):
        jobs, total = services.recent(command.queue, status=command.status, limit=command.limit)
        return render.job_list(
            command.queue, jobs, total=total, status=command.status, note=services.poll_note(command.queue)
        )
    if isinstance(command, commands.Subscribe):
        sub, created = services.subscribe(
            team_id=team,
            channel_id=channel,
            user_id=user,
            queue=command.queue,
            statuses=command.statuses,
            match=command.match,
        )
        what = ", ".join(s.value for s in command.statuses) or "every status change"
        pattern = f" of jobs matching `{render.safe(command.match, 100)}`" if command.match else ""
        verb = "Subscribed" if created else "Updated the subscription:"
        return render.plain(f"{verb} this channel to `{sub.queue}` — {what}{pattern}.")
    if isinstance(command, commands.Unsubscribe):
        removed = services.unsubscribe(team_id=team, channel_id=channel, user_id=user, queue=command.queue)
        text = (
            f"Unsubscribed from `{command.queue}`."
            if removed
            else f"This channel was not subscribed to `{command.queue}`."
        )
        return render.plain(text)
    if isinstance(command, commands.Subscriptions):
        return render.subscription_list(
            [
                render.SubscriptionRow(s.queue, s.statuses, s.match, s.paused_reason)
                for s in services.subscriptions(team_id=team, channel_id=channel)
            ]
        )
    raise ServiceError("that command is not available")


def _usage_for(command: commands.Command) -> str:
    names = {
        commands.ListJobs: "list",
        commands.ShowJob: "status",
        commands.Subscribe: "subscribe",
        commands.Unsubscribe: "unsubscribe",
    }
    name = names.get(type(command))
    return commands.USAGE[name] if name else ""


def register(app: App, services: Services) -> None:
    """Attach the handlers to a Bolt app; any slash command of this app is `/jobs`."""

    @app.command(commands.COMMAND_PATTERN)
    def jobs(body: dict[str, Any], ack: Ack, respond: Respond) -> None:
        handle(services, body, ack, respond)
