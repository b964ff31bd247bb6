"""The benchmark command keeps working: a tiny `--quick` run prints its JSON lines and leaves the
published benchmarks/RESULTS.md alone. No timing is asserted -- timings belong in benchmarks/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS.md"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_benchmark_prints_json_lines_and_keeps_results(tmp_path):
    sections = "training,quality,latency"
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        sections += ",app"
    before = RESULTS.read_bytes() if RESULTS.exists() else None
    env = {**os.environ, "VAE_LAB_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--only",
            sections,
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert records, "no JSON lines on stdout"
    assert all({"section", "name"} <= r.keys() for r in records)
    names = {(r["section"], r["name"]) for r in records}
    expected = {
        ("meta", "machine"),
        ("training", "matmul_peak"),
        ("training", "mlp_vae_latent2"),
        ("training", "conv_dae"),
        ("quality", "mlp_vae_latent2_neg_elbo"),
        ("quality", "conv_dae_psnr"),
        ("latency", "round_trip_16"),
        ("latency", "manifold_30x30"),
        ("latency", "post_run_gc"),
        ("meta", "done"),
    }
    if "app" in sections:
        expected |= {("app", "cold_start"), ("app", "page_switch"), ("app", "server_memory")}
    assert expected <= names, sorted(expected - names)
    speed = next(r for r in records if r["name"] == "mlp_vae_latent2")
    for key in (
        "ours_samples_per_s",
        "reference_samples_per_s",
        "ratio",
        "ours_test",
        "reference_test",
    ):
        assert key in speed
    assert not [r for r in records if r["name"] == "error"]
    # Quick mode writes its own report and never touches the published one.
    assert (tmp_path / "RESULTS.quick.md").read_text().startswith("# VAE Lab benchmarks")
    assert (RESULTS.read_bytes() if RESULTS.exists() else None) == before


def test_the_published_report_renders_again_from_its_records():
    """RESULTS.md is rendered from results.jsonl (and the recommender's settings log) alone."""
    from benchmarks import report

    lines = (REPO / "benchmarks" / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    text = report.render(records, quick=False, seconds=1.0)
    assert "## Mult-VAE (the recommender)" in text
    assert (
        "**Training settings tried**" in text and "The best on validation over all splits" in text
    )
    names = {json.loads(x)["name"] for x in (REPO / "benchmarks" / "recsys_settings.jsonl").open()}
    assert all(f"| {name} |" in text for name in names)
    # RecVAE's row in the quality table, and its own search, from their records and log.
    assert "| RecVAE |" in text and "**RecVAE settings tried**" in text
    names = {json.loads(x)["name"] for x in (REPO / "benchmarks" / "recvae_settings.jsonl").open()}
    assert names and all(f"| {name} |" in text for name in names)


def test_a_lead_on_validation_inside_the_reseed_noise_keeps_the_chosen_settings():
    """RecVAE's verdict on a setting ahead on validation: noise when a reseed of the chosen settings,
    paired split by split, moves their mean by as much (two standard errors)."""
    from benchmarks.recsys import _is_reseed, _reseed_band

    chosen_cfg = {"epochs": 50, "batch_size": 100, "learning_rate": 5e-4, "anneal_cap": 0.01}
    assert _is_reseed({"kind": "rec_vae", "epochs": 50, "seed_offset": 100}, chosen_cfg)
    assert not _is_reseed({"kind": "rec_vae", "epochs": 50}, chosen_cfg)
    assert not _is_reseed({"kind": "rec_vae", "epochs": 80, "seed_offset": 100}, chosen_cfg)
    chosen = {1: 0.30, 2: 0.32, 3: 0.34, 4: 0.36}
    gaps = [0.01, -0.01, 0.02, 0.0]
    pairs = zip(chosen.items(), gaps, strict=True)
    reseeds = [{"seed": k, "val_ndcg@100": v + g} for (k, v), g in pairs]
    sd = (sum((g - 0.005) ** 2 for g in gaps) / 3) ** 0.5  # the gaps' mean is 0.005
    assert abs(_reseed_band(reseeds, chosen) - 2 * sd / 4**0.5) < 1e-12
    assert _reseed_band(reseeds[:2], chosen) is None  # two splits say nothing about the spread


def test_the_pictures_section_renders_its_goals_and_the_prior_search():
    """What the digit models draw: one row per model, its goals met or the gap named."""
    from benchmarks import pictures, report

    card = {"round_trip": 0.95, "n_test": 10000, "draws": 2000}
    card |= {f"confident_t{t}": 0.85 for t in (0.5, 0.75, 1.0)}
    card |= {f"evenness_t{t}": 0.99 for t in (0.5, 0.75, 1.0)}
    records = [
        {"section": "meta", "name": "machine", "t": 0},
        {"section": "pictures", "name": "reader", "accuracy": 0.992, "n_test": 10000, "goal": 0.99},
        {"section": "pictures", "name": "mlp_vae_2d", "prior": "class_mixture", "epochs": 30,
         "neg_elbo": 155.0, **card},
        {"section": "pictures", "name": "quick_demo", "seconds": 31.0, "epochs": 5, "prior": "class_mixture",
         "neg_elbo": 168.0, "goals": pictures.QUICK_GOALS, **card},
    ]  # fmt: skip
    text = report.render(records, quick=False, seconds=1.0)
    assert "## What the digit models draw, read by a classifier" in text
    assert "| `mlp_vae_2d` | class_mixture | 30 | 95.0% |" in text
    # 85% confident meets the 2-D model's 80% goal; the round trip and evenness meet theirs.
    assert "`mlp_vae_2d`: round trip / prior draws read confidently (t = 1) / evenness" in text
    row = next(line for line in text.splitlines() if line.startswith("| `mlp_vae_2d`: round trip"))
    assert row.endswith("| met |")
    quick = next(line for line in text.splitlines() if line.startswith("| Quick demo: start"))
    assert "**31.0 s**" in quick and quick.endswith("| met |")
    # The prior search's kept runs are rendered beside them.
    search = [json.loads(x) for x in (REPO / "benchmarks" / "prior_search.jsonl").open()]
    assert all(f"| {r['what']} |" in text for r in search)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_wsload_drives_both_pages_over_the_websocket():
    """The browserless load driver: its own server, 2 sessions (Generate, Round trip) for 8 s."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.wsload", "--sessions", "2", "--seconds", "8"],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=110,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, proc.stderr[-3000:]
    r = lines[0]
    assert r["section"] == "wsload" and r["sessions"] == 2
    assert r["first_page"]["n"] == 2, r["error_samples"]  # every session's first page finished
    assert r["clicks_per_session"][0] >= 1, r  # each session had a click served
    assert set(r["by_action"]) == {"new_seed", "shuffle"}
    assert r["errors"] == 0, r["error_samples"]
    assert r["cpu"]["server_per_click_s"] is not None
    assert proc.returncode == 0


def _own_loop(coro):
    """Run `coro` to its end on a thread with its own event loop: the browser tests, earlier in the
    same session, leave Playwright's loop running on this thread."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_wsload_reads_the_protocol_as_the_frontend_does():
    """No server: a ref_hash is answered from the cache, an exception element is an error, a
    script_finished from before the rerun's own run does not end it, and a click sends the
    button's trigger with its fragment id and the cached hashes."""

    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from benchmarks.wsload import Session

    stale, start, done = ForwardMsg(), ForwardMsg(), ForwardMsg()
    stale.script_finished = done.script_finished = ForwardMsg.FINISHED_SUCCESSFULLY
    stale.metadata.run.script_run_id = "old"
    start.new_session.page_script_hash = "page"
    start.metadata.run.script_run_id = done.metadata.run.script_run_id = "new"
    chart, ref = ForwardMsg(hash="h1"), ForwardMsg(ref_hash="h1")
    chart.metadata.cacheable = True
    chart.delta.new_element.markdown.body = "big"
    button, boom = ForwardMsg(), ForwardMsg()
    button.delta.new_element.button.id, button.delta.new_element.button.label = "b1", "Go"
    button.delta.fragment_id = "f1"
    boom.delta.new_element.exception.type = "ValueError"

    class FakeSocket:
        """Answers each message sent with the next run's ForwardMsgs."""

        def __init__(self, *runs):
            self.runs, self.sent, self.inbox = list(runs), [], []

        async def send(self, data):
            self.sent.append(data)
            self.inbox = [m.SerializeToString() for m in self.runs.pop(0)]

        async def recv(self):
            return self.inbox.pop(0)

    ws = FakeSocket([stale, start, chart, button, done], [start, ref, boom, done])
    session = Session(0, ws, "127.0.0.1", 1, query="model=m")
    _own_loop(session.rerun(5, page_name="generate"))
    assert session.buttons == {"Go": ("b1", "f1")} and "h1" in session.cache and not ws.inbox
    _own_loop(session.rerun(5, button="Go"))
    assert session.ref_hits == 1 and session.problems == ["ValueError: "]
    click = BackMsg.FromString(ws.sent[1]).rerun_script
    assert click.fragment_id == "f1" and list(click.cached_message_hashes) == ["h1"]
    assert [(w.id, w.trigger_value) for w in click.widget_states.widgets] == [("b1", True)]
