"""Glossary: every word VAE Lab uses, in a sentence or two, grouped by topic and searchable.

The search box is bound to the address (?q=...), so a link can open the glossary on one word.
The texts are app_pages/glossary.py's, the same the pages' help tips show.
"""

import streamlit as st

from app_pages import glossary

COLUMNS = 2  # entries side by side: short lines read better than one wide column


def entries(terms: list[str]) -> None:
    """The terms as cards, row by row, so the cards of a row line up."""
    for start in range(0, len(terms), COLUMNS):
        for col, term in zip(st.columns(COLUMNS), terms[start : start + COLUMNS], strict=False):
            with col.container(border=True, height="stretch"):  # a row's cards end level
                st.markdown(f"**{term}**\n\n{glossary.TERMS[term]}")


st.title("Glossary")
st.caption(
    "The words used on these pages, each explained in a sentence or two. The same explanations "
    "appear in the help tips (the small question marks) next to each word where it is used."
)

# Bound to the address: ?q=sigma opens here with "sigma" searched, and typing updates the address.
query = st.text_input(
    "Search the glossary",
    key="q",
    bind="query-params",
    type="search",
    live=True,
    placeholder="a word or part of a sentence, e.g. sigma, epoch or movies",
    icon=":material/search:",
).strip()

if not query:
    for topic, terms in glossary.TOPICS.items():
        st.subheader(topic)
        entries(list(terms))
else:
    found = glossary.matches(query)
    if found:
        st.caption(f"{len(found)} of {len(glossary.TERMS)} words mention “{query}”.")
        entries(found)
    else:
        st.info(
            f"No word in the glossary mentions “{query}”. Try a shorter or different word, or "
            "clear the search to see them all.",
            icon=":material/search_off:",
        )
