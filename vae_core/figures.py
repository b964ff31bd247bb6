"""Plotly figures as pure functions of numpy arrays and dicts: testable without a browser."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

LOSS_TERMS = {"loss": "Total", "reconstruction_loss": "Reconstruction", "kl_loss": "KL"}
TRAIN_COLOR, VAL_COLOR = "#3b6ea8", "#d9822b"


def image_figure(image: np.ndarray, title: str = "", height: int = 320) -> go.Figure:
    """A grayscale image (2-D, values in [0, 1]) as a heatmap with square pixels and no axes."""
    img = np.asarray(image, dtype=np.float32)
    fig = go.Figure(go.Heatmap(z=img[::-1], colorscale="gray", zmin=0, zmax=1, showscale=False,
                               hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>"))  # fmt: skip
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(
        title=title or None, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0)
    )
    return fig


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
        fig.add_scatter(x=[x_of(r) for r in steps], y=[r[term] for r in steps], mode="lines",
                        name="train (running)", line=dict(color=TRAIN_COLOR, width=1), opacity=0.5)  # fmt: skip
    train_epochs = [r for r in epochs if term in r]
    if train_epochs:
        fig.add_scatter(x=[r["epoch"] for r in train_epochs], y=[r[term] for r in train_epochs],
                        mode="lines+markers", name="train (epoch)", line=dict(color=TRAIN_COLOR))  # fmt: skip
    val = [r for r in epochs if f"val_{term}" in r]
    if val:
        fig.add_scatter(x=[r["epoch"] for r in val], y=[r[f"val_{term}"] for r in val],
                        mode="lines+markers", name="validation", line=dict(color=VAL_COLOR, dash="dot"))  # fmt: skip
    fig.update_layout(title=f"{label} loss (nats per image)", height=280, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="epoch", legend=dict(orientation="h", y=-0.25))  # fmt: skip
    return fig
