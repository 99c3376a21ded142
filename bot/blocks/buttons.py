"""Buttons: the actions under alerts and command replies (Stop, Mute, Watch, Unwatch, Unsubscribe,
the console link), each with a value and a url checked against Slack's limits."""

from __future__ import annotations

import json
import re
from typing import Any

from bot.blocks.text import URL_MAX, VALUE_MAX, clip
from providers import Job, JobStatus

MUTE_ACTION = "mute_job"
UNSUBSCRIBE_ACTION = "unsubscribe"
STOP_ACTION = "stop_job"
WATCH_ACTION = "watch_job"
UNWATCH_ACTION = "unwatch_job"
CLAIM_ACTION = "claim_job"
TAKE_OVER_ACTION = "take_over_job"
CLAIMABLE = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})
MUTE_BUTTON_SECONDS = 3600
URL_RE = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?(/[^\s<>|\"]*)?$")


def link_button(job: Job) -> list[dict[str, Any]]:
    """A 'View in console' link button, when the adapter built an https console URL from its template."""
    if not job.url or len(job.url) > URL_MAX or not URL_RE.match(job.url):
        return []  # a cut URL would lead somewhere else: no button rather than a wrong one
    return [button("View in console", "console_link", url=job.url)]


def button(
    label: str, action_id: str, *, value: str = "", url: str = "", confirm: str = "", style: str = ""
) -> dict[str, Any]:
    """A Block Kit button (labels are ours; values and urls are checked against Slack's limits).
    `confirm` opens Slack's confirmation dialog (plain text, at most 300 characters) before the
    action is sent; `style` is `danger` or `primary`."""
    out: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": label}, "action_id": action_id}
    if value:
        out["value"] = value
    if url:
        out["url"] = url
    if style:
        out["style"] = style
    if confirm:
        out["confirm"] = {
            "title": {"type": "plain_text", "text": label},
            "text": {"type": "plain_text", "text": clip(confirm, 300)},
            "confirm": {"type": "plain_text", "text": label},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
        if style:
            out["confirm"]["style"] = style
    return out


def job_target(job: Job) -> str:
    """A button's value naming one job: `{"queue": ..., "job": <id>}`."""
    return json.dumps({"queue": job.queue, "job": job.id}, separators=(",", ":"))


def stop_button(job: Job, provider: str, *, reason: str = "") -> list[dict[str, Any]]:
    """A Stop button behind a confirmation, for a job that is neither terminal nor stopping
    (`reason`: the one `/jobs stop` was given, carried in the value to the press)."""
    target = job_target(job)
    if reason:
        target = json.dumps({"queue": job.queue, "job": job.id, "reason": reason}, separators=(",", ":"))
    if job.status.terminal or job.status is JobStatus.STOPPING or len(target) > VALUE_MAX:
        return []  # nothing (more) to stop
    # The dialog is plain text: no escaping, but clipped to Slack's 300 characters with the
    # warning kept whole.
    what = f"Stop {clip(job.name, 150)} in queue {job.queue} ({provider})?"
    return [button("Stop", STOP_ACTION, value=target, style="danger", confirm=f"{what} This cannot be undone.")]


def claim_button(job: Job) -> list[dict[str, Any]]:
    """A Claim button ("I'm on it") for a failed or timed-out job."""
    target = job_target(job)
    if job.status not in CLAIMABLE or len(target) > VALUE_MAX:
        return []
    return [button("Claim", CLAIM_ACTION, value=target, style="primary")]


def take_over_button(queue: str, job_id: str, holder: str) -> list[dict[str, Any]]:
    """A Take over button for a job someone else has claimed (`holder`: their user id, so a take-over
    of a claim that changed meanwhile is noticed)."""
    target = json.dumps({"queue": queue, "job": job_id, "holder": holder}, separators=(",", ":"))
    if len(target) > VALUE_MAX:
        return []
    return [button("Take over", TAKE_OVER_ACTION, value=target, confirm="Take this failure over? They will see it.")]


def watch_button(job: Job) -> list[dict[str, Any]]:
    """A Watch button (a direct message when the job ends), for a job that has not ended."""
    target = job_target(job)
    if job.status.terminal or len(target) > VALUE_MAX:
        return []
    return [button("Watch", WATCH_ACTION, value=target)]


def unwatch_button(queue: str, job_id: str) -> list[dict[str, Any]]:
    """An Unwatch button for one watched job."""
    target = json.dumps({"queue": queue, "job": job_id}, separators=(",", ":"))
    return [button("Unwatch", UNWATCH_ACTION, value=target)] if len(target) <= VALUE_MAX else []


def console_button(job: Job, *, stop_by: str = "") -> list[dict[str, Any]]:
    """An actions block under a command reply: Stop (when `stop_by` names the provider that can
    stop the job), Watch and the console link."""
    elements = [*(stop_button(job, stop_by) if stop_by else []), *watch_button(job), *link_button(job)]
    return [{"type": "actions", "elements": elements}] if elements else []


def alert_actions(job: Job, *, stop_by: str = "") -> dict[str, Any]:
    """The buttons under an alert: stop (when `stop_by` names a provider that can), claim a failure,
    mute this job
    for an hour, watch it (while it has not ended), unsubscribe, view in console."""
    elements = stop_button(job, stop_by) if stop_by else []
    elements.extend(claim_button(job))
    target = job_target(job)
    if len(target) <= VALUE_MAX:
        elements.append(button("Mute job 1h", MUTE_ACTION, value=target))
    elements.extend(watch_button(job))
    elements.append(
        button(
            "Unsubscribe",
            UNSUBSCRIBE_ACTION,
            value=job.queue,
            confirm=f"Stop every alert of queue {job.queue} in this channel?",
        )
    )
    elements.extend(link_button(job))
    return {"type": "actions", "block_id": "alert_actions", "elements": elements}
