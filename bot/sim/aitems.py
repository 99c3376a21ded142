"""A local NAVER Cloud AiTEMS service: `GET /api/v1/services/{serviceId}/trains`.

It verifies the API Gateway signature v2 over the method and the raw path+query as sent and
refuses a timestamp 5 minutes or more away from its clock (`now`, injectable), answering 401
with NCP's envelope `{"error": {"errorCode": "200", "message": "Authentication Failed"}}`.
It honours `isRecent` (`true`: the latest train per type; `false`: taken literally as
documented, "not a recently requested item", i.e. all but those), `offset` (default 0) and
`limit` (default 1000, as documented), lists trains oldest first, echoes `offset`/`limit`,
serves "View training" (`.../trains/{type}/versions/{version}`) and plays scripted faults.
The docs publish no maximum `limit`; the simulator takes the documented default as the
maximum and refuses a larger one (400, gateway code 100), so an adapter that asks for more
fails here rather than relying on an unconfirmed server behaviour. `cap` makes it serve (and
echo) smaller pages than asked for, as a server that caps pages silently would.
Train `createdDate` is naive local time (Asia/Seoul), since the real format is unconfirmed;
`date_format` lets tests vary it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.sim.http import BAD_DETAIL, LocalServer, Request, Response, Served, next_fault
from providers.naver_signing import verify

SEOUL = ZoneInfo("Asia/Seoul")
TYPES = ("personalRecommend", "relatedItem", "pop")
TERMINAL = frozenset({"completed", "failed", "canceled"})


def seoul_naive(at: datetime) -> str:
    """The default createdDate layout: local Seoul time without a zone."""
    return at.astimezone(SEOUL).strftime("%Y-%m-%dT%H:%M:%S")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json({"error": {"errorCode": code, "message": message}}, status, headers)


@dataclass
class Train:
    """One simulated training request."""

    service_id: str
    kind: str
    version: str
    status: str
    created: datetime
    seq: int
    description: str = ""
    inference: bool = False

    @property
    def ident(self) -> str:
        """The id the adapter reports."""
        return f"{self.kind}/{self.version}"

    def body(self, date_format: Callable[[datetime], Any]) -> dict[str, Any]:
        return {
            "serviceId": self.service_id,
            "type": self.kind,
            "hpConfig": {"is_enabled": False},
            "version": self.version,
            "description": self.description,
            "status": self.status,
            "createdDate": date_format(self.created),
            "inference": self.inference,
        }


@dataclass
class AitemsSim(Served):
    """The simulated service(s) behind the API Gateway."""

    access_key: str = "ncp-demo-access-key"
    secret_key: str = "ncp-demo-secret-key"
    service_id: str = "svc-demo01"
    now: Callable[[], float] = time.time
    date_format: Callable[[datetime], Any] = seoul_naive
    trains: dict[str, Train] = field(default_factory=dict)
    faults: deque[str] = field(default_factory=deque)
    calls: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    max_limit: int = 1000
    cap: int | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._stuck = False
        self._seq = 0
        self._server = LocalServer(self.handle)

    def add(self, kind: str = "personalRecommend", status: str = "requested", *, version: str | None = None) -> Train:
        """Request a training now; versions count up per service unless given."""
        with self.lock:
            self._seq += 1
            train = Train(self.service_id, kind, version or f"v{self._seq:04d}", status, datetime.now(UTC), self._seq)
            self.trains[train.ident] = train
        return train

    def set(self, ident: str, status: str, *, inference: bool | None = None) -> None:
        """Move a train now."""
        with self.lock:
            train = self.trains[ident]
            train.status = status
            if inference is not None:
                train.inference = inference
            elif status == "completed":
                train.inference = True

    def handle(self, req: Request) -> Response:
        with self.lock:
            recent = req.query.get("isRecent", "").lower()
            detail = "/versions/" in req.path
            self.calls["train" if detail else "recent" if recent == "true" else "trains"] += 1
            fault = next_fault(self.faults, detail=detail)
        why = verify(
            req.method,
            req.raw_path,
            req.headers,
            secrets={self.access_key: self.secret_key},
            now_ms=int(self.now() * 1000),
        )
        if why is not None or fault == "auth":
            self.refused.append(why or "fault")
            return _error(401, "200", "Authentication Failed")
        if fault == "throttle":
            return _error(429, "400", "Quota Exceeded")
        if fault == "server":
            return _error(503, "500", "Endpoint Error")
        if fault == "html":
            return Response(200, b"<!doctype html><title>Maintenance</title>", {"Content-Type": "text/html"})
        if fault == "malformed":
            return Response(200, b'{"trains": [{"type": "pop", "status"', {"Content-Type": "application/json"})
        parts = req.path.strip("/").split("/")
        if req.method != "GET" or parts[:3] != ["api", "v1", "services"] or parts[4:5] != ["trains"]:
            return _error(404, "300", "Not Found Exception")
        if parts[3] != self.service_id:
            return _error(404, "300", "Not Found Exception")
        if len(parts) == 8 and parts[6] == "versions":
            with self.lock:
                found = self.trains.get(f"{parts[5]}/{parts[7]}")
                body = found.body(self.date_format) if found else None
            if body and fault == BAD_DETAIL:
                body = {k: v for k, v in body.items() if k not in ("type", "version", "status")}
            return Response.json(body) if body else _error(404, "300", "Not Found Exception")
        if len(parts) != 5:
            return _error(404, "300", "Not Found Exception")
        try:
            offset, limit = int(req.query.get("offset", "0")), int(req.query.get("limit", "1000"))
        except ValueError:
            return _error(400, "100", "Bad Request Exception")
        if offset < 0 or not 1 <= limit <= self.max_limit:
            return _error(400, "100", "Bad Request Exception")
        limit = min(limit, self.cap or limit)
        if offset == 0:
            self._stuck = fault == "repeat_token"  # from now on, every page is the first one
        with self.lock:
            trains = sorted(self.trains.values(), key=lambda t: t.seq)
            latest: dict[str, Train] = {}
            for t in trains:
                latest[t.kind] = t
            if recent == "true":
                trains = sorted(latest.values(), key=lambda t: t.seq)
            elif recent == "false":  # the documented literal meaning: "not a recently requested item"
                trains = [t for t in trains if latest[t.kind] is not t]
            start = 0 if self._stuck else offset
            page = [t.body(self.date_format) for t in trains[start : start + limit]]
        return Response.json({"trains": page, "offset": offset, "limit": limit})


class AitemsStory:
    """Recommendation model trainings: requested, learning, then completed or failed."""

    queue = "recommendations"

    def __init__(self, rng: random.Random) -> None:
        self.sim = AitemsSim()
        self.rng = rng

    def start(self) -> None:
        self.sim.start()
        for kind in ("relatedItem", "pop"):
            self.sim.set(self.sim.add(kind).ident, "completed")
        self.sim.add("personalRecommend")

    def config(self) -> str:
        return f"""
[[queues]]
name = "{self.queue}"
provider = "aitems"
service_id = "{self.sim.service_id}"
endpoint_url = "{self.sim.url}"
access_key_env = "DEMO_NCP_ACCESS_KEY"
secret_key_env = "DEMO_NCP_SECRET_KEY"
"""

    def env(self) -> dict[str, str]:
        return {"DEMO_NCP_ACCESS_KEY": self.sim.access_key, "DEMO_NCP_SECRET_KEY": self.sim.secret_key}

    def step(self) -> None:
        for train in list(self.sim.trains.values()):
            if train.status == "requested":
                self.sim.set(train.ident, "learning")
            elif train.status == "learning":
                self.sim.set(train.ident, "completed" if self.rng.random() < 0.7 else "failed")
        if all(t.status in TERMINAL for t in self.sim.trains.values()):
            self.sim.add(self.rng.choice(TYPES))

    def failed_job(self) -> str | None:
        return next((t.ident for t in self.sim.trains.values() if t.status == "failed"), None)

    def stop(self) -> None:
        self.sim.stop()
