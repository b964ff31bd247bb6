"""The words VAE Lab uses, each in one or two sentences a non-programmer understands.

One place for the texts: the sidebar's glossary lists them all, and pages put the same words in
their help tips (`tip("PSNR", "SSIM")`) where the term appears. Not a page itself.
"""

from __future__ import annotations

import streamlit as st

# term -> its explanation; the order is the glossary's (roughly: what a reader meets first).
TERMS: dict[str, str] = {
    "latent code": "The few numbers the encoder turns a digit into (also called z). "
    "The decoder draws a picture from them.",
    "z_mean": "The centre of the small cloud of codes the encoder gives a digit: its best guess "
    "of where the digit belongs in the latent space.",
    "z_log_var": "The encoder's second output: how unsure it is about each latent number, stored "
    "as the logarithm of a variance. The spread sigma = exp(z_log_var / 2) is the width of the "
    "cloud that z is drawn from.",
    "eps": "Epsilon: a random number from the bell curve N(0, 1), drawn fresh for every sample. "
    "The Sampling layer makes z = z_mean + sigma × eps, so the randomness sits outside the "
    "part that learns.",
    "shapes": "A shape like (None, 64) says what a layer passes on: None means 'any number of "
    "digits at once' and 64 is how many numbers each digit becomes. (None, 28, 28, 1) is a batch "
    "of 28 × 28 grey pictures.",
    "prior": "What a VAE assumes codes look like before it has seen any digit: usually a round "
    "bell curve around 0. New digits are made by drawing a code from it and decoding that code.",
    "mixture prior": "A prior made of several bell curves (Gaussians) instead of one, so each kind "
    "of digit can keep a place of its own in the latent space. A draw first picks one of the "
    "Gaussians, then a point in it.",
    "N(0, I)": "The standard bell curve in several dimensions: every latent number is drawn on its "
    "own, centred on 0 with a spread of 1. It is the VAE's prior.",
    "KL": "The Kullback-Leibler divergence measures how far the encoder's cloud of codes for a "
    "digit is from the prior (N(0, I), or a mixture). Training keeps it small, so codes stay where the decoder "
    "knows its way.",
    "ELBO": "The evidence lower bound: the score a VAE learns to raise, 'how well it redraws the "
    "digit' minus the KL term. The app shows −ELBO, the loss, in nats: lower is better.",
    "log-likelihood": "log p(x): how likely the model finds a digit, in nats (closer to 0 is "
    "more likely). It is what a generative model is judged by, but a VAE cannot compute it "
    "exactly; it estimates it.",
    "importance sampling": "Estimating log p(x) by drawing K codes z from the encoder's cloud for "
    "a digit and weighing how well each one explains the digit. One sample gives the ELBO; "
    "more samples give a better estimate, closer to log p(x).",
    "bound": "A number guaranteed to be on one side of another. The ELBO is a lower bound on "
    "log p(x): the true value is at least the ELBO, and the gap shows how far the encoder's "
    "guess about each digit's code is from the best one.",
    "binarized MNIST": "MNIST with every pixel made pure black or white (drawn with a chance "
    "equal to its grey level). Research papers report log-likelihoods on it, so a model can be "
    "compared with theirs.",
    "nats": "The unit of the losses: how surprised the model is by a digit, counted with natural "
    "logarithms (1 nat is about 1.44 bits). Fewer nats means the model explains the digit better.",
    "PCA": "Principal component analysis turns a cloud of many-numbered codes so that a flat map "
    "shows the two directions in which they spread most. It only changes the view, not the model.",
    "temperature": "A dial for random codes drawn from the prior: 0 gives the average digit every "
    "time, 1 draws as the model learned, and above 1 reaches rarer, stranger places.",
    "spherical interpolation": "A walk between two codes along an arc instead of a straight line "
    "(often called slerp). It keeps the length of the code steady, so the middle of the walk is "
    "not pulled towards the faint average digit at 0.",
    "PSNR": "Peak signal-to-noise ratio, in decibels (dB): how close a picture is to the original, "
    "pixel by pixel. Higher is closer; every 3 dB more is about half the error.",
    "SSIM": "Structural similarity compares strokes, contrast and local patterns the way an eye "
    "does rather than single pixels. 1 means the same picture; near 0 means unrelated ones.",
}


def tip(*terms: str) -> str:
    """The help text for the named terms, each as '**term**: explanation' on its own line."""
    return "\n\n".join(f"**{term}**: {TERMS[term]}" for term in terms)


def render() -> None:
    """The whole glossary in one expander (the sidebar puts it on every page), written only when
    it is open: every click on every page would otherwise send all its entries again."""
    box = st.expander(
        "Glossary: the words used here",
        icon=":material/menu_book:",
        key="sb_glossary",
        on_change="rerun",
    )
    if box.open:
        with box:
            for term, text in TERMS.items():
                st.markdown(f"**{term}**: {text}")
