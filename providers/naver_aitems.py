"""NAVER Cloud AiTEMS "View training list": `GET /api/v1/services/{serviceId}/trains`.

API: https://api.ncloud-docs.com/docs/en/ai-application-service-aitems-service-trainlist
(docs/providers.md §NAVER AiTEMS). Every request carries the API Gateway signature v2 (`naver_signing`);
a 401/403 is an AuthError whose message reminds of the gateway's 5-minute clock window.

Identity: a train is `(serviceId, type, version)`; the queue is one service, so `Job.id` is
`"{type}/{version}"` and the name `"{type} {version}"` (docs/architecture.md §Canonical job model).

Paging: `offset`/`limit` (older renderings of the page and the sibling list APIs; the newest
rendering lists only `isRecent`), followed to the end. We ask for `limit=1000`, the documented
default and the `limit` the API's own example answer echoes, so 10,000 trains are 10 requests,
not 100. A short page ends the listing; a page that repeats the previous one or whose echoed
`offset` differs from the one asked for is a BadResponseError. A page is short against the
`limit` the answer echoes when that is smaller than ours (a server that caps pages silently must
not end the listing early). A page longer than `limit` means the server ignored paging and
returned everything, which also ends the listing.

Incremental: the API has no time or status filter, only `isRecent=true` ("recently requested
item" per training type: at most one train per type, three types today). A steady cycle
sends that one request. It falls back to the full listing (every train of the service,
ceil(n / PAGE_SIZE) requests) when a live train is missing from the recent set (a newer train
of its type superseded it), on the baseline, and every `FULL_EVERY` so that a train created
and superseded between two polls is still seen. A train has no update time in the listing,
so `updated_at` stays None.

Status: the train `status` enum is NOT published (docs/providers.md §NAVER AiTEMS). `DEFAULT_STATUS_MAP` is a
provisional, case-insensitive guess from NCP's service-level statuses and common wording; a
queue's `status_map` (native -> canonical) overrides or extends it. Anything unmapped is
`unknown`, logged once. `createdDate` format and zone are unconfirmed: parsed defensively,
naive values read in the queue's `timezone` (default Asia/Seoul); an unreadable date is
logged and left None rather than failing the listing.

`isRecent` is sent only as `true`; the full listing omits it, because the docs describe
`false` as "not a recently requested item", which may exclude the newest train of each type.

Detail: `get_job` uses "View training", `GET .../trains/{type}/versions/{version}`
(https://api.ncloud-docs.com/docs/en/ai-application-service-aitems-service-trainread); 404 is
None. It carries the same fields as the listing, so there is no failure reason to add.

Stop: the AiTEMS API reference documents no call that stops or cancels a train (the train
pages are list, view and request), so this adapter has no `stop_job`: `stop_support` answers
"not supported by aitems".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from providers._http import Requester, make_client
from providers._paging import PageGuard
from providers._parse import parsing
from providers._time import parse_timestamp
from providers.base import QueueConfig, default_env, endpoint_host, env_secret, identity_digest, map_status
from providers.errors import AuthError, BadResponseError, NotFoundError
from providers.model import Job, JobStatus
from providers.naver_signing import signer

log = logging.getLogger(__name__)

ENDPOINT = "https://aitems.apigw.ntruss.com"
PAGE_SIZE = 1000  # `limit`: the documented default, and the most we ask for
FULL_EVERY = timedelta(hours=1)

# Provisional: the train status enum is unpublished. Keys are compared lower-case.
DEFAULT_STATUS_MAP: dict[str, JobStatus] = {
    "requested": JobStatus.QUEUED,
    "requestlearning": JobStatus.QUEUED,
    "scheduled": JobStatus.QUEUED,
    "scheduledlearning": JobStatus.QUEUED,
    "waiting": JobStatus.QUEUED,
    "pending": JobStatus.QUEUED,
    "ready": JobStatus.QUEUED,
    "learning": JobStatus.RUNNING,
    "training": JobStatus.RUNNING,
    "running": JobStatus.RUNNING,
    "inprogress": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "complete": JobStatus.SUCCEEDED,
    "succeeded": JobStatus.SUCCEEDED,
    "success": JobStatus.SUCCEEDED,
    "learned": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "fail": JobStatus.FAILED,
    "error": JobStatus.FAILED,
    "canceled": JobStatus.STOPPED,
    "cancelled": JobStatus.STOPPED,
    "stopped": JobStatus.STOPPED,
}

_LOGGED_DATES: set[tuple[str, str]] = set()


class AitemsQueue(QueueConfig):
    """One AiTEMS service: its trainings."""

    provider: Literal["aitems"] = "aitems"
    service_id: str = Field(min_length=1)
    endpoint_url: str | None = ENDPOINT
    access_key_env: str | None = "NCP_ACCESS_KEY"
    secret_key_env: str | None = "NCP_SECRET_KEY"
    status_map: dict[str, JobStatus] = Field(default_factory=dict)
    timezone: str = "Asia/Seoul"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def scope_text(self) -> str:
        """The service id."""
        return f"service {self.service_id}"

    def account_scope(self) -> str:
        """The API Gateway knows the caller by its access key (`x-ncp-iam-access-key`) and answers
        429 when a quota is spent; no AiTEMS limit is published, so one key at one gateway is taken
        as one budget, whichever service it reads: the gateway's host, and a digest of the endpoint
        and the variable holding the access key (not the service id)."""
        endpoint = (self.endpoint_url or ENDPOINT).rstrip("/")
        key = self.access_key_env or "NCP_ACCESS_KEY"
        return f"aitems:{endpoint_host(endpoint)}:{identity_digest(endpoint, key)}"

    def statuses(self) -> dict[str, JobStatus]:
        """Default table with this queue's overrides, keys lower-case."""
        table = {k.lower(): v for k, v in DEFAULT_STATUS_MAP.items()}
        table.update({k.lower(): v for k, v in self.status_map.items()})
        return table


class AitemsSource:
    """Training-list adapter for one service."""

    provider: ClassVar[str] = "aitems"

    def __init__(
        self,
        config: AitemsQueue,
        *,
        env: Mapping[str, str] | None = None,
        requester: Requester | None = None,
        deadline_s: float = 120,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.deadline_s = deadline_s
        self.clock = clock
        source_env = env if env is not None else default_env()
        access = env_secret(source_env, config.access_key_env or "NCP_ACCESS_KEY", queue=config.name)
        secret = env_secret(source_env, config.secret_key_env or "NCP_SECRET_KEY", queue=config.name)
        self._sign = signer(access.get_secret_value(), secret.get_secret_value(), clock=clock)
        self.http = requester or Requester(make_client(config.endpoint_url or ENDPOINT), what=f"aitems {config.name}")
        self._zone = ZoneInfo(config.timezone)
        self._table = config.statuses()
        self._path = f"/api/v1/services/{quote(config.service_id, safe='')}/trains"
        self._last_full: datetime | None = None

    def to_job(self, raw: Mapping[str, Any]) -> Job:
        """One train object -> Job."""
        kind, version = str(raw["type"]), str(raw["version"])
        if not kind or not version:
            raise ValueError("train without type or version")
        native = str(raw.get("status", ""))
        extra: dict[str, str | int | float | bool | None] = {
            "service_id": str(raw.get("serviceId") or self.config.service_id),
            "type": kind,
            "version": version,
        }
        if isinstance(raw.get("inference"), bool):
            extra["inference"] = raw["inference"]
        if raw.get("description"):
            extra["description"] = str(raw["description"])
        return Job(
            queue=self.config.name,
            id=f"{kind}/{version}",
            name=f"{kind} {version}",
            status=map_status("aitems", native.lower(), self._table),
            native_status=native,
            created_at=self._created(raw.get("createdDate")),
            extra=extra,
            refs=(version,),
        )

    def _created(self, value: Any) -> datetime | None:
        try:
            return parse_timestamp(value, default_tz=self._zone)
        except ValueError:
            key = (self.config.name, repr(value)[:80])
            if key not in _LOGGED_DATES:
                _LOGGED_DATES.add(key)
                log.warning("unparsed_date provider=aitems queue=%s createdDate=%r", self.config.name, value)
            return None

    def list_jobs(self, *, since: datetime | None, live: Sequence[Job]) -> list[Job]:
        """Every train (baseline, hourly, or when a live train left the recent set), else the recent ones."""
        if since is not None and self._last_full is not None and since - self._last_full < FULL_EVERY:
            recent = self._list(recent=True)
            seen = {j.id for j in recent}
            if all(j.id in seen for j in live):
                return recent
        jobs = self._list(recent=False)
        self._last_full = since or datetime.now(UTC)
        return jobs

    def _list(self, *, recent: bool) -> list[Job]:
        what = f"aitems {self.config.name}"
        guard = PageGuard(what, deadline_s=self.deadline_s)
        found: dict[str, Job] = {}
        previous: list[str] | None = None
        offset = 0
        while True:
            guard.next_page(offset or None)
            params: dict[str, str | int | bool] = {"offset": offset, "limit": PAGE_SIZE}
            if recent:
                params["isRecent"] = True  # never `false`: documented as "not a recently requested item"
            body = self._get(self._path, params)
            trains, served = self._trains(body, offset)
            with parsing(self, "training list"):
                jobs = [self.to_job(raw) for raw in trains]
            ids = [j.id for j in jobs]
            if ids and ids == previous:
                raise BadResponseError(f"{what}: page at offset {offset} repeats the previous page")
            previous = ids
            for job in jobs:
                found.setdefault(job.id, job)
            if len(trains) != served:  # short page: the end; longer: paging ignored, all returned
                return list(found.values())
            offset += len(trains)

    def _get(self, path: str, params: Mapping[str, str | int | bool] | None, *, what: str | None = None) -> Any:
        try:
            return self.http.get(path, params=params, sign=self._sign, what=what)
        except AuthError as err:
            local = datetime.fromtimestamp(self.clock(), tz=UTC).isoformat(timespec="seconds")
            raise AuthError(
                f"{err} (signed with local clock {local}; the gateway refuses a skew of 5 minutes or more)"
            ) from None

    def _trains(self, body: Any, offset: int) -> tuple[list[Any], int]:
        """The page's trains, and the page size the server applied (its echoed `limit`, if smaller)."""
        what = f"aitems {self.config.name}"
        if not isinstance(body, dict) or not isinstance(body.get("trains"), list):
            raise BadResponseError(f"{what}: response has no trains array")
        echoed = body.get("offset")
        if isinstance(echoed, int) and not isinstance(echoed, bool) and echoed != offset:
            raise BadResponseError(f"{what}: asked for offset {offset}, got offset {echoed}")
        limit = body.get("limit")
        served = (
            limit if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < PAGE_SIZE else PAGE_SIZE
        )
        return list(body["trains"]), served

    def get_job(self, job_id: str) -> Job | None:
        """`GET .../trains/{type}/versions/{version}` ("View training"); None when gone (404)."""
        kind, sep, version = job_id.partition("/")
        if not sep or not kind or not version:
            return None
        path = f"{self._path}/{quote(kind, safe='')}/versions/{quote(version, safe='')}"
        try:
            body = self._get(path, None, what=f"aitems train {job_id}")
        except NotFoundError:
            return None
        with parsing(self, "View training"):
            job = self.to_job(body)
        return job

    def close(self) -> None:
        """Release the HTTP connections."""
        self.http.client.close()
