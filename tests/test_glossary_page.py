"""The Glossary page: every word, found by a search that the address keeps (?q=), and complete
(the words issue 18 asks for, each page's help tips naming real entries, a plain sentence first)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app_pages import glossary
from app_pages.glossary import TERMS
from tests.apptest import open_app

ROOT = Path(__file__).resolve().parents[1]
# The words a newcomer meets that the glossary must explain (issue 18, 6, and the pages' texts).
REQUIRED = {
    "epoch",
    "batch size",
    "learning rate",
    "sigma",
    "logits",
    "Dense layer",
    "convolution layer",
    "MLP",
    "conditional VAE",
    "denoising autoencoder",
    "MNIST",
    "EASE",
    "NDCG",
    "Recall",
    "reconstruction",
    "encoder",
    "decoder",
    "latent space",
    "Mult-VAE",
}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")  # as the sidebar test counts sentences


def _shown_terms(at: AppTest) -> list[str]:
    """The terms the page shows, in order (each card starts with its term in bold)."""
    return [m.value.split("**")[1] for m in at.main.markdown if m.value.startswith("**")]


def _glossary(**params: str) -> AppTest:
    return open_app(glossary.PAGE, **params)


# ---------------------------------------------------------------- the texts
def test_the_required_words_are_explained():
    assert REQUIRED <= set(TERMS), REQUIRED - set(TERMS)
    assert len(TERMS) == sum(len(t) for t in glossary.TOPICS.values())  # no term in two topics


def test_every_entry_starts_with_a_plain_sentence():
    # "The logarithm of a variance" may follow, never open, an explanation.
    for term, text in TERMS.items():
        first = SENTENCE_END.split(text)[0]
        assert "logarithm" not in first.lower(), term
        assert "log(" not in first, term
    assert "logarithm" in TERMS["z_log_var"]  # ...and z_log_var still says what it is exactly


def _tip_arguments(path: Path) -> list[tuple[int, str | None]]:
    """(line, term) for every term a `glossary.tip(...)` call names; None for one it cannot read.

    `tip(*WORDS[key])` reads every string in the module-level WORDS table."""
    tree = ast.parse(path.read_text())
    tables = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "tip"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "glossary"
        ):
            continue
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.lineno, arg.value))
                continue
            name = arg.value.value if isinstance(arg, ast.Starred) else None
            while isinstance(name, ast.Subscript):
                name = name.value
            table = tables.get(name.id) if isinstance(name, ast.Name) else None
            if not isinstance(table, ast.Dict):
                found.append((node.lineno, None))
                continue
            for value in table.values:
                found += [
                    (node.lineno, c.value)
                    for c in ast.walk(value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                ]
    return found


def test_every_help_tip_names_a_glossary_entry():
    calls = {path.name: _tip_arguments(path) for path in sorted((ROOT / "app_pages").glob("*.py"))}
    named = [(f, line, term) for f, found in calls.items() for line, term in found]
    assert len({f for f, _, _ in named}) >= 4, "the scan found the pages' tips"
    unknown = [(f, line, term) for f, line, term in named if term not in TERMS]
    assert unknown == [], "tip() names a word the glossary lacks (None: not a string or table)"


# ---------------------------------------------------------------- the page
def test_the_page_lists_every_word_by_topic(empty_lab_home):
    at = _glossary()
    assert _shown_terms(at) == list(TERMS)
    assert [h.value for h in at.main.subheader] == list(glossary.TOPICS)
    cards = {m.value for m in at.main.markdown}
    assert all(f"**{term}**\n\n{text}" in cards for term, text in TERMS.items())


def test_the_search_narrows_the_list_and_says_when_nothing_matches(empty_lab_home):
    at = _glossary()
    at.text_input(key="q").input("SIGMA").run()
    shown = _shown_terms(at)
    assert shown[0] == "sigma"  # its own entry first, then those that mention it
    assert set(shown) == {t for t, text in TERMS.items() if "sigma" in f"{t} {text}".lower()}
    assert "z_log_var" in shown and "epoch" not in shown
    assert not at.main.info

    at.text_input(key="q").input("pixels stencils").run()  # every word, anywhere, any order
    assert _shown_terms(at) == ["convolution layer"]

    at.text_input(key="q").input("xylophone").run()
    assert _shown_terms(at) == []
    [note] = at.main.info
    assert "No word in the glossary mentions “xylophone”" in note.value

    at.text_input(key="q").input("").run()  # cleared: every word again
    assert _shown_terms(at) == list(TERMS)


def test_a_link_with_q_opens_the_glossary_searched(empty_lab_home):
    at = _glossary(q="epoch")
    assert at.text_input(key="q").value == "epoch"
    assert _shown_terms(at)[0] == "epoch"
    assert len(_shown_terms(at)) < len(TERMS)
