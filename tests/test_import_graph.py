"""Imports run one way: no two modules import each other (directly or round a longer circle), and the
layers go app.py -> app_pages -> vae_core, never back. Every import counts, at the top of a file, inside
a function (lazy) or under TYPE_CHECKING: each one is a dependency a reader has to follow."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vae_core", "app_pages", "benchmarks")
# Circles tolerated for now: none. (The last, runs <-> store, ended when "which run is training now"
# got its own module, vae_core.training_now, which both ask.) Any circle that comes back fails.
KNOWN: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports, wherever in the file the import statement is."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            # `from pkg import mod` imports the module pkg.mod when there is one.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(group)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_one_that_imports_it_back():
    circles = [c for c in _circles(_graph()) if frozenset(c) not in KNOWN]
    assert circles == [], f"import circles: {[sorted(c) for c in circles]}"


def test_the_layers_import_downwards_only():
    graph = _graph()
    up = {
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if (a.startswith("vae_core") and (b.startswith("app_pages") or b == "app"))
        or (a.startswith("app_pages") and b == "app")
    }
    assert up == set()


def test_the_graph_sees_lazy_and_type_only_imports():
    # The finder itself: a circle through a function-level import or a TYPE_CHECKING block counts.
    graph = _graph()
    assert "vae_core.recsys.movielens" in graph["vae_core.data"]  # inside `available()`
    assert "vae_core.run_context" in graph["vae_core.watch"]  # under TYPE_CHECKING
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


# ---------------------------------------------------------------- what the pages write
# Debian's Chromium (what a demo machine often runs) has no colour-emoji font: emoji show as empty
# boxes. Pages use Streamlit's Material icons (":material/...:") or words instead.
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f]")


def test_no_page_writes_an_emoji():
    found = []
    for path in [ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if EMOJI.search(node.value):
                    found.append(f"{path.name}:{node.lineno}: {node.value[:40]!r}")
    assert found == []
