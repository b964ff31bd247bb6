"""What the digit models draw, read by a classifier of our own (benchmarks/digit_reader.py).

For every shipped digit VAE: the round trip (decoder(z_mean) read as the digit that went in), draws
from its prior read confidently at three temperatures, how evenly the ten digits come out, and its
-ELBO. Then the Train page's Quick demo, run as the page runs it (`python -m vae_core.train
--preset quick`, a child process from start to saved model), timed and scored the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, log
from benchmarks.digit_reader import CONFIDENT, PRIOR_DRAWS, TEMPERATURES, reader, report_card

# Issue 16's goals: (round trip, prior draws read confidently at temperature 1, evenness).
GOALS = {
    "mlp_vae_2d": (0.90, 0.80, 0.95),  # the 2-D model of the latent map and the manifold
    "conv_vae_32d": (0.99, 0.90, 0.95),  # the best unconditional VAE
}
QUICK_GOALS = dict(seconds=60.0, round_trip=0.72, prior=0.50)  # today's shipped 2-D model's level
READER_GOAL = 0.99


def _shipped_store():
    from vae_core import paths
    from vae_core.store import Store

    return Store(
        root=tempfile.mkdtemp(prefix="vae_bench_store_"), shipped_root=paths.SHIPPED_MODELS_DIR
    )


def _card_record(card: dict) -> dict:
    """Flatten a report card into one record's fields."""
    out = {k: card[k] for k in ("round_trip", "as_original", "n_test", "draws")}
    for t in TEMPERATURES:
        out[f"confident_t{t}"] = card[f"prior_t{t}"]["confident"]
        out[f"evenness_t{t}"] = card[f"prior_t{t}"]["evenness"]
    return out


def _quick_demo(rec, model, data) -> None:
    """Start to saved model with the Quick demo's settings, in a child process as the page does."""
    from vae_core.store import Store

    home = Path(tempfile.mkdtemp(prefix="vae_bench_quick_"))
    env = {**os.environ, "VAE_LAB_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "vae_core.train", "--preset", "quick", "--run-dir",
           str(home / "runs" / "quick"), "--save-as", "quick_demo"]  # fmt: skip
    log("the Quick demo: " + " ".join(cmd[1:]))
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"the Quick demo run failed: {done.stderr[-2000:]}")
    bundle = Store(home / "models", shipped_root=None).load("quick_demo")
    card = report_card(model, bundle, data)
    rec.emit(
        "pictures",
        "quick_demo",
        seconds=seconds,
        epochs=bundle.meta.get("epochs"),
        prior=bundle.spec.prior,
        neg_elbo=(bundle.meta.get("test_metrics") or {}).get("neg_elbo"),
        goals=QUICK_GOALS,
        **_card_record(card),
    )


def run(rec, quick: bool) -> None:
    from vae_core.data import load_dataset

    data = load_dataset("mnist")
    model, accuracy = reader(data, quick=quick)
    rec.emit("pictures", "reader", accuracy=accuracy, n_test=len(data.x_test), goal=READER_GOAL)
    store = _shipped_store()
    for entry in store.list():
        if not entry.shipped or entry.kind not in ("mlp_vae", "conv_vae", "cvae"):
            continue
        bundle = store.load(entry.name)
        log(f"reading what {entry.name} draws")
        card = report_card(
            model, bundle, data, n_test=1000 if quick else None, draws=200 if quick else PRIOR_DRAWS
        )
        rec.emit(
            "pictures",
            entry.name,
            kind=entry.kind,
            latent_dim=bundle.spec.latent_dim,
            prior=bundle.spec.prior,
            epochs=bundle.meta.get("epochs"),
            neg_elbo=(bundle.meta.get("test_metrics") or {}).get("neg_elbo"),
            goals=GOALS.get(entry.name),
            **_card_record(card),
        )
    if not quick:  # a real training run: not part of the one-minute smoke run
        _quick_demo(rec, model, data)


# ---------------------------------------------------------------- the report
def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def target_rows(g) -> list[tuple]:
    """Rows for RESULTS.md's table of targets."""
    rows = []
    r = g("pictures", "reader")
    if r:
        ok = r["accuracy"] >= r["goal"]
        rows.append(("Digit reader (our classifier): test accuracy", f">= {r['goal']:.0%}",
                     f"**{_pct(r['accuracy'])}** of {r['n_test']:,}", "met" if ok else "**not met**"))  # fmt: skip
    for name, (rt, conf, even) in GOALS.items():
        r = g("pictures", name)
        if not r:
            continue
        got = (r["round_trip"], r["confident_t1.0"], r["evenness_t1.0"])
        ok = got[0] >= rt and got[1] >= conf and got[2] >= even
        gaps = [f"{w} {_pct(v)}" for w, v, goal in zip(("round trip", "confident", "evenness"), got, (rt, conf, even), strict=True) if v < goal]  # fmt: skip
        rows.append((f"`{name}`: round trip / prior draws read confidently (t = 1) / evenness",
                     f">= {rt:.0%} / {conf:.0%} / {even:.2f}",
                     f"**{_pct(got[0])} / {_pct(got[1])} / {got[2]:.2f}**",
                     "met" if ok else "**not met** — " + ", ".join(gaps)))  # fmt: skip
    r = g("pictures", "quick_demo")
    if r:
        q = r["goals"]
        ok = (
            r["seconds"] <= q["seconds"]
            and r["round_trip"] >= q["round_trip"]
            and r["confident_t1.0"] >= q["prior"]
        )
        rows.append(("Quick demo: start to saved model; round trip / prior draws read confidently",
                     f"<= {q['seconds']:.0f} s; >= {q['round_trip']:.0%} / {q['prior']:.0%}",
                     f"**{r['seconds']:.1f} s**; **{_pct(r['round_trip'])} / {_pct(r['confident_t1.0'])}**",
                     "met" if ok else "**not met**"))  # fmt: skip
    return rows


def markdown(records: list[dict]) -> str:
    rows = [r for r in records if r["section"] == "pictures" and "round_trip" in r]
    if not rows:
        return ""
    reader_row = next(
        (r for r in records if r["section"] == "pictures" and r["name"] == "reader"), {}
    )
    out = ["## What the digit models draw, read by a classifier\n"]
    out.append(
        "A small CNN of our own (`benchmarks/digit_reader.py`, trained here on the 60,000 MNIST "
        f"training digits; {_pct(reader_row.get('accuracy'))} on the 10,000 test digits) reads the "
        "pictures. *Round trip*: the share of test digits whose `decoder(z_mean)` it reads as the "
        f"digit that went in. *Prior draws*: draws from the model's own prior (N(0, I), or its mixture "
        f"of Gaussians), read with confidence >= {CONFIDENT}; *evenness*: the entropy of the labels "
        "read / log 10 (1: the ten digits equally often). The conditional VAE is asked for each digit "
        "in turn and a draw counts only when read as the digit asked for. The reader's own "
        f"accuracy bounds the round trip: a perfect redraw of every test digit would read right "
        f"only {_pct(reader_row.get('accuracy'))} of the time; the last column counts a redraw as "
        "right when it reads as the reader reads the original, the model's own share.\n"
    )
    head = "| Model | Prior | Epochs | Round trip | Confident at t = " + " / ".join(
        f"{t}" for t in TEMPERATURES
    )
    out.append(head + " | Evenness (t = 1) | Test −ELBO (nats) | Round trip read as the original |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = "Quick demo (trained in this run)" if r["name"] == "quick_demo" else f"`{r['name']}`"
        conf = " / ".join(_pct(r[f"confident_t{t}"]) for t in TEMPERATURES)
        elbo = "—" if r.get("neg_elbo") is None else f"{r['neg_elbo']:.1f}"
        out.append(f"| {name} | {r.get('prior') or 'normal'} | {r.get('epochs')} | {_pct(r['round_trip'])} "
                   f"| {conf} | {r['evenness_t1.0']:.3f} | {elbo} | {_pct(r.get('as_original'))} |")  # fmt: skip
    out.append("")
    from benchmarks import prior_search

    out.append(prior_search.markdown())
    return "\n".join(out)
