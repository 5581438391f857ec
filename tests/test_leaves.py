"""The leaf modules the trainer and the hub share: the run folder's record, the device, precision,
and io's atomic-write family, pickle refusal and version; and that the hub never imports the trainer."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import ganzoo
from ganzoo import device, io, precision, runfolder
from ganzoo.errors import GanzooError


# ---- io: the atomic-write family ---------------------------------------------------------------
def test_atomic_folder_replaces_the_folder_whole(tmp_path):
    final = tmp_path / "ckpt" / "step-1"
    final.mkdir(parents=True)
    (final / "old.txt").write_text("old")
    with io.atomic_folder(final, tmp_name=".tmp-step-1") as tmp:
        assert tmp.name == ".tmp-step-1" and tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "a.txt").write_text("new")
        assert (final / "old.txt").exists()  # nothing visible until the block ends
    assert sorted(p.name for p in final.iterdir()) == ["a.txt"]
    assert sorted(p.name for p in final.parent.iterdir()) == ["step-1"]  # no temporary or moved-aside folder


def test_atomic_folder_leaves_the_old_one_on_error(tmp_path):
    final = tmp_path / "step-2"
    final.mkdir()
    (final / "keep.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        with io.atomic_folder(final) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("killed midway")
    assert [p.name for p in tmp_path.iterdir()] == ["step-2"] and (final / "keep.txt").read_text() == "keep"


def test_staging_folder_is_removed_afterwards(tmp_path):
    out = tmp_path / "model"
    with io.staging_folder(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".model.")
        (tmp / "x").write_text("x")
    assert not tmp.exists() and not out.exists()


@pytest.mark.parametrize("name", ["w.bin", "w.pt", "w.PTH", "w.ckpt", "z.pkl", "z.pickle"])
def test_refuse_pickle_one_list_for_weights_and_latents(tmp_path, name):
    with pytest.raises(GanzooError, match=r"refusing pickled weights .*safetensors"):
        io.refuse_pickle(tmp_path / name)
    from ganzoo import latent  # its latent files use the same list, with their own fix

    with pytest.raises(GanzooError, match=r"refusing pickled latents .*\.npy"):
        latent._refuse_pickle(tmp_path / name)
    io.refuse_pickle(tmp_path / "w.safetensors")  # not a pickle: no error


def test_version_is_the_packages():
    assert io.version() == ganzoo.__version__
    assert io.version("no-such-distribution-ganzoo-test") == "unknown"


# ---- the run folder ----------------------------------------------------------------------------
def _run(tmp_path, **meta):
    run = tmp_path / "run"
    (run / "checkpoints" / "step-00000004").mkdir(parents=True)
    (run / "checkpoints" / "step-00000004" / runfolder.TRAINER_STATE).write_bytes(b"")
    (run / "run.json").write_text(json.dumps({"train": {"arch": "tiny", "data": "folder:x", "betas": [0.5, 0.9]},
                                              "resolved": {"class_names": ["a", "b"]}, **meta}))
    return run


def test_read_run_is_a_typed_record(tmp_path):
    run = _run(tmp_path, command="ganzoo train tiny", metrics={"fid": 1.5})
    rec = runfolder.read_run(run)
    assert isinstance(rec.train, runfolder.TrainConfig) and rec.train.arch == "tiny"
    assert rec.train.betas == (0.5, 0.9) and rec.class_names == ["a", "b"]
    assert rec.command == "ganzoo train tiny" and rec.metrics == {"fid": 1.5} and rec.resume_changes == []
    assert runfolder.load_run(run) == rec.train
    assert runfolder.latest_checkpoint(run).name == runfolder.checkpoint_name(4)
    assert runfolder.run_ref(run) == (run, None)
    ckpt = run / "checkpoints" / "step-00000004"
    assert runfolder.run_ref(ckpt) == (run, ckpt) and runfolder.checkpoint_step(ckpt) == 4


def test_read_run_errors_are_one_line(tmp_path):
    with pytest.raises(GanzooError, match="no run.json"):
        runfolder.read_run(tmp_path)
    run = _run(tmp_path)
    (run / "run.json").write_text(json.dumps({"train": {"arch": "tiny", "data": "x", "no_such_option": 1},
                                              "resolved": {}}))
    assert runfolder.read_run(run).train.arch == "tiny"  # unknown keys of a newer ganzoo are dropped
    (run / "run.json").write_text(json.dumps({"train": {"data": "x"}}))
    with pytest.raises(GanzooError, match="'train' section does not fit"):
        runfolder.read_run(run)


# ---- device and precision ----------------------------------------------------------------------
def test_devices():
    assert device.load_device(None) == torch.device("cpu")  # a loaded model: the CPU unless asked
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.resolve_device(None).type == want and device.resolve_device("auto").type == want
    with pytest.raises(GanzooError, match="--device tpu: use auto, cpu"):
        device.resolve_device("tpu")


def test_one_autocast_helper():
    with precision.autocast("cpu", False):
        assert not torch.is_autocast_enabled("cpu")
    with precision.autocast(torch.device("cpu"), True):
        assert torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert isinstance(precision.bf16_supported("cpu"), bool)


# ---- the import graph's direction ---------------------------------------------------------------
def test_the_hub_does_not_import_the_trainer():
    code = "import sys, ganzoo.hub; print(sorted(m for m in sys.modules if m in ('ganzoo.trainer', 'ganzoo.demo')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    from ganzoo import hub, trainer

    assert hub.finetune is trainer.finetune  # still reachable under its old name


# ---- the hub's container through huggingface_hub's own from_pretrained ---------------------------
def test_mixin_from_pretrained_loads_training_state_only_when_asked(tiny_plugin, tmp_path, monkeypatch):
    """The mixin passes config.json's fields on to _from_pretrained, among them "training_state" (the
    file's name): that must not switch loading the optimizer state on."""
    from ganzoo import hub

    monkeypatch.setattr(hub.model, "save_grid", lambda *a, **k: None)  # samples.png: not tested here
    G, D = ganzoo.create("tiny")
    config = {"architecture": "tiny", "arch_config": G.gan_config.to_dict(), "name": "t"}
    hub.GANModel(G, D, config=config, training_state={"objective": {"k": torch.tensor(0.5)}, "step": 3}
                 ).save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["training_state"] == hub.TRAINING_STATE_FILE
    plain = hub.GANModel.from_pretrained(str(tmp_path / "m"))
    assert plain.training_state is None and plain.D is not None and not plain.G.training
    full = hub.GANModel.from_pretrained(str(tmp_path / "m"), training_state=True)
    assert full.training_state["step"] == 3 and float(full.training_state["objective"]["k"]) == 0.5
    assert hub.load_model(tmp_path / "m", discriminator=False).D is None  # ganzoo's own loads: the same hook


def test_ganmodel_from_pretrained_takes_a_catalog_name_offline(monkeypatch):
    """The mixin's own from_pretrained would ask the Hub for a catalog name's config.json first (offline: a
    LocalEntryNotFoundError traceback); GANModel sends such refs to its loading hook directly."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from ganzoo import hub

    model = hub.GANModel.from_pretrained("dcgan_fashion", discriminator=False)
    assert model.arch_name == "dcgan" and model.D is None
    assert model.G.sample(2, seed=0).shape == (2, 1, 32, 32)
