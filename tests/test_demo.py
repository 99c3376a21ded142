"""`jobwatch demo` shows the whole loop: commands answered and alerts posted within a minute."""

import io
import re
from pathlib import Path

from bot.core.clock import FastForward
from bot.demo import run_demo


def test_demo_posts_alerts_and_answers_commands(tmp_path: Path) -> None:
    out = io.StringIO()
    page = tmp_path / "demo.html"
    alerts = run_demo(seconds=6, interval=2, out=out, pace=FastForward(), html=page)
    text = out.getvalue()
    assert alerts >= 2, text
    assert "Subscribed this channel to `ml-training`" in text
    assert "resnet50-sweep-0" in text  # the baseline listing answers /jobs list
    assert "→ *running*" in text
    assert re.search(r"usually \d+ s \(p50\), \d+ s \(p90\) · ETA", text), text  # duration against history
    # Tonight's evaluation passes its threshold after the baseline: flagged once, when it crosses,
    # having run no more than a minute past it (a job slow already at the baseline is not news).
    slow = re.findall(
        r"nightly-eval-\d+\* · `ml-training` is \*slow\*: running (\d+) min, past its threshold of (\d+) min "
        r"\(1\.5 × p90 \d+ min\)",
        text,
    )
    assert len(slow) == 1, text
    ran, threshold = (int(m) for m in slow[0])
    assert 0 <= ran - threshold <= 1, text
    assert text.index("is *slow*") > text.index("Watching for"), text  # after the baseline
    assert "0 rejected by rate limit" in text
    assert "Daily digest of ml-training since" in text  # /jobs digest, due after the demo skips ahead
    # A SageMaker failure shows its cause, and its log tail follows in its thread (log_tail = true).
    assert "cause: *out_of_memory*" in text
    assert "log line(s) of *bert-finetune-000*" in text, text
    assert "RuntimeError: CUDA out of memory (GPU 0; 15.78 GiB)" in text
    # `/jobs stop` shows the job it resolved and asks nothing of the provider; the press stops it.
    assert "Nothing has been asked of sagemaker yet" in text, text
    assert text.index("Stop requested for") > text.index("presses Stop"), text
    # Failures that get handled (docs/failures.md): a streak, a claim that edits the card, a recovery,
    # a runtime-limit warning and the follow-up of the failure nobody claimed.
    assert "2nd failure in a row of nightly-etl" in text, text
    assert "claimed by <@UDEMO02>" in text.split("The card, edited in place:")[1], text
    assert "nightly-etl recovered after 2 failures" in text
    assert "*llm-pretrain-70b* has used 80 % of its 2 h 18 runtime limit" in text
    assert "*feature-backfill-7* failed 2 h 00 ago and nobody has claimed it. <!subteam^SDEMOONCALL>" in text
    assert "nightly-etl-20261202* failed" not in text  # claimed: no follow-up
    # The page shows the same conversation: commands with their ephemeral answers, alerts with their
    # threads and edited parents, the digest, the watcher's direct messages and the App Home.
    shown = page.read_text()
    for part in (
        "/jobs subscribe ml-training",
        "Only visible to you",
        "Thread · ",
        "(edited)",
        "Daily digest of ml-training since",
        "direct messages",
        "Home, as you see it",
        '<pre class="code">',
        ">Watch</button>",
    ):
        assert part in shown, part


def test_demo_completes_a_workflow_step_and_unfurls_a_link() -> None:
    out = io.StringIO()
    run_demo(seconds=6, interval=2, out=out, pace=FastForward())
    text = out.getvalue()
    step = text.split("── workflow step completed ──\n", 1)
    assert len(step) == 2, text
    assert step[1].startswith("job_name: bert-finetune-000, status: failed, native_status: Failed"), text
    assert "failure_cause: out_of_memory" in step[1].splitlines()[0]
    assert text.index("Wait for job to finish") < text.index("── workflow step completed ──")
    assert "Somebody pastes a console link" in text
    assert re.search(r"── #CDEMO01 \(unfurl\) ──\n\*bert-finetune-\d+\* · `ml-training`\n:x: now \*failed\*", text), (
        text
    )
