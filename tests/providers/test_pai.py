"""PAI ListRuns against the local fake: status derivation, caching, cost, signing, errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.sim.pai import PaiSim, Run
from providers import AuthError, BadResponseError, ConflictError, JobStatus
from providers._http import Requester, make_client
from providers.alibaba_pai import FINAL_KEPT, JOB_IDS_PER_CALL, PAGE_SIZE, PaiQueue, PaiSource
from providers.alibaba_signing import AcsSigner


@pytest.fixture
def sim() -> Iterator[PaiSim]:
    s = PaiSim().start()
    yield s
    s.stop()


def config(sim: PaiSim, **extra: str) -> PaiQueue:
    return PaiQueue(name="pai", region="cn-shanghai", workspace_id=sim.workspace_id, endpoint_url=sim.url, **extra)


def source(sim: PaiSim, *, secret: str | None = None, waits: list[float] | None = None) -> PaiSource:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": sim.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret or sim.access_key_secret,
    }
    sleep = waits.append if waits is not None else (lambda _s: None)
    requester = Requester(make_client(sim.url), what="pai", sleep=sleep)
    return PaiSource(config(sim), env=env, requester=requester)


def status_calls(sim: PaiSim) -> int:
    return sum(sim.calls[a] for a in ("ListTrainingJobs", "GetTrainingJob", "ListJobs", "GetJob"))


def test_defaults_follow_the_sdk_endpoint_rules() -> None:
    q = PaiQueue(name="p", region="cn-beijing", workspace_id="1")
    assert q.workspace_url() == "https://aiworkspace.cn-beijing.aliyuncs.com"
    assert q.training_url() == "https://pai.cn-beijing.aliyuncs.com"
    assert q.dlc_url() == "https://pai-dlc.cn-beijing.aliyuncs.com"
    assert PaiQueue(name="p", region="cn-hangzhou", workspace_id="1").training_url() == (
        "https://pai.cn-hangzhou.data.aliyun.com"
    )
    assert (q.access_key_env, q.secret_key_env) == ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    with pytest.raises(ValueError):
        PaiQueue(name="p", region="evil.example.com/", workspace_id="1")


def test_a_run_without_source_is_unknown_and_costs_no_status_call(sim: PaiSim) -> None:
    run = sim.add("notebook-eval", kind="")
    src = source(sim)
    (job,) = src.list_jobs(since=None, live=[])
    assert job.id == run.ident and job.status is JobStatus.UNKNOWN and job.native_status == "no source"
    assert status_calls(sim) == 0
    assert src.list_jobs(since=datetime.now(UTC), live=[job])[0].status is JobStatus.UNKNOWN
    assert status_calls(sim) == 0


def test_terminal_sources_are_cached_and_never_fetched_again(sim: PaiSim) -> None:
    done = [sim.add(f"done-{n}", "Running") for n in range(3)]
    for run in done:
        sim.set(run.source_id, "Succeed")
    dlc = sim.add("dlc-done", "Running", kind="DLC")
    sim.set(dlc.source_id, "Failed", reason=("JobFailed", "exit 137"))
    src = source(sim)
    baseline = {j.id: j for j in src.list_jobs(since=None, live=[])}
    assert baseline[dlc.ident].status is JobStatus.FAILED and baseline[dlc.ident].reason == "JobFailed: exit 137"
    assert {baseline[r.ident].status for r in done} == {JobStatus.SUCCEEDED}
    sim.calls.clear()
    # The next cycles list the same (recent) runs again through the overlap: no status call.
    for _ in range(3):
        again = src.list_jobs(since=datetime.now(UTC), live=[])
        assert {j.id for j in again} == set(baseline)
    assert status_calls(sim) == 0
    assert sim.calls["ListRuns"] == 3


def test_the_cache_of_final_states_keeps_the_newest_runs_not_the_whole_history(sim: PaiSim) -> None:
    start = datetime.now(UTC) - timedelta(days=2)
    runs = [sim.add(f"hist-{n}", "Succeed", when=start + timedelta(seconds=n)) for n in range(FINAL_KEPT + 100)]
    src = source(sim)
    assert len(src.list_jobs(since=None, live=[])) == len(runs)
    sim.calls.clear()
    # The newest runs, which ListRuns lists again, are still known: no status call ...
    for run in runs[-3:]:
        job = src.get_job(run.ident)
        assert job is not None and job.status is JobStatus.SUCCEEDED
    assert status_calls(sim) == 0
    # ... the oldest were let go: asking about one costs its detail call, and is right all the same.
    job = src.get_job(runs[0].ident)
    assert job is not None and job.status is JobStatus.SUCCEEDED
    assert sim.calls["GetTrainingJob"] == 1


def test_steady_cycle_grows_with_live_runs_not_history(sim: PaiSim) -> None:
    old = datetime.now(UTC) - timedelta(days=20)  # older than the listings' 7-day default window
    for n in range(1_500):
        sim.set(sim.add(f"hist-{n}", "Running", when=old).source_id, "Succeed")
    for n in range(500):
        sim.set(sim.add(f"dhist-{n}", "Running", kind="DLC", when=old).source_id, "Succeeded")
    live_ts = [sim.add(f"ts-{n}", "Running", when=old) for n in range(12)]
    live_dlc = [sim.add(f"dlc-{n}", "Running", kind="DLC", when=old) for n in range(60)]
    src = source(sim)
    baseline = src.list_jobs(since=None, live=[])
    assert len(baseline) == 2_072
    assert sim.calls["ListRuns"] == 21  # ceil(2072 / 100)
    assert sim.calls["GetTrainingJob"] == sim.calls["GetJob"] == 0  # no detail call per run
    assert sim.calls["ListJobs"] == -(-560 // JOB_IDS_PER_CALL)  # JobIds, 50 a call
    live = [j for j in baseline if not j.status.terminal]
    assert len(live) == 72 and {j.status for j in live} == {JobStatus.RUNNING}

    sim.calls.clear()
    sim.set(live_ts[0].source_id, "Failed", reason=("AlgorithmError", "CUDA out of memory"))
    sim.set(live_dlc[0].source_id, "Succeeded")
    since = datetime.now(UTC)
    changed = {j.id: j for j in src.list_jobs(since=since, live=live)}
    assert changed[live_ts[0].ident].status is JobStatus.FAILED
    assert changed[live_ts[0].ident].reason == "AlgorithmError: CUDA out of memory"
    assert changed[live_dlc[0].ident].status is JobStatus.SUCCEEDED
    assert changed[live_ts[1].ident].status is JobStatus.RUNNING
    assert sim.calls["ListRuns"] == 1  # newest page only
    assert sim.calls["ListTrainingJobs"] == 5  # one per live TrainingService status
    assert sim.calls["GetTrainingJob"] == 1  # the one that left the live statuses
    assert sim.calls["ListJobs"] == 2  # 60 live DLC ids, 50 a call
    assert sim.calls["GetJob"] == 0


def test_many_training_jobs_that_left_are_found_by_one_listing(sim: PaiSim) -> None:
    old = datetime.now(UTC) - timedelta(days=20)
    for n in range(300):
        sim.set(sim.add(f"hist-{n}", "Running", when=old).source_id, "Succeed")
    recent = datetime.now(UTC) - timedelta(hours=2)
    runs = [sim.add(f"ts-{n}", "Running", when=recent + timedelta(seconds=n)) for n in range(120)]
    src = source(sim)
    live = [j for j in src.list_jobs(since=None, live=[]) if not j.status.terminal]
    for run in runs[:60]:
        sim.set(run.source_id, "Succeed")
    sim.calls.clear()
    changed = {j.name: j.status for j in src.list_jobs(since=datetime.now(UTC), live=live)}
    assert [changed[f"ts-{n}"] for n in range(60)] == [JobStatus.SUCCEEDED] * 60
    assert sim.calls["GetTrainingJob"] == 0  # 60 that left: one listing since the oldest, not 60 calls
    assert sim.calls["ListTrainingJobs"] <= 5 + 2


def test_few_live_training_jobs_use_detail_calls(sim: PaiSim) -> None:
    run = sim.add("ts", "Submitted")
    src = source(sim)
    (before,) = src.list_jobs(since=None, live=[])
    assert before.status is JobStatus.QUEUED
    sim.set(run.source_id, "Running")
    sim.calls.clear()
    (after,) = src.list_jobs(since=datetime.now(UTC) + timedelta(hours=1), live=[before])
    assert after.status is JobStatus.RUNNING and after.native_status == "Running"
    assert sim.calls["GetTrainingJob"] == 1 and sim.calls["ListTrainingJobs"] == 0


def test_reserving_is_the_outcome_but_not_cached(sim: PaiSim) -> None:
    run = sim.add("dlc", "Running", kind="DLC")
    sim.set(run.source_id, "SucceededReserving")
    src = source(sim)
    (job,) = src.list_jobs(since=None, live=[])
    assert job.status is JobStatus.SUCCEEDED
    sim.calls.clear()
    src.list_jobs(since=datetime.now(UTC), live=[])
    assert sim.calls["ListJobs"] == 1  # still asked: the job holds its nodes until Succeeded


def test_a_deleted_source_job_leaves_the_run_unknown(sim: PaiSim) -> None:
    run = sim.add("ts", "Running")
    src = source(sim)
    (before,) = src.list_jobs(since=None, live=[])
    del sim.jobs[run.source_id]
    (after,) = src.list_jobs(since=datetime.now(UTC), live=[before])
    assert after.status is JobStatus.UNKNOWN and after.reason and run.source_id in after.reason


def test_experiment_filter_and_paging(sim: PaiSim) -> None:
    mine = {sim.add(f"a-{n}", experiment_id="exp-a").ident for n in range(PAGE_SIZE + 7)}
    for n in range(30):
        sim.add(f"b-{n}", experiment_id="exp-b")
    env = {"AK": sim.access_key_id, "SK": sim.access_key_secret}
    q = config(sim, experiment_id="exp-a", access_key_env="AK", secret_key_env="SK")
    jobs = PaiSource(q, env=env).list_jobs(since=None, live=[])
    assert {j.id for j in jobs} == mine
    assert sim.calls["ListRuns"] == 2


def test_get_job(sim: PaiSim) -> None:
    run = sim.add("ts", "Failed")
    src = source(sim)
    job = src.get_job(run.ident)
    assert job is not None and job.status is JobStatus.FAILED and job.extra["source_id"] == run.source_id
    assert src.get_job("run-missing") is None


def test_wrong_secret_is_an_auth_error_without_the_secret(sim: PaiSim) -> None:
    sim.add("x")
    with pytest.raises(AuthError) as info:
        source(sim, secret="wrong-secret-456").list_jobs(since=None, live=[])
    assert "SignatureDoesNotMatch" in str(info.value) and "wrong-secret-456" not in str(info.value)


def test_missing_key_names_the_variable(sim: PaiSim) -> None:
    with pytest.raises(AuthError, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        PaiSource(config(sim), env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "x"})


def test_a_tampered_request_is_refused(sim: PaiSim) -> None:
    sim.add("x")
    signer = AcsSigner(sim.access_key_id, sim.access_key_secret, action="ListRuns", version="2021-02-04")

    def sign_then_tamper(request: httpx.Request) -> None:
        signer(request)
        request.url = request.url.copy_set_param("WorkspaceId", "someone-else")

    http = Requester(make_client(sim.url), what="pai", sleep=lambda _s: None)
    with pytest.raises(AuthError, match="SignatureDoesNotMatch"):
        http.get("/api/v1/runs", params={"WorkspaceId": sim.workspace_id}, sign=sign_then_tamper)
    good = http.get("/api/v1/runs", params={"WorkspaceId": sim.workspace_id}, sign=signer)
    assert len(good["Runs"]) == 1 and good["NextPageToken"] == 0


def test_throttling_is_retried_after_x_acs_retry_after(sim: PaiSim) -> None:
    sim.add("x", kind="")
    sim.faults.extend(["throttle", "server"])
    waits: list[float] = []
    assert len(source(sim, waits=waits).list_jobs(since=None, live=[])) == 1
    assert waits[0] == 0.001 and len(waits) == 2  # 1 ms as asked, then a backoff


def test_a_broken_run_is_a_bad_response(sim: PaiSim, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.add("x")
    monkeypatch.setattr(Run, "body", lambda self: {"RunId": self.ident, "GmtCreateTime": "yesterday"})
    with pytest.raises(BadResponseError, match=r"pai .*: malformed ListRuns answer"):
        source(sim).list_jobs(since=None, live=[])


def test_stop_a_trainingservice_run_puts_to_its_training_job_once(sim: PaiSim) -> None:
    run = sim.add("qwen-sft", "Running")
    src = source(sim)
    (job,) = src.list_jobs(since=None, live=[])
    result = src.stop_job(job, reason="U1: wrong data")
    assert result.accepted and result.request_id
    assert sim.stops == [("StopTrainingJob", run.source_id)]
    assert sim.calls["StopTrainingJob"] == 1
    (after,) = src.list_jobs(since=datetime.now(UTC), live=[job])
    assert (after.status, after.native_status) == (JobStatus.STOPPED, "Terminated")


def test_stop_a_dlc_run_posts_to_its_dlc_job_which_goes_stopping_then_stopped(sim: PaiSim) -> None:
    run = sim.add("llama-dlc", "Running", kind="DLC")
    src = source(sim)
    (job,) = src.list_jobs(since=None, live=[])
    src.stop_job(job, reason="U1: wrong data")
    assert sim.stops == [("StopJob", run.source_id)]
    detail = src.get_job(job.id)
    assert detail is not None and (detail.status, detail.native_status) == (JobStatus.STOPPING, "Stopping")
    (after,) = src.list_jobs(since=datetime.now(UTC), live=[detail])
    assert (after.status, after.native_status) == (JobStatus.STOPPED, "Stopped")


def test_a_run_without_a_linked_job_has_nothing_to_stop_and_sends_nothing(sim: PaiSim) -> None:
    sim.add("notebook-eval", kind="")
    src = source(sim)
    (job,) = src.list_jobs(since=None, live=[])
    result = src.stop_job(job, reason="U1: stop")
    assert not result.accepted and "no linked job" in result.message
    assert sim.stops == []


def test_stopping_a_finished_dlc_job_is_a_conflict(sim: PaiSim) -> None:
    run = sim.add("done", "Running", kind="DLC")
    sim.set(run.source_id, "Succeeded")
    src = source(sim)
    (job,) = src.list_jobs(since=None, live=[])
    with pytest.raises(ConflictError, match="Succeeded does not allow"):
        src.stop_job(job, reason="U1: late")
    assert sim.stops == [("StopJob", run.source_id)]


def test_a_stop_signed_with_the_wrong_secret_is_an_auth_error(sim: PaiSim) -> None:
    sim.add("qwen-sft", "Running")
    (job,) = source(sim).list_jobs(since=None, live=[])
    with pytest.raises(AuthError, match="SignatureDoesNotMatch"):
        source(sim, secret="wrong").stop_job(job, reason="U1: stop")
