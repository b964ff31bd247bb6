"""The pages' shared model cache keeps the heap out of the garbage collector's full sweeps."""

from __future__ import annotations

import gc
import weakref

from app_pages import shared
from vae_core.models import ModelBundle


class _Node:
    """Something with a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


def test_settle_heap_freezes_what_is_alive_and_frees_cycles_it_froze_before():
    kept, dropped = _Node(), _Node()
    dropped_ref = weakref.ref(dropped)
    shared.settle_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 1000
    tracked = {id(o) for o in gc.get_objects()}
    assert id(kept) not in tracked and id(dropped) not in tracked  # a full sweep skips them
    # `dropped` becomes garbage while frozen (as an evicted model does): the next settle frees it.
    del dropped
    gc.collect()
    assert dropped_ref() is not None, "frozen objects are not collected"
    shared.settle_heap()
    assert dropped_ref() is None
    assert id(kept) not in {id(o) for o in gc.get_objects()}


def test_loading_a_model_through_the_cache_settles_the_heap(lab_home, monkeypatch):
    calls = []
    monkeypatch.setattr(shared, "settle_heap", lambda: calls.append("settled"))
    shared._load.clear()
    try:
        entry = shared.store().get("mlp_vae")
        bundle = shared.load_bundle(entry)
        assert isinstance(bundle, ModelBundle) and bundle.spec.kind == "mlp_vae"
        assert calls == ["settled"]
        assert shared.load_bundle(entry) is bundle  # cached: no second load, no second settle
        assert calls == ["settled"]
    finally:
        shared._load.clear()
