"""Train: choose a model and its settings, start a run, watch it learn; every past run.

Training never happens in this script: `runs` starts a child process that owns the run folder, and
the live view only reads that folder (a fragment polls it), so a refresh, a closed tab or a second
browser all show the same run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from app_pages import glossary, movielens_download, shared
from vae_core import data, figures, kinds, rundir, runs
from vae_core import store as store_module
from vae_core.errors import UserError
from vae_core.runs import ACTIVE_STATES, RESUMABLE_STATES
from vae_core.specs import TRAIN_NOISE_KINDS, TRAIN_NOISES, named_preset, preset

# A run's state in words (tables draw text only), and a Material icon beside it where Streamlit
# draws icons: Debian's Chromium has no colour-emoji font, so emoji showed as empty boxes.
STATE_LABELS = {
    "created": "never started",
    "unknown": "unreadable",
    "missing": "unreadable",
    "starting": "starting",
    "running": "running",
    "completed": "completed",
    "stopped": "stopped",
    "failed": "failed",
    "interrupted": "interrupted",
    "lost": "stopped answering",  # a worker of a multi-worker run, as its chief saw it
}
STATE_ICONS = {
    "created": ":material/fiber_new:",
    "unknown": ":material/help:",
    "missing": ":material/help:",
    "starting": ":material/hourglass_top:",
    "running": ":material/directions_run:",
    "completed": ":material/check_circle:",
    "stopped": ":material/pause_circle:",
    "failed": ":material/cancel:",
    "interrupted": ":material/warning:",
    "lost": ":material/link_off:",
}
SAMPLE_SPLIT = "400 digits to train, 100 to validate"
DATASET_LABELS = {
    "mnist": "MNIST: 60,000 handwritten digits",
    "mnist_binary": "Binarized MNIST: the same digits in black and white, as log-likelihood "
    "papers use them",
    "fashion_mnist": "Fashion-MNIST: 60,000 clothing pictures",
    "sample": f"The bundled sample: {SAMPLE_SPLIT} (the fastest tries)",
    "ml-latest-small": "MovieLens small: 100,004 ratings by 671 people (shipped with VAE Lab)",
    "ml-100k": "MovieLens 100K: 100,000 ratings by 943 people",
    "ml-1m": "MovieLens 1M: 1,000,209 ratings by 6,040 people",
    "ml-10m": "MovieLens 10M: 10,000,054 ratings by 71,567 people",
    "ml-20m": "MovieLens 20M: 20,000,263 ratings by 138,493 people (the paper's data)",
    "ml-25m": "MovieLens 25M: 25,000,095 ratings by 162,541 people",
    "ml-latest": "MovieLens latest: GroupLens's newest full release",
}
PRIOR_LABELS = {
    "normal": "N(0, I), the classic VAE",
    "mixture": "A learned mixture of 10 Gaussians",
    "class_mixture": "Ten Gaussians set apart, one per digit (trained with the labels)",
}
DATASET_SHORT = {
    "mnist": "MNIST",
    "mnist_binary": "binarized MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "sample": "bundled sample",
}
UNIT = {kinds.DIGITS: "digit", kinds.ITEMS: "user"}  # what one training example is
PHASES = {
    "starting": "starting TensorFlow",
    "loading data": "loading the data",
    "building the model": "building the model",
    "evaluating": "measuring the finished model on the test digits",
    "saving": "saving the model",
}
# The glossary's words behind each test result (shown in the result's help tip).
METRIC_WORDS = {
    "neg_elbo": ("ELBO", "nats"),
    "reconstruction": ("nats",),
    "kl": ("KL", "prior"),
    "psnr": ("PSNR",),
    "ssim": ("SSIM",),
    "ndcg@100": ("NDCG",),
    "recall@20": ("Recall",),
}
POLL_S = 1.0  # seconds between looks at the run folder while a run is active
IDLE_POLL_S = 3.0  # while nothing on view trains: how often to look for a run started elsewhere


# ---------------------------------------------------------------- small helpers
def _url_choice(param: str, options, default):
    """A setting the address asks for (the Denoise page links here with ?noise=...), if valid."""
    value = st.query_params.get(param)
    return value if value in options else default


def _url_strength(default: float) -> float:
    try:
        value = float(st.query_params.get("strength", default))
    except ValueError:
        return default
    # The slider moves in steps of 0.05; a value between them would be refused.
    return round(value * 20) / 20 if 0.0 <= value <= 1.0 else default


def _duration(seconds) -> str:
    if not isinstance(seconds, int | float):
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _config(run_dir: Path) -> dict:
    try:
        return rundir.read_config(run_dir)
    except UserError:
        return {}


def _rows(run_dir: Path, status: dict) -> list[dict]:
    """progress.jsonl's records, read incrementally: each poll parses only the new lines."""
    key, started = str(run_dir), status.get("started")
    cached = st.session_state.get("tr_rows")
    rows = cached[2] if cached and cached[:2] == (key, started) else []
    # A resume cuts the file back (and changes `started`), so then it is read from the start.
    rows = rows + rundir.read_progress(run_dir, rows[-1]["_line"] + 1 if rows else 0)
    st.session_state["tr_rows"] = (key, started, rows)
    return rows


def _metrics_text(kind: str | None, metrics) -> str:
    """A run's test result as its kind's registry headline says it; a denoiser's SSIM beside."""
    metrics = metrics if isinstance(metrics, dict) else {}
    text = kinds.headline_text(kind, metrics) or ""
    ssim = metrics.get("ssim")
    return text + (f", SSIM {ssim:.3f}" if text and isinstance(ssim, int | float) else "")


def _progress_line(epochs: int, last: dict | None, phase: str | None) -> tuple[float, str]:
    """(fraction done, 'Epoch 3 of 10 · step 120 of 469 · about 2 min left · 850 digits/s')."""
    if phase and phase != "training":
        # Before the first step (TensorFlow, data, model) and after the last (test, save).
        done = 1.0 if phase in ("evaluating", "saving") else 0.0
        return done, f"{PHASES.get(phase, phase)}…"
    if not last:
        return 0.0, f"Epoch 1 of {epochs} · {PHASES['starting']}…"
    epoch = int(last.get("epoch") or 1)
    per = max(int(last.get("steps_per_epoch") or 1), 1)
    step = per if last.get("kind") == "epoch" else min(int(last.get("step") or 0), per)
    done = min(max(((epoch - 1) + step / per) / max(epochs, 1), 0.0), 1.0)
    parts = [f"Epoch {epoch} of {epochs}", f"step {step} of {per}"]
    if isinstance(last.get("eta_s"), int | float):
        parts.append(f"about {_duration(last['eta_s'])} left")
    if isinstance(last.get("samples_per_s"), int | float):
        parts.append(f"{last['samples_per_s']:,.0f} digits/s")
    return done, " · ".join(parts)


# ---------------------------------------------------------------- the live view of one run
def _stopped_text(status: dict, done_epochs: int, epochs: int) -> str:
    step, per = status.get("step"), status.get("steps_per_epoch")
    if isinstance(step, int) and step > 0 and isinstance(per, int):
        return (
            f"Stopped at step {step} of {per} in epoch {done_epochs + 1} of {epochs}; those steps "
            "are kept. Resume it to carry on from there."
        )
    return f"Stopped after epoch {done_epochs} of {epochs}. Resume it to carry on from there."


def _weaker_than_shipped(status: dict, kind: str | None, dataset: str | None) -> str | None:
    """A sentence when the new model is far weaker than the shipped one of its kind and data."""
    if not kinds.known(kind):
        return None
    found = store_module.much_worse_than_shipped(
        shared.store(), kind, status.get("test_metrics"), dataset
    )
    if found is None:
        return None
    reference, theirs, ours = found
    metric = kinds.get(kind).headline[0]
    if metric == "psnr":
        scores = f"PSNR {ours:.1f} dB against {theirs:.1f} dB"
    elif metric == "ndcg@100":
        scores = f"test NDCG@100 {ours:.3f} against {theirs:.3f}"
    else:
        scores = f"−ELBO {ours:.0f} against {theirs:.0f} nats"
    if kinds.get(kind).domain == kinds.ITEMS:
        lacks, more = "rank movies well", "Train it for more epochs"
    else:
        lacks, more = "draw clear digits", "Train it for more epochs, or on the full MNIST,"
    return (
        f"This model is much weaker than the shipped **{reference.name}** ({scores}): it has not "
        f"learned enough yet to {lacks}. {more} before you rely on it; **{reference.name}** is in "
        "the sidebar meanwhile."
    )


def _show_result(status: dict, kind: str | None = None, dataset: str | None = None) -> None:
    metrics = status.get("test_metrics") if isinstance(status.get("test_metrics"), dict) else {}
    shown = {
        "neg_elbo": (
            "Test −ELBO",
            "nats",
            "How surprised the model is by digits it never saw; lower is better.",
        ),
        "reconstruction": (
            "Reconstruction",
            "nats",
            "How far its redrawings are from the test digits.",
        ),
        "kl": (
            "KL",
            "nats",
            "How far the codes are from the prior (N(0, I), or its mixture): the price of a tidy "
            "latent space.",
        ),
        "psnr": (
            "Test PSNR",
            "dB",
            "How close its denoised test digits are to the clean ones; higher is better.",
        ),
        "ssim": ("Test SSIM", "", "How alike denoised and clean test digits look; 1 is identical."),
        "ndcg@100": (
            "Test NDCG@100",
            "",
            "How high the test users' hidden movies come in its top 100; 1 is perfect.",
        ),
        "recall@20": (
            "Test Recall@20",
            "",
            "The share of the test users' hidden movies found in its top 20.",
        ),
    }
    items = [(k, v) for k, v in metrics.items() if k in shown and isinstance(v, int | float)]
    if items:
        for col, (key, value) in zip(st.columns(len(items)), items, strict=True):
            label, unit, help_ = shown[key]
            text = f"{value:.1f} {unit}" if unit else f"{value:.3f}"
            col.metric(label, text, help=f"{help_}\n\n{glossary.tip(*METRIC_WORDS[key])}")
    neighbours = [
        f"{label} {metrics[key]:.3f}"
        for key, label in (("ease_ndcg@100", "EASE"), ("popularity_ndcg@100", "popularity"))
        if isinstance(metrics.get(key), int | float)
    ]
    if neighbours:
        st.caption(f"NDCG@100 on the same test users: {', '.join(neighbours)}.")
    weak = _weaker_than_shipped(status, kind, dataset)
    if weak:
        st.warning(weak)
    name = status.get("model_name")
    if name:
        where = shared.pages_for(kind) if kinds.known(kind) else []
        st.success(
            f"The model **{name}** is saved and now in the sidebar's model list"
            + (": explore it on these pages." if where else ".")
        )
        for page in where:  # each opens with the new model chosen
            st.page_link(shared.page_file(page), query_params={shared.MODEL_PARAM: name})
    if status.get("note"):
        st.info(status["note"])


def live_view(run_dir: Path) -> None:
    """Everything about one run, read from its folder; polled while the run is active."""
    status = runs.read_status(run_dir)
    state = status.get("state", "unknown")
    if state not in ACTIVE_STATES and st.session_state.get("tr_polling") == str(run_dir):
        # It just ended: rerun the whole app, so the sidebar lists the new model and polling stops.
        st.session_state.pop("tr_polling", None)
        st.rerun(scope="app")
    config = _config(run_dir)
    mspec, tspec = config.get("model") or {}, config.get("train") or {}
    kind = mspec.get("kind")
    info = kinds.get(kind) if kinds.known(kind) else None
    epochs = int(tspec.get("epochs") or status.get("epochs") or 1)
    rows = _rows(run_dir, status)
    last_epoch = next((r for r in reversed(rows) if r.get("kind") == "epoch"), None)
    done_epochs = int((last_epoch or {}).get("epoch") or 0)

    head = [f"Run **{run_dir.name}**"]
    if kind:
        head.append(kinds.label(kind))
    if tspec.get("dataset"):
        head.append(DATASET_SHORT.get(tspec["dataset"], tspec["dataset"]))
    head.append(f"{STATE_ICONS.get(state, '')} {STATE_LABELS.get(state, state)}".strip())
    st.markdown(" · ".join(head))
    several = _workers(run_dir, status)

    if state in ACTIVE_STATES:
        last = next((r for r in reversed(rows) if r.get("kind") in ("step", "epoch")), None)
        if state == "starting":  # a resumed run's last line is not news until it trains again
            last = None
        done, text = _progress_line(epochs, last, status.get("phase"))
        st.progress(done, text=text)
        if st.button(
            "Stop",
            key="tr_stop",
            icon=":material/stop_circle:",
            help="Finishes the current batch, saves a checkpoint and stops; you can resume later.",
        ):
            try:
                runs.stop_run(run_dir)
            except (UserError, OSError) as err:
                st.error(str(err))
            else:
                st.toast("Stopping after this batch…")
    elif state == "completed":
        _show_result(status, kind, tspec.get("dataset"))
    elif state == "failed":
        st.error(
            status.get("error") or "The run failed without saying why; see train.log in its folder."
        )
    elif state == "stopped":
        st.info(_stopped_text(status, done_epochs, epochs))
    elif state == "interrupted" and several and status.get("error"):
        st.warning(status["error"])  # which worker stopped answering, and what to do
    elif state == "interrupted":
        st.warning(
            "The training process ended without finishing (the computer or server restarted, or it "
            f"was killed) after epoch {done_epochs} of {epochs}. Resume it to carry on from its "
            "last finished epoch."
        )
    elif state in ("unknown", "missing"):
        st.error(status.get("error") or f"Run {run_dir.name} cannot be read.")
    elif state == "created":
        st.info("This run was set up but never started.")
    if state in RESUMABLE_STATES and several:
        _resume_on_every_machine(status)
    elif state in RESUMABLE_STATES and st.button(
        "Resume",
        key="tr_resume",
        icon=":material/play_arrow:",
        type="primary",
        help="Carry on from the last finished epoch.",
    ):
        try:
            runs.resume_run(run_dir)
        except UserError as err:
            st.error(str(err))
        else:
            st.rerun(scope="app")

    if rows:
        # A DAE has no KL term and its reconstruction is its whole loss: one panel says it all.
        terms = list(info.loss_terms) if info else ["loss"]
        items = info is not None and info.domain == kinds.ITEMS
        unit = "user" if items else "image"
        st.plotly_chart(figures.training_curves(rows, terms, unit), key="tr_curves")
        if items:
            st.plotly_chart(figures.ranking_curves(rows), key="tr_ranking")
    elif state in ACTIVE_STATES:
        st.caption("The loss curves appear after the first few batches.")
    pngs = rundir.epoch_pngs(run_dir)
    if pngs:
        epoch = max(pngs)
        if info is not None and not info.variational:
            what = "rows of noisy test digits, the model's clean-up, and the clean originals"
        else:
            what = (
                "test digits (top row), how the model redraws them (second row) and new "
                "digits it makes up from random codes (bottom rows)"
            )
        st.image(
            str(pngs[epoch]),
            width=520,
            caption=f"After epoch {epoch}: {what}. The same digits and codes every epoch, "
            "so you can watch them sharpen.",
            output_format="PNG",
        )


def _workers(run_dir: Path, status: dict) -> bool:
    """A multi-worker run: how many workers and each one's state; True if it is one."""
    workers = runs.worker_states(run_dir, status)
    if not workers:
        return False
    st.markdown(
        f":material/lan: **{len(workers)} workers** train this run together; worker 0, the "
        "chief, writes this run folder and saves the model."
    )
    st.dataframe(
        [
            {
                "worker": w["name"].replace("_", " ") + (" (chief)" if w["chief"] else ""),
                "address": w["address"] or "",
                "machine": w["host"] or "",
                "state": STATE_LABELS.get(w["state"], w["state"]),
            }
            for w in workers
        ],
        hide_index=True,
        key="tr_workers",
    )
    return True


def _resume_on_every_machine(status: dict) -> None:
    """A multi-worker run resumes where it was started: the same command on every machine."""
    commands = runs.worker_commands(status)
    st.markdown(
        "To resume, start the same command again on every machine (each resumes from the last "
        "finished epoch):"
    )
    if commands:
        st.code("\n".join(commands), language="bash", wrap_lines=True)


def _start(mspec, tspec, name: str | None) -> None:
    """Start a run (UserError with a sentence if it cannot) and show it on the right."""
    runs.check_idle()  # one run at a time: say so before making a folder that never runs
    run_dir = runs.create_run(mspec, tspec, save_as=name)
    runs.start_run(run_dir)
    st.session_state["tr_view"] = str(run_dir)
    st.toast("Training started.")


def quick_demo() -> None:
    """One button: the preset that gives a model worth showing within about a minute."""
    mspec, tspec = named_preset("quick")
    with st.container(border=True):
        st.markdown(
            f":material/bolt: **Quick demo** · under a minute: a 2-D VAE learns all 60,000 MNIST digits in "
            f"{tspec.epochs} epochs; its prior keeps one place for each digit, so its map and the "
            "digits it makes up read clearly."
        )
        if not data.dataset_available(tspec.dataset):
            st.caption("It needs the full MNIST, which is not on this computer.")
            return
        if st.button(
            "Start the quick demo", key="tr_quick", icon=":material/bolt:", width="stretch"
        ):
            try:
                _start(mspec, tspec, None)
            except UserError as err:
                st.error(str(err))


# ---------------------------------------------------------------- the page
st.title("Train")
st.markdown(
    "Pick a kind of autoencoder, press **Start** and watch it learn. Training runs in the "
    "background: you can close the tab or open it elsewhere and see the same run."
)

left, right = st.columns([1, 2], gap="large")

# ---------------------------------------------------------------- settings
with left:
    quick_demo()
    st.subheader("New run")
    trainable = kinds.names(trainable=True)
    kind = st.selectbox(
        "Kind of model",
        trainable,
        index=trainable.index(_url_choice("kind", trainable, trainable[0])),
        format_func=kinds.label,
        key="tr_kind",
        help="What to train; each kind starts from sensible settings.",
    )
    info = kinds.get(kind)
    st.caption(info.blurb)
    is_vae, limits = info.variational, info.limits
    items = info.domain == kinds.ITEMS

    datasets = [d for d in info.datasets if data.available(d)]
    if not items and "mnist" not in datasets:
        st.info(
            f"Only the bundled sample ({SAMPLE_SPLIT}) is here. For all 60,000 MNIST digits, put "
            "its four `.gz` files in one folder, set `VAE_LAB_DATA_DIR` to that folder and "
            "restart VAE Lab."
        )
        st.caption(", ".join(f"`{f}`" for f in data.IDX_FILES))
    # Outside the form, so choosing the data brings that data's preset (the sample's is longer).
    dataset = st.radio(
        "Data",
        datasets,
        format_func=DATASET_LABELS.get,
        key=f"tr_data_{kind}",
        help="What the model learns from; some digits are kept aside to test it on digits it "
        "never saw." + ("" if items else "\n\n" + glossary.tip("MNIST", "binarized MNIST")),
    )
    if items:  # the larger releases, from GroupLens, licence first
        movielens_download.offer(info.datasets, key="tr_mldl")
    m0, t0 = preset(kind, dataset)
    # Keys carry the kind (and the sample), so each keeps its own values and starts from its preset.
    at = f"{kind}_sample" if dataset == "sample" else kind

    # Enter in a box must not start an hour of training: only the button does.
    with st.form(f"tr_form_{at}", border=False, enter_to_submit=False):
        c1, c2 = st.columns(2)
        latent = c1.number_input(
            "Latent size",
            *limits.latent_dim,
            m0.latent_dim,
            key=f"tr_latent_{at}",
            help="How many numbers the encoder squeezes each digit into; 2 lets the app draw the "
            "latent space as a map.",
        )
        hidden = c2.select_slider(
            "Hidden size",
            sorted({*limits.hidden_choices, m0.hidden}),
            m0.hidden,
            key=f"tr_hidden_{at}",
            help="Units in the dense layer: more can learn finer detail but train slower.",
        )
        beta, warmup, anneal = 1.0, 0, t0.kl_anneal_steps
        if is_vae and items and info.kl_per_click:
            beta = st.number_input(
                "KL weight per click (gamma)",
                0.0,
                1.0,
                m0.beta,
                0.001,
                format="%.4f",
                key=f"tr_beta_{at}",
                help="Each user's KL term weighs this times their number of clicks: a user with "
                "many clicks is held closer to the prior. RecVAE's paper used 0.005.",
            )
        elif is_vae and items:
            c1, c2 = st.columns(2)
            beta = c1.number_input(
                "KL cap (beta)",
                0.0,
                1.0,
                m0.beta,
                0.05,
                key=f"tr_beta_{at}",
                help="The KL term's weight rises from 0 to this cap: the paper found 0.2 best; 1 "
                "is the true VAE, whose recommendations come out too cautious.",
            )
            anneal = c2.number_input(
                "KL rise (updates)",
                0,
                10_000_000,
                t0.kl_anneal_steps,
                key=f"tr_anneal_{at}",
                help="Over how many learning steps the KL weight grows from 0 to its cap.",
            )
        elif is_vae:
            c1, c2 = st.columns(2)
            beta = c1.number_input(
                "Beta",
                0.0,
                10.0,
                m0.beta,
                0.1,
                key=f"tr_beta_{at}",
                help="Weight of the KL term: 1 is the true VAE; below 1 sharper digits, above 1 a "
                "smoother, more orderly latent space.\n\n" + glossary.tip("KL"),
            )
            warmup = c2.number_input(
                "KL warm-up (epochs)",
                0,
                100,
                t0.kl_warmup_epochs,
                key=f"tr_warmup_{at}",
                help="Epochs over which the KL weight grows from 0 to beta, so the model first "
                "learns to redraw digits at all.",
            )
        prior = m0.prior
        if len(info.priors) > 1:
            prior = st.selectbox(
                "Prior p(z)",
                info.priors,
                info.priors.index(m0.prior),
                format_func=PRIOR_LABELS.get,
                key=f"tr_prior_{at}",
                help="Where new digits are drawn from. N(0, I) is the classic VAE; a learned "
                "mixture of Gaussians lets groups of digits keep their own places; ten Gaussians "
                "set apart, one per digit (told each training digit's label), keep all ten apart."
                "\n\n" + glossary.tip("prior", "mixture prior"),
            )
        c1, c2 = st.columns(2)
        epochs = c1.number_input(
            "Epochs",
            *limits.epochs,
            t0.epochs,
            key=f"tr_epochs_{at}",
            help=f"How many times the model sees every training {UNIT[info.domain]}.\n\n"
            + glossary.tip("epoch"),
        )
        batch = c2.select_slider(
            "Batch size",
            sorted({*limits.batch_choices, t0.batch_size}),
            t0.batch_size,
            key=f"tr_batch_{at}",
            help=f"{UNIT[info.domain].capitalize()}s per learning step: bigger is faster per "
            "epoch, smaller takes more (noisier) steps.\n\n" + glossary.tip("batch size"),
        )
        lr = st.select_slider(
            "Learning rate",
            sorted({1e-4, 3e-4, 1e-3, 3e-3, 1e-2, t0.learning_rate}),
            t0.learning_rate,
            format_func=lambda v: f"{v:g}",
            key=f"tr_lr_{at}",
            help="How big each learning step is: too big and the loss jumps about, too small and "
            "it crawls.\n\n" + glossary.tip("learning rate"),
        )
        noise, strength = t0.noise, t0.noise_strength
        if not is_vae and not items:
            noise = _url_choice("noise", TRAIN_NOISE_KINDS, t0.noise)
            noise = st.selectbox(
                "Noise to remove",
                TRAIN_NOISE_KINDS,
                TRAIN_NOISE_KINDS.index(noise),
                format_func=TRAIN_NOISES.get,
                key=f"tr_noise_{at}",
                help="How the training digits are spoiled; the model learns to undo it.",
            )
            strength = st.slider(
                "Noise strength",
                0.0,
                1.0,
                _url_strength(t0.noise_strength),
                0.05,
                key=f"tr_strength_{at}",
                help="Spread of Gaussian speckle, or the fraction of pixels hit by salt & pepper "
                "or masking (the grey fog ignores it); for every kind at once, the highest "
                "strength (each digit gets one from 0 to it).",
            )
        name = st.text_input(
            "Model name (optional)",
            key=f"tr_name_{at}",
            max_chars=64,
            placeholder=f"if empty: {kind}_<run id>",
            help="The finished model is saved under this name; letters, digits, '-' and '_'.",
        )
        start = st.form_submit_button(
            "Start training", icon=":material/play_arrow:", type="primary", width="stretch"
        )

    if start:
        try:
            # What the page does not ask about (loss, schedule, precision) comes from the preset.
            mspec = dataclasses.replace(
                m0, latent_dim=int(latent), hidden=int(hidden), beta=float(beta), prior=prior
            )
            tspec = dataclasses.replace(
                t0,
                dataset=dataset,
                epochs=int(epochs),
                batch_size=int(batch),
                learning_rate=float(lr),
                kl_warmup_epochs=int(warmup),
                kl_anneal_steps=int(anneal),
                noise=noise,
                noise_strength=float(strength),
            )
            _start(mspec, tspec, name.strip() or None)
        except UserError as err:
            st.error(str(err))

# ---------------------------------------------------------------- the current run, live
active = runs.active_run()
viewed = st.session_state.get("tr_view")
if viewed is None or not Path(viewed).is_dir():
    # Everyone sees the same run: the one training now, else the newest.
    newest = runs.list_runs()[:1]
    viewed = str(active) if active else (str(newest[0].path) if newest else None)
every = None
with right:
    st.subheader("The run")
    if viewed is None:
        st.info("No runs yet. Choose a model on the left and press **Start training**.")
    else:
        run_dir = Path(viewed)
        # Poll only while the run is active; live_view reruns the app once when it ends.
        if runs.read_status(run_dir).get("state") in ACTIVE_STATES:
            st.session_state["tr_polling"] = viewed
            every = POLL_S
        else:
            st.session_state.pop("tr_polling", None)
        if active is not None and Path(active) != run_dir:
            st.caption(f"Another run, **{Path(active).name}**, is training right now.")
        st.fragment(run_every=every)(live_view)(run_dir)


def watch_for_new_runs(known_active: str | None) -> None:
    """Notice a run started elsewhere (another tab, the command line) and show it."""
    active_now = runs.active_run()
    if active_now is not None and str(active_now) != known_active:
        st.session_state["tr_view"] = str(active_now)
        st.rerun(scope="app")


if every is None:
    st.fragment(run_every=IDLE_POLL_S)(watch_for_new_runs)(str(active) if active else None)


# ---------------------------------------------------------------- history
def history(viewed: str | None) -> None:
    """The table of every run; refreshed with the live view while a run is active."""
    st.subheader("Past runs")
    all_runs = runs.list_runs()
    if not all_runs:
        st.caption("Runs you start are listed here, with their results.")
        return
    table = []
    for info in all_runs:
        mspec, tspec = info.config.get("model") or {}, info.config.get("train") or {}
        kind_ = mspec.get("kind")
        done = (info.last_epoch or {}).get("epoch", 0)
        table.append(
            {
                "run": info.run_id,
                "model kind": kinds.label(kind_),
                "data": DATASET_SHORT.get(tspec.get("dataset"), tspec.get("dataset") or "?"),
                "state": STATE_LABELS.get(info.state, info.state),
                "epochs done": f"{done} of {tspec.get('epochs', '?')}",
                "test result": _metrics_text(kind_, info.test_metrics),
                "model name": info.status.get("model_name") or "",
                "problem": info.error or "",
            }
        )
    if not any(row["problem"] for row in table):
        for row in table:
            del row["problem"]
    st.dataframe(table, hide_index=True)
    ids = [str(info.path) for info in all_runs]
    # No key: the widget follows `viewed` (its index is part of its identity), e.g. after a Start.
    pick = st.selectbox(
        "Open a run",
        ids,
        index=ids.index(viewed) if viewed in ids else 0,
        format_func=lambda p: Path(p).name,
        help="Shows its curves and pictures above; stopped runs can be resumed there.",
    )
    if pick != viewed:
        st.session_state["tr_view"] = pick
        st.rerun(scope="app")


st.fragment(run_every=every)(history)(viewed)
