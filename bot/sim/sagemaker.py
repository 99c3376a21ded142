"""A local SageMaker endpoint (AWS JSON 1.1): ListTrainingJobs, DescribeTrainingJob, StopTrainingJob,
ListTags.

It sorts, filters on LastModifiedTime and NameContains, pages with NextToken, and plays
scripted errors (`__type` bodies, as AWS sends them). Point boto3 at it with endpoint_url.

StopTrainingJob records every call in `stops`, refuses a job that is not InProgress the way
SageMaker does (ValidationException "The request was rejected because the training job is in
status Stopped.") and moves an InProgress job to Stopping; the next time a listing or a
describe shows it after that, it is Stopped.

With a CloudWatch Logs simulator in `logs`, a job writes to its stream there as SageMaker's do
(group /aws/sagemaker/TrainingJobs, stream `<name>/algo-1-<epoch seconds>`): a few lines when it
starts training, and a traceback ending in its failure reason when it fails.
ListTags(ResourceArn) answers a job's `tags` as `[{"Key", "Value"}]`, paged by MaxResults (50 at
least, as the model requires) and NextToken; an unknown ARN is a ValidationException. The listings
carry no tags, as on AWS.

`event(name)` is the "SageMaker Training Job State Change" EventBridge event SageMaker would send
for the job's current state, in the documented shape (the detail resembles DescribeTrainingJob;
times are epoch milliseconds written as strings, as in the sample of
https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from bot.core.clock import Clock, utcnow
from bot.sim.http import BAD_DETAIL, LocalServer, Request, Response, Served, next_fault
from bot.sim.logs import LogsSim
from providers._logs import GROUP


@dataclass
class TrainingJob:
    """One simulated training job."""

    name: str
    arn: str
    created: datetime
    modified: datetime
    status: str = "InProgress"
    secondary: str | None = "Starting"
    failure_reason: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    stop_shows: int | None = None  # while stopping: showings left before it is Stopped
    tags: dict[str, str] = field(default_factory=dict)
    max_runtime: int | None = None  # StoppingCondition.MaxRuntimeInSeconds, seconds

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "CreationTime": self.created.timestamp(),
            "LastModifiedTime": self.modified.timestamp(),
            "TrainingJobStatus": self.status,
        }
        if self.secondary:
            out["SecondaryStatus"] = self.secondary
        if self.ended:
            out["TrainingEndTime"] = self.ended.timestamp()
        return out

    def detail(self) -> dict[str, object]:
        out = self.summary()
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.started:
            out["TrainingStartTime"] = self.started.timestamp()
        if self.max_runtime is not None:
            out["StoppingCondition"] = {"MaxRuntimeInSeconds": self.max_runtime}
        return out


def _whole_ms(when: datetime) -> datetime:
    """`when` to the millisecond: AWS times have no finer grain, in listings and events alike."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _ms(when: datetime) -> str:
    """Epoch milliseconds as a string, as the documented event sample writes its times."""
    return str(round(when.timestamp() * 1000))


TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
JSON11 = "application/x-amz-json-1.1"


@dataclass
class SageMakerSim(Served):
    """The simulated service; `jobs` can be changed while it serves."""

    region: str = "us-east-1"
    account: str = "123456789012"
    clock: Clock = utcnow
    jobs: dict[str, TrainingJob] = field(default_factory=dict)
    errors: deque[tuple[int, str]] = field(default_factory=deque)
    # Errors for one operation only (its name, e.g. "ListTags"), taken before `errors`.
    op_errors: dict[str, deque[tuple[int, str]]] = field(default_factory=dict)
    # "html" | "malformed" | "repeat_token", one per listing page; "bad_detail": the next
    # DescribeTrainingJob answer lacks TrainingJobStatus
    faults: deque[str] = field(default_factory=deque)
    requests: list[str] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)  # TrainingJobName of every StopTrainingJob received
    logs: LogsSim | None = None  # where jobs write their logs, if anywhere

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._server = LocalServer(self.handle)

    def add(
        self,
        name: str,
        *,
        status: str = "InProgress",
        secondary: str | None = "Starting",
        tags: dict[str, str] | None = None,
    ) -> TrainingJob:
        """Create a job now."""
        now = _whole_ms(self.clock())
        job = TrainingJob(
            name=name,
            arn=f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{name}",
            created=now,
            modified=now,
            status=status,
            secondary=secondary,
            tags=dict(tags or {}),
        )
        with self.lock:
            self.jobs[name] = job
        return job

    def set(self, name: str, status: str, secondary: str | None = None, *, reason: str | None = None) -> None:
        """Move a job to a new status now."""
        now = _whole_ms(self.clock())
        with self.lock:
            job = self.jobs[name]
            job.status, job.secondary, job.modified = status, secondary, now
            if status == "InProgress" and secondary == "Training" and job.started is None:
                job.started = now
            if status in TERMINAL:
                job.ended = now
            if reason:
                job.failure_reason = reason
        self._log(job, status, secondary)

    def _log(self, job: TrainingJob, status: str, secondary: str | None) -> None:
        """What the job's container writes at this step, if it writes anything."""
        if self.logs is None:
            return
        stream = f"{job.name}/algo-1-{int(job.created.timestamp())}"
        if status == "InProgress" and secondary == "Training":
            lines = ["Invoking script with the following command:", "/usr/bin/python3 train.py --epochs 3"]
            lines += [f"epoch {n}/3 step 400 loss={2.31 / n:.3f} lr=3e-05" for n in (1, 2)]
            self.logs.write(GROUP, stream, lines)
        elif status == "Failed":
            said = (job.failure_reason or "training failed").split(": ", 1)[-1]
            self.logs.write(
                GROUP,
                stream,
                [
                    "epoch 3/3 step 120 loss=0.702 lr=3e-05",
                    "Traceback (most recent call last):",
                    '  File "/opt/ml/code/train.py", line 88, in <module>',
                    "    trainer.train()",
                    '  File "/opt/ml/code/train.py", line 61, in train',
                    "    loss = model(**batch).loss",
                    f"RuntimeError: {said}",
                    "Reporting training FAILURE",
                ],
            )

    def event(self, name: str) -> dict[str, object]:
        """The EventBridge event of the job's current state (a documented-shape "SageMaker Training
        Job State Change"); put it on a bus or a queue as SageMaker would."""
        with self.lock:
            job = self.jobs[name]
            detail: dict[str, object] = {
                "TrainingJobName": job.name,
                "TrainingJobArn": job.arn,
                "TrainingJobStatus": job.status,
                "SecondaryStatus": job.secondary or job.status,
                "HyperParameters": {},
                "AlgorithmSpecification": {"TrainingInputMode": "File"},
                "RoleArn": f"arn:aws:iam::{self.account}:role/SageMakerRole",
                "CreationTime": _ms(job.created),
                "LastModifiedTime": _ms(job.modified),
                "SecondaryStatusTransitions": [],
                "Tags": {},
            }
            if job.started:
                detail["TrainingStartTime"] = _ms(job.started)
            if job.ended:
                detail["TrainingEndTime"] = _ms(job.ended)
            if job.failure_reason:
                detail["FailureReason"] = job.failure_reason
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "SageMaker Training Job State Change",
            "source": "aws.sagemaker",
            "account": self.account,
            "time": job.modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [job.arn],
            "detail": detail,
        }

    def fail_next(self, status: int, error_type: str) -> None:
        """Answer the next request with an AWS error."""
        self.errors.append((status, error_type))

    def handle(self, req: Request) -> Response:
        target = req.headers.get("x-amz-target", "")
        self.requests.append(target)
        if target.endswith(".StopTrainingJob"):
            with self.lock:
                self.stops.append(str(req.json().get("TrainingJobName")))
        scripted = self.op_errors.get(target.rsplit(".", 1)[-1])
        if scripted or self.errors:
            status, kind = (scripted or self.errors).popleft()
            return Response.json({"__type": kind, "message": f"simulated {kind}"}, status, {"Content-Type": JSON11})
        body = req.json()
        if target.endswith(".ListTrainingJobs"):
            with self.lock:
                fault = next_fault(self.faults, detail=False)
            if fault == "html":
                return Response(200, b"<html><body>Service Unavailable</body></html>", {"Content-Type": "text/html"})
            if fault == "malformed":
                return Response(200, b'{"TrainingJobSummaries": [{"TrainingJobName": "x"', {"Content-Type": JSON11})
            response = self._list(body)
            if fault == "repeat_token" or body.get("NextToken") == "stuck":
                data = json.loads(response.body)
                data["NextToken"] = "stuck"
                return Response.json(data, headers={"Content-Type": JSON11})
            return response
        if target.endswith(".DescribeTrainingJob"):
            with self.lock:
                job = self.jobs.get(str(body.get("TrainingJobName")))
                if job:
                    self._show(job)
                detail = job.detail() if job else None
                broken = bool(self.faults) and self.faults[0] == BAD_DETAIL  # listing faults wait
                if broken:
                    self.faults.popleft()
            if detail is None:
                return Response.json({"__type": "ValidationException", "message": "Requested resource not found."}, 400)
            if broken:
                del detail["TrainingJobStatus"]
            return Response.json(detail, headers={"Content-Type": JSON11})
        if target.endswith(".StopTrainingJob"):
            return self._stop(str(body.get("TrainingJobName")))
        if target.endswith(".ListTags"):
            return self._tags(body)
        return Response.json({"__type": "UnknownOperationException"}, 400)

    def _stop(self, name: str) -> Response:
        now = _whole_ms(self.clock())
        with self.lock:
            job = self.jobs.get(name)
            if job is None:
                return Response.json({"__type": "ResourceNotFound", "message": "Requested resource not found."}, 400)
            if job.status != "InProgress":
                message = f"The request was rejected because the training job is in status {job.status}."
                return Response.json({"__type": "ValidationException", "message": message}, 400)
            job.status, job.secondary, job.modified, job.stop_shows = "Stopping", "Stopping", now, 1
        return Response.json({}, headers={"Content-Type": JSON11})

    def _tags(self, body: dict[str, object]) -> Response:
        arn = str(body.get("ResourceArn") or "")
        size = int(str(body.get("MaxResults", 50)))
        if size < 50:
            message = "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: >= 50"
            return Response.json({"__type": "ValidationException", "message": message}, 400)
        token = str(body.get("NextToken", "0"))
        start = int(token) if token.isdigit() else 0
        with self.lock:
            job = next((j for j in self.jobs.values() if j.arn == arn), None)
            pairs = [{"Key": k, "Value": v} for k, v in job.tags.items()] if job else None
        if pairs is None:
            return Response.json({"__type": "ValidationException", "message": f"Resource {arn} not found."}, 400)
        out: dict[str, object] = {"Tags": pairs[start : start + size]}
        if start + size < len(pairs):
            out["NextToken"] = str(start + size)
        return Response.json(out, headers={"Content-Type": JSON11})

    def _show(self, job: TrainingJob) -> None:
        """A stopping job moves on each time a response shows it: Stopping once, then Stopped."""
        if job.stop_shows is None:
            return
        if job.stop_shows > 0:
            job.stop_shows -= 1
            return
        now = _whole_ms(self.clock())
        job.status, job.secondary, job.modified, job.ended, job.stop_shows = "Stopped", "Stopped", now, now, None

    def _list(self, body: dict[str, object]) -> Response:
        after = body.get("LastModifiedTimeAfter")
        contains = body.get("NameContains")
        descending = body.get("SortOrder", "Ascending") == "Descending"
        size = int(str(body.get("MaxResults", 10)))
        token = str(body.get("NextToken", "0"))
        start = int(token) if token.isdigit() else 0
        with self.lock:
            jobs = [
                j
                for j in self.jobs.values()
                if (after is None or j.modified.timestamp() > float(str(after)))
                and (not contains or str(contains) in j.name)
            ]
            jobs.sort(key=lambda j: j.created, reverse=descending)
            for job in jobs[start : start + size]:
                self._show(job)
            page = [j.summary() for j in jobs[start : start + size]]
        out: dict[str, object] = {"TrainingJobSummaries": page}
        if start + size < len(jobs):
            out["NextToken"] = str(start + size)
        return Response.json(out, headers={"Content-Type": JSON11})
