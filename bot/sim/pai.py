"""A local Alibaba Cloud PAI: AIWorkspace runs plus the two job services a run's status comes from.

Routes (one server stands in for the three hosts):
- AIWorkspace 2021-02-04: `GET /api/v1/runs` (ListRuns: `PageToken`/`MaxResults`, `NextPageToken`
  0 on the last page, `WorkspaceId`, `ExperimentId`, `SourceType`, `SourceId`, `OrderBy`,
  `Verbose` True/true) and `GET /api/v1/runs/{RunId}` (GetRun).
- PAI TrainingService 2022-01-12: `GET /api/v1/trainingjobs` (ListTrainingJobs) and `/{id}`.
- PAI-DLC 2020-12-03: `GET /api/v1/jobs` (ListJobs, with `JobIds`) and `/{id}` (GetJob).
- Stops, as the official SDKs send them: TrainingService `PUT /api/v1/trainingjobs/{id}/stop`
  (StopTrainingJob) and DLC `POST /api/v1/jobs/{id}/stop` (StopJob); another method is
  `InvalidApi.NotFound`. Every stop is recorded in `stops`. A live DLC job goes Stopping, then
  Stopped the next time a response shows it; a TrainingService job (no stopping state is
  published) is Terminated when next shown. A finished job is refused with 400 `InvalidStatus`
  (Alibaba's error body; the code name is our stand-in, the real one is not published).
  Fault "denied" answers 403 `Forbidden.RAM`, as RAM does for a user without the permission.
The listings page with `PageNumber`/`PageSize` and, like the real ones, only show jobs created
in the last 7 days unless `StartTime` says otherwise.

DLC restarts: `restart` moves a DLC job to `Restarting` and records why; `ListJobs` items count
the restarts in `RestartTimes` (a string, as the alibabacloud-pai-dlc20201203 models type it) and
`GetJob` adds `RestartRecord[]` (`JobRestartCount`, `Reason`, `OccurTime`, `RestartStatus`).

Every request must carry a valid ACS3-HMAC-SHA256 signature for the route's action and version
(400 with Alibaba's error code otherwise; nonces may not repeat). Error bodies carry
`Code`/`Message`/`RequestId`; throttling answers carry `x-acs-retry-after` (milliseconds).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.sim.http import BAD_DETAIL, LocalServer, Request, Response, Served, next_fault
from providers.alibaba_signing import verify

TRAINING_FINAL = frozenset({"Succeed", "Failed", "Terminated", "CreateFailed", "InitializeFailed"})
DLC_FINAL = frozenset({"Succeeded", "Failed", "Stopped"})
ROUTES = {  # path prefix -> (list action, get action, version)
    "/api/v1/runs": ("ListRuns", "GetRun", "2021-02-04"),
    "/api/v1/trainingjobs": ("ListTrainingJobs", "GetTrainingJob", "2022-01-12"),
    "/api/v1/jobs": ("ListJobs", "GetJob", "2020-12-03"),
}
STOPS = {  # path prefix -> (stop action, method) for `{prefix}/{id}/stop`
    "/api/v1/trainingjobs": ("StopTrainingJob", "PUT"),
    "/api/v1/jobs": ("StopJob", "POST"),
}


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _rid() -> str:
    return str(uuid.UUID(int=random.getrandbits(128))).upper()


@dataclass
class SourceJob:
    """A TrainingService training job or a DLC job."""

    ident: str
    kind: str  # "TrainingService" | "DLC"
    name: str
    status: str
    created: datetime
    modified: datetime
    reason_code: str | None = None
    reason_message: str | None = None
    stop_shows: int | None = None  # while stopping: showings left before it is stopped
    restarts: list[dict[str, Any]] = field(default_factory=list)  # DLC RestartRecord
    max_minutes: int | None = None  # a DLC job's JobMaxRunningTimeMinutes

    def detail(self) -> dict[str, Any]:
        """The GetTrainingJob / GetJob answer: the listing's item, and a DLC job's restart records."""
        out = self.body()
        if self.kind == "DLC":
            out["RestartRecord"] = [dict(r) for r in self.restarts]
        return out

    def body(self) -> dict[str, Any]:
        common = {
            "Status": self.status,
            "GmtCreateTime": _iso(self.created),
            "GmtModifiedTime": _iso(self.modified),
            "ReasonCode": self.reason_code,
            "ReasonMessage": self.reason_message,
            "WorkspaceId": "ws-sim",
        }
        if self.kind == "TrainingService":
            return {"TrainingJobId": self.ident, "TrainingJobName": self.name, **common}
        restarts = {"RestartTimes": str(len(self.restarts))} if self.restarts else {}
        if self.max_minutes is not None:
            restarts["JobMaxRunningTimeMinutes"] = str(self.max_minutes)
        return {"JobId": self.ident, "DisplayName": self.name, "JobType": "PyTorchJob", **common, **restarts}


@dataclass
class Run:
    """One AIWorkspace run."""

    ident: str
    name: str
    workspace_id: str
    experiment_id: str
    source_type: str
    source_id: str
    created: datetime
    modified: datetime
    user_id: str = "1557702098194904"

    def body(self) -> dict[str, Any]:
        return {
            "RunId": self.ident,
            "Name": self.name,
            "OwnerId": "1557702098194904",
            "UserId": self.user_id,
            "WorkspaceId": self.workspace_id,
            "ExperimentId": self.experiment_id,
            "SourceType": self.source_type,
            "SourceId": self.source_id,
            "Accessibility": "PRIVATE",
            "GmtCreateTime": _iso(self.created),
            "GmtModifiedTime": _iso(self.modified),
            "Labels": [],
        }


@dataclass
class PaiSim(Served):
    """The simulated region: one account, workspaces by id."""

    access_key_id: str = "LTAI5tSimulatedKey"
    access_key_secret: str = "sim-secret-0123456789"
    workspace_id: str = "ws-sim"
    runs: dict[str, Run] = field(default_factory=dict)
    jobs: dict[str, SourceJob] = field(default_factory=dict)
    faults: deque[str] = field(default_factory=deque)
    calls: Counter[str] = field(default_factory=Counter)
    stops: list[tuple[str, str]] = field(default_factory=list)  # (action, job id) of every stop received

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._stuck = False
        self._nonces: set[str] = set()
        self._counter = 0
        self._server = LocalServer(self.handle)

    def add(
        self,
        name: str,
        status: str = "Creating",
        *,
        kind: str = "TrainingService",
        experiment_id: str = "exp-sim",
        when: datetime | None = None,
    ) -> Run:
        """A run, and (unless kind is "") the job it comes from, created now (or at `when`)."""
        at = when or datetime.now(UTC)
        with self.lock:
            self._counter += 1
            n = self._counter
            source_id = ""
            if kind:
                prefix = "train" if kind == "TrainingService" else "dlc"
                source_id = f"{prefix}{n:06d}{random.getrandbits(24):06x}"
                self.jobs[source_id] = SourceJob(source_id, kind, name, status, at, at)
            run = Run(
                f"run-{n:06d}{random.getrandbits(24):06x}",
                name,
                self.workspace_id,
                experiment_id,
                kind,
                source_id,
                at,
                at,
            )
            self.runs[run.ident] = run
        return run

    def set(self, source_id: str, status: str, *, reason: tuple[str, str] | None = None) -> None:
        """Move a source job now."""
        with self.lock:
            job = self.jobs[source_id]
            job.status, job.modified = status, datetime.now(UTC)
            if reason:
                job.reason_code, job.reason_message = reason

    def restart(self, source_id: str, reason: str) -> None:
        """PAI restarts a DLC job (its nodes failed): `Restarting`, one more restart record."""
        now = datetime.now(UTC)
        with self.lock:
            job = self.jobs[source_id]
            job.status, job.modified = "Restarting", now
            job.restarts.append(
                {
                    "JobRestartCount": len(job.restarts) + 1,
                    "Reason": reason,
                    "OccurTime": _iso(now),
                    "RestartStatus": "Restarting",
                }
            )

    # -- HTTP -------------------------------------------------------------------------------

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        body = {"RequestId": _rid(), "HostId": "aiworkspace.sim", "Code": code, "Message": message}
        return Response.json(body, status, headers)

    def handle(self, req: Request) -> Response:
        prefix = next((p for p in ROUTES if req.path == p or req.path.startswith(p + "/")), None)
        if prefix is None:
            return self._error(404, "InvalidApi.NotFound", "Specified api is not found")
        list_action, get_action, version = ROUTES[prefix]
        action = list_action if req.path == prefix else get_action
        if req.path.endswith("/stop") and prefix in STOPS:
            action, method = STOPS[prefix]
            if req.method != method:
                return self._error(404, "InvalidApi.NotFound", "Specified api is not found")
        with self.lock:
            self.calls[action] += 1
            fault = next_fault(self.faults, detail=action == "GetRun")
            if action in ("StopTrainingJob", "StopJob"):
                self.stops.append((action, req.path.rsplit("/", 2)[-2]))
            refused = verify(
                method=req.method,
                raw_path=req.raw_path,
                headers=req.headers,
                body=req.body,
                secrets_by_key={self.access_key_id: self.access_key_secret},
                seen_nonces=self._nonces,
            )
        if refused is None and (req.headers.get("x-acs-action"), req.headers.get("x-acs-version")) != (
            action,
            version,
        ):
            refused = "InvalidAction.NotFound"
        if fault == "auth":
            refused = "InvalidAccessKeyId.NotFound"
        if refused is not None:
            return self._error(400 if refused != "InvalidAccessKeyId.NotFound" else 404, refused, "refused")
        if fault == "denied":
            return self._error(403, "Forbidden.RAM", "User not authorized to operate on the specified resource.")
        if fault == "throttle":
            return self._error(
                400, "Throttling.User", "Request was denied due to user flow control.", {"x-acs-retry-after": "1"}
            )
        if fault == "server":
            return self._error(503, "ServiceUnavailable", "The request has failed due to a temporary failure.")
        if fault == "html":
            return Response(200, b"<!doctype html><title>Aliyun</title>", {"Content-Type": "text/html"})
        if fault == "malformed":
            return Response(200, b'{"requestId": "x", "Runs": [{"RunId"', {"Content-Type": "application/json"})
        q = req.query
        if action == "ListRuns":
            if q.get("PageToken", "0") == "0":
                self._stuck = fault == "repeat_token"
            return self._list_runs(q)
        if action == "GetRun":
            with self.lock:
                run = self.runs.get(req.path.rsplit("/", 1)[-1])
                body = run.body() if run else None
            if body is None:
                return self._error(404, "RunNotFound", "The run does not exist.")
            if fault == BAD_DETAIL:
                body["GmtCreateTime"] = 1700000000  # a number where an ISO-8601 string belongs
            return Response.json({**body, "RequestId": _rid()})
        kind = "TrainingService" if prefix == "/api/v1/trainingjobs" else "DLC"
        if action in ("StopTrainingJob", "StopJob"):
            return self._stop(kind, req.path.rsplit("/", 2)[-2])
        if action in ("GetTrainingJob", "GetJob"):
            with self.lock:
                job = self.jobs.get(req.path.rsplit("/", 1)[-1])
                if job and job.kind == kind:
                    self._show(job)
                body = job.detail() if job and job.kind == kind else None
            if body is None:
                return self._error(404, "EntityNotExist.Job", "The job does not exist.")
            return Response.json({**body, "RequestId": _rid()})
        return self._list_jobs(kind, q)

    def _stop(self, kind: str, ident: str) -> Response:
        with self.lock:
            job = self.jobs.get(ident)
            if job is None or job.kind != kind:
                return self._error(404, "EntityNotExist.Job", "The job does not exist.")
            if job.status in (TRAINING_FINAL | DLC_FINAL | {"Stopping"}):
                return self._error(400, "InvalidStatus", f"The job status {job.status} does not allow this operation.")
            if kind == "DLC":
                job.status, job.modified, job.stop_shows = "Stopping", datetime.now(UTC), 1
            else:
                job.stop_shows = 0
        answer = {"RequestId": _rid()} if kind == "TrainingService" else {"JobId": ident, "RequestId": _rid()}
        return Response.json(answer)

    def _show(self, job: SourceJob) -> None:
        """A stopping job moves on each time a response shows it, to Stopped (DLC) or Terminated."""
        if job.stop_shows is None:
            return
        if job.stop_shows > 0:
            job.stop_shows -= 1
            return
        job.status = "Stopped" if job.kind == "DLC" else "Terminated"
        job.modified, job.stop_shows = datetime.now(UTC), None

    def _list_runs(self, q: dict[str, str]) -> Response:
        try:
            token, size = int(q.get("PageToken", "0")), int(q.get("MaxResults", "10"))
        except ValueError:
            return self._error(400, "InvalidParameter", "PageToken/MaxResults must be integers")
        if q.get("Verbose", "false").lower() not in ("true", "false") or size < 1 or token < 0:
            return self._error(400, "InvalidParameter", "bad Verbose/MaxResults/PageToken")
        order = [p.strip().split() for p in q.get("OrderBy", "GmtCreateTime").split(",") if p.strip()]
        with self.lock:
            runs = [
                r
                for r in self.runs.values()
                if (not q.get("WorkspaceId") or r.workspace_id == q["WorkspaceId"])
                and (not q.get("ExperimentId") or r.experiment_id == q["ExperimentId"])
                and (not q.get("SourceType") or r.source_type == q["SourceType"])
                and (not q.get("SourceId") or r.source_id == q["SourceId"])
            ]
            for spec in reversed(order):
                attr = "name" if spec[0] == "Name" else "created"
                runs.sort(key=lambda r: getattr(r, attr), reverse=len(spec) > 1 and spec[1].upper() == "DESC")
            start = 0 if self._stuck else token
            page = [r.body() for r in runs[start : start + size]]
            more = start + size < len(runs)
        next_token = (size if self._stuck else token + size) if more else 0
        return Response.json({"requestId": _rid(), "Runs": page, "TotalCount": len(runs), "NextPageToken": next_token})

    def _list_jobs(self, kind: str, q: dict[str, str]) -> Response:
        try:
            number, size = int(q.get("PageNumber", "1")), int(q.get("PageSize", "20"))
            start_time = (
                datetime.strptime(q["StartTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                if q.get("StartTime")
                else datetime.now(UTC) - timedelta(days=7)
            )
        except ValueError:
            return self._error(400, "InvalidParameter", "bad PageNumber/PageSize/StartTime")
        if number < 1 or not 1 <= size <= 100:
            return self._error(400, "InvalidParameter", "PageNumber >= 1, PageSize 1..100")
        ids = set(filter(None, q.get("JobIds", "").split(","))) | ({q["JobId"]} if q.get("JobId") else set())
        if q.get("TrainingJobId"):
            ids.add(q["TrainingJobId"])
        with self.lock:
            jobs = [
                j
                for j in self.jobs.values()
                if j.kind == kind
                and j.created >= start_time
                and (not ids or j.ident in ids)
                and (not q.get("Status") or j.status == q["Status"])
            ]
            jobs.sort(key=lambda j: j.created, reverse=q.get("Order", "desc").lower() == "desc")
            for job in jobs[(number - 1) * size : number * size]:
                self._show(job)
            page = [j.body() for j in jobs[(number - 1) * size : number * size]]
        field_name = "TrainingJobs" if kind == "TrainingService" else "Jobs"
        return Response.json({field_name: page, "TotalCount": len(jobs), "RequestId": _rid()})


class PaiStory:
    """PAI runs: training jobs from TrainingService and DLC; some fail, one run logs no source."""

    queue = "pai-runs"

    def __init__(self, rng: random.Random) -> None:
        self.sim = PaiSim()
        self.rng = rng

    def start(self) -> None:
        self.sim.start()
        for n in range(2):
            self.sim.set(self.sim.add(f"qwen-sft-{n}", "Running").source_id, "Succeed")
        self.sim.add("manual-eval-notebook", kind="")
        self.sim.add("llama-pretrain-dlc", "Queuing", kind="DLC")

    def config(self) -> str:
        return f"""
[[queues]]
name = "{self.queue}"
provider = "pai"
region = "cn-shanghai"
workspace_id = "{self.sim.workspace_id}"
endpoint_url = "{self.sim.url}"
access_key_env = "DEMO_ALIBABA_KEY"
secret_key_env = "DEMO_ALIBABA_SECRET"
"""

    def env(self) -> dict[str, str]:
        return {"DEMO_ALIBABA_KEY": self.sim.access_key_id, "DEMO_ALIBABA_SECRET": self.sim.access_key_secret}

    def step(self) -> None:
        for job in list(self.sim.jobs.values()):
            dlc = job.kind == "DLC"
            if job.status in ("Creating", "Queuing"):
                self.sim.set(job.ident, "Running")
            elif job.status == "Running":
                roll = self.rng.random()
                if roll < 0.6:
                    self.sim.set(job.ident, "Succeeded" if dlc else "Succeed")
                elif roll < 0.85:
                    self.sim.set(job.ident, "Failed", reason=("JobFailed", "Worker 0 exited with code 137 (OOMKilled)"))
                else:
                    self.sim.set(job.ident, "Stopped" if dlc else "Terminated")
        final = TRAINING_FINAL | DLC_FINAL
        if all(j.status in final for j in self.sim.jobs.values()):
            kind = self.rng.choice(["TrainingService", "DLC"])
            self.sim.add(
                f"{self.rng.choice(['bert', 'qwen', 'resnet'])}-{'ts' if kind == 'TrainingService' else 'dlc'}",
                kind=kind,
            )

    def failed_job(self) -> str | None:
        failed = {j.ident for j in self.sim.jobs.values() if j.status == "Failed"}
        return next((r.ident for r in self.sim.runs.values() if r.source_id in failed), None)

    def stop(self) -> None:
        self.sim.stop()
