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
