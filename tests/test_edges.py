"""Issue 20, loading/export/eval/validation half: each defect the audit found, as a test that failed before
the fix. Built on short runs of the ``tiny`` fixture architecture; everything stays local (HF_HUB_OFFLINE=1,
or the Hub stand-in on 127.0.0.1)."""
from __future__ import annotations

import gzip
import importlib.metadata as md
import json
import os
import shutil
import struct
import sys
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
import torch
from safetensors.torch import load_file, save_file

import ganzoo
import ganzoo.trainer
from ganzoo import eval as geval
from ganzoo import hub, plugins
from ganzoo.cli import main
from ganzoo.data import load_dataset
from ganzoo.errors import GanzooError, GanzooWarning
from ganzoo.trainer import TrainConfig, train

sys.path.insert(0, str(Path(__file__).parent))


# ---- fixtures ---------------------------------------------------------------------------------
pytestmark = pytest.mark.usefixtures("no_loss_plots")  # loss.png (~2 s a run) is not what these tests are about




def _idx(folder: Path, n: int = 16) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 10
    images = (torch.rand(n, 28, 28, generator=g) * 200).to(torch.uint8)
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.numpy().tobytes())
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels.to(torch.uint8).numpy().tobytes())
    return f"fashion-mnist:{folder}"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    return _idx(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="module")
def run(tiny_arch, data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(TrainConfig(arch="tiny", data=data, steps=2, seed=1, checkpoint_every=2), out, progress=False)
    return out


@pytest.fixture(scope="module")
def folder(run, tmp_path_factory) -> Path:
    return hub.export_model(run, tmp_path_factory.mktemp("models") / "tiny_model")


def _copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def _cli(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_cli_error(argv, capsys, match: str | None = None) -> str:
    try:
        rc, _, err = _cli(argv, capsys)
    except SystemExit as exc:  # argparse
        rc, err = exc.code, capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if not ln.startswith("ganzoo: warning:")]
    assert rc not in (0, None), err
    assert len(lines) == 1 and "Traceback" not in err, err
    if match:
        assert match in lines[0], lines[0]
    return lines[0]


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ---- 1. export --overwrite ----------------------------------------------------------------------
def test_export_overwrite_keeps_files_it_did_not_write(run, tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "thesis.tex").write_text("\\chapter{Results}")
    (out / "notes").mkdir()
    assert _cli(["export", run, out, "--overwrite"], capsys)[0] == 0
    assert (out / "thesis.tex").read_text() == "\\chapter{Results}" and (out / "notes").is_dir()
    assert (out / "config.json").is_file() and (out / "generator.safetensors").is_file()


def test_export_overwrite_drops_its_own_stale_training_state(run, tmp_path):
    out = hub.export_model(run, tmp_path / "m", training_state=True)
    assert (out / hub.TRAINING_STATE_FILE).is_file()
    hub.export_model(run, out, overwrite=True)
    assert not (out / hub.TRAINING_STATE_FILE).exists()  # it would be read with the new weights


@pytest.mark.parametrize("where", ["", "inside", "checkpoints/x"])
def test_export_into_its_own_run_is_refused_and_loses_nothing(tiny_arch, data, tmp_path, capsys, where):
    src = tmp_path / "run"
    train(TrainConfig(arch="tiny", data=data, steps=1, seed=1, checkpoint_every=1), src, progress=False)
    before = _tree(src)
    _one_line_cli_error(["export", src, src / where, "--overwrite"], capsys, "inside the run directory")
    assert _tree(src) == before and (src / "run.json").is_file()


def test_export_of_a_model_folder_onto_itself_is_refused(folder, tmp_path, capsys):
    own = _copy(folder, tmp_path / "own")
    before = _tree(own)
    _one_line_cli_error(["export", own, own, "--overwrite"], capsys, "inside the model folder")
    assert _tree(own) == before


# ---- 2. the statistics cache ----------------------------------------------------------------------
class FakeExtractor:
    name, suffix, has_logits, resize, description = "fake", "_fake", False, "none", "fake features"
    sha256 = "0" * 64
    dim = 8

    def __call__(self, u8):
        x = u8.flatten(1).float()
        return {"features": torch.cat([x[:, ::41][:, :6] / 255, x.mean(1, keepdim=True) / 255,
                                       x.std(1, keepdim=True) / 255], 1)}


def _stats_file(cache: Path) -> Path:
    (path,) = sorted((cache / "fid").glob("stats-*.pt"))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tamper(path: Path, how: str) -> None:
    if how == "bitflip":
        raw = bytearray(path.read_bytes())
        payload = torch.load(path, weights_only=True)
        # flip one bit inside sigma's storage (found by its bytes), so the file still unpickles
        needle = payload["sigma"].numpy().tobytes()[:64]
        at = bytes(raw).find(needle)
        assert at > 0
        raw[at + 3] ^= 0x10
        path.write_bytes(bytes(raw))
        return
    payload = torch.load(path, weights_only=True)
    if how == "mean":
        payload["mu"] = payload["mu"] + 10.0
    elif how == "nan":
        payload["sigma"][0, 0] = float("nan")
    elif how == "shape":
        payload["mu"] = payload["mu"][:3]
    elif how == "asymmetric":
        payload["sigma"][0, 1] += 1.0
    elif how == "legacy":  # a file written before checksums
        payload.pop("sha256")
    if how in ("nan", "shape", "asymmetric"):  # consistent checksum: the validation has to catch it
        from ganzoo.metrics.cache import content_sha256

        payload["sha256"] = content_sha256({k: v for k, v in payload.items() if k != "sha256"})
    torch.save(payload, path)


@pytest.mark.parametrize("how", ["mean", "bitflip", "nan", "shape", "asymmetric", "legacy"])
def test_bad_statistics_file_is_recomputed_with_one_warning(data, cache, how):
    ds = load_dataset(data, image_size=16, channels=1)
    first = geval.real_reference(ds, FakeExtractor(), stats=True, progress=False)
    path = _stats_file(cache)
    _tamper(path, how)
    with pytest.warns(GanzooWarning) as record:
        again = geval.real_reference(ds, FakeExtractor(), stats=True, progress=False)
    msgs = [str(r.message) for r in record if "feature cache" in str(r.message)]
    assert len(msgs) == 1 and str(path) in msgs[0] and "\n" not in msgs[0] and "recomputing" in msgs[0]
    assert again["cached"] == [] and again["images"] == len(ds)
    assert torch.equal(again["mu"], first["mu"]) and torch.equal(again["sigma"], first["sigma"])
    third = geval.real_reference(ds, FakeExtractor(), stats=True, progress=False)  # rewritten: good again
    assert third["cached"] == ["stats"]


def test_update_card_refuses_non_finite_metrics(tmp_path, capsys):
    folder = tmp_path / "m"
    folder.mkdir()
    cfg = {"architecture": "tiny", "arch_config": {}, "metrics": {"fid": 7.68}}
    (folder / "config.json").write_text(json.dumps(cfg))
    before = (folder / "config.json").read_bytes()
    result = {"metrics": {"fid": float("inf")}, "entries": [{"name": "fid", "value": float("inf")}]}
    with pytest.raises(GanzooError, match="fid = inf is not a finite number") as info:
        geval.update_model_folder(folder, result)
    assert "\n" not in str(info.value) and (folder / "config.json").read_bytes() == before


def test_cli_eval_update_card_force_with_inf_writes_nothing(folder, data, tmp_path, capsys, monkeypatch):
    own = _copy(folder, tmp_path / "own")
    before = _tree(own)
    real = geval.evaluate

    def inf_fid(*a, **k):
        res = real(*a, **k)
        for e in res["entries"]:
            if e["name"].startswith("fid"):
                e["value"] = float("inf")
        res["metrics"] = geval.flat_metrics(res["entries"])
        return res

    monkeypatch.setattr(geval, "evaluate", inf_fid)
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    err = _one_line_cli_error(["eval", own, "--data", data, "-n", "8", "--extractor", "fmnist", "--metrics", "fid",
                               "--update-card", "--force", "--quiet"], capsys, "not a finite number")
    assert "Infinity" not in err and _tree(own) == before
    json.loads((own / "config.json").read_text())


# ---- 3. names: the catalog before an unverified local folder --------------------------------------
def _catalog(tmp_path, monkeypatch, name, folder, *, repo="org/tiny", revision="0" * 40, embed=True) -> Path:
    cat = tmp_path / "catalog" / "catalog.json"
    hub.add_catalog_entry(name, folder, repo=repo, revision=revision, catalog=cat, embed=embed)
    monkeypatch.setenv(hub.CATALOG_ENV, str(cat))
    return cat


def _other_model(run, dest: Path) -> Path:
    """A model folder with other weights than ``folder``'s (the generator scaled)."""
    out = hub.export_model(run, dest)
    g = load_file(str(out / "generator.safetensors"))
    save_file({k: (v * 0.5 if v.is_floating_point() else v) for k, v in g.items()}, str(out / "generator.safetensors"))
    return out


def test_a_local_folder_named_like_a_catalog_entry_does_not_shadow_it(run, folder, tmp_path, monkeypatch):
    _catalog(tmp_path, monkeypatch, "tiny_cat", folder)
    monkeypatch.chdir(tmp_path)
    _other_model(run, tmp_path / "tiny_cat")
    pinned = hub.load(folder)
    with pytest.warns(GanzooWarning, match=r"both a catalog model and a local path \./tiny_cat: loading the catalog"):
        G = ganzoo.load("tiny_cat")
    assert _same(G, pinned)
    local = ganzoo.load("./tiny_cat")  # looks like a path: the folder
    assert not _same(local, pinned)
    assert _same(ganzoo.load(Path("tiny_cat")), local)  # a Path object is a local path


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_local_folder_named_like_a_hub_id_is_loaded_with_a_warning_and_hf_prefix_goes_to_the_hub(
        run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _other_model(run, tmp_path / "org" / "name")
    with pytest.warns(GanzooWarning, match=r"local folder \./org/name .*write hf://org/name"):
        ganzoo.load("org/name")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(GanzooError, match="HF_HUB_OFFLINE"):  # the Hub (here: its cache), not the folder
        ganzoo.load("hf://org/name")


# ---- 4. revisions and repo ids ---------------------------------------------------------------------------
@pytest.mark.parametrize("ref, kw", [
    ("org/name@../../../X", {}),
    ("org/name@..", {}),
    ("org/name@a/../../b", {}),
    ("org/name", {"revision": "../../etc"}),
    ("org/name", {"revision": "/abs"}),
    ("org/name", {"revision": "main.lock"}),
    ("org/name", {"revision": ".hidden"}),
    ("org/name", {"revision": "a b"}),
    ("org/name", {"revision": "a//b"}),
    ("org/na..me", {}),
    ("org/-name", {}),
    ("org/name--x", {}),
])
def test_bad_revisions_and_repo_ids_are_refused_before_any_download(standin, ref, kw):
    with pytest.raises(GanzooError) as info:
        ganzoo.load(ref, **kw)
    assert "\n" not in str(info.value) and ("revision" in str(info.value) or "Hub id" in str(info.value)
                                            or "repo" in str(info.value).lower())
    assert standin.log == []  # nothing was asked of the Hub


@pytest.fixture
def standin(hub_standin):
    return hub_standin  # conftest's Hub stand-in, under this module's name


def test_a_good_revision_still_downloads(standin, folder):
    commit = standin.commit("org/tiny", folder)
    assert ganzoo.load(f"org/tiny@{commit}") is not None
    assert ganzoo.load("org/tiny", revision="main") is not None


def test_revision_other_than_the_pinned_one_is_not_served_from_the_embedded_copy(folder, tmp_path, monkeypatch):
    _catalog(tmp_path, monkeypatch, "tiny_cat", folder, embed=True)
    ganzoo.load("tiny_cat")  # the embedded copy, at the pinned revision
    ganzoo.load("tiny_cat", revision="0" * 40)  # the pinned revision itself: embedded
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.warns(GanzooWarning, match="not the catalog's pinned"), \
            pytest.raises(GanzooError, match=r"org/tiny@v2.*HF_HUB_OFFLINE"):
        ganzoo.load("tiny_cat", revision="v2")


# ---- 5. plugins that exit on import ------------------------------------------------------------------------
@pytest.mark.parametrize("body, shown", [
    ("raise SystemExit(0)", "SystemExit: 0"),
    ("import sys\nsys.exit('bye')", "SystemExit: bye"),
    ("class Odd(BaseException):\n    pass\nraise Odd('odd')", "Odd: odd"),
])
def test_a_plugin_that_exits_on_import_is_reported_and_skipped(tmp_path, monkeypatch, capsys, body, shown):
    mod = tmp_path / "ganzoo_exiter_plugin.py"
    mod.write_text(body + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = md.EntryPoint(name="exiter", value="ganzoo_exiter_plugin", group="ganzoo")
    real = md.entry_points

    def eps(**kw):
        found = list(real(**kw))
        return found + [ep] if kw.get("group") == "ganzoo" else found

    monkeypatch.setattr(plugins.md, "entry_points", eps)
    plugins.reset()
    try:
        rc, out, err = _cli(["list"], capsys)
        assert rc == 0 and "architectures:" in out
        assert f"plugin 'exiter'" in err and shown in err
        rc, out, _ = _cli(["plugins"], capsys)
        assert rc == 0 and "FAILED" in out and shown in out
    finally:
        sys.modules.pop("ganzoo_exiter_plugin", None)
        plugins.reset()


# ---- 6. data: corrupt images and symlink loops ---------------------------------------------------------------
def _png(path: Path, value: int) -> None:
    from PIL import Image

    Image.new("L", (8, 8), value).save(path)


def test_unreadable_images_are_named_in_a_warning(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(4):
        _png(root / f"ok{i}.png", 40 * i)
    (root / "bad1.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "bad2.jpg").write_bytes(b"")
    with pytest.warns(GanzooWarning, match=r"skipped 2 unreadable image file\(s\) of 6 \(first: .*bad1\.jpg") as rec:
        ds = load_dataset(f"folder:{root}", image_size=8, channels=1)
    assert len(ds) == 4 and all("\n" not in str(r.message) for r in rec)


def test_the_cli_prints_the_warning_as_one_line(tmp_path, capsys):
    from ganzoo import cli

    with cli._one_line_warnings(False):
        import warnings

        warnings.warn("a\nb", GanzooWarning)
    assert capsys.readouterr().err == "ganzoo: warning: a b\n"


def test_a_symlink_loop_is_walked_once(tmp_path):
    root = tmp_path / "imgs"
    (root / "cls" / "sub").mkdir(parents=True)
    for i in range(5):
        _png(root / "cls" / ("sub" if i % 2 else "") / f"{i}.png", 50 * i)
    os.symlink("..", root / "cls" / "sub" / "loop")  # sub/loop -> cls
    os.symlink(str(root / "cls"), root / "cls" / "again")
    ds = load_dataset(f"folder:{root}", image_size=8, channels=1)
    assert len(ds) == 5


# ---- 7. weights: non-finite, integer, pickled state ------------------------------------------------------------
@pytest.mark.parametrize("part", ["generator", "discriminator"])
@pytest.mark.parametrize("how", ["nan", "inf", "int", "bool"])
def test_bad_weights_are_refused_naming_the_file(folder, tmp_path, part, how):
    bad = _copy(folder, tmp_path / "bad")
    f = bad / f"{part}.safetensors"
    state = load_file(str(f))
    key = next(k for k, v in state.items() if v.is_floating_point())
    v = state[key]
    state[key] = {"nan": v.clone().fill_(float("nan")), "inf": v.clone().fill_(float("inf")),
                  "int": v.to(torch.int32), "bool": v > 0}[how]
    save_file(state, str(f))
    with pytest.raises(GanzooError, match=rf"{part}\.safetensors.*{key}") as info:
        ganzoo.load(bad, discriminator=True)
    assert "\n" not in str(info.value)


def test_sampling_a_nan_run_fails(run, tmp_path, capsys):
    nan_run = _copy(run, tmp_path / "nan_run")
    ckpt = max((nan_run / "checkpoints").iterdir())
    f = ckpt / "generator.safetensors"
    state = {k: (v.clone().fill_(float("nan")) if v.is_floating_point() else v) for k, v in load_file(str(f)).items()}
    save_file(state, str(f))
    out = tmp_path / "s.png"
    _one_line_cli_error(["sample", nan_run, "-n", "2", "-o", out], capsys, "NaN/inf")
    assert not out.exists()


def test_pickled_training_state_is_one_line(run, tmp_path, capsys):
    r = _copy(run, tmp_path / "r")
    ckpt = max((r / "checkpoints").iterdir())

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"opt_g": Evil(), "opt_d": {}}, ckpt / "trainer_state.pt")
    out = tmp_path / "m"
    err = _one_line_cli_error(["export", r, out, "--training-state"], capsys, "trainer_state.pt")
    assert "pwned" not in err and not out.exists()


# ---- 8. config.json fields --------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, match", [
    ("width", -4, "width = -4: must be a whole number from 1"),
    ("width", 0, "width = 0: must be a whole number from 1"),
    ("width", "8", "width = '8': must be a whole number"),
    ("width", 8.5, "must be a whole number"),
    ("width", True, "must be a whole number"),
    ("width", None, "must be a whole number"),
    ("width", 10 ** 9, "needs about"),
    ("dropout", "nan", "must be a number"),
    ("dropout", -0.5, "must be a number >= 0"),
    ("batchnorm", "yes", "must be true or false"),
    ("latent_dim", [8], "must be a whole number"),
])
def test_config_fields_are_checked_against_the_dataclass(folder, tmp_path, field, value, match):
    bad = _copy(folder, tmp_path / "bad")
    cfg = json.loads((bad / "config.json").read_text())
    cfg["arch_config"][field] = value
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GanzooError, match=match) as info:
        ganzoo.load(bad)
    assert "\n" not in str(info.value)


def test_non_finite_float_field_in_config_json(folder, tmp_path):
    bad = _copy(folder, tmp_path / "bad")
    text = (bad / "config.json").read_text().replace('"dropout": 0.0', '"dropout": NaN')
    assert "NaN" in text
    (bad / "config.json").write_text(text)
    with pytest.raises(GanzooError, match="dropout = nan: must be a finite number"):
        ganzoo.load(bad)


def test_a_deeply_nested_config_json_is_one_line(folder, tmp_path, capsys):
    bad = _copy(folder, tmp_path / "bad")
    (bad / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    _one_line_cli_error(["sample", bad, "-n", "1", "-o", tmp_path / "x.png"], capsys, "nested too deeply")
    assert not (tmp_path / "x.png").exists()


def test_unknown_architecture_in_a_downloaded_config_does_not_say_pip_install(standin, folder, tmp_path):
    bad = _copy(folder, tmp_path / "bad")
    cfg = json.loads((bad / "config.json").read_text())
    cfg["architecture"], cfg["plugin"] = "evil", {"distribution": "evil-pkg --index-url http://x", "version": "1"}
    (bad / "config.json").write_text(json.dumps(cfg))
    standin.commit("org/evil", bad)
    with pytest.raises(GanzooError, match="'evil' is not installed") as info:
        ganzoo.load("org/evil")
    msg = str(info.value)
    assert "pip install" not in msg and "evil-pkg" not in msg and "tiny" in msg and "writing-a-plugin" in msg
    # a local folder (the user's own) keeps the install hint, for a well-formed distribution name only
    cfg["plugin"] = {"distribution": "ganzoo-evil", "version": "1.0"}
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GanzooError, match=r"pip install ganzoo-evil==1\.0"):
        ganzoo.load(bad)


# ---- 9. CLI numbers and output paths ------------------------------------------------------------------------------
def test_sample_n_beyond_memory_gives_the_estimate(folder, tmp_path, capsys):
    out = tmp_path / "x.png"
    err = _one_line_cli_error(["sample", folder, "-n", "1000000000", "-o", out], capsys, "-n 1000000000 needs about")
    assert " GB" in err and not out.exists()


@pytest.mark.parametrize("output", ["afile/x.png", "adir", "/proc/x.png", "/proc/self/x/y.png"])
def test_sample_output_paths_checked_before_work(folder, tmp_path, capsys, monkeypatch, output):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("keep")
    (tmp_path / "adir.png").mkdir() if output == "adir" else None
    target = "adir.png" if output == "adir" else output
    calls = []
    monkeypatch.setattr(hub, "load", lambda *a, **k: calls.append(a))
    _one_line_cli_error(["sample", folder, "-o", target], capsys)
    assert calls == [] and (tmp_path / "afile").read_text() == "keep"


def test_export_to_an_unwritable_place_is_refused_before_work(run, tmp_path, capsys):
    (tmp_path / "afile").write_text("keep")
    _one_line_cli_error(["export", run, tmp_path / "afile" / "m"], capsys, "is a file")
    _one_line_cli_error(["export", run, "/proc/ganzoo-model"], capsys, "cannot create files")


def test_a_class_folders_link_to_the_dataset_root_adds_no_images(tmp_path):
    """`b/loop -> ..` points at the dataset root: walking it put class a's images (and b's) into class b."""
    root = tmp_path / "imgs"
    for c, n in (("a", 2), ("b", 2)):
        (root / c).mkdir(parents=True)
        for i in range(n):
            _png(root / c / f"{i}.png", 60 * i)
    os.symlink("..", root / "b" / "loop")
    ds = load_dataset(f"folder:{root}", image_size=8, channels=1)
    assert len(ds) == 4 and sorted(ds.labels.tolist()) == [0, 0, 1, 1]
