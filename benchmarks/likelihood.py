"""The field's yardstick: test NLL on binarized MNIST by importance sampling, beside published figures.

A VAE is trained here on `mnist_binary` (dynamic binarization; the test set binarized once with
vae_core.data.BINARIZE_SEED) with `python -m vae_core.train`, then `vae_core.metrics.log_likelihood`
estimates -log p(x) on the test digits with K importance samples (Burda et al. 2016). The -ELBO is
the K = 1 bound; the gap between the two is what the bound hides.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, log

K, QUICK_K = 5000, 50
# K = 5,000 decoder calls per digit: the first 2,000 test digits keep it to minutes on two cores
# (the standard error is reported beside the mean).
N_TEST, QUICK_N_TEST = 2000, 200
MODEL_FLAGS = ["--model", "mlp_vae", "--latent-dim", "32", "--hidden", "512", "--prior", "mixture",
               "--dataset", "mnist_binary", "--lr", "0.001", "--lr-schedule", "cosine", "--seed", "0"]  # fmt: skip
EPOCHS, QUICK_EPOCHS = 30, 1
# Published test NLLs on binarized MNIST (nats), and the binarization each used.
PUBLISHED = (
    ("VAE, latent 40", 89.8, "pythae's reproduction of Rezende & Mohamed 2015", "fixed"),
    ("IWAE, k = 50, latent 50", 86.8, "pythae's reproduction of Burda et al. 2016", "fixed"),
    ("VampPrior", 85.8, "pythae's reproduction of Tomczak & Welling 2018", "fixed"),
    ("NVAE (deep hierarchical)", 78.0, "Vahdat & Kautz 2020: the frontier (~78)", "dynamic"),
)


def run(rec, quick: bool) -> None:
    from vae_core.data import load_dataset, to_float
    from vae_core.metrics import log_likelihood, negative_elbo
    from vae_core.store import Store

    home = Path(tempfile.mkdtemp(prefix="vae_bench_nll_"))
    env = {**os.environ, "VAE_LAB_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    epochs = QUICK_EPOCHS if quick else EPOCHS
    cmd = [sys.executable, "-m", "vae_core.train", *MODEL_FLAGS, "--epochs", str(epochs),
           "--run-dir", str(home / "runs" / "nll"), "--save-as", "nll"]  # fmt: skip
    log("training on binarized MNIST: " + " ".join(cmd[3:]))
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True)
    train_s = time.perf_counter() - t0
    bundle = Store(home / "models", shipped_root=None).load("nll")
    data = load_dataset("mnist_binary")
    x = to_float(data.x_test[: QUICK_N_TEST if quick else N_TEST])
    k = QUICK_K if quick else K
    log(f"log p(x) with K = {k} on {len(x)} binarized test digits")
    t0 = time.perf_counter()
    ll = log_likelihood(bundle, x, k=k, batch_size=100, chunk=100, seed=0)
    rec.emit(
        "likelihood",
        "binarized_mnist",
        model=" ".join(MODEL_FLAGS),
        epochs=epochs,
        k=k,
        n_test=len(x),
        nll=float(-ll.mean()),
        nll_sem=float(ll.std() / np.sqrt(len(ll))),
        neg_elbo=negative_elbo(bundle, x, seed=0)["neg_elbo"],
        train_s=train_s,
        estimate_s=time.perf_counter() - t0,
    )


def markdown(records: list[dict]) -> str:
    r = next((r for r in records if r["section"] == "likelihood" and "nll" in r), None)
    if r is None:
        return ""
    out = ["## Log-likelihood on binarized MNIST, as papers report it\n"]
    out.append(
        f"`benchmarks/likelihood.py`: `python -m vae_core.train {r['model']} --epochs {r['epochs']}` "
        f"(dynamic binarization while training; the test digits binarized once, seed "
        "`vae_core.data.BINARIZE_SEED`), then `vae_core.metrics.log_likelihood` with "
        f"K = {r['k']:,} importance samples per digit on {r['n_test']:,} test digits "
        f"({r['estimate_s'] / 60:.1f} min). The −ELBO is the bound a VAE trains on; the "
        "importance-sampled figure is the one papers compare. The IWAE authors note that a fixed "
        "binarization scores about 2 nats worse than the dynamic one.\n"
    )
    out.append("| Model | Test NLL (nats) | Where | Binarization |")
    out.append("|---|---|---|---|")
    out.append(f"| **VAE Lab: MLP VAE 784-512-32, learned mixture prior** | **{r['nll']:.1f}** ± "
               f"{r['nll_sem']:.1f} (−ELBO {r['neg_elbo']:.1f}) | this run | dynamic |")  # fmt: skip
    for name, nll, where, binarization in PUBLISHED:
        out.append(f"| {name} | {nll:.1f} | {where} | {binarization} |")
    out.append("")
    return "\n".join(out)
