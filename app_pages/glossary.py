"""The words VAE Lab uses, each in one or two sentences a non-programmer understands.

One place for the texts: the Glossary page (app_pages/words.py) lists them all, grouped by topic and
searchable, and pages put the same words in their help tips (`tip("PSNR", "SSIM")`) where the term
appears. The sidebar links to the Glossary page (`link()`). Not a page itself.
"""

from __future__ import annotations

import streamlit as st

PAGE = "app_pages/words.py"  # the Glossary page's script, as app.py registers it
LINK_LABEL = "Glossary: the words used here"

# topic -> {term -> its explanation}. A plain sentence comes first; the exact, technical wording (if
# any) second. Topics in the order a newcomer meets them.
TOPICS: dict[str, dict[str, str]] = {
    "The model and its parts": {
        "autoencoder": "A model that squeezes a picture into a few numbers and then redraws the "
        "picture from them. It learns by comparing each redrawing with the original.",
        "VAE": "A variational autoencoder: an autoencoder that gives each digit a small cloud of "
        "likely codes instead of one point. Because all codes stay near a known shape (the prior), "
        "random codes decode into new digits.",
        "encoder": "The half of the model that reads a picture and turns it into a few numbers, "
        "its latent code. In a VAE it gives two outputs: z_mean and z_log_var.",
        "decoder": "The half of the model that draws a picture from a latent code. Generating new "
        "digits means handing it codes that no real digit gave.",
        "latent code": "The few numbers the encoder turns a digit into (also called z). "
        "The decoder draws a picture from them.",
        "latent space": "All the codes a model can give, as a space: every digit is a point in it. "
        "With two numbers per code it is a flat map, where similar digits land close together.",
        "reconstruction": "The model's redrawing of a picture after the trip through encoder and "
        "decoder. The reconstruction loss measures how far it is from the original.",
        "Dense layer": "A layer in which every output number is a weighted mix of all its input "
        "numbers, then bent by a simple rule (an activation). Also called a fully connected layer.",
        "MLP": "A multi-layer perceptron: a few Dense layers one after the other, the simplest "
        "kind of network. The basic VAE here uses one as encoder and one as decoder.",
        "convolution layer": "A layer that slides small learned stencils (3 × 3 pixels, say) over a "
        "picture, finding the same stroke or edge wherever it is. It suits pictures better than a "
        "Dense layer and needs fewer numbers.",
        "shapes": "A shape like (None, 64) says what a layer passes on: None means 'any number of "
        "digits at once' and 64 is how many numbers each digit becomes. (None, 28, 28, 1) is a batch "
        "of 28 × 28 grey pictures.",
        "conditional VAE": "A VAE that is also told which digit it sees, when encoding and when "
        "decoding. Its code then only holds the style (slant, thickness), so it can draw any digit "
        "in the style of yours.",
        "denoising autoencoder": "An autoencoder trained on spoiled pictures (speckles, missing "
        "pixels, fog) to redraw the clean ones. It learns what noise looks like and leaves it out.",
        "logits": "Raw scores a network gives before they become chances: any number, and larger "
        "means more likely. The decoder gives one per pixel (or per movie); a sigmoid or softmax "
        "turns them into chances between 0 and 1.",
    },
    "Inside a VAE": {
        "z_mean": "The centre of the small cloud of codes the encoder gives a digit: its best guess "
        "of where the digit belongs in the latent space.",
        "z_log_var": "How unsure the encoder is about each number of a digit's code: large means a "
        "wide cloud of possible codes, small a narrow one. Exactly: the logarithm of the cloud's "
        "variance, so sigma = exp(z_log_var / 2).",
        "sigma": "The width of the cloud of codes the encoder gives a digit, one width per latent "
        "number. The app computes it from z_log_var as sigma = exp(z_log_var / 2).",
        "eps": "Epsilon: a random number from the bell curve N(0, 1), drawn fresh for every sample. "
        "The Sampling layer makes z = z_mean + sigma × eps, so the randomness sits outside the "
        "part that learns.",
        "sampling": "Drawing a code z at random from the encoder's cloud, z = z_mean + sigma × eps. "
        "A VAE samples while it trains, and uses z_mean itself when it predicts.",
        "prior": "What a VAE assumes codes look like before it has seen any digit: usually a round "
        "bell curve around 0. New digits are made by drawing a code from it and decoding that code.",
        "N(0, I)": "The standard bell curve in several dimensions: every latent number is drawn on its "
        "own, centred on 0 with a spread of 1. It is the VAE's prior.",
        "mixture prior": "A prior made of several bell curves (Gaussians) instead of one, so each kind "
        "of digit can keep a place of its own in the latent space. A draw first picks one of the "
        "Gaussians, then a point in it.",
    },
    "Training": {
        "MNIST": "A collection of 70,000 small pictures of handwritten digits 0 to 9, each 28 × 28 "
        "grey pixels. It is the classic first data set for picture models: 60,000 to train on, "
        "10,000 to test.",
        "binarized MNIST": "MNIST with every pixel made pure black or white (drawn with a chance "
        "equal to its grey level). Research papers report log-likelihoods on it, so a model can be "
        "compared with theirs.",
        "test digits": "Digits kept aside while a model trains and used only to score it "
        "afterwards. A good score on them shows it learned digits in general, not its training "
        "pictures by heart.",
        "epoch": "One pass through all the training examples. Training for 20 epochs means the "
        "model has seen every training digit 20 times.",
        "batch size": "How many examples the model looks at before it takes one learning step. "
        "Bigger batches give fewer, steadier steps per epoch; smaller ones more, noisier steps.",
        "learning rate": "How big a step the model takes each time it corrects its numbers. Too "
        "big and the loss jumps about; too small and learning crawls.",
        "loss": "The number training tries to make smaller: how badly the model does. A VAE's loss "
        "is the reconstruction loss plus the KL term, the −ELBO.",
        "beta": "How much the KL term counts in the loss. 1 is the true VAE; less gives sharper "
        "redrawings, more a tidier latent space.",
        "KL": "The Kullback-Leibler divergence measures how far the encoder's cloud of codes for a "
        "digit is from the prior (N(0, I), or a mixture). Training keeps it small, so codes stay "
        "where the decoder knows its way.",
        "ELBO": "The evidence lower bound: the score a VAE learns to raise, 'how well it redraws the "
        "digit' minus the KL term. The app shows −ELBO, the loss, in nats: lower is better.",
        "nats": "The unit the losses are counted in: how surprised the model is by a digit, so "
        "fewer is better. One nat is about 1.44 bits (nats count with natural logarithms).",
    },
    "How likely a digit is": {
        "log-likelihood": "How likely the model finds a digit, written log p(x) and counted in "
        "nats: the closer to 0, the more likely. It is what a generative model is judged by, but a "
        "VAE can only estimate it.",
        "importance sampling": "Estimating log p(x) by drawing K codes z from the encoder's cloud for "
        "a digit and weighing how well each one explains the digit. One sample gives the ELBO; "
        "more samples give a better estimate, closer to log p(x).",
        "bound": "A number guaranteed to be on one side of another. The ELBO is a lower bound on "
        "log p(x): the true value is at least the ELBO, and the gap shows how far the encoder's "
        "guess about each digit's code is from the best one.",
    },
    "Exploring and generating": {
        "PCA": "Principal component analysis turns a cloud of many-numbered codes so that a flat map "
        "shows the two directions in which they spread most. It only changes the view, not the "
        "model.",
        "temperature": "A dial for random codes drawn from the prior: 0 gives the average digit "
        "every time, 1 draws as the model learned, and above 1 reaches rarer, stranger places.",
        "manifold": "A grid of digits the decoder draws from evenly spaced points of a 2-D latent "
        "map. It shows at a glance how one digit blends into the next.",
        "spherical interpolation": "A walk between two codes along an arc instead of a straight line "
        "(often called slerp). It keeps the length of the code steady, so the middle of the walk is "
        "not pulled towards the faint average digit at 0.",
    },
    "Scores for pictures": {
        "PSNR": "Peak signal-to-noise ratio, in decibels (dB): how close a picture is to the "
        "original, pixel by pixel. Higher is closer; every 3 dB more is about half the error.",
        "SSIM": "Structural similarity compares strokes, contrast and local patterns the way an eye "
        "does rather than single pixels. 1 means the same picture; near 0 means unrelated ones.",
    },
    "Recommending movies": {
        "Mult-VAE": "A VAE for recommendations: it reads the movies a person liked and gives every "
        "movie a chance of being liked next. Mult stands for multinomial: all movies share one "
        "total chance.",
        "RecVAE": "Mult-VAE's successor: a deeper encoder, and a prior that remembers where the "
        "last round of training put each person, so their code does not wander. It is the "
        "recommender VAE Lab ships.",
        "MovieLens": "Real movie ratings collected by the GroupLens research group, free for "
        "research. The shipped RecVAE learned from ml-latest-small, about 100,000 ratings.",
        "held-out users": "People whose ratings the model never trained on. Part of each one's list "
        "is hidden, and the scores say how well the model finds the hidden movies.",
        "Recall": "Of the movies a person liked that were hidden from the model, the share found "
        "in its top list. Recall@20 = 0.4 means 40 % of them were among its first 20 suggestions.",
        "NDCG": "Like Recall, but a find counts more the higher up the list it is, so a liked movie "
        "in first place beats one in twentieth. 1 means the best possible order (normalized "
        "discounted cumulative gain).",
        "EASE": "A simple, strong recommender that learns from everyone's lists how much liking "
        "one movie points to liking another. It is the yardstick the VAEs are measured against.",
        "popularity": "The simplest recommender: it suggests the movies most people liked, the "
        "same list for everyone. Any real recommender should beat it.",
    },
}
# term -> its explanation, in the Glossary page's order.
TERMS: dict[str, str] = {term: text for terms in TOPICS.values() for term, text in terms.items()}


def tip(*terms: str) -> str:
    """The help text for the named terms, each as '**term**: explanation' on its own line."""
    return "\n\n".join(f"**{term}**: {TERMS[term]}" for term in terms)


def matches(query: str) -> list[str]:
    """The terms whose name or explanation holds every word of `query` (any case); those whose
    name holds it come first, as a reader who types a word wants that word's own entry on top."""
    words = query.lower().split()
    found = [t for t, text in TERMS.items() if all(w in f"{t} {text}".lower() for w in words)]
    return sorted(found, key=lambda t: not all(w in t.lower() for w in words))


def link() -> None:
    """A link to the Glossary page; the sidebar shows it on every page."""
    st.page_link(PAGE, label=LINK_LABEL, icon=":material/menu_book:")
