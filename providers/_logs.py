"""The last lines of a SageMaker training job's CloudWatch Logs stream, in two requests.

Facts and sources: docs/providers.md §CloudWatch Logs.

Where the logs are (https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html, "Log
groups and streams that Amazon SageMaker AI sends to Amazon CloudWatch Logs"): log group
`/aws/sagemaker/TrainingJobs`, one stream per instance and container start, named
`<training job name>/algo-<instance number>-<epoch seconds>`. A job name cannot contain `/`
(SageMaker's name pattern), so the prefix `<name>/` matches that job's streams and no other's.

Wire format (botocore's model logs 2014-03-28: AWS JSON 1.1, `X-Amz-Target: Logs_20140328.<Op>`):

1. `DescribeLogStreams(logGroupName, logStreamNamePrefix="<name>/")`: `logStreams[]` of
   `{logStreamName, creationTime, firstEventTimestamp, lastEventTimestamp, ...}` (epoch ms), ordered
   by name (with a prefix the model forbids `orderBy=LastEventTime`; `lastEventTimestamp` is
   updated "on an eventual consistency basis", so we do not rely on it). Up to 50 per page: a
   job has one stream per instance (and per restart), so one page is enough.
2. `GetLogEvents(logGroupName, logStreamName, limit=N, startFromHead=False)`: the latest N events,
   `events[]` of `{timestamp, message, ingestionTime}`, oldest first within the page.

We read `algo-1` (the first instance, where a single-instance job writes and a distributed job's
leader usually reports the error), its newest stream when the job restarted; else the newest
stream of any instance. No stream (or no log group: the account never ran a job that logged) means
the job wrote nothing before it ended: not an error. Errors: ResourceNotFoundException,
InvalidParameterException (400), ServiceUnavailableException (500), ThrottlingException (400).
IAM: `logs:DescribeLogStreams` and `logs:GetLogEvents` on the group's ARN.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from providers._aws import AwsQueue, error_code, make_client, map_aws_error
from providers._parse import parsing
from providers.base import LOG_TIMEOUT, JobSource, LogTail

GROUP = "/aws/sagemaker/TrainingJobs"
PERMISSIONS = "logs:DescribeLogStreams and logs:GetLogEvents"
_ALGO = re.compile(r"^algo-(\d+)-")


def pick_stream(streams: Sequence[Mapping[str, Any]], prefix: str) -> str | None:
    """The stream to read: algo-1's newest, else the newest of any instance, else None."""
    named = [s for s in streams if str(s.get("logStreamName", "")).startswith(prefix)]
    if not named:
        return None

    def newest(s: Mapping[str, Any]) -> tuple[int, str]:
        return int(s.get("creationTime") or 0), str(s["logStreamName"])

    first = [s for s in named if (m := _ALGO.match(str(s["logStreamName"])[len(prefix) :])) and m.group(1) == "1"]
    return str(max(first or named, key=newest)["logStreamName"])


class TrainingLogs:
    """Reads the tail of a training job's log stream; its own client, no retries, short deadline.

    The client is separate from the adapter's listing client: CloudWatch Logs has its own endpoint
    (`logs_endpoint_url`, else boto3's default, which honours AWS_ENDPOINT_URL_CLOUDWATCH_LOGS), and
    a log read must never wait behind, or slow down, a listing's retries. Made on first use.
    """

    def __init__(
        self, source: JobSource, config: AwsQueue, *, env: Mapping[str, str] | None, client: Any = None
    ) -> None:
        self.source = source
        self.config = config
        self._env = env
        self._client = client
        self._lock = threading.Lock()

    def _logs(self) -> Any:
        with self._lock:  # reads run on several threads
            if self._client is None:
                queue = self.config.model_copy(update={"endpoint_url": self.config.logs_endpoint_url})
                self._client = make_client(
                    "logs", queue, env=self._env, connect_timeout=3, read_timeout=LOG_TIMEOUT, max_attempts=0
                )
            return self._client

    def tail(self, training_job: str, *, lines: int) -> LogTail | None:
        """The last `lines` events of the job's stream, oldest first; None if it has no stream."""
        prefix = f"{training_job}/"
        client = self._logs()
        try:
            found = client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=prefix)
        except ClientError as err:
            if error_code(err) == "ResourceNotFoundException":
                return None
            raise map_aws_error(err, what="CloudWatch Logs DescribeLogStreams") from err
        except BotoCoreError as err:
            raise map_aws_error(err, what="CloudWatch Logs DescribeLogStreams") from err
        with parsing(self.source, "DescribeLogStreams"):
            stream = pick_stream(list(found["logStreams"]), prefix)
        if stream is None:
            return None
        try:
            page = client.get_log_events(logGroupName=GROUP, logStreamName=stream, limit=lines, startFromHead=False)
        except ClientError as err:
            if error_code(err) == "ResourceNotFoundException":
                return None
            raise map_aws_error(err, what="CloudWatch Logs GetLogEvents") from err
        except BotoCoreError as err:
            raise map_aws_error(err, what="CloudWatch Logs GetLogEvents") from err
        with parsing(self.source, "GetLogEvents"):
            events = sorted(page["events"], key=lambda e: int(e.get("timestamp") or 0))
            text = tuple(str(e["message"]) for e in events[-lines:])
        return LogTail(source=f"{GROUP} {stream}", lines=text)

    def close(self) -> None:
        """Release the HTTP connections."""
        with self._lock:
            if self._client is not None:
                self._client.close()
