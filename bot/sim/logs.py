"""A local Amazon CloudWatch Logs endpoint (AWS JSON 1.1): DescribeLogStreams and GetLogEvents.

Only what jobwatch's log tail asks (providers/_logs.py), answered the way the service does per
botocore's model logs 2014-03-28 (`X-Amz-Target: Logs_20140328.<Operation>`): streams filtered by
`logStreamNamePrefix` and ordered by name (`descending`, `limit` up to 50, `nextToken`), events
oldest first, the latest `limit` of them with `startFromHead=false`, and `ResourceNotFoundException`
(HTTP 400) for a missing log group or stream. tests/providers/test_log_tail.py holds it to what
moto answers for the same calls. Scripted errors (`fail_next`) and a request log, like the other
simulators. Point boto3's `logs` client at it with endpoint_url (a queue's `logs_endpoint_url`).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bot.core.clock import Clock, utcnow
from bot.sim.http import LocalServer, Request, Response, Served

JSON11 = "application/x-amz-json-1.1"
PREFIX = "Logs_20140328."


@dataclass
class Stream:
    """One log stream: its creation time and events (epoch ms, message), oldest first."""

    created: int
    events: list[tuple[int, str]] = field(default_factory=list)

    def describe(self, name: str, arn: str) -> dict[str, Any]:
        out: dict[str, Any] = {"logStreamName": name, "creationTime": self.created, "arn": arn, "storedBytes": 0}
        if self.events:
            out["firstEventTimestamp"] = self.events[0][0]
            out["lastEventTimestamp"] = self.events[-1][0]
            out["lastIngestionTime"] = self.events[-1][0]
            out["uploadSequenceToken"] = str(len(self.events))  # deprecated by AWS, still sent
        return out


@dataclass
class LogsSim(Served):
    """The simulated service; write to it with `write` while it serves."""

    region: str = "us-east-1"
    account: str = "123456789012"
    clock: Clock = utcnow
    groups: dict[str, dict[str, Stream]] = field(default_factory=dict)
    errors: deque[tuple[int, str]] = field(default_factory=deque)
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._server = LocalServer(self.handle)

    def write(self, group: str, stream: str, lines: list[str]) -> None:
        """Append lines to a stream now (the group and stream are created when missing)."""
        now = int(self.clock().timestamp() * 1000)
        with self.lock:
            found = self.groups.setdefault(group, {}).setdefault(stream, Stream(created=now))
            found.events.extend((now, line) for line in lines)

    def fail_next(self, status: int, error_type: str) -> None:
        """Answer the next request with an AWS error."""
        self.errors.append((status, error_type))

    def handle(self, req: Request) -> Response:
        target = req.headers.get("x-amz-target", "")
        self.requests.append(target)
        if self.errors:
            status, kind = self.errors.popleft()
            return _error(kind, f"simulated {kind}", status)
        body = req.json()
        with self.lock:
            if target == PREFIX + "DescribeLogStreams":
                return self._describe(body)
            if target == PREFIX + "GetLogEvents":
                return self._events(body)
        return _error("UnknownOperationException", f"unknown operation {target}", 400)

    def _group(self, body: dict[str, Any]) -> dict[str, Stream] | None:
        return self.groups.get(str(body.get("logGroupName", "")))

    def _describe(self, body: dict[str, Any]) -> Response:
        group = self._group(body)
        if group is None:
            return _error("ResourceNotFoundException", "The specified log group does not exist.")
        limit = int(body.get("limit") or 50)
        if limit > 50:
            return _error("InvalidParameterException", "Member must have value less than or equal to 50")
        prefix = str(body.get("logStreamNamePrefix") or "")
        names = sorted((n for n in group if n.startswith(prefix)), reverse=bool(body.get("descending")))
        token = body.get("nextToken")
        start = names.index(str(token)) + 1 if token in names else 0
        page = names[start : start + limit]
        arn = f"arn:aws:logs:{self.region}:{self.account}:log-group:{body.get('logGroupName')}:log-stream:"
        out: dict[str, Any] = {"logStreams": [group[n].describe(n, arn + n) for n in page]}
        if start + limit < len(names):
            out["nextToken"] = page[-1]
        return Response.json(out, headers={"Content-Type": JSON11})

    def _events(self, body: dict[str, Any]) -> Response:
        group = self._group(body)
        if group is None:
            return _error("ResourceNotFoundException", "The specified log group does not exist.")
        stream = group.get(str(body.get("logStreamName", "")))
        if stream is None:
            return _error("ResourceNotFoundException", "The specified log stream does not exist.")
        limit = int(body.get("limit") or 10_000)
        events = stream.events
        first = 0 if body.get("startFromHead") else max(0, len(events) - limit)
        page = events[first : first + limit]
        last = first + len(page) - 1
        return Response.json(
            {
                "events": [{"timestamp": t, "message": m, "ingestionTime": t} for t, m in page],
                "nextForwardToken": f"f/{max(last, 0):056d}",
                "nextBackwardToken": f"b/{first:056d}",
            },
            headers={"Content-Type": JSON11},
        )


def _error(kind: str, message: str, status: int = 400) -> Response:
    return Response.json({"__type": kind, "message": message}, status, {"Content-Type": JSON11})
