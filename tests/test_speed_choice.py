"""The fast sampler's measured choice (ganzoo.speed): candidates, the cached decision, a corrupt
cache, explicit options and measurement off. Timings are injected through the one seam,
``speed.time_candidates``, so nothing here depends on the machine's speed."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

import ganzoo
from ganzoo import speed


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANZOO_SPEED_MEASURE", raising=False)
    return tmp_path / "cache" / "speed" / "choices.json"


@pytest.fixture
def timings(monkeypatch):
    """Replace the timer: ``timings.table`` maps a variant name to its seconds per call (names
    not in it take 1 s); ``timings.calls`` records each measurement's candidate names. The
    candidates still run once each, as the real timer's warm-up does."""
    class Fake:
        def __init__(self):
            self.table: dict[str, float] = {}
            self.calls: list[list[str]] = []

        def __call__(self, fns, device, **kw):
            for fn in fns.values():
                fn()
            self.calls.append(sorted(fns))
            return {n: self.table.get(n, 1.0) for n in fns}

    fake = Fake()
    monkeypatch.setattr(speed, "time_candidates", fake)
    return fake


def _G(tiny_plugin, **kw):
    torch.manual_seed(0)
    return ganzoo.create("tiny", **kw)[0].eval()


EAGER = speed.Variant(rewrite=False, channels_last=False, bf16=False)


def test_candidates_always_hold_the_eager_fp32_baseline_and_bf16_only_where_native(tiny_plugin, monkeypatch):
    G = _G(tiny_plugin)
    monkeypatch.setattr(speed, "bf16_supported", lambda device: False)
    names = {v.name for v in speed.sampler_candidates(G, torch.device("cpu"), bf16=None, channels_last=None, rewrite=None)}
    assert names == {"eager-nchw-fp32", "rewritten-nchw-fp32", "rewritten-channels_last-fp32"}
    monkeypatch.setattr(speed, "bf16_supported", lambda device: True)
    cands = speed.sampler_candidates(G, torch.device("cpu"), bf16=None, channels_last=None, rewrite=None)
    assert EAGER in cands and len(cands) == 5
    assert cands[0] == speed.Variant(True, True, True)          # the default: the old fixed choice
    # an explicit option fixes its dimension; all three given: one candidate
    fixed = speed.sampler_candidates(G, torch.device("cpu"), bf16=False, channels_last=False, rewrite=True)
    assert fixed == [speed.Variant(True, False, False)]
    mlp_like = torch.nn.Sequential(torch.nn.Linear(4, 4))
    assert {v.channels_last for v in speed.sampler_candidates(mlp_like, torch.device("cpu"), bf16=False,
                                                              channels_last=None, rewrite=None)} == {False}


def test_the_choice_is_measured_once_cached_and_reused(tiny_plugin, cache, timings):
    G = _G(tiny_plugin)
    timings.table = {"eager-nchw-fp32": 0.004, "rewritten-nchw-fp32": 0.003, "rewritten-channels_last-fp32": 0.002}
    z = torch.randn(3, G.latent_dim)
    s = speed.fast_sampler(G, bf16=False, threads=None)
    out = s(z)
    assert (out - G.sample(3, z=z)).abs().max() < 1e-5
    assert len(timings.calls) == 1 and s.variant_for(3).name == "rewritten-channels_last-fp32"
    assert s.decisions[4]["how"] == "measured"
    data = json.loads(cache.read_text())
    (entry,) = data["choices"].values()
    assert entry["variant"] == "rewritten-channels_last-fp32" and entry["batch_bucket"] == 4
    assert set(entry["seconds_per_call"]) == set(timings.table)
    s(z)
    s(torch.randn(4, G.latent_dim))                 # same bucket (3 and 4 -> 4): no new measurement
    assert len(timings.calls) == 1
    # a new sampler (as a new process would build): read from the cache, not timed again
    s2 = speed.fast_sampler(G, bf16=False, threads=None)
    s2(z)
    assert len(timings.calls) == 1 and s2.decisions[4]["how"] == "cached"
    assert s2.variant_for(3).name == "rewritten-channels_last-fp32"
    assert any("cached" in n for n in s2.notes)
    # another batch bucket, or another model size: measured (and cached) on its own
    s2(torch.randn(16, G.latent_dim))
    assert len(timings.calls) == 2 and len(json.loads(cache.read_text())["choices"]) == 2
    speed.fast_sampler(_G(tiny_plugin, width=4), bf16=False, threads=None)(z)
    assert len(timings.calls) == 3 and len(json.loads(cache.read_text())["choices"]) == 3


def test_a_slower_candidate_is_not_chosen(tiny_plugin, cache, timings):
    G = _G(tiny_plugin)
    z = torch.randn(2, G.latent_dim)
    # the rewritten variants slower than the original network: the original is used
    timings.table = {"eager-nchw-fp32": 0.001, "rewritten-nchw-fp32": 0.0011, "rewritten-channels_last-fp32": 0.005}
    s = speed.fast_sampler(G, bf16=False, threads=None)
    out = s(z)
    assert s.variant_for(2) == EAGER and s.module is s._src
    assert (out - G.sample(2, z=z)).abs().max() < 1e-6
    # and the other way round (a fresh cache key: another batch bucket)
    timings.table = {"eager-nchw-fp32": 0.01, "rewritten-nchw-fp32": 0.002, "rewritten-channels_last-fp32": 0.005}
    s(torch.randn(8, G.latent_dim))
    assert s.variant_for(8).name == "rewritten-nchw-fp32"
    assert s.variant_for(2) == EAGER                 # each bucket keeps its own decision


def test_a_corrupt_cache_is_ignored_with_a_warning_and_rewritten(tiny_plugin, cache, timings):
    G = _G(tiny_plugin)
    cache.parent.mkdir(parents=True)
    cache.write_text('{"version": 1, "choices": {"abc": ')      # a torn write from elsewhere
    timings.table = {"eager-nchw-fp32": 0.001}
    s = speed.fast_sampler(G, bf16=False, threads=None)
    with pytest.warns(RuntimeWarning, match="ignoring the unreadable choice cache"):
        s(torch.randn(2, G.latent_dim))
    assert s.variant_for(2) == EAGER and len(timings.calls) == 1
    data = json.loads(cache.read_text())                          # rewritten, valid
    assert data["version"] == speed.CHOICE_VERSION and len(data["choices"]) == 1
    # valid JSON of the wrong shape: the same
    cache.write_text("[1, 2, 3]")
    with pytest.warns(RuntimeWarning, match="not a version-1 choice file"):
        speed.fast_sampler(G, bf16=False, threads=None)(torch.randn(2, G.latent_dim))
    assert len(json.loads(cache.read_text())["choices"]) == 1 and len(timings.calls) == 2
    # and no temporary files left beside it (atomic writes)
    assert [p.name for p in cache.parent.iterdir()] == ["choices.json"]


def test_explicit_options_and_measure_off_win(tiny_plugin, cache, timings, monkeypatch):
    G = _G(tiny_plugin)
    z = torch.randn(2, G.latent_dim)
    timings.table = {"eager-nchw-fp32": 0.0001}                    # would win if measured
    s = speed.fast_sampler(G, bf16=False, channels_last=True, rewrite=True, threads=None)
    s(z)
    assert s.variant_for(2) == speed.Variant(True, True, False) and not timings.calls
    s = speed.fast_sampler(G, bf16=False, measure=False, threads=None)
    s(z)
    assert s.variant_for(2) == speed.Variant(True, True, False) and not timings.calls
    assert s.decisions[2]["how"] == "given"
    monkeypatch.setenv("GANZOO_SPEED_MEASURE", "0")
    s = speed.fast_sampler(G, bf16=False, threads=None)
    s(z)
    assert s.variant_for(2).rewrite and not timings.calls and not cache.exists()
    # one dimension fixed, the others measured: the fixed one is never changed
    monkeypatch.delenv("GANZOO_SPEED_MEASURE")
    s = speed.fast_sampler(G, bf16=False, channels_last=False, threads=None)
    s(z)
    assert timings.calls == [["eager-nchw-fp32", "rewritten-nchw-fp32"]]
    assert not s.variant_for(2).channels_last


def test_real_timer_measures_every_candidate_and_leaves_a_failing_one_out():
    calls = {"a": 0, "b": 0}

    def a():
        calls["a"] += 1

    def b():
        calls["b"] += 1

    def broken():
        raise RuntimeError("no kernel")

    with pytest.warns(RuntimeWarning, match="candidate broken failed"):
        t = speed.time_candidates({"a": a, "b": b, "broken": broken}, torch.device("cpu"), rounds=3, max_s=0.5)
    assert set(t) == {"a", "b"} and all(v >= 0 for v in t.values())
    assert calls["a"] >= 1 + 1 + 3                 # warm-up, first estimate, 3 rounds


def test_sample_fast_uses_the_measured_choice(tiny_plugin, cache, timings):
    G = _G(tiny_plugin)
    timings.table = {"eager-nchw-fp32": 0.001}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = G.sample(5, seed=1, fast=True)
    assert (a - G.sample(5, seed=1)).abs().max() < 1e-5
    assert len(timings.calls) == 1 and json.loads(cache.read_text())["choices"]


def test_a_rewrite_that_changes_nothing_is_not_timed_against_the_original(tiny_plugin, cache, timings, monkeypatch):
    monkeypatch.setattr(speed, "_INFERENCE_PASSES", [])   # nothing to rewrite (as for an untraceable G)
    G = _G(tiny_plugin)
    s = speed.fast_sampler(G, bf16=False, threads=None)
    s(torch.randn(2, G.latent_dim))
    assert timings.calls == [["eager-nchw-fp32", "rewritten-channels_last-fp32"]]
