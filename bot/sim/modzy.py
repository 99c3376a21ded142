"""A local Modzy tenant: `GET /api/jobs/history`, `GET /api/jobs/{id}` and `DELETE /api/jobs/{id}`.

It checks `Authorization: ApiKey <key>` (401 with a JSON message otherwise), pages 1-based
with `page`/`per-page` returning a bare array, sorts by `sort-by`/`direction`, filters on
`status` categories (all/pending/terminated) and `model`, and plays scripted faults.

The DELETE cancels a job (Modzy's "Cancel a job"): every call is recorded in `stops`; a
SUBMITTED, PENDING or IN_PROGRESS job becomes CANCELED and is returned; any other status is
refused with 400 and a `message` (the exact status code Modzy uses here is not published).
Fault "denied" answers 403, as Modzy does for a role (Auditor) that may not use the route.

With `webhook` set (payload URL, secret header, secret), a job that ends POSTs the tenant's Job
Completion webhook there (`completion`: the documented payload, which names the job, not its state).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.sim.http import BAD_DETAIL, LocalServer, Request, Response, Served, next_fault

TERMINAL = frozenset({"COMPLETED", "ERROR", "CANCELED", "TIMEDOUT"})


@dataclass
class InferenceJob:
    """One simulated inference job."""

    ident: str
    model: str
    status: str
    created: datetime
    updated: datetime
    total: int = 10
    completed: int = 0
    failed: int = 0
    submitted_by: str = "sim"
    timeout_ms: int | None = None  # the jobs object's `timeout`

    def body(self) -> dict[str, Any]:
        out = self._body()
        if self.timeout_ms is not None:
            out["timeout"] = self.timeout_ms
        return out

    def _body(self) -> dict[str, Any]:
        return {
            "jobIdentifier": self.ident,
            "submittedBy": self.submitted_by,
            "accountIdentifier": "acct",
            "model": {"identifier": self.model, "version": "1.0.0", "name": self.model},
            "status": self.status,
            "createdAt": self.created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "updatedAt": self.updated.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "submittedAt": self.created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "total": self.total,
            "pending": max(0, self.total - self.completed - self.failed),
            "completed": self.completed,
            "failed": self.failed,
        }


@dataclass
class ModzySim(Served):
    """The simulated tenant."""

    api_key: str = "modzy-key.secret"
    jobs: dict[str, InferenceJob] = field(default_factory=dict)
    faults: deque[str] = field(default_factory=deque)
    calls: Counter[str] = field(default_factory=Counter)
    stops: list[str] = field(default_factory=list)  # job identifier of every cancel received
    # Where the tenant's Job Completion webhook goes: (payload URL, secret header, secret), or None.
    webhook: tuple[str, str | None, str | None] | None = None
    delivered: list[int] = field(default_factory=list)  # HTTP status of every webhook delivery

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._stuck = False
        self._server = LocalServer(self.handle)

    def add(self, model: str, status: str = "SUBMITTED", *, when: datetime | None = None) -> InferenceJob:
        """Submit a job now (or at `when`)."""
        at = when or datetime.now(UTC)
        job = InferenceJob(str(uuid.UUID(int=random.getrandbits(128))), model, status, at, at)
        with self.lock:
            self.jobs[job.ident] = job
        return job

    def set(self, ident: str, status: str, *, completed: int | None = None, failed: int = 0) -> None:
        """Move a job now."""
        with self.lock:
            job = self.jobs[ident]
            job.status, job.updated, job.failed = status, datetime.now(UTC), failed
            if completed is not None:
                job.completed = completed
            elif status == "COMPLETED":
                job.completed = job.total - failed
        if status in TERMINAL:
            self._notify(ident)

    def completion(self, ident: str, team: str = "Team-Name") -> dict[str, Any]:
        """The Job Completion webhook's payload for a job, in the documented shape
        (https://docs.modzy.com/docs/how-to-create-a-webhook): which job, not its state."""
        with self.lock:
            job = self.jobs[ident]
        model = {"identifier": job.model, "version": "1.0.0", "name": job.model}
        return {"job": {"identifier": job.ident, "model": model, "team": {"identifier": team}}}

    def _notify(self, ident: str) -> None:
        """POST the Job Completion webhook, as the tenant does when a job ends (the documentation does
        not say which end states count as completion: every one does here)."""
        if self.webhook is None:
            return
        url, header, secret = self.webhook
        headers = {header: secret} if header and secret else {}
        answer = httpx.post(url, json=self.completion(ident), headers=headers, timeout=10)
        self.delivered.append(answer.status_code)

    def handle(self, req: Request) -> Response:
        cancel = req.method == "DELETE"
        with self.lock:
            history = req.path.endswith("/history")
            self.calls["cancel" if cancel else "history" if history else "job"] += 1
            fault = next_fault(self.faults, detail=not cancel and not history)
            if cancel:
                self.stops.append(req.path.rsplit("/", 1)[-1])
        if req.headers.get("authorization") != f"ApiKey {self.api_key}" or fault == "auth":
            return Response.json({"message": "Unauthorized: invalid API key", "statusCode": 401}, 401)
        if fault == "denied":
            return Response.json({"message": "Forbidden: your role may not use this route", "statusCode": 403}, 403)
        if fault == "throttle":
            return Response.json({"message": "Too many requests"}, 429, {"Retry-After": "0"})
        if fault == "server":
            return Response.json({"message": "Internal error"}, 503)
        if fault == "html":
            return Response(200, b"<!doctype html><title>Login</title>", {"Content-Type": "text/html"})
        if fault == "malformed":
            return Response(200, b'[{"jobIdentifier": "x", "status"', {"Content-Type": "application/json"})
        if req.path == "/api/jobs/history":
            if req.query.get("page", "1") == "1":
                self._stuck = fault == "repeat_token"  # from now on, every page is page 1
            return self._history(req.query, stuck=self._stuck)
        if cancel and req.path.startswith("/api/jobs/"):
            return self._cancel(req.path.rsplit("/", 1)[-1])
        if req.path.startswith("/api/jobs/"):
            with self.lock:
                job = self.jobs.get(req.path.rsplit("/", 1)[-1])
                body = job.body() if job else None
            if body and fault == BAD_DETAIL:
                body = {k: v for k, v in body.items() if k not in ("jobIdentifier", "status")}
            return Response.json(body) if body else Response.json({"message": "Job not found"}, 404)
        return Response.json({"message": "Not found"}, 404)

    def _cancel(self, ident: str) -> Response:
        with self.lock:
            job = self.jobs.get(ident)
            if job is None:
                return Response.json({"message": "Job not found", "statusCode": 404}, 404)
            if job.status not in ("SUBMITTED", "PENDING", "IN_PROGRESS"):
                message = f"The job {ident} cannot be canceled: its status is {job.status}"
                return Response.json({"message": message, "statusCode": 400}, 400)
            job.status, job.updated = "CANCELED", datetime.now(UTC)
            return Response.json(job.body())

    def _history(self, query: dict[str, str], *, stuck: bool) -> Response:
        page, size = int(query.get("page", "1")), int(query.get("per-page", "10"))
        if page < 1:
            return Response.json({"message": "page must be >= 1"}, 400)
        key = {"updatedAt": "updated", "createdAt": "created"}.get(query.get("sort-by", "createdAt"), "created")
        status = query.get("status", "all").upper()
        with self.lock:
            jobs = [
                j
                for j in self.jobs.values()
                if (status == "ALL" or (status == "PENDING") == (j.status not in TERMINAL))
                and (not query.get("model") or j.model == query["model"])
            ]
            jobs.sort(key=lambda j: getattr(j, key), reverse=query.get("direction", "ASC").upper() == "DESC")
            start = 0 if stuck else (page - 1) * size
            return Response.json([j.body() for j in jobs[start : start + size]])


class ModzyStory:
    """Inference jobs over a batch of inputs: some complete, some with failed inputs, one errors."""

    queue = "inference"

    def __init__(self, rng: random.Random) -> None:
        self.sim = ModzySim()
        self.rng = rng

    def start(self) -> None:
        self.sim.start()
        for _ in range(2):
            self.sim.set(self.sim.add("sentiment-analysis").ident, "COMPLETED")
        self.sim.add("object-detection")

    def config(self) -> str:
        return f"""
[[queues]]
name = "{self.queue}"
provider = "modzy"
endpoint_url = "{self.sim.url}"
api_key_env = "DEMO_MODZY_KEY"
"""

    def env(self) -> dict[str, str]:
        return {"DEMO_MODZY_KEY": self.sim.api_key}

    def step(self) -> None:
        for job in list(self.sim.jobs.values()):
            if job.status == "SUBMITTED":
                self.sim.set(job.ident, "IN_PROGRESS", completed=0)
            elif job.status == "IN_PROGRESS":
                roll = self.rng.random()
                if roll < 0.5:
                    self.sim.set(job.ident, "COMPLETED")
                elif roll < 0.8:
                    self.sim.set(job.ident, "COMPLETED", failed=3)
                else:
                    self.sim.set(job.ident, "ERROR", completed=0)
        if all(j.status in TERMINAL for j in self.sim.jobs.values()):
            self.sim.add(self.rng.choice(["object-detection", "sentiment-analysis", "ocr"]))

    def failed_job(self) -> str | None:
        return next((j.ident for j in self.sim.jobs.values() if j.status == "ERROR"), None)

    def stop(self) -> None:
        self.sim.stop()
