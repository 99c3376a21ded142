"""Quiet by default at scale, through the real bot: five queues (one per provider) of 1,000 jobs,
3 % of them live for two days (old queued and running jobs far past their thresholds), a history of
succeeded runs behind every family, one `python -m bot serve` process, the simulators and the local
Slack stand-in (bench/quiet.py, which bench/run.py section (f) runs at 10,000 jobs a queue).

- nothing is posted during the five baselines and the poll that follows them;
- no flag about a job that was already past its threshold when first listed (the old live jobs and,
  per queue, a job first listed after the baseline but running for two days);
- every job that crosses a threshold after it was listed is flagged once; no alert id twice;
- every scripted change (ends, new jobs, crossings) reaches its channel with p95 <= poll interval + 2 s.
"""

from __future__ import annotations

from pathlib import Path

from bench.quiet import InProcess, Scenario, run

INTERVAL = 3


def test_five_queues_of_a_thousand_stay_quiet_and_prompt(tmp_path: Path) -> None:
    scenario = Scenario(1000, interval=INTERVAL, cross=(3, 7), each=1)
    try:
        out = run(InProcess(scenario), tmp_path, window=10, wait=20)
    finally:
        scenario.close()
    assert out.jobs >= 5000  # every queue's jobs were stored by its baseline
    assert out.baseline_posts == 0
    assert out.flags_past == []
    assert out.flags_missing == []
    assert out.flags_twice == []
    assert out.duplicates == []
    assert out.unposted == []
    assert out.delivered == out.owed == 29
    assert out.by_kind["flag"] + out.by_kind["flag (thread reply)"] == 6  # 4 slow, 2 stuck crossers
    assert out.p(95) <= INTERVAL + 2, sorted(out.by_change, key=lambda c: c[3])
