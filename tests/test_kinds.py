"""The kinds registry: a kind registered in one place reaches the CLI, the Train page and the store."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.apptest import open_app
from vae_core import kinds
from vae_core.errors import UserError
from vae_core.specs import ModelSpec, TrainSpec, preset

REPO = Path(__file__).resolve().parents[1]

# A test-only kind: a small dense VAE, described entirely by its registry entry.
TOY = kinds.Kind(
    "toy_vae",
    "Toy VAE (tests only)",
    "A tiny dense VAE that exists only inside this test.",
    preset=dict(latent_dim=3, hidden=16),
    train_preset=dict(epochs=1, batch_size=50),
    limits=kinds.Limits(latent_dim=(1, 8), hidden_choices=(16, 32)),
)


@pytest.fixture
def toy():
    kinds.register(TOY)
    yield TOY
    kinds.unregister(TOY.name)


def test_a_registered_kind_reaches_the_command_line(toy):
    from vae_core import train

    choices = next(a for a in train._parser()._actions if a.dest == "model").choices
    assert "toy_vae" in choices
    args = train._parser().parse_args(["--run-dir", "x", "--model", "toy_vae", "--latent-dim", "5"])
    model, run = train.specs_from_args(args)
    assert (model.kind, model.latent_dim, model.hidden, run.epochs) == ("toy_vae", 5, 16, 1)
    # Its own limits, from its entry: the CLI refuses what the Train page could not offer.
    with pytest.raises(UserError, match="between 1 and 8"):
        ModelSpec("toy_vae", latent_dim=9)


def test_a_registered_kind_reaches_the_train_page(toy, sample_only, empty_lab_home):
    at = open_app("app_pages/train.py")
    kind_box = at.selectbox(key="tr_kind")
    assert "Toy VAE (tests only)" in kind_box.options  # shown by its label
    kind_box.set_value("toy_vae").run()
    assert not at.exception
    assert any("exists only inside this test" in c.value for c in at.caption)
    latent = at.number_input(key="tr_latent_toy_vae_sample")  # only the sample is here
    assert (latent.value, latent.max) == (3, 8)


def test_a_registered_kind_reaches_the_store_listing(toy, tmp_path):
    from vae_core.store import Store

    store = Store(tmp_path / "models", shipped_root=None)
    spec, _ = preset("toy_vae")
    store.save("my_toy", kinds.build(spec), {"dataset": "sample"})
    entry = store.get("my_toy")
    assert entry.error is None and entry.kind == "toy_vae"
    assert "Toy VAE (tests only)" in entry.label
    assert store.load("my_toy").spec == spec


def test_unknown_kinds_get_one_sentence_naming_the_choices():
    with pytest.raises(UserError, match="Unknown model kind 'gan'; choose one of mlp_vae"):
        ModelSpec("gan")


def test_the_cli_and_train_spec_agree_on_every_flag():
    """The recorded command recreates the specs exactly (one table drives both)."""
    from vae_core import train

    model = ModelSpec("conv_dae", latent_dim=12, hidden=64, reconstruction="mse", beta=0.5)
    run = TrainSpec(
        "sample",
        epochs=3,
        noise="mask",
        noise_strength=0.3,
        step_delay_s=0.1,
        steps_per_execution=2,
        max_train_samples=100,
    )
    from vae_core.specs import cli_args

    args = train._parser().parse_args(["--run-dir", "x", *cli_args(model, run)])
    assert train.specs_from_args(args) == (model, run)


def test_old_train_configs_with_extra_still_load():
    run = TrainSpec.from_dict({"dataset": "sample", "extra": {"step_delay_s": 0.5}})
    assert run.step_delay_s == 0.5 and run.dataset == "sample"


def test_kind_names_are_compared_only_inside_the_registry():
    names = "|".join(kinds.names())
    compared = re.compile(
        rf"""(==|!=|\bin\b)\s*\(?\s*["']({names})["']|["']({names})["']\s*(==|!=)"""
    )
    files = [*REPO.glob("vae_core/**/*.py"), *REPO.glob("app_pages/*.py"), REPO / "app.py"]
    hits = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in files
        if path.name != "kinds.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if compared.search(line)
    ]
    assert not hits, hits


def test_the_registry_imports_no_tensorflow():
    code = "import sys, vae_core.kinds, vae_core.rundir, vae_core.runs; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
