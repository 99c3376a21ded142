"""A local AWS Batch endpoint (REST-JSON): ListServiceJobs and DescribeServiceJob.

Emulates the documented behaviour (docs/providers.md §AWS Batch): no jobStatus -> RUNNING only; a filter
makes jobStatus ignored and returns every status newest first; one filter at most
(ClientException otherwise); maxResults 1..100 with nextToken; epoch-ms times; isTerminated
only when true; latestAttempt.serviceResourceId. Scripted faults and per-operation counts.
DescribeServiceJob answers the job's `tags` (a map, absent when it has none); the listing never
carries them, as on AWS.

TerminateServiceJob (`POST /v1/terminateservicejob`, jobId and reason required) records every
call in `stops`; a live job gets `isTerminated` and the reason (stopping) and, the next time a
response shows it, ends FAILED (stopped). A job already SUCCEEDED or FAILED is refused with a
ClientException (Batch's one modelled client error; its message here is ours). Fault "denied"
answers 403 AccessDeniedException, as IAM does.

Retries (https://docs.aws.amazon.com/batch/latest/userguide/service-job-retries.html): a job
added with `attempts=N` (its `retryStrategy.attempts`) records one attempt each time it reaches
STARTING, each with its own SageMaker training job (`latestAttempt.serviceResourceId`; the name of
attempt k > 1 is `<job name>-<k>`, our invention: the real naming is not published).
`fail_attempt` stops the current attempt with a reason: with attempts left the job goes back to
RUNNABLE (the listing shows only that, and the new training job once it runs again), otherwise it
is FAILED. DescribeServiceJob answers `attempts[]` (startedAt, stoppedAt, statusReason) and
`retryStrategy`, as the botocore model describes them.

`event(job_id)` is the "Batch Service Job State Change" EventBridge event of the job's current
state, in the documented shape (https://docs.aws.amazon.com/batch/latest/userguide/service-job-events.html):
the detail resembles DescribeServiceJob without `tags` and `serviceRequestPayload`, and carries
`jobQueue` as an ARN. Batch sends none for the submission itself.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from bot.sim.http import BAD_DETAIL, LocalServer, Request, Response, Served, next_fault

TERMINAL = frozenset({"SUCCEEDED", "FAILED"})


@dataclass
class ServiceJob:
    """One simulated service job."""

    job_id: str
    name: str
    status: str
    created_ms: int
    region: str
    account: str
    reason: str | None = None
    started_ms: int | None = None
    stopped_ms: int | None = None
    terminated: bool = False
    stop_shows: int | None = None  # while terminating: showings left before it is FAILED
    tags: dict[str, str] = field(default_factory=dict)
    max_attempts: int | None = None  # retryStrategy.attempts, when submitted with one
    attempts: list[dict[str, Any]] = field(default_factory=list)
    timeout_s: int | None = None  # timeoutConfig.attemptDurationSeconds

    @property
    def arn(self) -> str:
        return f"arn:aws:batch:{self.region}:{self.account}:service-job/{self.job_id}"

    def training_arn(self, attempt: int) -> str:
        name = self.name if attempt <= 1 else f"{self.name}-{attempt}"
        return f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{name}"

    def detail(self) -> dict[str, Any]:
        """The DescribeServiceJob answer: the summary plus attempts and retry strategy."""
        out = self.summary()
        out["attempts"] = [dict(a) for a in self.attempts]
        if self.max_attempts is not None:
            out["retryStrategy"] = {"attempts": self.max_attempts}
        if self.timeout_s is not None:
            out["timeoutConfig"] = {"attemptDurationSeconds": self.timeout_s}
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobId": self.job_id,
            "jobArn": self.arn,
            "jobName": self.name,
            "serviceJobType": "SAGEMAKER_TRAINING",
            "status": self.status,
            "createdAt": self.created_ms,
            "latestAttempt": {
                "serviceResourceId": {"name": "TrainingJobArn", "value": self.training_arn(len(self.attempts))}
            },
            "capacityUsage": [{"capacityUnit": "ml.g5.xlarge", "quantity": 1}],
        }
        for key, value in (
            ("statusReason", self.reason),
            ("startedAt", self.started_ms),
            ("stoppedAt", self.stopped_ms),
        ):
            if value is not None:
                out[key] = value
        if self.terminated:
            out["isTerminated"] = True
        return out


def _error(status: int, kind: str, message: str) -> Response:
    return Response.json({"__type": kind, "message": message}, status, {"x-amzn-ErrorType": kind})


@dataclass
class BatchSim(Served):
    """The simulated service; `jobs` may change while it serves."""

    region: str = "us-east-1"
    account: str = "123456789012"
    jobs: dict[str, ServiceJob] = field(default_factory=dict)
    faults: deque[str] = field(default_factory=deque)
    op_faults: dict[str, deque[str]] = field(default_factory=dict)  # for one operation ("describeservicejob")
    calls: Counter[str] = field(default_factory=Counter)
    stops: list[dict[str, Any]] = field(default_factory=list)  # body of every TerminateServiceJob

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = LocalServer(self.handle)

    def add(
        self,
        name: str,
        status: str = "SUBMITTED",
        *,
        created_ms: int | None = None,
        tags: dict[str, str] | None = None,
        attempts: int | None = None,
    ) -> ServiceJob:
        """Submit a job (now, or at `created_ms`), with its tags, and `retryStrategy.attempts` when given."""
        job = ServiceJob(
            max_attempts=attempts,
            job_id=f"{next(self._ids):08x}-0000-4000-8000-{random.getrandbits(48):012x}",
            name=name,
            status=status,
            created_ms=created_ms if created_ms is not None else int(time.time() * 1000),
            region=self.region,
            account=self.account,
            tags=dict(tags or {}),
        )
        with self.lock:
            self.jobs[job.job_id] = job
        return job

    def set(self, job_id: str, status: str, *, reason: str | None = None, terminated: bool = False) -> None:
        """Move a job; times follow the status."""
        now = int(time.time() * 1000)
        with self.lock:
            job = self.jobs[job_id.rsplit("/", 1)[-1]]
            job.status, job.reason = status, reason
            job.terminated = job.terminated or terminated
            if status in ("STARTING", "RUNNING") and job.started_ms is None:
                job.started_ms = now
            if status in ("STARTING", "RUNNING") and (not job.attempts or "stoppedAt" in job.attempts[-1]):
                resource = {"name": "TrainingJobArn", "value": job.training_arn(len(job.attempts) + 1)}
                job.attempts.append({"serviceResourceId": resource, "startedAt": now})
            if status in TERMINAL:
                job.stopped_ms = now
                if job.attempts and "stoppedAt" not in job.attempts[-1]:
                    job.attempts[-1].update(stoppedAt=now, **({"statusReason": reason} if reason else {}))

    def event(self, job_id: str, job_queue: str = "gpu-spot") -> dict[str, Any]:
        """The EventBridge event of the job's current state, as Batch would send it."""
        with self.lock:
            job = self.jobs[job_id.rsplit("/", 1)[-1]]
            detail = job.detail()
            when = job.stopped_ms or job.started_ms or job.created_ms
        detail["jobQueue"] = f"arn:aws:batch:{self.region}:{self.account}:job-queue/{job_queue}"
        detail.pop("tags", None)
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Batch Service Job State Change",
            "source": "aws.batch",
            "account": self.account,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when / 1000)),
            "region": self.region,
            "resources": [job.arn],
            "detail": detail,
        }

    def fail_attempt(self, job_id: str, reason: str) -> bool:
        """The running attempt fails with `reason`: back to RUNNABLE when attempts are left (True),
        else FAILED (False)."""
        with self.lock:
            job = self.jobs[job_id.rsplit("/", 1)[-1]]
            left = len(job.attempts) < (job.max_attempts or 1)
        if not left:
            self.set(job_id, "FAILED", reason=reason)
            return False
        now = int(time.time() * 1000)
        with self.lock:
            if job.attempts and "stoppedAt" not in job.attempts[-1]:
                job.attempts[-1].update(stoppedAt=now, statusReason=reason)
            job.status, job.reason = "RUNNABLE", reason
        return True

    def handle(self, req: Request) -> Response:
        op = req.path.rsplit("/", 1)[-1]
        with self.lock:
            self.calls[op] += 1
            scripted = self.op_faults.get(op)
            fault = scripted.popleft() if scripted else next_fault(self.faults, detail=op == "describeservicejob")
            if op == "terminateservicejob":
                self.stops.append(req.json())
        if fault == "throttle":
            return _error(429, "TooManyRequestsException", "Too Many Requests")
        if fault == "server":
            return _error(500, "ServerException", "simulated server error")
        if fault == "auth":
            return _error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if fault == "denied":
            message = f"User: arn:aws:iam::{self.account}:user/jobwatch is not authorized to perform: batch:{op}"
            return _error(403, "AccessDeniedException", message)
        if fault == "html":
            return Response(200, b"<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"})
        if fault == "malformed":
            return Response(200, b'{"jobSummaryList": [{"jobId": ', {"Content-Type": "application/json"})
        body = req.json()
        if op == "listservicejobs":
            return self._list(body, stuck=fault == "repeat_token")
        if op == "describeservicejob":
            with self.lock:
                job = self.jobs.get(str(body.get("jobId", "")))
                if job:
                    self._show(job)
                data = job.detail() if job else None
                if job and job.tags:
                    data = {**(data or {}), "tags": dict(job.tags)}
            if data is None:
                return _error(400, "ClientException", "Job not found")
            if fault == BAD_DETAIL:
                data = {k: v for k, v in data.items() if k not in ("jobId", "status")}
            return Response.json({**data, "jobQueue": "q", "startedAt": data.get("startedAt", 0)})
        if op == "terminateservicejob":
            return self._terminate(body)
        return _error(404, "UnknownOperationException", op)

    def _terminate(self, body: dict[str, Any]) -> Response:
        if not body.get("jobId") or not body.get("reason"):
            return _error(400, "ClientException", "jobId and reason are required")
        with self.lock:
            job = self.jobs.get(str(body["jobId"]))
            if job is None:
                return _error(400, "ClientException", f"Job {body['jobId']} not found")
            if job.status in TERMINAL:
                return _error(400, "ClientException", f"Job {job.job_id} is already in status {job.status}")
            job.terminated, job.reason, job.stop_shows = True, str(body["reason"]), 1
        return Response(200, b"{}", {"Content-Type": "application/json"})

    def _show(self, job: ServiceJob) -> None:
        """A terminating job moves on each time a response shows it: as it was once, then FAILED."""
        if job.stop_shows is None:
            return
        if job.stop_shows > 0:
            job.stop_shows -= 1
            return
        job.status, job.stopped_ms, job.stop_shows = "FAILED", int(time.time() * 1000), None

    def _list(self, body: dict[str, Any], *, stuck: bool) -> Response:
        filters = body.get("filters") or []
        size = int(body.get("maxResults") or 100)
        if len(filters) > 1:
            return _error(400, "ClientException", "Only one filter can be specified")
        if not 1 <= size <= 100:
            return _error(400, "ClientException", "maxResults must be between 1 and 100")
        with self.lock:
            jobs = list(self.jobs.values())
        if filters:
            (flt,) = filters
            if flt.get("name") != "AFTER_CREATED_AT":
                return _error(400, "ClientException", f"unsupported filter {flt.get('name')}")
            cutoff = int(flt["values"][0])
            picked = sorted((j for j in jobs if j.created_ms > cutoff), key=lambda j: j.created_ms, reverse=True)
        else:
            wanted = body.get("jobStatus") or "RUNNING"
            picked = [j for j in jobs if j.status == wanted]
        token = str(body.get("nextToken") or "0")
        start = int(token) if token.isdigit() else 0
        with self.lock:
            for job in picked[start : start + size]:
                self._show(job)
            page = [j.summary() for j in picked[start : start + size]]
        out: dict[str, Any] = {"jobSummaryList": page}
        if stuck or token == "stuck":
            out["nextToken"] = "stuck"
        elif start + size < len(picked):
            out["nextToken"] = str(start + size)
        return Response(200, json.dumps(out).encode(), {"Content-Type": "application/json"})


class BatchStory:
    """Service jobs queue for capacity (flapping RUNNABLE <-> SCHEDULED quietly), run and end; a job
    whose first attempt is lost to a spot reclaim is retried once (a note in its thread)."""

    queue = "batch-gpu"
    PATH = ("PENDING", "RUNNABLE", "SCHEDULED", "RUNNABLE", "SCHEDULED", "STARTING", "RUNNING")

    def __init__(self, rng: random.Random) -> None:
        self.sim = BatchSim()
        self.rng = rng
        self.stage: dict[str, int] = {}
        self.count = 0
        self.reclaimed = False  # the first job to finish running loses that attempt to a spot reclaim

    def start(self) -> None:
        self.sim.start()
        for n in range(2):
            self.sim.set(self.sim.add(f"llama-eval-{n}").job_id, "SUCCEEDED")
        self.spawn()

    def spawn(self) -> None:
        self.count += 1
        self.stage[self.sim.add(f"llama-sft-{self.count:03d}", attempts=2).job_id] = 0

    def config(self) -> str:
        return f"""
[[queues]]
name = "{self.queue}"
provider = "batch"
region = "us-east-1"
job_queue = "gpu-spot"
endpoint_url = "{self.sim.url}"
access_key_env = "DEMO_AWS_KEY"
secret_key_env = "DEMO_AWS_SECRET"
"""

    def env(self) -> dict[str, str]:
        return {"DEMO_AWS_KEY": "AKIDEMO", "DEMO_AWS_SECRET": "demo-secret-key"}

    def step(self) -> None:
        for job_id, stage in list(self.stage.items()):
            if stage < len(self.PATH):
                self.sim.set(job_id, self.PATH[stage])
                self.stage[job_id] = stage + 1
                continue
            roll = self.rng.random()
            if (roll >= 0.6 or not self.reclaimed) and self.sim.fail_attempt(
                job_id, "Host EC2 (instance i-0d1e2f3a) terminated."
            ):
                self.reclaimed = True
                self.stage[job_id] = self.PATH.index("RUNNABLE") + 1  # a spot reclaim: Batch retries it
                continue
            if roll < 0.6:
                self.sim.set(job_id, "SUCCEEDED")
            else:
                self.sim.set(job_id, "FAILED", reason="AlgorithmError: loss went NaN at step 1200")
            del self.stage[job_id]
        if not self.stage:
            self.spawn()

    def failed_job(self) -> str | None:
        return next((j.name for j in self.sim.jobs.values() if j.status == "FAILED"), None)

    def stop(self) -> None:
        self.sim.stop()
