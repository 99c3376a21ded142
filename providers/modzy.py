"""Modzy job history: `GET /api/jobs/history`, paged, newest change first.

API: https://docs.modzy.com/reference/list-the-job-history (docs/providers.md §Modzy). Auth is the
header `Authorization: ApiKey <key>`. Pages are 1-based (docs/providers.md §Modzy) and the body is a bare
array, so a short page ends the listing and a page that repeats the previous one is an error.
Incremental: sorted by `updatedAt` descending, paging stops at the first job older than the
watermark (minus an overlap): a steady cycle costs one request while few jobs change. A live
job the history no longer shows (it can be scoped to a window) is re-checked by id, at most
one per cycle, once it has been quiet for `RECHECK_AFTER`. Re-checks spend spare cycles: a cycle
that already needed more than one history page defers its re-check, but never more than
`MAX_DEFERRED` cycles in a row, so a busy tenant still gets every quiet live job re-checked.

Webhook (https://docs.modzy.com/docs/how-to-create-a-webhook): a platform admin adds one under
Admin > Settings > Webhooks with a payload URL, an optional secret and the triggering event; the
only event is Job Completion. Modzy POSTs `{"job": {"identifier", "model": {"identifier",
"version", "name"}, "team": {"identifier"}}}`: which job, not its state, so the bot reads the job
(`get_job`) and applies what it finds like any other change. The secret "will be encrypted and
then sent along in the header of each webhook message"; the documentation names neither the
header nor the encryption, so the queue names both as a delivery shows them
(`webhook_secret_header`, and the value in `webhook_secret_env`) and the bot compares the header
with that value. Retries of a failed delivery are not documented.

Runtime limit: the jobs object's `timeout` (https://docs.modzy.com/reference/jobs), in the listing,
so no extra request; taken as milliseconds (unconfirmed, docs/failures.md). A job Modzy ended at it
is TIMEDOUT: `timed_out`.
Stop: "Cancel a job", `DELETE /api/jobs/{jobIdentifier}` (https://modzy.readme.io/reference/cancel-a-job;
the same route as modzy-sdk's `jobs.cancel`). It cancels SUBMITTED, PENDING and IN_PROGRESS jobs,
answers with the job object, and is closed to the Auditor role. Modzy keeps no reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator

from providers._http import Requester, make_client
from providers._paging import PageGuard
from providers._parse import parsing
from providers._time import parse_iso
from providers.base import (
    STOP_TIMEOUT,
    QueueConfig,
    StopResult,
    default_env,
    endpoint_host,
    env_secret,
    identity_digest,
    map_status,
)
from providers.errors import BadResponseError, NotFoundError
from providers.limits import LIMIT_KEY
from providers.model import Job, JobStatus

STATUS_MAP: dict[str, JobStatus] = {
    "OPEN": JobStatus.QUEUED,
    "SUBMITTED": JobStatus.QUEUED,
    "IN_PROGRESS": JobStatus.RUNNING,
    "COMPLETED": JobStatus.SUCCEEDED,
    "ERROR": JobStatus.FAILED,
    "CANCELED": JobStatus.STOPPED,
    "TIMEDOUT": JobStatus.TIMED_OUT,
}
PAGE_SIZE = 100
OVERLAP = timedelta(minutes=5)
RECHECK_AFTER = timedelta(hours=1)
MAX_DEFERRED = 10  # busy cycles in a row that may skip the re-check


class ModzyQueue(QueueConfig):
    """A Modzy tenant (its own base URL), optionally one model."""

    provider: Literal["modzy"] = "modzy"
    endpoint_url: str  # Modzy runs per tenant: no public default
    model: str | None = None
    api_key_env: str | None = "MODZY_API_KEY"
    # Job Completion webhooks at /webhooks/modzy/<queue name> (docs/push.md); the secret's header
    # and the variable holding its value, both or neither.
    webhook: bool = Field(default=False, strict=True)
    webhook_secret_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,100}$")
    webhook_secret_env: str | None = None

    @model_validator(mode="after")
    def _secret_pair(self) -> ModzyQueue:
        if (self.webhook_secret_header is None) != (self.webhook_secret_env is None):
            raise ValueError(
                "webhook_secret_header and webhook_secret_env go together (the header Modzy sends, its value)"
            )
        return self

    def scope_text(self) -> str:
        """Tenant and model."""
        return f"{self.endpoint_url}" + (f", model {self.model}" if self.model else "")

    def account_scope(self) -> str:
        """A Modzy tenant's limits are its own: the tenant's host, and a digest of its base URL and
        the variable holding the API key (another key may be another budget)."""
        key = self.api_key_env or "MODZY_API_KEY"
        return f"modzy:{endpoint_host(self.endpoint_url)}:{identity_digest(self.endpoint_url.rstrip('/'), key)}"


def status_of(raw: Mapping[str, Any]) -> tuple[JobStatus, str | None]:
    """Canonical status and reason; COMPLETED with failed inputs keeps the count (docs/providers.md §Modzy)."""
    native = str(raw.get("status", "")).upper()
    status = map_status("modzy", native, STATUS_MAP)
    failed = int(raw.get("failed") or 0)
    if native == "COMPLETED" and failed:
        done = int(raw.get("completed") or 0)
        total = int(raw.get("total") or failed + done)
        reason = f"{failed} of {total} inputs failed"
        return (JobStatus.FAILED if done == 0 else status), reason
    return status, None


def timeout_seconds(value: object) -> float | None:
    """The jobs object's `timeout` in seconds: Modzy gives a number of milliseconds (the unit its job
    times use; docs/failures.md says what is confirmed); None when absent, zero or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value) / 1000


def short_seconds(seconds: float) -> str:
    """`90 s`, `25 min`, `2 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h".replace(".0 h", " h")


class ModzySource:
    """Job-history adapter."""

    provider: ClassVar[str] = "modzy"
    stop_timeout: float = STOP_TIMEOUT  # deadline of a stop call, seconds

    def __init__(
        self,
        config: ModzyQueue,
        *,
        env: Mapping[str, str] | None = None,
        requester: Requester | None = None,
        deadline_s: float = 120,
    ) -> None:
        self.config = config
        self.deadline_s = deadline_s
        key: SecretStr = env_secret(
            env if env is not None else default_env(), config.api_key_env or "MODZY_API_KEY", queue=config.name
        )
        self.http = requester or Requester(
            make_client(config.endpoint_url, headers={"Authorization": f"ApiKey {key.get_secret_value()}"}),
            what=f"modzy {config.name}",
        )
        self._rechecked: dict[str, datetime] = {}
        self._deferred = 0

    def to_job(self, raw: Mapping[str, Any]) -> Job:
        """One jobs object -> Job."""
        ident = str(raw["jobIdentifier"])
        model = raw.get("model") or {}
        model_name = str(model.get("name") or model.get("identifier") or "") if isinstance(model, dict) else ""
        status, reason = status_of(raw)
        extra: dict[str, str | int | float | bool | None] = {}
        for key in ("total", "completed", "failed", "pending"):
            if raw.get(key) is not None:
                extra[f"inputs_{key}"] = int(raw[key])
        for key, name in (("submittedBy", "submitted_by"), ("accountIdentifier", "account")):
            if raw.get(key):  # who submitted the job: an owner for `owner_from = "field"`
                extra[name] = str(raw[key])
        if model_name:
            extra["model"] = model_name
        if isinstance(model, dict) and model.get("version"):
            extra["model_version"] = str(model["version"])
        ended = status.terminal
        limit = timeout_seconds(raw.get("timeout"))
        if limit is not None:
            extra[LIMIT_KEY] = limit
        if status is JobStatus.TIMED_OUT and reason is None:
            reason = "Modzy ended the job at its timeout" + (f" ({short_seconds(limit)})" if limit else "")
        return Job(
            queue=self.config.name,
            id=ident,
            name=f"{ident} ({model_name})" if model_name else ident,
            status=status,
            native_status=str(raw.get("status", "")),
            created_at=parse_iso(raw.get("createdAt") or raw.get("submittedAt")),
            updated_at=parse_iso(raw.get("updatedAt")),
            started_at=parse_iso(raw.get("submittedAt")),
            ended_at=parse_iso(raw.get("updatedAt")) if ended else None,
            reason=reason,
            extra=extra,
        )

    def job_id_from_webhook(self, payload: Any) -> str | None:
        """The job a Job Completion webhook names (its `job.identifier`); None when the queue watches one
        model and the webhook is about another. A payload without a job identifier is a BadResponseError."""
        with parsing(self, "webhook"):
            job = payload["job"]
            ident = job["identifier"]
            if not isinstance(ident, str) or not ident.strip():
                raise ValueError(f"job identifier {ident!r} is not a non-empty string")
            model = job.get("model") or {}
            named = model.get("identifier") if isinstance(model, Mapping) else None
        if self.config.model and named and named != self.config.model:
            return None
        return ident.strip()

    def list_jobs(self, *, since: datetime | None, live: Sequence[Job]) -> list[Job]:
        """The whole history (baseline) or the jobs updated since the watermark, then re-checks."""
        cutoff = None if since is None else since - OVERLAP
        guard = PageGuard(f"modzy {self.config.name}", deadline_s=self.deadline_s)
        found: dict[str, Job] = {}
        params: dict[str, str | int | bool] = {
            "per-page": PAGE_SIZE,
            "sort-by": "createdAt" if since is None else "updatedAt",
            "direction": "DESC",
        }
        if self.config.model:
            params["model"] = self.config.model
        previous_first: str | None = None
        pages = 0
        for page in range(1, guard.max_pages + 1):
            pages = page
            guard.next_page(page)
            body = self.http.get("/api/jobs/history", params={**params, "page": page})
            if not isinstance(body, list):
                raise BadResponseError(f"modzy {self.config.name}: history page is not a JSON array")
            with parsing(self, "job history"):
                jobs = [self.to_job(raw) for raw in body]
            if jobs and jobs[0].id == previous_first:
                raise BadResponseError(f"modzy {self.config.name}: page {page} repeats page {page - 1}")
            previous_first = jobs[0].id if jobs else None
            for job in jobs:
                found.setdefault(job.id, job)
            older = cutoff is not None and any(j.updated_at is not None and j.updated_at < cutoff for j in jobs)
            if len(jobs) < PAGE_SIZE or older:
                break
        if pages > 1 and self._deferred < MAX_DEFERRED:
            self._deferred += 1  # a busy cycle: the re-check waits for a quieter one
        else:
            self._deferred = 0
            self._recheck(found, live, since)
        return list(found.values())

    def _recheck(self, found: dict[str, Job], live: Sequence[Job], since: datetime | None) -> None:
        """One quiet live job per cycle, fetched by id, in case the history stopped showing it."""
        if since is None:
            return
        quiet = [
            j
            for j in live
            if j.id not in found
            and (j.updated_at is None or since - j.updated_at > RECHECK_AFTER)
            and since - self._rechecked.get(j.id, since - 2 * RECHECK_AFTER) > RECHECK_AFTER
        ]
        for job in sorted(quiet, key=lambda j: self._rechecked.get(j.id, j.updated_at or since))[:1]:
            self._rechecked[job.id] = since
            fresh = self.get_job(job.id)
            if fresh is not None:
                found[fresh.id] = fresh

    def get_job(self, job_id: str) -> Job | None:
        """`GET /api/jobs/{id}`; None when the job is gone (404)."""
        try:
            body = self.http.get(f"/api/jobs/{quote(job_id, safe='')}", what=f"modzy job {job_id}")
        except NotFoundError:
            return None
        with parsing(self, "job detail"):
            job = self.to_job(body)
        return job

    def stop_job(self, job: Job, *, reason: str) -> StopResult:
        """`DELETE /api/jobs/{id}` (cancel), once, with a deadline; the answer is the job, now CANCELED."""
        answer = self.http.act(
            "DELETE",
            f"/api/jobs/{quote(job.id, safe='')}",
            permission="an API key whose role may cancel jobs (not Auditor)",
            timeout=self.stop_timeout,
            what=f"Modzy cancel of job {job.id}",
        )
        status = answer.get("status") if isinstance(answer, dict) else None
        native = str(status) if status else None
        return StopResult(
            accepted=True,
            message=f"Modzy accepted the cancellation of job {job.id}" + (f": it is now {native}." if native else "."),
            native_status=native,
        )

    def close(self) -> None:
        """Release the HTTP connections."""
        self.http.client.close()
