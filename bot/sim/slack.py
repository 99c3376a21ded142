"""A fake Slack Web API: chat.postMessage/update, conversations.history/replies/open, auth.test,
users.lookupByEmail, views.publish, response_url hooks, chat.unfurl, functions.completeSuccess/completeError
(custom steps, with the short-lived token a `function_executed` event carries) and apps.connections.open
(Socket Mode, with bot/sim/socket_mode.py). It keeps every message, enforces ~1 post/s per channel with a
small burst (429 + Retry-After beyond it), and plays scripted faults.

It also plays Slack's client side for the demo: `command` sends a signed slash command to the app and
keeps what the person would see (the command and its ephemeral answer), `open_home` opens the App
Home. `log` keeps, in order, everything a person would see; bot/sim/page.py draws it as a page.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

from bot.sim.checks import block_problems, live_markup
from bot.sim.http import LocalServer, Request, Response
from bot.sim.slash import event, slash_command
from bot.sim.socket_mode import SocketModeServer

FUNCTION_TOKEN_TTL = 15 * 60.0  # seconds a function_executed event's token lives (docs/slack-native.md)


@dataclass
class Fault:
    """One scripted answer: an `error` code, an HTTP `status`, a 429 with `retry_after`,
    or `drop` (accept the post, then close the connection without answering)."""

    error: str | None = None
    status: int = 200
    retry_after: int | None = None
    drop: bool = False
    channel: str | None = None  # only for this channel (None: any)


@dataclass
class Bucket:
    """Slack's per-channel posting allowance, as a token bucket."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class FakeSlack:
    """The fake server and everything it saw."""

    tokens: dict[str, str] = field(default_factory=lambda: {"xoxb-test": "T0001"})
    rate: float = 1.0
    burst: float = 3.0
    monotonic: Callable[[], float] = time.monotonic  # what the rate limit reads (tests: a FastForward)
    on_post: Callable[[dict[str, Any]], None] | None = None
    on_response: Callable[[str, dict[str, Any]], None] | None = None
    on_complete: Callable[[dict[str, Any]], None] | None = None  # a workflow step run was completed
    on_unfurl: Callable[[dict[str, Any]], None] | None = None  # chat.unfurl attached previews
    messages: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    responses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: int = 0
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    members: dict[str, set[str]] | None = None  # channel -> teams where the bot is a member (None: all)
    oauth_client: tuple[str, str] | None = None  # (client_id, client_secret) oauth.v2.access accepts
    oauth_codes: dict[str, str] = field(default_factory=dict)  # one-time code -> the team installing
    people: dict[str, str] | None = None  # user id -> e-mail of the workspace's people (None: any U…/W… id)
    disabled: set[str] = field(default_factory=set)  # deactivated users: conversations.open says user_disabled
    missing: set[str] = field(default_factory=set)  # scopes the app lacks: methods needing one answer missing_scope
    # What a person would see, in order: {"kind": "post" | "update" | "ephemeral" | "command" | "view", ...}.
    # A post's "message" is the message itself, so it shows its latest text once updated.
    log: list[dict[str, Any]] = field(default_factory=list)
    app_tokens: dict[str, str] = field(default_factory=lambda: {"xapp-test": "T0001"})  # app-level (Socket Mode)
    socket: SocketModeServer | None = None  # the Socket Mode end apps.connections.open points at
    completions: list[dict[str, Any]] = field(default_factory=list)  # functions.complete* calls that took effect
    unfurls: list[dict[str, Any]] = field(default_factory=list)  # chat.unfurl calls that took effect

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, Bucket] = {}
        self._ts = itertools.count(1)
        self._server = LocalServer(self._handle)
        self._ims: dict[tuple[str, str], str] = {}  # (team, user) -> IM channel id
        self._executions: dict[str, str] = {}  # function_execution_id -> team, while running
        self._function_tokens: dict[str, tuple[str, str, float]] = {}  # token -> (team, execution, issued)

    # -- control -------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        """Start serving on 127.0.0.1."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving (the Socket Mode end too)."""
        self._server.stop()
        if self.socket is not None:
            self.socket.close()

    @property
    def api_url(self) -> str:
        """The Web API base URL, for SLACK_API_URL."""
        return self._server.url + "/api/"

    def response_url(self, name: str = "cmd") -> str:
        """A response_url that records what is posted to it."""
        return f"{self._server.url}/hooks/{name}"

    def command(
        self, app_url: str, secret: str, text: str, *, team: str, channel: str, user: str, name: str = "cmd"
    ) -> dict[str, Any] | None:
        """Send `/jobs <text>` to the app at `app_url` as Slack does (signed, with a response_url of
        this fake), and show its immediate answer as Slack would: an ephemeral reply. Returns it."""
        body, headers = slash_command(
            secret, text, team=team, channel=channel, user=user, response_url=self.response_url(name)
        )
        with self._lock:
            self.log.append({"kind": "command", "text": f"/jobs {text}", "user": user, "channel": channel})
        reply = httpx.post(app_url + "/slack/events", content=body, headers=headers, timeout=10)
        reply.raise_for_status()
        if not reply.content:
            return None
        payload: dict[str, Any] = reply.json()
        with self._lock:
            self.log.append({"kind": "ephemeral", "payload": payload})
        return payload

    def open_home(self, app_url: str, secret: str, *, team: str, user: str, wait: float = 5) -> None:
        """Open the app's Home tab as `user` would: Slack sends app_home_opened, the app publishes the
        view (after its answer to the event); waits up to `wait` seconds for it."""
        before = len(self.views)
        inner = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}
        body, headers = event(secret, inner, team=team)
        httpx.post(app_url + "/slack/events", content=body, headers=headers, timeout=10).raise_for_status()
        deadline = time.monotonic() + wait
        while len(self.views) == before and time.monotonic() < deadline:
            time.sleep(0.05)

    def script(self, method: str, *faults: Fault) -> None:
        """Answer the next calls of `method` with these faults, in order."""
        with self._lock:
            self.faults.setdefault(method, deque()).extend(faults)

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages posted (optionally in one channel), oldest first."""
        with self._lock:
            return [m for m in self.messages if channel is None or m["channel"] == channel]

    def im(self, user: str, team: str = "T0001") -> str | None:
        """The IM channel conversations.open gave for `user`, if it was opened."""
        with self._lock:
            return self._ims.get((team, user))

    def dms(self, user: str, team: str = "T0001") -> list[dict[str, Any]]:
        """Messages posted in the bot's direct-message conversation with `user`."""
        channel = self.im(user, team)
        return [m for m in self.posts(channel) if m["team"] == team] if channel else []

    def alert_ids(self, channel: str | None = None) -> list[str]:
        """The alert ids carried in the metadata of posted messages."""
        return [
            str(m["metadata"]["event_payload"]["alert_id"])
            for m in self.posts(channel)
            if (m.get("metadata") or {}).get("event_payload", {}).get("alert_id")
        ]

    # -- the API -------------------------------------------------------------------------

    def _params(self, req: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(req.query)
        ctype = req.headers.get("content-type", "")
        if req.body and "json" in ctype:
            params.update(json.loads(req.body))
        elif req.body:
            params.update(dict(parse_qsl(req.body.decode(), keep_blank_values=True)))
        for key in ("blocks", "metadata"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    def _handle(self, req: Request) -> Response:
        if req.path.startswith("/hooks/"):
            payload = json.loads(req.body or b"{}")
            with self._lock:
                self.responses.append((req.path.rsplit("/", 1)[-1], payload))
                self.log.append({"kind": "ephemeral", "payload": payload})
            if self.on_response:
                self.on_response(req.path, payload)
            return Response(200, b"ok", {"Content-Type": "text/plain"})
        if not req.path.startswith("/api/"):
            return Response.json({"ok": False, "error": "unknown_method"}, 404)
        method = req.path[len("/api/") :]
        params = self._params(req)
        if method == "oauth.v2.access":
            with self._lock:
                self.calls.append((method, {k: v for k, v in params.items() if k != "client_secret"}))
            return self._oauth_access(req, params)
        if method == "apps.connections.open":
            return self._connections_open(req, params)
        if method == "api.test":  # needs no token, like Slack's
            with self._lock:
                self.calls.append((method, params))
            return Response.json({"ok": True, "args": {}})
        auth = req.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() or str(params.get("token", ""))
        with self._lock:
            self.calls.append((method, params))
        team = self.tokens.get(token) or self._function_token(token)
        if team is None:
            error = "token_revoked" if token in self._function_tokens else "invalid_auth"
            return Response.json({"ok": False, "error": error})
        fault = self._next_fault(method, str(params.get("channel", "")))
        if fault is not None and not fault.drop:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            status = 429 if fault.retry_after is not None and fault.status == 200 else fault.status
            return Response.json({"ok": False, "error": fault.error or "ratelimited"}, status, headers)
        if method in ("functions.completeSuccess", "functions.completeError"):
            response = self._functions_complete(method, team, token, params)
        else:
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                return Response.json({"ok": False, "error": "unknown_method"})
            response = handler(team, params)
        if fault is not None and fault.drop:
            return Response(drop=True)  # the work is done; the answer is lost
        return response

    def _next_fault(self, method: str, channel: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(method)
            if not queue:
                return None
            for fault in list(queue):
                if fault.channel is None or fault.channel == channel:
                    queue.remove(fault)
                    return fault
            return None

    def _oauth_access(self, req: Request, params: dict[str, Any]) -> Response:
        """Exchange a one-time code for a bot token, as Slack does at the end of an install."""
        auth = req.headers.get("authorization", "")
        try:
            client = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":", 1)
        except ValueError:
            client = []
        if self.oauth_client is None or tuple(client) != self.oauth_client:
            return Response.json({"ok": False, "error": "invalid_client_id"})
        with self._lock:
            team = self.oauth_codes.pop(str(params.get("code", "")), None)
            if team is None:
                return Response.json({"ok": False, "error": "invalid_code"})
            token = f"xoxb-{team.lower()}-{next(self._ts)}"
            self.tokens[token] = team
        return Response.json(
            {
                "ok": True,
                "app_id": "A0JOBWATCH",
                "authed_user": {"id": "U0INSTALLER"},
                "scope": str(params.get("scope") or "commands,chat:write,channels:history,groups:history"),
                "token_type": "bot",
                "access_token": token,
                "bot_user_id": "UBOT",
                "team": {"id": team, "name": f"Team {team}"},
                "enterprise": None,
                "is_enterprise_install": False,
            }
        )

    # -- Socket Mode, custom steps, unfurls ---------------------------------------------------

    def _connections_open(self, req: Request, params: dict[str, Any]) -> Response:
        """A WebSocket URL for an app-level token (a bot token is the wrong type of token)."""
        token = req.headers.get("authorization", "").removeprefix("Bearer ").strip() or str(params.get("token", ""))
        with self._lock:
            self.calls.append(("apps.connections.open", {}))
        if token in self.tokens:
            return Response.json({"ok": False, "error": "not_allowed_token_type"})
        if token not in self.app_tokens:
            return Response.json({"ok": False, "error": "invalid_auth"})
        if self.socket is None:
            self.socket = SocketModeServer()
        return Response.json({"ok": True, "url": self.socket.issue_url()})

    def function_executed(
        self, callback_id: str, inputs: dict[str, Any], *, team: str = "T0001", execution: str | None = None
    ) -> dict[str, Any]:
        """A `function_executed` event (the inner event) for a step of a running workflow: the
        execution is running, and its token is good for 15 minutes or until the step completes."""
        with self._lock:
            execution = execution or f"Fx{next(self._ts):010d}"
            token = f"xwfp-{team.lower()}-{execution.lower()}"
            self._executions[execution] = team
            self._function_tokens[token] = (team, execution, self.monotonic())
        return {
            "type": "function_executed",
            "function": {"id": f"Fn{callback_id[:8]}", "callback_id": callback_id, "type": "app", "app_id": "A0001"},
            "inputs": inputs,
            "function_execution_id": execution,
            "workflow_execution_id": f"Wx{execution[2:]}",
            "event_ts": f"{time.time():.6f}",
            "bot_access_token": token,
        }

    def _function_token(self, token: str) -> str | None:
        """The team of a live function token (only the functions.* calls of a running step use one here)."""
        with self._lock:
            found = self._function_tokens.get(token)
            if found is None:
                return None
            team, execution, issued = found
            if self.monotonic() - issued > FUNCTION_TOKEN_TTL or execution not in self._executions:
                return None
            return team

    def _complete(self, team: str, params: dict[str, Any], *, ok: bool, token_kind: str) -> Response:
        execution = str(params.get("function_execution_id", ""))
        with self._lock:
            if self._executions.get(execution) != team:
                return Response.json({"ok": False, "error": "function_execution_not_found"})
            del self._executions[execution]
            outputs = params.get("outputs")
            if isinstance(outputs, str):
                outputs = json.loads(outputs)
            done: dict[str, Any] = {"team": team, "execution": execution, "ok": ok, "token": token_kind}
            if ok:
                done["outputs"] = outputs or {}
            else:
                done["error"] = str(params.get("error", ""))
            self.completions.append(done)
        if self.on_complete:
            self.on_complete(done)
        return Response.json({"ok": True})

    def _functions_complete(self, method: str, team: str, token: str, params: dict[str, Any]) -> Response:
        """functions.completeSuccess or completeError; `token` says which token completed the run
        (the run's own, from its event, or the workspace's bot token)."""
        kind = "function" if token in self._function_tokens else "bot"
        if method == "functions.completeSuccess":
            return self._complete(team, params, ok=True, token_kind=kind)
        if not params.get("error"):
            return Response.json({"ok": False, "error": "invalid_arguments"})
        return self._complete(team, params, ok=False, token_kind=kind)

    def completed(self, execution: str) -> list[dict[str, Any]]:
        """The completions (success or error) that took effect for one function execution."""
        with self._lock:
            return [c for c in self.completions if c["execution"] == execution]

    def _m_chat_unfurl(self, team: str, params: dict[str, Any]) -> Response:
        """Attach previews to a posted message (channel + ts) or to a link in the composer
        (unfurl_id + source); needs links:write."""
        if "links:write" in self.missing:
            return Response.json({"ok": False, "error": "missing_scope", "needed": "links:write"})
        unfurls = params.get("unfurls")
        if isinstance(unfurls, str):
            unfurls = json.loads(unfurls)
        where_ok = (params.get("channel") and params.get("ts")) or (params.get("unfurl_id") and params.get("source"))
        if not where_ok or not isinstance(unfurls, dict) or not unfurls:
            return Response.json({"ok": False, "error": "invalid_arguments"})
        for url, preview in unfurls.items():
            problems = block_problems((preview or {}).get("blocks") or [])
            if problems:
                return Response.json({"ok": False, "error": "invalid_blocks", "errors": problems, "url": url})
        call = {
            "team": team,
            "channel": params.get("channel"),
            "ts": params.get("ts"),
            "unfurl_id": params.get("unfurl_id"),
            "source": params.get("source"),
            "unfurls": unfurls,
        }
        with self._lock:
            self.unfurls.append(call)
        if self.on_unfurl:
            self.on_unfurl(call)
        return Response.json({"ok": True})

    def link_shared(
        self, urls: list[str], *, channel: str = "C0001", user: str = "U0001", ts: str | None = None
    ) -> dict[str, Any]:
        """A `link_shared` event (the inner event) for a message that holds `urls`."""
        from urllib.parse import urlsplit

        ts = ts or f"{int(time.time())}.{next(self._ts):06d}"
        return {
            "type": "link_shared",
            "channel": channel,
            "is_bot_user_member": True,
            "user": user,
            "message_ts": ts,
            "unfurl_id": f"{channel}.{ts}.{next(self._ts):x}",
            "source": "conversations_history",
            "links": [{"domain": urlsplit(u).hostname or "", "url": u} for u in urls],
            "event_ts": ts,
        }

    def _m_auth_test(self, team: str, params: dict[str, Any]) -> Response:
        return Response.json({"ok": True, "team_id": team, "user_id": "UBOT", "bot_id": "BBOT", "team": "Test"})

    def _member(self, team: str, channel: str) -> bool:
        if channel.startswith("D"):
            with self._lock:
                return channel in self._ims.values()
        return self.members is None or team in self.members.get(channel, set())

    def _m_conversations_open(self, team: str, params: dict[str, Any]) -> Response:
        """Open (or find) the bot's IM with one person, as Slack does for `users=<one id>`."""
        users = [u for u in str(params.get("users", "")).split(",") if u]
        if not users:
            return Response.json({"ok": False, "error": "users_list_not_supplied"})
        if len(users) > 1:
            return Response.json({"ok": False, "error": "not_supported"})  # a group DM: not ours to open
        user = users[0]
        if user == "UBOT":
            return Response.json({"ok": False, "error": "cannot_dm_bot"})
        if not re.match(r"^[UW][A-Z0-9]{2,40}$", user) or (self.people is not None and user not in self.people):
            return Response.json({"ok": False, "error": "user_not_found"})
        if user in self.disabled:
            return Response.json({"ok": False, "error": "user_disabled"})
        with self._lock:
            channel = self._ims.setdefault((team, user), f"D{team[1:]}{user[1:]}"[:20])
        return Response.json({"ok": True, "channel": {"id": channel}})

    def _m_users_lookupByEmail(self, team: str, params: dict[str, Any]) -> Response:
        """The person with this e-mail address (case-insensitive) among `people`, as Slack answers:
        `users_not_found` when there is none, `missing_scope` without users:read.email."""
        if "users:read.email" in self.missing:
            return Response.json(
                {"ok": False, "error": "missing_scope", "needed": "users:read.email", "provided": "chat:write"}
            )
        email = str(params.get("email", "")).strip().lower()
        found = next((u for u, e in (self.people or {}).items() if e.lower() == email), None)
        if not email or found is None:
            return Response.json({"ok": False, "error": "users_not_found"})
        return Response.json({"ok": True, "user": {"id": found, "team_id": team, "deleted": False}})

    def count(self, method: str) -> int:
        """How many calls of `method` the fake received."""
        with self._lock:
            return sum(1 for name, _ in self.calls if name == method)

    def _m_chat_postMessage(self, team: str, params: dict[str, Any]) -> Response:
        channel = str(params.get("channel", ""))
        if not channel:
            return Response.json({"ok": False, "error": "channel_not_found"})
        if not self._member(team, channel):
            return Response.json({"ok": False, "error": "not_in_channel"})
        if not params.get("text") and not params.get("blocks"):
            return Response.json({"ok": False, "error": "no_text"})
        if len(str(params.get("text", ""))) > 40_000 or len(params.get("blocks") or []) > 50:
            return Response.json({"ok": False, "error": "msg_too_long"})
        with self._lock:
            bucket = self._buckets.setdefault(
                f"{team}:{channel}", Bucket(self.rate, self.burst, self.burst, self.monotonic())
            )
            if not bucket.take(self.monotonic()):
                self.rejected += 1
                return Response.json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "1"})
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            message = {
                "team": team,
                "channel": channel,
                "ts": ts,
                "text": params.get("text", ""),
                "blocks": params.get("blocks") or [],
                "thread_ts": params.get("thread_ts"),
                "reply_broadcast": _truthy(params.get("reply_broadcast")),
                "metadata": params.get("metadata"),
                "bot_id": "BBOT",
            }
            self.messages.append(message)
            self.log.append({"kind": "post", "message": message})
        if self.on_post:
            self.on_post(message)
        return Response.json({"ok": True, "channel": channel, "ts": ts, "message": message})

    def _m_chat_update(self, team: str, params: dict[str, Any]) -> Response:
        channel, ts = str(params.get("channel", "")), str(params.get("ts", ""))
        with self._lock:
            target = next(
                (m for m in self.messages if m["channel"] == channel and m["ts"] == ts and m["team"] == team), None
            )
            if target is None:
                return Response.json({"ok": False, "error": "message_not_found"})
            target["text"] = params.get("text", target["text"])
            target["blocks"] = params.get("blocks") or target["blocks"]
            if params.get("metadata"):
                target["metadata"] = params["metadata"]
            self.updates.append({"channel": channel, "ts": ts, "text": target["text"], "blocks": target["blocks"]})
            self.log.append({"kind": "update", "channel": channel, "ts": ts})
        return Response.json({"ok": True, "channel": channel, "ts": ts})

    def _history(self, team: str, params: dict[str, Any], *, thread: str | None) -> Response:
        channel = str(params.get("channel", ""))
        if not self._member(team, channel):
            return Response.json({"ok": False, "error": "not_in_channel"})
        oldest = float(params.get("oldest") or 0)
        limit = int(params.get("limit") or 100)
        offset = int(params.get("cursor") or 0)
        with self._lock:
            found = [
                m
                for m in self.messages
                if m["team"] == team
                and m["channel"] == channel
                and float(m["ts"]) >= oldest
                and (
                    (thread is None and (m["thread_ts"] is None or m["reply_broadcast"]))
                    or (thread is not None and (m["ts"] == thread or m["thread_ts"] == thread))
                )
            ]
        found.sort(key=lambda m: float(m["ts"]), reverse=thread is None)
        page = found[offset : offset + limit]
        with_meta = _truthy(params.get("include_all_metadata"))
        out = [{k: v for k, v in m.items() if with_meta or k != "metadata"} for m in page]
        more = offset + limit < len(found)
        return Response.json(
            {
                "ok": True,
                "messages": out,
                "has_more": more,
                "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
            }
        )

    def _m_conversations_history(self, team: str, params: dict[str, Any]) -> Response:
        return self._history(team, params, thread=None)

    def _m_conversations_replies(self, team: str, params: dict[str, Any]) -> Response:
        return self._history(team, params, thread=str(params.get("ts", "")))

    # -- App Home and output checks (slack-ux) ----------------------------------------------

    def _m_views_publish(self, team: str, params: dict[str, Any]) -> Response:
        view = params.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not params.get("user_id") or not isinstance(view, dict) or view.get("type") != "home":
            return Response.json({"ok": False, "error": "invalid_arguments"})
        problems = block_problems(view.get("blocks") or [], max_blocks=100)
        if problems:
            return Response.json({"ok": False, "error": "invalid_blocks", "errors": problems})
        with self._lock:
            self.views.append({"team": team, "user_id": str(params["user_id"]), "view": view})
            self.log.append({"kind": "view", "team": team, "user_id": str(params["user_id"]), "view": view})
        return Response.json({"ok": True, "view": {"id": f"V{len(self.views):05d}", **view}})

    @property
    def views(self) -> list[dict[str, Any]]:
        """Every App Home view published, oldest first."""
        if not hasattr(self, "_views"):
            self._views: list[dict[str, Any]] = []
        return self._views

    def problems(self) -> list[str]:
        """Everything posted, answered or published that Slack would refuse or that would ping or link.

        Checks Block Kit limits, and mrkdwn that would be live: `<!…>` (other than `<!date^…>`),
        `<@…>` mentions and `<http…>` links. Our own `<#C…>` channel references are allowed.
        """
        with self._lock:
            payloads = [*self.messages, *(p for _, p in self.responses), *(v["view"] for v in self.views)]
        found: list[str] = []
        for payload in payloads:
            found.extend(block_problems(payload.get("blocks") or []))
            found.extend(live_markup(str(payload.get("text", ""))))
        return found


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")


def pretty(message: dict[str, Any]) -> str:
    """A readable rendering of a posted message for the terminal."""
    where = f"#{message['channel']}"
    if message.get("thread_ts"):
        where += " (thread reply" + (", also sent to channel" if message.get("reply_broadcast") else "") + ")"
    lines = [f"── {where} ──"]
    for block in message.get("blocks") or []:
        if block.get("type") == "section":
            lines.append(block["text"]["text"])
        elif block.get("type") == "context":
            lines.append("   " + " · ".join(e.get("text", "") for e in block["elements"]))
        elif block.get("type") == "actions":
            for el in block["elements"]:
                label = el.get("text", {}).get("text", "")
                lines.append(f"   [{label}]" + (f" {el['url']}" if el.get("url") else ""))
    if len(lines) == 1:
        lines.append(str(message.get("text", "")))
    shown = _DATE.sub(r"\1", "\n".join(lines))
    # Slack shows its three escapes as the characters; so does the terminal.
    return shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
