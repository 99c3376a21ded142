"""One World per provider for the contract suite."""

from __future__ import annotations

from typing import ClassVar

from bot.sim.aitems import AitemsSim
from bot.sim.batch import BatchSim
from bot.sim.modzy import ModzySim
from bot.sim.pai import PaiSim
from bot.sim.sagemaker import SageMakerSim
from providers import JobSource, JobStatus
from providers._http import Requester, make_client
from providers.alibaba_pai import PAGE_SIZE as PAI_PAGE
from providers.alibaba_pai import PaiQueue, PaiSource
from providers.aws_batch import PAGE_SIZE as BATCH_PAGE
from providers.aws_batch import BatchQueue, BatchSource
from providers.modzy import PAGE_SIZE as MODZY_PAGE
from providers.modzy import ModzyQueue, ModzySource
from providers.naver_aitems import PAGE_SIZE as AITEMS_PAGE
from providers.naver_aitems import AitemsQueue, AitemsSource
from providers.sagemaker import PAGE_SIZE, SageMakerQueue, SageMakerSource
from tests.conftest import AWS_ENV


class SageMakerWorld:
    provider = "sagemaker"
    page_size = PAGE_SIZE
    status_cases: ClassVar[dict[str, JobStatus]] = {
        "InProgress": JobStatus.QUEUED,  # the simulator starts jobs in secondary status Starting
        "Stopping": JobStatus.STOPPING,
        "Completed": JobStatus.SUCCEEDED,
        "Failed": JobStatus.FAILED,
        "Stopped": JobStatus.STOPPED,
        "Deleting": JobStatus.UNKNOWN,
    }
    unknown_native = "Hibernating"
    stop_native = "InProgress"
    stop_permission = "sagemaker:StopTrainingJob"

    def __init__(self) -> None:
        self.sim = SageMakerSim().start()

    def source(self) -> JobSource:
        config = SageMakerQueue(
            name="contract",
            region="us-east-1",
            endpoint_url=self.sim.url,
            access_key_env="TEST_AWS_KEY",
            secret_key_env="TEST_AWS_SECRET",
        )
        env = dict(AWS_ENV)
        if getattr(self, "_bad_keys", False):
            env["TEST_AWS_SECRET"] = "wrong"
        return SageMakerSource(config, env=env, max_attempts=2)

    def add(self, name: str, native: str) -> str:
        secondary = "Starting" if native == "InProgress" else None
        return self.sim.add(name, status=native, secondary=secondary).arn

    def set(self, job_id: str, native: str) -> None:
        self.sim.set(job_id.rsplit("/", 1)[-1], native, None)

    def fault(self, kind: str) -> None:
        if kind == "throttle":
            for _ in range(5):
                self.sim.fail_next(400, "ThrottlingException")
        elif kind == "server":
            for _ in range(5):
                self.sim.fail_next(500, "InternalFailure")
        elif kind == "auth":
            self.sim.fail_next(400, "UnrecognizedClientException")
        else:
            self.sim.faults.append(kind)

    def stops(self) -> int:
        return len(self.sim.stops)

    def refuse_next_stop(self, kind: str) -> None:
        self.sim.fail_next(400, "AccessDeniedException" if kind == "denied" else "ThrottlingException")

    def close(self) -> None:
        self.sim.stop()


class BatchWorld:
    provider = "batch"
    page_size = BATCH_PAGE
    status_cases: ClassVar[dict[str, JobStatus]] = {
        "RUNNABLE": JobStatus.QUEUED,
        "SUBMITTED": JobStatus.QUEUED,
        "PENDING": JobStatus.QUEUED,
        "SCHEDULED": JobStatus.QUEUED,
        "STARTING": JobStatus.RUNNING,
        "RUNNING": JobStatus.RUNNING,
        "SUCCEEDED": JobStatus.SUCCEEDED,
        "FAILED": JobStatus.FAILED,
    }
    unknown_native = "PAUSED"
    stop_native = "RUNNING"
    stop_permission = "batch:TerminateServiceJob"

    def __init__(self) -> None:
        self.sim = BatchSim().start()

    def source(self) -> JobSource:
        config = BatchQueue(
            name="contract",
            region="us-east-1",
            job_queue="q",
            endpoint_url=self.sim.url,
            access_key_env="TEST_AWS_KEY",
            secret_key_env="TEST_AWS_SECRET",
        )
        return BatchSource(config, env=AWS_ENV, max_attempts=2)

    def add(self, name: str, native: str) -> str:
        return self.sim.add(name, native).arn

    def set(self, job_id: str, native: str) -> None:
        self.sim.set(job_id, native)

    def fault(self, kind: str) -> None:
        self.sim.faults.extend([kind] * (3 if kind in ("throttle", "server") else 1))

    def stops(self) -> int:
        return len(self.sim.stops)

    def refuse_next_stop(self, kind: str) -> None:
        self.sim.faults.append(kind)

    def close(self) -> None:
        self.sim.stop()


class ModzyWorld:
    provider = "modzy"
    page_size = MODZY_PAGE
    status_cases: ClassVar[dict[str, JobStatus]] = {
        "SUBMITTED": JobStatus.QUEUED,
        "OPEN": JobStatus.QUEUED,
        "IN_PROGRESS": JobStatus.RUNNING,
        "COMPLETED": JobStatus.SUCCEEDED,
        "ERROR": JobStatus.FAILED,
        "CANCELED": JobStatus.STOPPED,
        "TIMEDOUT": JobStatus.TIMED_OUT,
    }
    unknown_native = "PAUSED"
    stop_native = "IN_PROGRESS"
    stop_permission = "not Auditor"

    def __init__(self) -> None:
        self.sim = ModzySim().start()

    def source(self) -> JobSource:
        config = ModzyQueue(name="contract", endpoint_url=self.sim.url, api_key_env="KEY")
        requester = Requester(
            make_client(self.sim.url, headers={"Authorization": f"ApiKey {self.sim.api_key}"}),
            what="modzy",
            attempts=2,
            sleep=lambda _s: None,
        )
        return ModzySource(config, env={"KEY": self.sim.api_key}, requester=requester)

    def add(self, name: str, native: str) -> str:
        return self.sim.add(name, native).ident

    def set(self, job_id: str, native: str) -> None:
        self.sim.set(job_id, native)

    def fault(self, kind: str) -> None:
        self.sim.faults.extend([kind] * (2 if kind in ("throttle", "server") else 1))

    def stops(self) -> int:
        return len(self.sim.stops)

    def refuse_next_stop(self, kind: str) -> None:
        self.sim.faults.append(kind)

    def close(self) -> None:
        self.sim.stop()


class AitemsWorld:
    provider = "aitems"
    page_size = AITEMS_PAGE
    status_cases: ClassVar[dict[str, JobStatus]] = {
        "requested": JobStatus.QUEUED,
        "learning": JobStatus.RUNNING,
        "Learning": JobStatus.RUNNING,  # looked up case-insensitively
        "completed": JobStatus.SUCCEEDED,
        "failed": JobStatus.FAILED,
        "canceled": JobStatus.STOPPED,
        "trainingTimeout": JobStatus.TIMED_OUT,  # from the queue's status_map
    }
    unknown_native = "hibernating"

    def __init__(self) -> None:
        self.sim = AitemsSim().start()

    def source(self) -> JobSource:
        config = AitemsQueue(
            name="contract",
            service_id=self.sim.service_id,
            endpoint_url=self.sim.url,
            access_key_env="AK",
            secret_key_env="SK",
            status_map={"trainingTimeout": JobStatus.TIMED_OUT},
        )
        requester = Requester(make_client(self.sim.url), what="aitems", attempts=2, sleep=lambda _s: None)
        env = {"AK": self.sim.access_key, "SK": self.sim.secret_key}
        return AitemsSource(config, env=env, requester=requester)

    def add(self, name: str, native: str) -> str:
        return self.sim.add("personalRecommend", native, version=name).ident

    def set(self, job_id: str, native: str) -> None:
        self.sim.set(job_id, native)

    def fault(self, kind: str) -> None:
        self.sim.faults.extend([kind] * (2 if kind in ("throttle", "server") else 1))

    def close(self) -> None:
        self.sim.stop()


class PaiWorld:
    """Runs linked to TrainingService jobs, or to DLC jobs for the DLC-only status names."""

    provider = "pai"
    page_size = PAI_PAGE
    status_cases: ClassVar[dict[str, JobStatus]] = {
        # TrainingService (paistudio) training jobs
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
        # DLC jobs (names TrainingService does not use)
        "Queuing": JobStatus.QUEUED,
        "Bidding": JobStatus.QUEUED,
        "EnvPreparing": JobStatus.QUEUED,
        "SanityChecking": JobStatus.QUEUED,
        "Restarting": JobStatus.RUNNING,
        "Stopping": JobStatus.STOPPING,
        "SucceededReserving": JobStatus.SUCCEEDED,
        "Succeeded": JobStatus.SUCCEEDED,
        "FailedReserving": JobStatus.FAILED,
        "Stopped": JobStatus.STOPPED,
    }
    unknown_native = "Hibernating"
    stop_native = "Running"  # a TrainingService job (test_pai stops DLC jobs too)
    stop_permission = "RAM permission"
    DLC_ONLY = frozenset(
        {
            "Queuing",
            "Bidding",
            "EnvPreparing",
            "SanityChecking",
            "Restarting",
            "Stopping",
            "SucceededReserving",
            "Succeeded",
            "FailedReserving",
            "Stopped",
        }
    )

    def __init__(self) -> None:
        self.sim = PaiSim().start()
        self.source_of: dict[str, str] = {}

    def source(self) -> JobSource:
        config = PaiQueue(
            name="contract",
            region="cn-shanghai",
            workspace_id=self.sim.workspace_id,
            endpoint_url=self.sim.url,
            access_key_env="AK",
            secret_key_env="SK",
        )
        requester = Requester(make_client(self.sim.url), what="pai", attempts=2, sleep=lambda _s: None)
        env = {"AK": self.sim.access_key_id, "SK": self.sim.access_key_secret}
        return PaiSource(config, env=env, requester=requester)

    def add(self, name: str, native: str) -> str:
        run = self.sim.add(name, native, kind="DLC" if native in self.DLC_ONLY else "TrainingService")
        self.source_of[run.ident] = run.source_id
        return run.ident

    def set(self, job_id: str, native: str) -> None:
        self.sim.set(self.source_of[job_id], native)

    def fault(self, kind: str) -> None:
        self.sim.faults.extend([kind] * (2 if kind in ("throttle", "server") else 1))

    def stops(self) -> int:
        return len(self.sim.stops)

    def refuse_next_stop(self, kind: str) -> None:
        self.sim.faults.append(kind)

    def close(self) -> None:
        self.sim.stop()


WORLDS: dict[str, type] = {
    "sagemaker": SageMakerWorld,
    "batch": BatchWorld,
    "modzy": ModzyWorld,
    "aitems": AitemsWorld,
    "pai": PaiWorld,
}
