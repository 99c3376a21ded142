"""Which stored job a pasted console link names (docs/slack-native.md §Job links that unfurl).

A link names a job when all of these hold:

1. its host is a console of a configured queue's provider, in that queue's scope: SageMaker and
   AWS Batch on `<region>.console.aws.amazon.com` (or `console.amazonaws.cn`, or the global host
   with `?region=`) for the queue's region, under `/sagemaker` or `/batch`; Alibaba PAI on
   `pai.console.aliyun.com` or `pai.console.alibabacloud.com` whose `workspaceId` (when the link
   has one) is the queue's workspace; Modzy on the queue's own tenant host;
2. the last segment after `jobs/` in its fragment (or, without one, its path) names a job of that
   queue as `/jobs status` would (its id, a provider id, or its name: bot/store/refs.py).

Anything else names no job and is not unfurled: an unknown job, another region's, workspace's or
tenant's link, another provider's page. A link carries no account id, so a SageMaker job of the
same name in another account of the same region reads as ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from bot.core import owners
from bot.core.errors import ServiceError
from bot.features.queries import Services
from bot.store.refs import resolve_job
from providers import Job, QueueConfig

AWS_HOSTS = ("console.aws.amazon.com", "console.amazonaws.cn")
PAI_HOSTS = ("pai.console.aliyun.com", "pai.console.alibabacloud.com")
AWS_PATHS = {"sagemaker": "/sagemaker", "batch": "/batch"}
LINK_MAX = 2_000


@dataclass(frozen=True)
class Linked:
    """The job a link names, fresh from its provider when it answers."""

    url: str
    job: Job


def _job_token(url: str) -> str:
    """The last segment after `jobs/` in the link's fragment, else its path; "" when none."""
    parts = urlsplit(url)
    for where in (parts.fragment.split("?", 1)[0], parts.path):
        if "jobs/" in where:
            tail = where.rsplit("jobs/", 1)[1]
            segments = [s for s in tail.split("/") if s]
            if segments:
                return unquote(segments[-1])
    return ""


def _in_scope(queue: QueueConfig, url: str) -> bool:
    """Whether `url` is a console page of `queue`'s provider, in the queue's scope."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    query = {k: v[0] for k, v in parse_qs(parts.query).items() if v}
    if queue.provider in AWS_PATHS:
        region = str(getattr(queue, "region", ""))
        base = next((h for h in AWS_HOSTS if host == h or host.endswith("." + h)), None)
        if base is None or not parts.path.startswith(AWS_PATHS[queue.provider]):
            return False
        in_host = host[: -len(base)].rstrip(".")
        return (in_host or query.get("region", "")) == region and query.get("region", region) == region
    if queue.provider == "pai":
        if host not in PAI_HOSTS:
            return False
        workspace = query.get("workspaceId", str(getattr(queue, "workspace_id", "")))
        pai_region = query.get("regionId", str(getattr(queue, "region", "")))
        return workspace == str(getattr(queue, "workspace_id", "")) and pai_region == str(getattr(queue, "region", ""))
    if queue.provider == "modzy":
        tenant = (urlsplit(queue.endpoint_url or "").hostname or "").lower()
        return bool(tenant) and host == tenant
    return False


class Links:
    """Finds the job of a console link among the stored jobs of the configured queues."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def stored(self, url: str) -> tuple[QueueConfig, Job] | None:
        """The queue and stored job `url` names, or None."""
        if len(url) > LINK_MAX or not url.startswith("https://"):
            return None
        token = _job_token(url)
        if not token:
            return None
        for queue in self.services.config.queues:
            if not _in_scope(queue, url):
                continue
            with self.services.db.read() as session:
                try:
                    found = resolve_job(session, queue.name, token)
                except ServiceError:
                    continue
            return queue, found.job
        return None

    def job(self, url: str) -> Linked | None:
        """The job `url` names, as it stands now (fresh from the provider, with its usual run
        time), or None when the link names no job jobwatch knows."""
        stored = self.stored(url)
        if stored is None:
            return None
        queue, job = stored
        fresh = self.services.find(queue.name, job.id).job
        owner = job.extra.get(owners.OWNER_KEY)  # the poll keeps it with the job (a tag owner: only there)
        if owner and not fresh.extra.get(owners.OWNER_KEY):
            fresh = fresh.model_copy(update={"extra": {**fresh.extra, owners.OWNER_KEY: owner}})
        return Linked(url, fresh)
