"""Alibaba Cloud PAI runs: AIWorkspace `ListRuns` (`GET /api/v1/runs`, 2021-02-04).

API: https://www.alibabacloud.com/help/en/pai/developer-reference/api-aiworkspace-2021-02-04-listruns
(docs/providers.md §Alibaba Cloud PAI). Every request is signed ACS3-HMAC-SHA256 (`providers.alibaba_signing`).

A run has no status: it is read from the job the run links to (`SourceType`/`SourceId`):
PAI TrainingService (paistudio 2022-01-12) training jobs or PAI-DLC (2020-12-03) jobs. A run
without a source is `unknown`. Status comes from the bulk listings, not one detail call per run:
DLC `ListJobs` filtered by `JobIds` (50 a call); TrainingService `ListTrainingJobs`, unfiltered
from the oldest run on the baseline, then one listing per live status (or one detail call per
job when fewer jobs are live than there are live statuses). A job the listings no longer show
in a live status has moved: several such jobs are looked up in one listing of every status since
the oldest of them (while that costs fewer requests), the rest get one `GetTrainingJob`/`GetJob`.
Terminal states are cached (those of the FINAL_KEPT newest runs) and not fetched again, so a steady
cycle costs the newest `ListRuns` page plus work that grows with the live runs, not the history.

`ListRuns` pages with `PageToken`/`MaxResults` (sorted `GmtCreateTime DESC`) until
`NextPageToken` is 0 or absent; a token that repeats is an error. Incremental cycles stop at the
first run created before the watermark (minus an overlap); runs created earlier are re-checked
through `live`.

Restarts: a DLC job whose nodes fail may be restarted by PAI (fault tolerance, spot preemption):
it shows `Restarting` (canonical running), and DLC `ListJobs` items count the restarts in
`RestartTimes` ("the number of times the job has been restarted"); `GetJob` adds `RestartRecord[]`
with each restart's `Reason` and `JobRestartCount` (alibabacloud-pai-dlc20201203 1.11.6 models
`JobItem`, `GetJobResponseBody`). A job restarted n times is on attempt n + 1
(providers/attempts.py). The count comes with the listing; the reason costs one `GetJob`, made
only for a live job whose count grew since it was stored (never on the baseline). PAI publishes no
maximum in the listing, so the notes say "attempt 1 failed", without "of N"; a `RestartTimes` of
the form "used/max" (GetJob describes it as both numbers; the exact form is not published) gives
the maximum when it appears.

Stop: the run's linked job is stopped, never the run (a run has no state of its own):
TrainingService `StopTrainingJob`, `PUT /api/v1/trainingjobs/{TrainingJobId}/stop` (2022-01-12;
https://help.aliyun.com/zh/pai/developer-reference/api-paistudio-2022-01-12-stoptrainingjob, which
publishes no RAM action for it), or DLC `StopJob`, `POST /api/v1/jobs/{JobId}/stop` (2020-12-03;
https://help.aliyun.com/zh/pai/developer-reference/api-pai-dlc-2020-12-03-stopjob, RAM action
`paidlc:StopJob`). Paths and methods as the official SDKs send them (`stop_training_job_with_options`
in alibabacloud-paistudio20220112, `stop_job_with_options` in alibabacloud-pai-dlc20201203).

Runtime limit: a DLC job's maximum running time, `JobMaxRunningTimeMinutes` (a CreateJob parameter,
https://www.alibabacloud.com/help/en/doc-detail/459672.html), read
from the DLC job the listing or GetJob already returns when the answer carries it: no extra
request. DLC publishes no status or ReasonCode for a job stopped at it (JobItem documents
InvalidParameter, JobSucceeded and JobStoppedByUser), so a Stopped or Failed job whose reason names
the running time or a time-out, and not a person, is `timed_out` (`stopped_at_limit`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field

from providers._http import Requester, make_client
from providers._paging import PageGuard
from providers._parse import parsing
from providers._time import parse_iso
from providers.alibaba_signing import AcsSigner, acs_date
from providers.attempts import ATTEMPT, attempt_of, carry, retry_extra
from providers.base import (
    STOP_TIMEOUT,
    QueueConfig,
    StopResult,
    default_env,
    env_secret,
    identity_digest,
    map_status,
)
from providers.errors import BadResponseError, NotFoundError
from providers.limits import LIMIT_KEY
from providers.model import Job, JobStatus

log = logging.getLogger(__name__)

WORKSPACE_VERSION = "2021-02-04"
TRAINING_VERSION = "2022-01-12"  # PAI TrainingService (product code paistudio)
DLC_VERSION = "2020-12-03"
TRAINING = "TrainingService"
DLC = "DLC"

TRAINING_MAP: dict[str, JobStatus] = {
    "Creating": JobStatus.QUEUED,
    "Created": JobStatus.QUEUED,
    "Submitted": JobStatus.QUEUED,
    "Initializing": JobStatus.QUEUED,
    "Running": JobStatus.RUNNING,
    "Succeed": JobStatus.SUCCEEDED,
    "Failed": JobStatus.FAILED,
    "CreateFailed": JobStatus.FAILED,
    "InitializeFailed": JobStatus.FAILED,
    "Terminated": JobStatus.STOPPED,
}
DLC_MAP: dict[str, JobStatus] = {
    "Creating": JobStatus.QUEUED,
    "Queuing": JobStatus.QUEUED,
    "Bidding": JobStatus.QUEUED,
    "EnvPreparing": JobStatus.QUEUED,
    "SanityChecking": JobStatus.QUEUED,
    "Running": JobStatus.RUNNING,
    "Restarting": JobStatus.RUNNING,
    "Stopping": JobStatus.STOPPING,
    # *Reserving: the outcome is known (alert once) but the job still holds its nodes; the
    # canonical state does not change when it reaches Succeeded/Failed, so no second alert.
    "SucceededReserving": JobStatus.SUCCEEDED,
    "Succeeded": JobStatus.SUCCEEDED,
    "FailedReserving": JobStatus.FAILED,
    "Failed": JobStatus.FAILED,
    "Stopped": JobStatus.STOPPED,
}
MAPS = {TRAINING: TRAINING_MAP, DLC: DLC_MAP}
TRAINING_LIVE = tuple(n for n, s in TRAINING_MAP.items() if not s.terminal)
SOURCE_FINAL = {
    TRAINING: frozenset(n for n, s in TRAINING_MAP.items() if s.terminal),
    DLC: frozenset({"Succeeded", "Failed", "Stopped"}),
}
NO_SOURCE = "no source"

PAGE_SIZE = 100  # ListRuns MaxResults
LIST_SIZE = 100  # ListTrainingJobs / ListJobs PageSize
JOB_IDS_PER_CALL = 50  # DLC ListJobs JobIds (comma list)
OVERLAP = timedelta(minutes=5)
# Final source states kept (those of the newest runs), so the runs of the newest ListRuns pages,
# listed again each cycle through the overlap, cost no status call once ended. A baseline resolves
# every run of the history (10,000 states were ~4.5 MB); only the newest are ever listed again.
FINAL_KEPT = 2_500
EPOCH = datetime.min.replace(tzinfo=UTC)
START_MARGIN = timedelta(days=1)  # the job may predate its run a little
# Hosts by the SDKs' endpoint maps (regional rule) where a region is special.
TRAINING_HOSTS = {"cn-hangzhou": "pai.cn-hangzhou.data.aliyun.com"}


class PaiQueue(QueueConfig):
    """One PAI workspace in one region, optionally one experiment."""

    provider: Literal["pai"] = "pai"
    region: str = Field(pattern=r"^[a-z0-9-]+$")
    workspace_id: str
    experiment_id: str | None = None
    # endpoint_url: the AIWorkspace base URL. The status sources have their own hosts; when
    # endpoint_url is set and these are not, they share it (one gateway, or a local fake).
    training_endpoint_url: str | None = None
    dlc_endpoint_url: str | None = None
    access_key_env: str | None = "ALIBABA_CLOUD_ACCESS_KEY_ID"
    secret_key_env: str | None = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"

    def scope_text(self) -> str:
        """Region, workspace and experiment."""
        text = f"{self.region}, workspace {self.workspace_id}"
        return text + (f", experiment {self.experiment_id}" if self.experiment_id else "")

    def account_scope(self) -> str:
        """PAI's APIs are throttled per account (ListRuns: 50 calls per 3 s): the region, and a
        digest of the hosts called (AIWorkspace, training, DLC) and the variable holding the access
        key id (another key may be another account). Every workspace of one account shares it."""
        key = self.access_key_env or "ALIBABA_CLOUD_ACCESS_KEY_ID"
        digest = identity_digest(self.workspace_url(), self.training_url(), self.dlc_url(), key)
        return f"pai:{self.region}:{digest}"

    def workspace_url(self) -> str:
        return (self.endpoint_url or f"https://aiworkspace.{self.region}.aliyuncs.com").rstrip("/")

    def training_url(self) -> str:
        host = TRAINING_HOSTS.get(self.region, f"pai.{self.region}.aliyuncs.com")
        return (self.training_endpoint_url or self.endpoint_url or f"https://{host}").rstrip("/")

    def dlc_url(self) -> str:
        return (self.dlc_endpoint_url or self.endpoint_url or f"https://pai-dlc.{self.region}.aliyuncs.com").rstrip("/")


@dataclass(frozen=True)
class SourceState:
    """What the linked job says."""

    native: str
    status: JobStatus
    reason: str | None = None
    updated: datetime | None = None
    final: bool = False  # the source job will not change again: cache it
    restarts: int = 0  # DLC RestartTimes: restarts so far
    restart_max: int | None = None  # the most restarts allowed, when RestartTimes says
    limit: float | None = None  # DLC JobMaxRunningTimeMinutes, in seconds, when the answer carries it


NO_SOURCE_STATE = SourceState(NO_SOURCE, JobStatus.UNKNOWN)


def source_state(kind: str, raw: Mapping[str, Any]) -> SourceState:
    """A TrainingService training job or a DLC job -> its state."""
    native = str(raw.get("Status") or "")
    status = map_status(f"pai:{kind}", native, MAPS[kind])
    code, message = raw.get("ReasonCode"), raw.get("ReasonMessage")
    reason = ": ".join(str(p) for p in (code, message) if p) or None
    restarts, restart_max = parse_restarts(raw.get("RestartTimes"))
    limit = max_running_seconds(raw.get("JobMaxRunningTimeMinutes")) if kind == DLC else None
    if limit is not None and stopped_at_limit(status, code, message):
        status = JobStatus.TIMED_OUT
        reason = f"PAI-DLC stopped the job at its maximum running time ({limit / 60:.0f} min)" + (
            f": {reason}" if reason else ""
        )
    return SourceState(
        native,
        status,
        reason if reason and status is not JobStatus.SUCCEEDED else None,
        parse_iso(raw.get("GmtModifiedTime")),
        final=native in SOURCE_FINAL[kind],
        restarts=restarts,
        restart_max=restart_max,
        limit=limit,
    )


LIMIT_HINTS = ("maxrunningtime", "max running time", "maximum running time", "timeout", "timed out")


def max_running_seconds(value: object) -> float | None:
    """DLC `JobMaxRunningTimeMinutes` in seconds; None when absent, zero (no limit) or unreadable."""
    text = str(value if value is not None else "").strip()
    try:
        minutes = float(text)
    except ValueError:
        return None
    return minutes * 60 if minutes > 0 else None


def stopped_at_limit(status: JobStatus, code: object, message: object) -> bool:
    """Whether a DLC job with a maximum running time ended because of it. DLC publishes no status
    or ReasonCode for it (its documented codes include JobStoppedByUser), so: a job that ended
    Stopped or Failed, not by a person, whose reason names the running time or a time-out."""
    if status not in (JobStatus.STOPPED, JobStatus.FAILED) or str(code or "") == "JobStoppedByUser":
        return False
    said = f"{code or ''} {message or ''}".lower()
    return any(hint in said for hint in LIMIT_HINTS)


def parse_restarts(value: object) -> tuple[int, int | None]:
    """DLC `RestartTimes` ("2", 2, or "2/3": used and allowed) -> (restarts, allowed or None);
    absent or unreadable: no restarts known (ValueError would fail the whole poll for a field
    that only refines a note)."""
    text = str(value if value is not None else "").strip()
    used, _, top = text.partition("/")
    if not used.strip().isdigit():
        return 0, None
    return int(used), int(top) if top.strip().isdigit() else None


Key = tuple[str, str]  # (SourceType, SourceId)


class PaiSource:
    """ListRuns adapter; status from the linked TrainingService / DLC jobs."""

    provider: ClassVar[str] = "pai"
    stop_timeout: float = STOP_TIMEOUT  # deadline of a stop call, seconds

    def __init__(
        self,
        config: PaiQueue,
        *,
        env: Mapping[str, str] | None = None,
        requester: Requester | None = None,
        deadline_s: float = 120,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.deadline_s = deadline_s
        self.clock = clock
        source = env if env is not None else default_env()
        key_id = env_secret(source, config.access_key_env or "ALIBABA_CLOUD_ACCESS_KEY_ID", queue=config.name)
        secret = env_secret(source, config.secret_key_env or "ALIBABA_CLOUD_ACCESS_KEY_SECRET", queue=config.name)
        self.signer = AcsSigner(
            key_id.get_secret_value(),
            secret.get_secret_value(),
            action="ListRuns",
            version=WORKSPACE_VERSION,
            clock=clock,
        )
        self.http = requester or Requester(make_client(config.workspace_url()), what=f"pai {config.name}")
        self._final: dict[Key, SourceState] = {}  # those of the FINAL_KEPT newest runs
        self._born: dict[Key, datetime] = {}  # when the run of each cached state was created

    # -- requests ---------------------------------------------------------------------------

    def _get(self, url: str, action: str, version: str, params: Mapping[str, str | int | bool] | None = None) -> Any:
        body = self.http.get(
            url, params=params, sign=self.signer.for_action(action, version), what=f"pai {self.config.name} {action}"
        )
        if not isinstance(body, dict):
            raise BadResponseError(f"pai {self.config.name}: {action} answer is not a JSON object")
        return body

    def _bad(self, text: str) -> BadResponseError:
        return BadResponseError(f"pai {self.config.name}: {text}")

    # -- runs -------------------------------------------------------------------------------

    def _list_runs(self, cutoff: datetime | None) -> list[Mapping[str, Any]]:
        guard = PageGuard(f"pai {self.config.name} ListRuns", deadline_s=self.deadline_s)
        params: dict[str, str | int | bool] = {
            "WorkspaceId": self.config.workspace_id,
            "MaxResults": PAGE_SIZE,
            "OrderBy": "GmtCreateTime DESC",
        }
        if self.config.experiment_id:
            params["ExperimentId"] = self.config.experiment_id
        runs: dict[str, Mapping[str, Any]] = {}
        token = 0
        while True:
            guard.next_page(token)
            body = self._get(
                f"{self.config.workspace_url()}/api/v1/runs",
                "ListRuns",
                WORKSPACE_VERSION,
                {**params, "PageToken": token},
            )
            page = body.get("Runs")
            if page is None:
                page = []
            if not isinstance(page, list) or not all(isinstance(r, dict) and r.get("RunId") for r in page):
                raise self._bad("ListRuns: Runs is not a list of runs")
            for run in page:
                runs.setdefault(str(run["RunId"]), run)
            try:
                token = int(body.get("NextPageToken") or 0)
            except (TypeError, ValueError):
                raise self._bad(f"ListRuns: NextPageToken {body.get('NextPageToken')!r}") from None
            older = cutoff is not None and any(
                (created := self._created(r)) is not None and created < cutoff for r in page
            )
            if token == 0 or older:
                return list(runs.values())

    def _created(self, run: Mapping[str, Any]) -> datetime | None:
        try:
            return parse_iso(run.get("GmtCreateTime"))
        except ValueError:
            raise self._bad(f"run {run.get('RunId')}: GmtCreateTime {run.get('GmtCreateTime')!r}") from None

    @staticmethod
    def _key(source_type: object, source_id: object) -> Key | None:
        kind, ident = str(source_type or ""), str(source_id or "")
        if not kind or not ident:
            return None
        return kind, ident

    # -- status sources ---------------------------------------------------------------------

    def _resolve(self, wanted: dict[Key, datetime | None], *, baseline: bool) -> dict[Key, SourceState]:
        """The state of every wanted source job: cache, then bulk listings, then detail calls."""
        states: dict[Key, SourceState] = {}
        todo: dict[str, dict[str, datetime | None]] = {TRAINING: {}, DLC: {}}
        for key, created in wanted.items():
            if key in self._final:
                states[key] = self._final[key]
            elif key[0] in todo:
                todo[key[0]][key[1]] = created
            else:
                states[key] = SourceState(f"{key[0]} (unsupported source)", JobStatus.UNKNOWN)
        if todo[DLC]:
            states.update(self._dlc(todo[DLC]))
        if todo[TRAINING]:
            states.update(self._training(todo[TRAINING], baseline=baseline))
        for key, state in states.items():
            if state.final:
                self._remember(key, state, wanted.get(key))
        return states

    def _remember(self, key: Key, state: SourceState, created: datetime | None) -> None:
        """Cache a final state; past FINAL_KEPT, keep those of the newest runs."""
        self._final[key] = state
        self._born[key] = created or EPOCH
        if len(self._final) > FINAL_KEPT:
            newest = sorted(self._born, key=self._born.__getitem__, reverse=True)
            for old in newest[FINAL_KEPT:]:
                del self._final[old], self._born[old]

    def _start(self, created: Iterable[datetime | None]) -> str:
        """`StartTime` for a listing: the listings default to 7 days, older live jobs need it."""
        times = [c for c in created if c is not None]
        oldest = min(times) if times else self.clock() - timedelta(days=30)
        return acs_date(oldest - START_MARGIN)

    def _pages(
        self, url: str, action: str, version: str, field: str, id_field: str, params: dict[str, str | int | bool]
    ) -> Iterable[Mapping[str, Any]]:
        """A PageNumber/PageSize listing to its end (short page, or TotalCount reached)."""
        guard = PageGuard(f"pai {self.config.name} {action}", deadline_s=self.deadline_s)
        seen = 0
        previous_first: object = None
        for number in range(1, guard.max_pages + 1):
            guard.next_page(number)
            body = self._get(url, action, version, {**params, "PageNumber": number, "PageSize": LIST_SIZE})
            page = body.get(field) or []
            if not isinstance(page, list) or not all(isinstance(j, dict) and j.get(id_field) for j in page):
                raise self._bad(f"{action}: {field} is not a list of jobs")
            if page and page[0][id_field] == previous_first:
                raise self._bad(f"{action}: page {number} repeats page {number - 1}")
            previous_first = page[0][id_field] if page else None
            yield from page
            seen += len(page)
            total = body.get("TotalCount")
            if len(page) < LIST_SIZE or (isinstance(total, int) and seen >= total):
                return

    def _dlc(self, todo: dict[str, datetime | None]) -> dict[Key, SourceState]:
        found: dict[Key, SourceState] = {}
        ids = sorted(todo)
        url = f"{self.config.dlc_url()}/api/v1/jobs"
        for n in range(0, len(ids), JOB_IDS_PER_CALL):
            chunk = ids[n : n + JOB_IDS_PER_CALL]
            params: dict[str, str | int | bool] = {
                "WorkspaceId": self.config.workspace_id,
                "JobIds": ",".join(chunk),
                "StartTime": self._start(todo[i] for i in chunk),
                "SortBy": "GmtCreateTime",
                "Order": "asc",
            }
            for raw in self._pages(url, "ListJobs", DLC_VERSION, "Jobs", "JobId", params):
                if str(raw["JobId"]) in todo:
                    with parsing(self, "ListJobs"):
                        found[DLC, str(raw["JobId"])] = source_state(DLC, raw)
        for ident in ids:
            if (DLC, ident) not in found:
                found[DLC, ident] = self._detail(DLC, ident)
        return found

    def _training(self, todo: dict[str, datetime | None], *, baseline: bool) -> dict[Key, SourceState]:
        found: dict[Key, SourceState] = {}
        url = f"{self.config.training_url()}/api/v1/trainingjobs"
        base: dict[str, str | int | bool] = {
            "WorkspaceId": self.config.workspace_id,
            "StartTime": self._start(todo.values()),
            "SortBy": "GmtCreateTime",
            "Order": "asc",
        }
        if baseline:
            listings: list[dict[str, str | int | bool]] = [base]
        elif len(todo) > len(TRAINING_LIVE):
            listings = [{**base, "Status": status} for status in TRAINING_LIVE]
        else:
            listings = []  # fewer live jobs than live statuses: one detail call each is cheaper
        for params in listings:
            for raw in self._pages(url, "ListTrainingJobs", TRAINING_VERSION, "TrainingJobs", "TrainingJobId", params):
                if str(raw["TrainingJobId"]) in todo:
                    with parsing(self, "ListTrainingJobs"):
                        found[TRAINING, str(raw["TrainingJobId"])] = source_state(TRAINING, raw)
                    if baseline and len(found) == len(todo):
                        return found
        missing = {i: c for i, c in todo.items() if (TRAINING, i) not in found}
        if not baseline and len(missing) >= 3:
            found.update(self._left(url, base, missing))
        for ident in todo:
            if (TRAINING, ident) not in found:
                found[TRAINING, ident] = self._detail(TRAINING, ident)
        return found

    def _left(
        self, url: str, base: dict[str, str | int | bool], missing: dict[str, datetime | None]
    ) -> dict[Key, SourceState]:
        """Jobs that left the live statuses, from one listing of every status since the oldest of
        them, for as long as every page pays for itself (finds at least one): at worst one extra call."""
        found: dict[Key, SourceState] = {}
        left = dict(missing)
        params = {**base, "StartTime": self._start(missing.values())}
        listing = self._pages(url, "ListTrainingJobs", TRAINING_VERSION, "TrainingJobs", "TrainingJobId", params)
        for items, raw in enumerate(listing, 1):
            ident = str(raw["TrainingJobId"])
            if left.pop(ident, False) is not False:
                with parsing(self, "ListTrainingJobs"):
                    found[TRAINING, ident] = source_state(TRAINING, raw)
            if not left or (items % LIST_SIZE == 0 and items // LIST_SIZE > len(missing) - len(left)):
                break  # done, or the pages cost more than the detail calls they saved
        return found

    def _detail(self, kind: str, ident: str) -> SourceState:
        """GetTrainingJob / GetJob; a job that no longer exists leaves the run `unknown`."""
        if kind == TRAINING:
            url, action, version = (
                f"{self.config.training_url()}/api/v1/trainingjobs",
                "GetTrainingJob",
                TRAINING_VERSION,
            )
        else:
            url, action, version = f"{self.config.dlc_url()}/api/v1/jobs", "GetJob", DLC_VERSION
        try:
            body = self._get(f"{url}/{quote(ident, safe='')}", action, version)
        except NotFoundError:
            return SourceState(f"{kind} job not found", JobStatus.UNKNOWN, f"{kind} job {ident} no longer exists")
        with parsing(self, action):
            state = source_state(kind, body)
        return state

    # -- jobs -------------------------------------------------------------------------------

    def to_job(self, run: Mapping[str, Any], state: SourceState) -> Job:
        """One Run plus its source's state -> Job."""
        ident = str(run["RunId"])
        extra: dict[str, str | int | float | bool | None] = {}
        for key, name in (
            ("SourceType", "source_type"),
            ("SourceId", "source_id"),
            ("ExperimentId", "experiment_id"),
            ("WorkspaceId", "workspace_id"),
            ("UserId", "user_id"),  # who created the run: an owner for `owner_from = "field"`
            ("OwnerId", "owner_id"),
        ):
            if run.get(key):
                extra[name] = str(run[key])
        updated = state.updated or parse_iso(run.get("GmtModifiedTime"))
        if state.limit is not None:
            extra[LIMIT_KEY] = state.limit
        return Job(
            queue=self.config.name,
            id=ident,
            name=str(run.get("Name") or ident),
            status=state.status,
            native_status=state.native,
            created_at=parse_iso(run.get("GmtCreateTime")),
            updated_at=updated,
            ended_at=updated if state.status.terminal else None,
            reason=state.reason,
            extra=extra,
            refs=(str(run["SourceId"]),) if run.get("SourceId") else (),
        )

    def list_jobs(self, *, since: datetime | None, live: Sequence[Job]) -> list[Job]:
        """New runs (all of them on the baseline) and the current state of every live run."""
        runs = self._list_runs(None if since is None else since - OVERLAP)
        listed = {str(r["RunId"]) for r in runs}
        rechecks = [j for j in live if j.id not in listed]
        wanted: dict[Key, datetime | None] = {}
        for run in runs:
            key = self._key(run.get("SourceType"), run.get("SourceId"))
            if key is not None:
                wanted[key] = self._created(run)
        for job in rechecks:
            key = self._key(job.extra.get("source_type"), job.extra.get("source_id"))
            if key is not None:
                wanted[key] = job.created_at
        states = self._resolve(wanted, baseline=since is None)
        stored = {j.id: j for j in live}
        jobs = []
        runs.reverse()
        while runs:  # each raw run goes once its Job is made: a baseline never holds both in full
            run = runs.pop()
            key = self._key(run.get("SourceType"), run.get("SourceId"))
            state = NO_SOURCE_STATE if key is None else states[key]
            with parsing(self, "ListRuns"):
                job = self.to_job(run, state)
            jobs.append(self._attempts(job, state, stored.get(job.id), baseline=since is None))
        for job in rechecks:
            key = self._key(job.extra.get("source_type"), job.extra.get("source_id"))
            if key is None:
                continue  # nothing can change a run without a source
            state = states[key]
            updated = state.updated or job.updated_at
            fresh = job.model_copy(
                update={
                    "status": state.status,
                    "native_status": state.native,
                    "reason": state.reason,
                    "updated_at": updated,
                    "ended_at": updated if state.status.terminal else None,
                    "extra": {**job.extra, LIMIT_KEY: state.limit} if state.limit is not None else job.extra,
                }
            )
            jobs.append(self._attempts(fresh, state, job, baseline=False))
        return jobs

    def _attempts(self, job: Job, state: SourceState, prior: Job | None, *, baseline: bool) -> Job:
        """`job` with its attempt (DLC restarts + 1) in `extra`: what `prior` (the stored job) knew
        while the count is the same, else learnt anew, with the last restart's reason from one
        `GetJob` for a live job seen after the baseline."""
        attempt = state.restarts + 1
        if attempt < 2:
            return job
        if prior is not None and attempt_of(prior) == attempt and ATTEMPT in prior.extra:
            return carry(job, prior)
        source_id = str(job.extra.get("source_id") or "")
        reason = None
        if not baseline and not job.status.terminal and source_id:
            reason = self._restart_reason(source_id)
        top = state.restart_max + 1 if state.restart_max is not None else None
        extra = retry_extra("pai", attempt=attempt, max_attempts=top, reason=reason)
        return job.model_copy(update={"extra": {**job.extra, **extra}})

    def _restart_reason(self, ident: str) -> str | None:
        """The reason of a DLC job's last restart (`GetJob` RestartRecord); None when it has none."""
        try:
            body = self._get(f"{self.config.dlc_url()}/api/v1/jobs/{quote(ident, safe='')}", "GetJob", DLC_VERSION)
        except NotFoundError:
            return None
        records = body.get("RestartRecord")
        if not isinstance(records, list):
            return None
        last = next((r for r in reversed(records) if isinstance(r, dict)), {})
        return str(last.get("Reason") or "") or None

    def get_job(self, job_id: str) -> Job | None:
        """AIWorkspace `GetRun` (`GET /api/v1/runs/{RunId}`) and its source's detail; None on 404."""
        try:
            run = self._get(
                f"{self.config.workspace_url()}/api/v1/runs/{quote(job_id, safe='')}", "GetRun", WORKSPACE_VERSION
            )
        except NotFoundError:
            return None
        if not run.get("RunId"):
            raise self._bad(f"GetRun {job_id}: no RunId in the answer")
        key = self._key(run.get("SourceType"), run.get("SourceId"))
        state = NO_SOURCE_STATE
        if key is not None and key[0] in MAPS:
            state = self._final.get(key) or self._detail(*key)
        with parsing(self, "GetRun"):
            job = self.to_job(run, state)
        if key is not None and state.final:
            self._remember(key, state, job.created_at)
        return job

    def stop_job(self, job: Job, *, reason: str) -> StopResult:
        """Stop the run's linked TrainingService or DLC job, once, with a deadline (PAI keeps no reason)."""
        key = self._key(job.extra.get("source_type"), job.extra.get("source_id"))
        if key is None or key[0] not in MAPS:
            kind = "no linked job" if key is None else f"a {key[0]} source"
            return StopResult(accepted=False, message=f"PAI run {job.name} has {kind}: there is no job to stop.")
        kind, ident = key
        if kind == TRAINING:
            method, base, action, version = (
                "PUT",
                f"{self.config.training_url()}/api/v1/trainingjobs",
                "StopTrainingJob",
                TRAINING_VERSION,
            )
            permission = "the RAM permission to stop TrainingService jobs"
        else:
            method, base, action, version = "POST", f"{self.config.dlc_url()}/api/v1/jobs", "StopJob", DLC_VERSION
            permission = "RAM action paidlc:StopJob"
        answer = self.http.act(
            method,
            f"{base}/{quote(ident, safe='')}/stop",
            permission=permission,
            timeout=self.stop_timeout,
            sign=self.signer.for_action(action, version),
            what=f"PAI {kind} {action} {ident} (run {job.name})",
        )
        request_id = answer.get("RequestId") if isinstance(answer, dict) else None
        then = "Stopping, then Stopped" if kind == DLC else "Terminated"
        return StopResult(
            accepted=True,
            message=f"PAI accepted the stop of {kind} job {ident}: it goes {then}.",
            request_id=str(request_id) if request_id else None,
        )

    def close(self) -> None:
        """Release the HTTP connections."""
        self.http.client.close()
