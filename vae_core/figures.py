"""Plotly figures as pure functions of numpy arrays and dicts: testable without a browser."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from vae_core.images import to_png

LOSS_TERMS = {"loss": "Total", "reconstruction_loss": "Reconstruction", "kl_loss": "KL"}
TRAIN_COLOR, VAL_COLOR = "#3b6ea8", "#d9822b"


def loss_curves(rows: Sequence[dict], term: str = "loss") -> go.Figure:
    """One loss term over training: train (per logged step and per epoch) and validation (per epoch).

    `rows` are progress.jsonl records; x is fractional epochs so step and epoch points share an axis.
    """
    label = LOSS_TERMS.get(term, term)
    steps = [r for r in rows if r.get("kind") == "step" and term in r]
    epochs = [r for r in rows if r.get("kind") == "epoch"]

    def x_of(r: dict) -> float:
        per = max(int(r.get("steps_per_epoch") or 1), 1)
        return (int(r.get("epoch", 1)) - 1) + min(int(r.get("step", per)), per) / per

    fig = go.Figure()
    if steps:
        # In the order of the x axis, the latest value for each point: a run stopped mid-epoch and
        # resumed from its checkpoint logs those steps again, and drawn in the order logged the
        # line went back across the chart (a straight diagonal after Stop).
        points = sorted({x_of(r): r[term] for r in steps}.items())
        fig.add_scatter(
            x=[x for x, _ in points],
            y=[y for _, y in points],
            mode="lines",
            name="train (running)",
            line=dict(color=TRAIN_COLOR, width=1),
            opacity=0.5,
        )
    train_epochs = [r for r in epochs if term in r]
    if train_epochs:
        fig.add_scatter(
            x=[r["epoch"] for r in train_epochs],
            y=[r[term] for r in train_epochs],
            mode="lines+markers",
            name="train (epoch)",
            line=dict(color=TRAIN_COLOR),
        )
    val = [r for r in epochs if f"val_{term}" in r]
    if val:
        fig.add_scatter(
            x=[r["epoch"] for r in val],
            y=[r[f"val_{term}"] for r in val],
            mode="lines+markers",
            name="validation",
            line=dict(color=VAL_COLOR, dash="dot"),
        )
    fig.update_layout(
        title=f"{label} loss (nats per image)",
        height=280,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis_title="epoch",
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


# ---------------------------------------------------------------- latent space and wiring
# (round trip and generate pages)
DIGIT_COLORS = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#7f7f7f",
)
HIGHLIGHT_COLOR = "#111111"


def pca_basis(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre (D,), two principal axes (2, D), share of variance each explains (2,)) of points z."""
    z = np.asarray(z, dtype=np.float64)
    centre = z.mean(axis=0)
    # Eigenvectors of the small D x D covariance: cheaper than an SVD of all N points.
    var, vecs = np.linalg.eigh(np.cov(z - centre, rowvar=False).reshape(z.shape[1], z.shape[1]))
    order = np.argsort(var)[::-1][:2]
    axes = np.zeros((2, z.shape[1]))
    axes[: len(order)] = vecs[:, order].T
    share = np.clip(var[order], 0, None) / max(float(np.clip(var, 0, None).sum()), 1e-12)
    return centre, axes, np.pad(share, (0, 2 - len(share)))


def _ellipses(centres: np.ndarray, radii: np.ndarray, n: int = 48) -> tuple[list, list]:
    """Axis-aligned ellipses as one line trace's x and y, separated by None."""
    t = np.linspace(0, 2 * np.pi, n)
    xs: list = []
    ys: list = []
    for (cx, cy), (rx, ry) in zip(centres, radii, strict=True):
        xs += list(cx + rx * np.cos(t)) + [None]
        ys += list(cy + ry * np.sin(t)) + [None]
    return xs, ys


def latent_map(
    z: np.ndarray,
    labels: np.ndarray | None = None,
    highlight: np.ndarray | None = None,
    highlight_sigma: np.ndarray | None = None,
    dims: tuple[int, int] = (0, 1),
    *,
    projection: str = "dims",
    highlight_names: Sequence[str] | None = None,
    trail: np.ndarray | None = None,
    height: int = 520,
) -> go.Figure:
    """z_mean of many digits as dots coloured by label, the chosen ones as stars with their sigma.

    `projection="dims"` plots latent dimensions `dims`; `"pca"` the two principal axes of `z`
    (sigma is then projected per axis, ignoring correlations). Traces: one per label present (or
    one "digits"), then "earlier" (`trail`: where a drawing's code has been, oldest first, a line
    ending at its star) when given, then "your digits", then the 1-sigma and 2-sigma ellipses.
    """
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    d = z.shape[1]
    if projection == "pca" and d > 2:
        centre, axes, share = pca_basis(z)

        def proj(a):
            return (np.atleast_2d(a) - centre) @ axes.T

        def proj_sigma(s):
            return np.sqrt(np.atleast_2d(s) ** 2 @ (axes.T**2))

        titles = [f"principal axis {i + 1} ({share[i]:.0%} of the spread)" for i in range(2)]
    else:
        dx, dy = (0, 0) if d == 1 else dims

        def proj(a):
            a = np.atleast_2d(np.asarray(a, dtype=np.float64))
            return np.stack([a[:, dx], a[:, dy] if d > 1 else np.zeros(len(a))], axis=1)

        proj_sigma = proj
        titles = [f"z[{dx}]", f"z[{dy}]" if d > 1 else ""]
    p = proj(z)
    fig = go.Figure()
    if labels is None:
        fig.add_scatter(
            x=p[:, 0],
            y=p[:, 1],
            mode="markers",
            name="digits",
            marker=dict(size=5, color="#8c9bab", opacity=0.6),
        )
    else:
        labels = np.asarray(labels).astype(int)
        for k in np.unique(labels):
            m = labels == k
            fig.add_scatter(
                x=p[m, 0],
                y=p[m, 1],
                mode="markers",
                name=f"digit {k}",
                marker=dict(size=5, color=DIGIT_COLORS[k % 10], opacity=0.65),
                hovertemplate=f"a {k}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
            )
    if trail is not None and len(trail) > 1:
        t = proj(trail)
        fig.add_scatter(
            x=t[:, 0],
            y=t[:, 1],
            mode="lines+markers",
            name="earlier",
            line=dict(color=HIGHLIGHT_COLOR, width=2.5, dash="dot"),
            marker=dict(size=8, color="#ffd23f", line=dict(color=HIGHLIGHT_COLOR, width=1)),
            hovertemplate="before: (%{x:.2f}, %{y:.2f})<extra></extra>",
        )
    if highlight is not None and len(highlight):
        h = proj(highlight)
        names = (
            list(highlight_names)
            if highlight_names is not None
            else [str(i + 1) for i in range(len(h))]
        )
        fig.add_scatter(
            x=h[:, 0],
            y=h[:, 1],
            mode="markers+text",
            name="your digits",
            text=names,
            textposition="top center",
            textfont=dict(size=15, color=HIGHLIGHT_COLOR),
            marker=dict(
                symbol="star", size=16, color="#ffd23f", line=dict(color=HIGHLIGHT_COLOR, width=1.5)
            ),
            hovertemplate="%{text}: z_mean (%{x:.2f}, %{y:.2f})<extra></extra>",
        )
        if highlight_sigma is not None:
            s = proj_sigma(highlight_sigma)
            for k, dash, width in ((1, "solid", 1.5), (2, "dot", 1)):
                ex, ey = _ellipses(h, k * s)
                fig.add_scatter(
                    x=ex,
                    y=ey,
                    mode="lines",
                    name=f"{k} sigma",
                    hoverinfo="skip",
                    line=dict(color=HIGHLIGHT_COLOR, width=width, dash=dash),
                )
    fig.update_xaxes(title=titles[0], zeroline=True, zerolinecolor="#c8ced6")
    fig.update_yaxes(
        title=titles[1],
        zeroline=True,
        zerolinecolor="#c8ced6",
        scaleanchor="x",
        scaleratio=1,
        visible=d > 1 or projection == "pca",
    )
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        legend=dict(itemsizing="constant"),
        plot_bgcolor="#ffffff",
    )
    return fig


def prior_map(
    z: np.ndarray,
    labels: np.ndarray,
    means: np.ndarray | None = None,
    sigmas: np.ndarray | None = None,
    height: int = 460,
) -> go.Figure:
    """Where the encoder puts digits (z_mean, coloured by label) against where the priors put their
    mass: N(0, I)'s 1- and 2-sigma circles, and, for a mixture, each Gaussian's 2-sigma ellipse with
    its number. Above two dimensions everything is seen along the codes' two principal axes (an
    orthonormal view, so N(0, I) stays a unit circle; ellipses ignore correlations)."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    d = z.shape[1]
    if d > 2:
        centre, axes, _ = pca_basis(z)
    else:
        centre, axes = np.zeros(d), np.eye(2)[:, :d] if d == 2 else np.array([[1.0], [0.0]])
    fig = latent_map(z, labels, projection="pca" if d > 2 else "dims", height=height)
    origin = -centre @ axes.T
    for k, dash in ((1, "solid"), (2, "dash")):
        ex, ey = _ellipses(origin[None], np.full((1, 2), float(k)))
        fig.add_scatter(
            x=ex,
            y=ey,
            mode="lines",
            name=f"N(0, I): {k} sigma",
            hoverinfo="skip",
            line=dict(color="#4a5560", width=2, dash=dash),
        )
    if means is not None and sigmas is not None:
        centres = (np.asarray(means, np.float64) - centre) @ axes.T
        radii = 2 * np.sqrt(np.asarray(sigmas, np.float64) ** 2 @ (axes.T**2))
        ex, ey = _ellipses(centres, radii)
        fig.add_scatter(
            x=ex,
            y=ey,
            mode="lines",
            name="its prior: 2 sigma of each Gaussian",
            hoverinfo="skip",
            line=dict(color=HIGHLIGHT_COLOR, width=2),
        )
        fig.add_scatter(
            x=centres[:, 0],
            y=centres[:, 1],
            mode="text",
            text=[str(k) for k in range(len(centres))],
            textfont=dict(size=14, color=HIGHLIGHT_COLOR),
            name="its Gaussians, numbered",
            hoverinfo="skip",
        )
    return fig


def bound_figure(ks: Sequence[int], elbo: np.ndarray, estimates: np.ndarray, k: int) -> go.Figure:
    """The log p(x) estimate against K (mean over the digits), climbing above the ELBO (dashed):
    the gap between them is what the bound hides. The chosen K is marked."""
    ks = np.asarray(ks)
    mean = np.asarray(estimates).mean(axis=1)
    bound = float(np.mean(elbo))
    fig = go.Figure()
    fig.add_scatter(
        x=ks, y=np.full(len(ks), bound), mode="lines", name="ELBO (the bound)",
        line=dict(color="#4a5560", width=2, dash="dash"),
        hovertemplate="ELBO %{y:.1f} nats<extra></extra>",
    )  # fmt: skip
    fig.add_scatter(
        x=ks, y=mean, mode="lines+markers", name="log p(x), estimated with K samples",
        line=dict(color=TRAIN_COLOR, width=3), fill="tonexty", fillcolor="rgba(59,110,168,0.12)",
        hovertemplate="K = %{x}: %{y:.1f} nats<extra></extra>",
    )  # fmt: skip
    chosen = int(np.flatnonzero(ks == k)[0]) if k in ks else len(ks) - 1
    fig.add_scatter(
        x=[ks[chosen]], y=[mean[chosen]], mode="markers+text", name=f"K = {ks[chosen]}",
        marker=dict(size=14, color="#ffd23f", line=dict(color=HIGHLIGHT_COLOR, width=1.5)),
        text=[f"{mean[chosen] - bound:+.1f} nats above the ELBO"], textposition="bottom left",
        hoverinfo="skip",
    )  # fmt: skip
    fig.update_xaxes(type="log", title="K: samples of z per digit")
    fig.update_yaxes(title="nats per digit (higher: more likely)")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="#ffffff")
    return fig


def label_bars(probs: np.ndarray, height: int = 150) -> go.Figure:
    """What the conditional VAE reads in one digit: p(y|x) for each label, the best one marked."""
    probs = np.asarray(probs, dtype=np.float64).ravel()
    best = int(np.argmax(probs))
    colors = [HIGHLIGHT_COLOR if j == best else TRAIN_COLOR for j in range(len(probs))]
    fig = go.Figure(
        go.Bar(
            x=[str(j) for j in range(len(probs))],
            y=probs,
            marker_color=colors,
            hovertemplate="a %{x}: %{y:.0%}<extra></extra>",
        )
    )
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        showlegend=False,
        yaxis=dict(range=[0, 1], tickformat=".0%"),
        xaxis=dict(type="category"),
        plot_bgcolor="#ffffff",
    )
    return fig


def latent_bars(
    z_mean: np.ndarray, sigma: np.ndarray | None = None, height: int = 190
) -> go.Figure:
    """One digit's code: a bar per latent dimension at z_mean, with +-sigma as error bars."""
    z_mean = np.asarray(z_mean, dtype=np.float64).ravel()
    names = [f"z[{i}]" for i in range(len(z_mean))]
    error = None
    if sigma is not None:
        error = dict(
            type="data",
            array=np.asarray(sigma, dtype=np.float64).ravel(),
            visible=True,
            color="#1f2933",
            thickness=1.5,
        )
    fig = go.Figure(
        go.Bar(
            x=names,
            y=z_mean,
            error_y=error,
            marker_color=TRAIN_COLOR,
            name="z_mean",
            hovertemplate="%{x}: %{y:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        showlegend=False,
        yaxis=dict(zeroline=True, zerolinecolor="#9aa5b1"),
        plot_bgcolor="#ffffff",
    )
    return fig


def manifold_figure(
    xs: np.ndarray, ys: np.ndarray, grid: np.ndarray, dims: tuple[int, int] = (0, 1), pad: int = 0
) -> go.Figure:
    """A tiled latent grid (image from images.tile) with latent coordinates on its axes.

    `xs`/`ys` are the values along dims[0] (left to right) and dims[1] (top to bottom).
    """
    img = np.asarray(grid, dtype=np.float32)
    n_x, n_y = len(xs), len(ys)
    cell_w = (img.shape[1] - pad) / n_x
    cell_h = (img.shape[0] - pad) / n_y
    # One PNG, not a heatmap: a 15 x 15 grid is 176,400 grey levels, which as a heatmap went to
    # every browser as JSON numbers (~1.5 MB and a third of the page's server time).
    picture = "data:image/png;base64," + base64.b64encode(to_png(np.clip(img, 0, 1))).decode()
    fig = go.Figure(go.Image(source=picture, hoverinfo="skip"))
    every = max(1, n_x // 8)
    fig.update_xaxes(
        title=f"z[{dims[0]}]",
        tickvals=[pad / 2 + (i + 0.5) * cell_w for i in range(0, n_x, every)],
        ticktext=[f"{xs[i]:.1f}" for i in range(0, n_x, every)],
        constrain="domain",
        showgrid=False,
    )
    fig.update_yaxes(
        title=f"z[{dims[1]}]",
        tickvals=[pad / 2 + (i + 0.5) * cell_h for i in range(0, n_y, every)],
        ticktext=[f"{ys[i]:.1f}" for i in range(0, n_y, every)],
        autorange="reversed",
        scaleanchor="x",
        showgrid=False,
    )
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def _dot_text(text: str) -> str:
    # Backslashes pass through on purpose: \l (end a left-aligned line) is DOT's, not ours.
    return text.replace('"', '\\"').replace("\n", "\\n")


def _dot_node(node_id: str, label: str, **attrs: str) -> str:
    extra = "".join(f', {k}="{v}"' for k, v in attrs.items())
    return f'  {node_id} [label="{_dot_text(label)}"{extra}];'


def _layer_list(layers: Sequence[tuple[str, str, str]]) -> str:
    """Hidden layers as one left-aligned block (DOT's \\l ends a left-justified line)."""
    return "".join(f"{name}: {kind} {shape}\\l" for name, kind, shape in layers) or "(none)\\l"


# What the Keras examples call the decoder's Input (keras-io vae.py: latent_inputs; the older
# keras/examples variational_autoencoder.py: latent_inputs named "z_sampling").
KERAS_EXAMPLE_NAMES = "latent_inputs / z_sampling"


def encoder_call(*, is_vae: bool = True, conditional: bool = False) -> str:
    """What the decoder is given from the encoder: encoder(x)[2] (z), or the DAE's one output."""
    call = "encoder([x, label])" if conditional else "encoder(x)"
    return f"{call}[2]" if is_vae else call


def composite_call(*, is_vae: bool = True, conditional: bool = False) -> str:
    """The full model as the wiring of its two halves, e.g. decoder(encoder(x)[2])."""
    z = encoder_call(is_vae=is_vae, conditional=conditional)
    return f"decoder([{z}, label])" if conditional else f"decoder({z})"


def wiring_dot(
    encoder_layers: Sequence[tuple[str, str, str]],
    decoder_layers: Sequence[tuple[str, str, str]],
    *,
    is_vae: bool = True,
    conditional: bool = False,
    composite_name: str = "vae",
    rankdir: str = "TB",
) -> str:
    """A Graphviz DOT diagram of encoder, decoder (with its own Input) and the composite wiring.

    Each layer is (name, layer type, output shape text), as read from the loaded models. Inputs are
    the `InputLayer`s; the encoder's outputs are z_mean, z_log_var, z (or latent_vector for the DAE);
    everything else is drawn as one block of hidden layers.
    """
    special = {"z_mean", "z_log_var", "z", "latent_vector", "decoder_output"}
    by_name = {t[0]: t for t in encoder_layers}
    dec_by_name = {t[0]: t for t in decoder_layers}

    def shape(layers: dict, name: str) -> str:
        return layers[name][2] if name in layers else "?"

    enc_hidden = [t for t in encoder_layers if t[1] != "InputLayer" and t[0] not in special]
    dec_hidden = [t for t in decoder_layers if t[1] != "InputLayer" and t[0] not in special]
    img = shape(by_name, "encoder_input")
    blue, grey, gold = "#dbe7f3", "#eef1f4", "#ffe9a8"
    lines = [
        "digraph wiring {",
        f'  rankdir={rankdir}; bgcolor="transparent"; compound=true; nodesep=0.25; ranksep=0.35;',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, fillcolor="#ffffff"];',
        '  edge [fontname="Helvetica", fontsize=10, color="#52606d"];',
        f'  label="{_dot_text(composite_name)} = {composite_call(is_vae=is_vae, conditional=conditional)}'
        '  (weights shared: three views of the same layers)"; labelloc=b; fontname="Helvetica"; fontsize=12;',
        _dot_node("x", f"x: the {composite_name}'s Input\n{img}", fillcolor=grey),
        _dot_node(
            "xhat",
            f"{composite_name}(x): reconstruction\n{shape(dec_by_name, 'decoder_output')}",
            fillcolor=grey,
        ),
    ]
    if conditional:
        lines.append(
            _dot_node(
                "label", f"label (0-9): the {composite_name}'s 2nd Input\n(None,)", fillcolor=grey
            )
        )
    # ---- encoder
    lines += [
        "  subgraph cluster_encoder {",
        '    label="encoder (a keras.Model)"; labelloc=t; style="rounded,filled"; fillcolor="#f5f8fc"; color="#3b6ea8";',
        _dot_node("enc_in", f"encoder_input\nInput {img}", fillcolor=blue),
    ]
    if conditional:
        lines.append(
            _dot_node(
                "enc_label", f"label_input\nInput {shape(by_name, 'label_input')}", fillcolor=blue
            )
        )
    lines.append(_dot_node("enc_hidden", _layer_list(enc_hidden)))
    if is_vae:
        lines += [
            _dot_node("z_mean", f"z_mean  (output [0])\n{shape(by_name, 'z_mean')}"),
            _dot_node("z_log_var", f"z_log_var  (output [1])\n{shape(by_name, 'z_log_var')}"),
            _dot_node(
                "z",
                f"z = Sampling  (output [2])\nz_mean + sigma * eps\n{shape(by_name, 'z')}",
                fillcolor=gold,
            ),
        ]
    else:
        lines.append(
            _dot_node(
                "z",
                f"latent_vector  (the only output)\n{shape(by_name, 'latent_vector')}",
                fillcolor=gold,
            )
        )
    lines.append("  }")
    # ---- decoder
    lines += [
        "  subgraph cluster_decoder {",
        '    label="decoder (a keras.Model of its own)"; labelloc=t; style="rounded,filled"; fillcolor="#f7f5fb"; color="#7a5ea8";',
        _dot_node(
            "dec_in",
            f"decoder_input\nits own Input {shape(dec_by_name, 'decoder_input')}\n"
            f"({KERAS_EXAMPLE_NAMES} in the Keras examples)",
            fillcolor=blue,
        ),
    ]
    if conditional:
        lines.append(
            _dot_node(
                "dec_label",
                f"label_input\nInput {shape(dec_by_name, 'label_input')}",
                fillcolor=blue,
            )
        )
    lines += [
        _dot_node("dec_hidden", _layer_list(dec_hidden)),
        _dot_node("dec_out", f"decoder_output\n{shape(dec_by_name, 'decoder_output')}"),
        "  }",
    ]
    # ---- wiring
    lines += ["  x -> enc_in;", "  enc_in -> enc_hidden;"]
    if conditional:
        lines += [
            "  label -> enc_label;",
            "  label -> dec_label;",
            "  enc_label -> enc_hidden;",
            "  dec_label -> dec_hidden;",
        ]
    if is_vae:
        lines += [
            "  enc_hidden -> z_mean;",
            "  enc_hidden -> z_log_var;",
            "  z_mean -> z;",
            "  z_log_var -> z;",
        ]
    else:
        lines.append("  enc_hidden -> z;")
    wire = encoder_call(is_vae=is_vae, conditional=conditional)
    lines += [
        f'  z -> dec_in [label="{wire}", color="#c0392b", fontcolor="#c0392b", penwidth=2.2];',
        "  dec_in -> dec_hidden;",
        "  dec_hidden -> dec_out;",
        "  dec_out -> xhat;",
        "}",
    ]
    return "\n".join(lines)


def training_curves(
    rows: Sequence[dict], terms: Sequence[str] = tuple(LOSS_TERMS), unit: str = "image"
) -> go.Figure:
    """loss_curves for several terms side by side (one panel each, own y scale, one shared legend);
    `unit` is what one training example is (an image, a recommender's user)."""
    from plotly.subplots import make_subplots

    terms = list(terms) or ["loss"]
    fig = make_subplots(
        rows=1,
        cols=len(terms),
        horizontal_spacing=0.08,
        subplot_titles=[f"{LOSS_TERMS.get(t, t)} loss" for t in terms],
    )
    for col, term in enumerate(terms, start=1):
        for trace in loss_curves(rows, term).data:
            trace.showlegend = col == 1
            trace.legendgroup = trace.name
            fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_yaxes(title_text=f"nats per {unit}", row=1, col=1)
    fig.update_layout(
        height=300, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3)
    )
    return fig


def ranking_curves(rows: Sequence[dict], metric: str = "val_ndcg@100") -> go.Figure:
    """A recommender's validation ranking per epoch, with the KL weight's rise beside it."""
    from plotly.subplots import make_subplots

    epochs = [r for r in rows if r.get("kind") == "epoch"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = [r["epoch"] for r in epochs if isinstance(r.get(metric), int | float)]
    y = [r[metric] for r in epochs if isinstance(r.get(metric), int | float)]
    name = metric.removeprefix("val_").replace("ndcg", "NDCG").replace("recall", "Recall")
    fig.add_trace(
        go.Scatter(
            x=x, y=y, mode="lines+markers", name=f"validation {name}", line=dict(color=VAL_COLOR)
        ),
        secondary_y=False,
    )
    kl = [
        (r["epoch"], r["kl_weight"]) for r in epochs if isinstance(r.get("kl_weight"), int | float)
    ]
    if kl:
        fig.add_trace(
            go.Scatter(
                x=[e for e, _ in kl],
                y=[w for _, w in kl],
                mode="lines",
                name="KL weight",
                line=dict(color=TRAIN_COLOR, dash="dot"),
            ),
            secondary_y=True,
        )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=f"validation {name} (higher is better)", secondary_y=False)
    fig.update_yaxes(title_text="KL weight", secondary_y=True)
    fig.update_layout(
        height=300, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.3)
    )
    return fig


# ---------------------------------------------------------------- the recommender (recommend page)
# Tableau's 20 colours: enough for MovieLens's 19 genres (and "no genre").
GROUP_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
                "#ff9da7", "#9c755f", "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6",
                "#8cd17d", "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#79706e")  # fmt: skip
PICKS_COLOR = "#ffd23f"
OTHER_COLOR = "#c8ced6"


def users_map(
    xy: np.ndarray,
    groups: Sequence[str],
    hover: Sequence[str],
    picks: np.ndarray | None = None,
    axis_share: Sequence[float] | None = None,
    *,
    picks_name: str = "your picks",
    max_groups: int = 8,
    height: int = 520,
) -> go.Figure:
    """Users as dots at 2-D positions (their z_mean's PCA), one trace per group, the biggest group
    first, with `hover` per user; groups beyond the `max_groups` biggest share one grey trace
    ("other"); then the picks' position as a star (trace `picks_name`)."""
    xy = np.atleast_2d(np.asarray(xy, dtype=np.float64)).reshape(-1, 2)
    groups = np.asarray([g or "no genre" for g in groups], dtype=object)
    hover = np.asarray([f"{t}<br>favourite: {g}" for t, g in zip(hover, groups, strict=True)],
                       dtype=object)  # fmt: skip
    names, counts = np.unique(groups, return_counts=True)
    names = list(names[np.argsort(-counts, kind="stable")])
    shown, rest = names[:max_groups], names[max_groups:]
    fig = go.Figure()
    for i, g in enumerate(shown + (["other"] if rest else [])):
        m = np.isin(groups, rest) if g == "other" and rest else groups == g
        color = OTHER_COLOR if g == "other" and rest else GROUP_COLORS[i % len(GROUP_COLORS)]
        fig.add_scatter(x=xy[m, 0], y=xy[m, 1], mode="markers", name=f"{g} ({m.sum()})",
                        text=hover[m], hovertemplate="%{text}<extra></extra>",
                        marker=dict(size=6, color=color, opacity=0.75))  # fmt: skip
    if picks is not None:
        p = np.atleast_2d(np.asarray(picks, dtype=np.float64))
        fig.add_scatter(x=p[:, 0], y=p[:, 1], mode="markers+text", name=picks_name,
                        text=[picks_name] * len(p), textposition="top center",
                        textfont=dict(size=14, color=HIGHLIGHT_COLOR),
                        marker=dict(symbol="star", size=20, color=PICKS_COLOR,
                                    line=dict(color=HIGHLIGHT_COLOR, width=1.5)),
                        hovertemplate="%{text}<extra></extra>")  # fmt: skip
    share = list(axis_share) if axis_share is not None else []
    for i, axis in enumerate(("x", "y")):
        title = f"principal axis {i + 1}" + (f" ({share[i]:.0%} of the spread)" if share else "")
        fig.update_layout({f"{axis}axis": dict(title=title, zeroline=False)})
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="#ffffff",
                      legend=dict(itemsizing="constant", title="favourite genre"))  # fmt: skip
    return fig


def rank_spread(
    labels: Sequence[str], items: np.ndarray, lists: np.ndarray, mean_items: np.ndarray
) -> go.Figure:
    """Where each of `items` (one row each, labelled, first on top) lands in K ranked `lists`
    (K, n): a dot per rank it takes, bigger the more lists put it there; a diamond at its rank in
    the z_mean list (`mean_items`, best first) when it is there."""
    lists = np.atleast_2d(np.asarray(lists))
    k, n = lists.shape
    rows = np.arange(len(items))
    xs, ys, sizes, texts = [], [], [], []
    for row, item in zip(rows, items, strict=True):
        ranks, counts = np.unique(np.nonzero(lists == item)[1] + 1, return_counts=True)
        for rank, count in zip(ranks, counts, strict=True):
            xs.append(int(rank))
            ys.append(int(row))
            sizes.append(8 + 22 * count / k)
            texts.append(f"{labels[row]}<br>rank {rank} in {count} of {k} lists")
    fig = go.Figure()
    fig.add_scatter(x=xs, y=ys, mode="markers", name=f"{k} lists from sampled z", text=texts,
                    hovertemplate="%{text}<extra></extra>",
                    marker=dict(size=sizes, color=TRAIN_COLOR, opacity=0.55))  # fmt: skip
    mean_items = list(np.asarray(mean_items))
    here = [(mean_items.index(item) + 1, int(row)) for row, item in zip(rows, items, strict=True)
            if item in mean_items]  # fmt: skip
    fig.add_scatter(x=[r for r, _ in here], y=[y for _, y in here], mode="markers",
                    name="the z = z_mean list", text=[labels[y] for _, y in here],
                    hovertemplate="%{text}<br>rank %{x} with z = z_mean<extra></extra>",
                    marker=dict(symbol="diamond-open", size=14, color=HIGHLIGHT_COLOR,
                                line=dict(width=2)))  # fmt: skip
    fig.update_xaxes(title="rank in the list (1 = top)", range=[0.4, n + 0.6], dtick=1)
    fig.update_yaxes(tickvals=list(rows), ticktext=[str(t) for t in labels], autorange="reversed",
                     title=None)  # fmt: skip
    fig.update_layout(height=80 + 26 * max(len(items), 1), margin=dict(l=10, r=10, t=10, b=10),
                      plot_bgcolor="#ffffff", legend=dict(orientation="h", y=-0.15))  # fmt: skip
    return fig


def composite_prior(
    grid: np.ndarray, parts: dict[str, np.ndarray], mixture: np.ndarray, mean: float, dim: int,
    height: int = 300,
) -> go.Figure:  # fmt: skip
    """RecVAE's prior along one latent dimension: each weighted part as a thin line, their sum
    (the prior) filled, and a dashed line where the last epoch's encoder put the user."""
    fig = go.Figure()
    fig.add_scatter(x=grid, y=mixture, name="the prior (their sum)", fill="tozeroy",
                    line=dict(color=TRAIN_COLOR, width=3))  # fmt: skip
    for (name, density), color in zip(parts.items(), GROUP_COLORS[1:], strict=False):
        fig.add_scatter(x=grid, y=density, name=name, line=dict(color=color, width=1.5))
    fig.add_vline(x=mean, line=dict(color=HIGHLIGHT_COLOR, dash="dash"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="#ffffff",
                      xaxis_title=f"z, dimension {dim}", yaxis_title="density",
                      legend=dict(orientation="h", y=-0.3))  # fmt: skip
    return fig
