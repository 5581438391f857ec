"""Released models: model folders, loading, the catalog, downloads through a local Hub stand-in,
publishing and fine-tuning. Everything is built from short runs of the ``tiny`` fixture architecture."""
from __future__ import annotations

import gzip
import json
import shutil
import struct
import sys
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors import safe_open

import ganzoo
import ganzoo.trainer
from ganzoo import hub
from ganzoo.cli import main
from ganzoo.errors import GanzooError
from ganzoo.trainer import TrainConfig, latest_checkpoint, train

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib leaves tests/ off sys.path

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


# ---- fixtures: one tiny run and its model folder for the whole module -------------------------
pytestmark = pytest.mark.usefixtures("no_loss_plots")  # loss.png (~2 s a run) is not what these tests are about




@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    """Fashion-MNIST-style IDX files: 32 train, 8 test images of a bar whose height is the class."""
    folder = tmp_path_factory.mktemp("fmnist")
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 32), ("t10k", 8)):
        labels = torch.arange(n) % 10
        images = (torch.rand(n, 28, 28, generator=g) * 40).to(torch.uint8)
        for i, lab in enumerate(labels.tolist()):
            images[i, 4 + 2 * lab: 10 + 2 * lab, 6:20] = 230
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.numpy().tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + labels.to(torch.uint8).numpy().tobytes())
    return f"fashion-mnist:{folder}"


@pytest.fixture(scope="module")
def run(tiny_arch, data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(TrainConfig(arch="tiny", data=data, steps=2, seed=1, arch_config={"num_classes": 10}), out, progress=False)
    return out


@pytest.fixture(scope="module")
def folder(run, tmp_path_factory) -> Path:
    return hub.export_model(run, tmp_path_factory.mktemp("models") / "tiny_fashion", training_state=True,
                            metrics={"fid": 123.4})


@pytest.fixture(scope="module")
def folder_bf16(run, tmp_path_factory) -> Path:
    return hub.export_model(run, tmp_path_factory.mktemp("models") / "tiny_bf16", generator_dtype="bfloat16")



def _catalog(tmp_path, monkeypatch, name, folder, *, repo="org/tiny", revision="0" * 40, embed=False) -> Path:
    cat = tmp_path / "catalog" / "catalog.json"
    hub.add_catalog_entry(name, folder, repo=repo, revision=revision, catalog=cat, embed=embed)
    monkeypatch.setenv(hub.CATALOG_ENV, str(cat))
    return cat


def _params(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


def _one_line_error(fn, match: str) -> str:
    with pytest.raises(GanzooError, match=match) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg, msg
    return msg


# ---- model folders ----------------------------------------------------------------------------
def test_model_folder_layout_config_and_card(folder):
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", "config.json", "discriminator.safetensors", "generator.safetensors",
                     "loss.png", "samples.png", "training_log.jsonl", "training_state.safetensors"]
    # the run's learning curves travel with the model, up to the exported checkpoint, and the card shows them
    log = [json.loads(l) for l in (folder / "training_log.jsonl").read_text().splitlines()]
    assert log and log[-1]["step"] == 2 and "loss_d" in log[-1]
    assert "![learning curves](loss.png)" in (folder / "README.md").read_text()
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == "tiny" and cfg["plugin"]["distribution"]
    assert cfg["arch_config"] == {"image_size": 16, "channels": 1, "latent_dim": 8, "num_classes": 10,
                                  "width": 8, "dropout": 0.0, "batchnorm": True}
    assert cfg["image_shape"] == [1, 16, 16] and cfg["latent_dim"] == 8 and cfg["num_classes"] == 10
    assert cfg["class_names"] == FASHION and cfg["pixel_range"] == [-1.0, 1.0]
    t = cfg["training"]
    assert t["steps"] == 2 and t["hardware"] and t["command"] and t["wall_time_s"] is not None
    # the card's receipt names the CPU model (not just x86_64) and the dtype the run computed in
    assert t["hardware"].startswith(f"CPU {ganzoo.device.cpu_model()} (") and "thread" in t["hardware"]
    assert t["bf16"] in (True, False)
    row = "| precision | bf16 autocast |" if t["bf16"] else "| precision | fp32 |"
    assert row in (folder / "README.md").read_text()
    assert t["objective"] == "nonsaturating" and t["batch_size"] == 4
    assert cfg["lineage"] is None
    assert cfg["weights"]["generator"] == {"file": "generator.safetensors", "dtype": "float32"}
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "ganzoo" and card.data.license == "mit"
    assert card.data.datasets == ["zalando-datasets/fashion_mnist"] and "ganzoo" in card.data.tags
    assert card.data.metrics == ["fid"]
    assert "ganzoo.load(" in card.text and "Zalando" in card.text and "123.4" in card.text


def test_load_folder_equals_run(run, folder):
    G_run = ganzoo.load(run)
    G = ganzoo.load(folder)
    assert not G.training and _same(G, G_run)
    assert torch.equal(G.sample(8, seed=0), G_run.sample(8, seed=0))
    assert G.class_names == FASHION and G.arch_name == "tiny" and G.gan_config.num_classes == 10
    assert G.model_info == json.loads((folder / "config.json").read_text())
    G2, D = ganzoo.load(folder, discriminator=True)
    assert isinstance(D, ganzoo.Discriminator) and not D.training and D.class_names == FASHION
    G_run2, D_run = ganzoo.load(run, discriminator=True)
    assert _same(D, D_run)


def test_bf16_generator_is_upcast(folder, folder_bf16):
    with safe_open(str(folder_bf16 / "generator.safetensors"), "pt") as f:
        assert f.get_tensor("net.0.weight").dtype == torch.bfloat16
    assert json.loads((folder_bf16 / "config.json").read_text())["weights"]["generator"]["dtype"] == "bfloat16"
    G16, G32 = ganzoo.load(folder_bf16), ganzoo.load(folder)
    assert all(p.dtype == torch.float32 for p in G16.parameters())
    assert torch.allclose(G16.sample(8, seed=0), G32.sample(8, seed=0), atol=0.05)


def test_bad_folders_give_one_line_errors(folder, tmp_path, capsys):
    def broken(name):
        bad = tmp_path / name
        shutil.copytree(folder, bad)
        return bad

    bad = broken("truncated")
    data = (bad / "generator.safetensors").read_bytes()
    (bad / "generator.safetensors").write_bytes(data[: len(data) // 2])
    _one_line_error(lambda: ganzoo.load(bad), r"generator\.safetensors is not a readable safetensors file \(truncated")

    bad = broken("arch")
    cfg = json.loads((bad / "config.json").read_text())
    cfg["architecture"], cfg["plugin"] = "nosuch", {"distribution": "ganzoo-nosuch", "version": "1.2"}
    (bad / "config.json").write_text(json.dumps(cfg))
    _one_line_error(lambda: ganzoo.load(bad), r"'nosuch'.*pip install ganzoo-nosuch==1\.2")

    bad = broken("shape")
    cfg = json.loads((bad / "config.json").read_text())
    cfg["arch_config"]["width"] = 16
    (bad / "config.json").write_text(json.dumps(cfg))
    _one_line_error(lambda: ganzoo.load(bad), r"generator\.safetensors.*has shape .* expects")

    bad = broken("missing")
    (bad / "discriminator.safetensors").unlink()
    ganzoo.load(bad)  # the generator alone is fine
    _one_line_error(lambda: ganzoo.load(bad, discriminator=True), r"missing discriminator\.safetensors.*ganzoo export")

    bad = broken("pickle")
    torch.save(ganzoo.load(folder).state_dict(), bad / "generator.bin")
    (bad / "generator.safetensors").unlink()
    _one_line_error(lambda: ganzoo.load(bad), r"refusing pickled weights 'generator\.bin'")
    _one_line_error(lambda: ganzoo.load(bad / "generator.bin"), r"refusing pickled weights")

    _one_line_error(lambda: ganzoo.load(tmp_path), r"neither a model folder")
    _one_line_error(lambda: ganzoo.load("no_such_model"), r"unknown model 'no_such_model'")

    # the CLI prints the same as one line and exits 2
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "shape"), "-n", "2", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganzoo: error: ") and err.count("\n") == 1 and "has shape" in err


# ---- the catalog, embedded folders, the CLI ------------------------------------------------------
def test_a_checkpoint_of_a_run_loads_and_exports_like_the_run_did_at_that_step(tiny_arch, data, tmp_path):
    from safetensors.torch import load_file

    run = tmp_path / "r"
    train(TrainConfig(arch="tiny", data=data, steps=3, seed=1, arch_config={"num_classes": 10}, checkpoint_every=1,
                      log_every=1, keep_checkpoints=10), run, progress=False)
    ckpt = run / "checkpoints" / "step-00000002"
    G = ganzoo.load(ckpt)
    want = load_file(ckpt / "generator.safetensors")
    assert all(torch.equal(G.state_dict()[k].cpu(), v) for k, v in want.items())
    assert not _same(G, ganzoo.load(run))  # the run itself loads its latest checkpoint, step 3
    folder = hub.export_model(ckpt, tmp_path / "at2")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["training"]["steps"] == 2 and cfg["training"]["checkpoint"] == "step-00000002"
    assert cfg["name"] == "at2" and (folder / "loss.png").exists()
    steps = [json.loads(line)["step"] for line in (folder / "training_log.jsonl").read_text().splitlines()]
    assert steps and max(steps) == 2  # the curves stop at the exported checkpoint
    assert main(["sample", str(ckpt), "-n", "2", "-o", str(tmp_path / "x.png")]) == 0
    # a checkpoint folder moved out of its run is not a model: a one-line error says what is
    loose = tmp_path / "loose"
    shutil.copytree(ckpt, loose)
    _one_line_error(lambda: ganzoo.load(loose), r"neither a model folder .* nor a run directory .* or one of its checkpoints")


def test_the_weights_license_defaults_to_the_data_license_given(run, tmp_path):
    cc = hub.export_model(run, tmp_path / "cc", data_license="cc-by-4.0", data_attribution="the test's shapes")
    assert json.loads((cc / "config.json").read_text())["license"] == "cc-by-4.0"
    assert "license: cc-by-4.0" in (cc / "README.md").read_text()
    mit = hub.export_model(run, tmp_path / "mit", license="mit", data_license="cc-by-4.0")
    assert json.loads((mit / "config.json").read_text())["license"] == "mit"
    # re-exporting a folder keeps its license
    again = hub.export_model(cc, tmp_path / "again")
    assert json.loads((again / "config.json").read_text())["license"] == "cc-by-4.0"


def test_cli_export_catalog_embedded_sample(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # the embedded copy needs no network
    out = tmp_path / "models" / "tiny_fashion"
    assert main(["export", str(run), str(out), "--name", "tiny_fashion", "--metric", "fid=9.5",
                 "--data-attribution", "shapes drawn by the test"]) == 0
    assert json.loads((out / "config.json").read_text())["metrics"] == {"fid": 9.5}
    assert main(["export", str(run), str(out)]) == 2  # refuses to overwrite
    # exported before the entry existed, the card names the folder; `catalog add` makes it name the entry
    assert "ganzoo sample tiny_fashion " not in (out / "README.md").read_text()
    cat = tmp_path / "catalog.json"
    capsys.readouterr()
    assert main(["catalog", "add", "tiny_fashion", str(out), "--repo", "org/tiny", "--revision", "a" * 40,
                 "--catalog", str(cat)]) == 0
    assert "rebuilt" in capsys.readouterr().err
    card = (out / "README.md").read_text()
    assert "ganzoo sample tiny_fashion " in card and str(out) not in card and "fid" in card
    entry = json.loads(cat.read_text())["models"]["tiny_fashion"]
    assert entry["embedded"] == "models/tiny_fashion" and entry["revision"] == "a" * 40
    for name in ("generator.safetensors", "README.md"):
        assert entry["files"][name] == hub.file_sha256(out / name)
    assert main(["catalog", "add", "tiny_fashion", str(out), "--repo", "org/tiny", "--revision", "a" * 40,
                 "--catalog", str(cat), "--description", "tiny shapes"]) == 0
    assert "rebuilt" not in capsys.readouterr().err  # an up-to-date card is left as it is
    assert main(["catalog", "add", "tiny_fashion", str(out), "--repo", "org/tiny", "--revision", "b" * 40,
                 "--catalog", str(cat)]) == 0  # re-pinning keeps the entry's one-line description
    assert json.loads(cat.read_text())["models"]["tiny_fashion"]["description"] == "tiny shapes"
    monkeypatch.setenv(hub.CATALOG_ENV, str(cat))
    capsys.readouterr()
    assert main(["list", "--pretrained"]) == 0
    line = capsys.readouterr().out
    assert "tiny_fashion" in line and "tiny" in line and "1x16x16" in line and "embedded" in line
    assert ganzoo.list_pretrained() == ["tiny_fashion"]
    png = tmp_path / "grid.png"
    assert main(["sample", "tiny_fashion", "-n", "4", "-o", str(png), "--label", "coat"]) == 0
    assert png.stat().st_size > 0
    G = ganzoo.load("tiny_fashion")
    assert _same(G, ganzoo.load(run)) and G.class_names == FASHION
    # a changed embedded file is caught and named
    g = out / "generator.safetensors"
    g.write_bytes(g.read_bytes()[:-4] + b"\0\0\0\0")
    _one_line_error(lambda: ganzoo.load("tiny_fashion"), r"tiny_fashion: generator\.safetensors \(embedded\).*sha256")
    _one_line_error(lambda: ganzoo.load("tiny_fashoin"), r"did you mean 'tiny_fashion'")


# ---- downloads through the Hub stand-in ---------------------------------------------------------
def test_download_cache_hit_and_revision_pin(hub_standin, folder, folder_bf16, tmp_path, monkeypatch):
    v1 = hub_standin.commit("org/tiny", folder)
    v2 = hub_standin.commit("org/tiny", folder_bf16)  # main moves on
    _catalog(tmp_path, monkeypatch, "tiny_fashion", folder, revision=v1)
    G = ganzoo.load("tiny_fashion")
    assert _same(G, ganzoo.load(folder))
    assert hub_standin.count("GET", "generator.safetensors") == 1
    assert hub_standin.count("GET", "discriminator.safetensors") == 0  # only what is asked for
    before = len(hub_standin.log)
    G, D = ganzoo.load("tiny_fashion", discriminator=True)
    assert hub_standin.count("GET", "generator.safetensors") == 1  # cache hit: no second GET
    assert hub_standin.count("GET", "discriminator.safetensors") == 1
    ganzoo.load("tiny_fashion")
    assert len(hub_standin.log) == before + 2  # pinned commit, all cached: only D's HEAD + GET above
    # a Hub id follows the branch; @revision pins
    assert _same(ganzoo.load("org/tiny"), ganzoo.load(folder_bf16))
    assert _same(ganzoo.load(f"org/tiny@{v1}"), ganzoo.load(folder))
    assert _same(ganzoo.load("org/tiny", revision=v1), ganzoo.load(folder))  # as hf_hub_download's revision=
    assert ganzoo.load(f"org/tiny@{v2}").model_info["weights"]["generator"]["dtype"] == "bfloat16"


def test_offline_warm_and_cold_cache(hub_standin, folder, tmp_path, monkeypatch):
    v1 = hub_standin.commit("org/tiny", folder)
    _catalog(tmp_path, monkeypatch, "tiny_fashion", folder, revision=v1)
    ganzoo.load("tiny_fashion")
    ganzoo.load("org/tiny")
    n = len(hub_standin.log)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    assert _same(ganzoo.load("tiny_fashion"), ganzoo.load(folder))
    ganzoo.load("org/tiny")  # a branch resolves through the cached ref
    assert len(hub_standin.log) == n
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "cold"))
    msg = _one_line_error(lambda: ganzoo.load("tiny_fashion"), r"not in the Hugging Face cache.*HF_HUB_OFFLINE=1")
    assert "config.json" in msg


def test_unknown_repo_and_revision(hub_standin, folder):
    hub_standin.commit("org/tiny", folder)
    _one_line_error(lambda: ganzoo.load("org/nothing"), r"repository 'org/nothing' not found on the Hub")
    _one_line_error(lambda: ganzoo.load("org/tiny@nope"), r"revision 'nope' not found in org/tiny")


def test_sha256_mismatch_names_the_file(hub_standin, folder, tmp_path, monkeypatch):
    v1 = hub_standin.commit("org/tiny", folder)
    cat = _catalog(tmp_path, monkeypatch, "tiny_fashion", folder, revision=v1)
    data = json.loads(cat.read_text())
    data["models"]["tiny_fashion"]["files"]["generator.safetensors"] = "0" * 64
    cat.write_text(json.dumps(data))
    _one_line_error(lambda: ganzoo.load("tiny_fashion"),
                    r"tiny_fashion: generator\.safetensors \(downloaded\) has sha256 .* catalog pins 0000")


def test_truncated_downloads(hub_standin, folder, tmp_path, monkeypatch):
    v1 = hub_standin.commit("org/tiny", folder)
    # a file served whole but truncated at the source: caught by the hash, or by safetensors
    hub_standin.truncate[("org/tiny", "generator.safetensors")] = 200
    _catalog(tmp_path, monkeypatch, "tiny_fashion", folder, revision=v1)
    _one_line_error(lambda: ganzoo.load("tiny_fashion"), r"generator\.safetensors \(downloaded\) has sha256")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "cache2"))
    _one_line_error(lambda: ganzoo.load("org/tiny"), r"generator\.safetensors is not a readable safetensors file"
                                                      r".*removed from the Hugging Face cache")
    hub_standin.truncate.clear()
    assert _same(ganzoo.load("org/tiny"), ganzoo.load(folder))  # the bad copy was evicted: this downloads afresh
    assert _same(ganzoo.load("tiny_fashion"), ganzoo.load(folder))
    # a transfer that stops early: fewer bytes than announced
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "cache3"))
    hub_standin.cut[("org/tiny", "discriminator.safetensors")] = 100
    _one_line_error(lambda: ganzoo.load(f"org/tiny@{v1}", discriminator=True),
                    r"download of discriminator\.safetensors from org/tiny@.* was incomplete")
    hub_standin.cut.clear()
    ganzoo.load(f"org/tiny@{v1}", discriminator=True)  # nothing half-written was kept: a retry works


# ---- publishing ---------------------------------------------------------------------------------
def test_push_run_and_folder(hub_standin, run, folder, tmp_path, monkeypatch, capsys):
    info = hub.push(run, "org/pushed", private=True, token="hf_test")
    files = hub_standin.files("org/pushed")
    assert {"config.json", "generator.safetensors", "discriminator.safetensors", "README.md",
            "samples.png"} <= set(files)
    assert hub_standin.repos["org/pushed"]["private"] is True
    assert "Bearer hf_test" in hub_standin.auth
    assert json.loads(files["config.json"])["hub_id"] == "org/pushed"
    assert json.loads(files["config.json"])["name"] == "pushed"
    assert 'ganzoo.load("org/pushed")' in files["README.md"].decode()
    G = ganzoo.load(f"org/pushed@{info['revision']}")
    assert _same(G, ganzoo.load(run))
    # a folder is uploaded byte for byte, here to a new branch, from the CLI
    capsys.readouterr()
    assert main(["push", str(folder), "--repo", "org/pushed", "--branch", "dev", "--token", "hf_test"]) == 0
    assert "ganzoo catalog add" in capsys.readouterr().out
    dev = hub_standin.files("org/pushed", "dev")
    for p in folder.iterdir():
        assert dev[p.name] == p.read_bytes(), p.name
    # huggingface_hub's own push_to_hub works on the container too
    model = hub.GANModel.from_pretrained(str(folder))
    model.push_to_hub("org/mixin", token="hf_test")
    assert _same(ganzoo.load("org/mixin"), G)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    _one_line_error(lambda: hub.push(folder, "org/pushed"), r"HF_HUB_OFFLINE=1 is set")


# ---- fine-tuning --------------------------------------------------------------------------------
def test_finetune_starts_from_base_and_records_lineage(folder, data, tmp_path, monkeypatch):
    seen = {}
    real_train = ganzoo.trainer.train

    def spy(cfg, out, **kw):
        seen.update(kw)
        return real_train(cfg, out, **kw)

    monkeypatch.setattr(ganzoo.trainer, "train", spy)
    base = ganzoo.load(folder)
    trainer = ganzoo.finetune(str(folder), data=data, steps=2, out=tmp_path / "ft", lr_g=0.0, lr_d=0.0,
                              progress=False)
    assert trainer.step == 2
    # the optimizer and objective state came from training_state.safetensors, at the new learning rate
    assert seen["optimizer_state"]["opt_g"]["param_groups"][0]["lr"] == 0.0
    assert len(seen["optimizer_state"]["opt_g"]["state"]) == len(list(base.parameters()))
    G = ganzoo.load(tmp_path / "ft")
    base_p, p = _params(base), _params(G)
    assert all(torch.equal(base_p[k], p[k]) for k in base_p)  # lr 0: still the base weights
    run_json = json.loads((tmp_path / "ft" / "run.json").read_text())
    hashes = {f: hub.file_sha256(folder / f) for f in ("generator.safetensors", "discriminator.safetensors")}
    assert run_json["train"]["base_model"] == {"base_model": str(folder), "revision": None, "sha256": hashes}
    out = hub.export_model(tmp_path / "ft", tmp_path / "ft_model")
    assert json.loads((out / "config.json").read_text())["lineage"]["base_model"] == str(folder)
    # the base's weights are named by hash: a folder overwritten later (a re-release) no longer holds them
    assert f"`generator.safetensors` sha256 `{hashes['generator.safetensors'][:16]}…`" in (out / "README.md").read_text()


def test_finetune_takes_the_base_models_recorded_recipe_unless_told(tiny_arch, data, tmp_path, capsys):
    base_run = tmp_path / "base_run"
    train(TrainConfig(arch="tiny", data=data, steps=2, seed=1, arch_config={"num_classes": 10}, batch_size=6,
                      lr_g=1e-3, lr_d=3e-3, betas=(0.0, 0.9), objective="hinge"), base_run, progress=False)
    base = hub.export_model(base_run, tmp_path / "base")
    trainer = ganzoo.finetune(str(base), data=data, steps=1, out=tmp_path / "ft", progress=False)
    got = json.loads((tmp_path / "ft" / "run.json").read_text())["train"]
    assert (got["batch_size"], got["lr_g"], got["lr_d"], list(got["betas"]), got["objective"]) == (
        6, 1e-3, 3e-3, [0.0, 0.9], "hinge")  # not the architecture's defaults
    line = trainer.start_line("finetune")  # the start line says what the fine-tune took from the base
    assert "(hinge)" in line and "batch 6" in line
    assert f"fine-tuning {base}" in line and "lr 0.001/0.003, betas 0,0.9 (options not given: the base's" in line
    assert "ganzoo: note" not in capsys.readouterr().err  # the base used no augmentation
    ganzoo.finetune(str(base), data=data, steps=1, out=tmp_path / "ft2", progress=False, batch_size=4,
                    lr_g=2e-4, objective="nonsaturating")
    got = json.loads((tmp_path / "ft2" / "run.json").read_text())["train"]
    assert (got["batch_size"], got["lr_g"], got["lr_d"], got["objective"]) == (4, 2e-4, 3e-3, "nonsaturating")
    assert got["objective_kwargs"] is None  # the hinge loss's hyper-parameters do not follow another objective


def test_finetune_names_the_augmentation_it_does_not_keep(tiny_arch, data, tmp_path, capsys):
    base_run = tmp_path / "base_run"
    train(TrainConfig(arch="tiny", data=data, steps=2, arch_config={"num_classes": 10}, diffaugment="color",
                      flip=True, ema=0.99), base_run, progress=False)
    base = hub.export_model(base_run, tmp_path / "base")
    capsys.readouterr()
    ganzoo.finetune(str(base), data=data, steps=1, out=tmp_path / "ft", progress=False)
    (note,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("ganzoo: note")]
    assert "trained with --diffaugment color --flip --ema 0.99, which a fine-tune does not take" in note
    config = json.loads((base / "config.json").read_text())
    assert config["training"]["ema"] == 0.99
    del config["training"]["ema"]  # a folder exported before the field existed: its weights' text says it
    (base / "config.json").write_text(json.dumps(config))
    ganzoo.finetune(str(base), data=data, steps=1, out=tmp_path / "ft1", progress=False)
    assert "--flip --ema 0.99, which" in capsys.readouterr().err
    ganzoo.finetune(str(base), data=data, steps=1, out=tmp_path / "ft2", progress=False, diffaugment="color",
                    flip=True, ema=0.999)
    assert "ganzoo: note" not in capsys.readouterr().err


def test_finetune_catalog_model_lineage_pins_revision(folder, data, tmp_path, monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    shutil.copytree(folder, tmp_path / "catalog" / "tiny_fashion")
    _catalog(tmp_path, monkeypatch, "tiny_fashion", tmp_path / "catalog" / "tiny_fashion", revision="b" * 40, embed=True)
    ganzoo.finetune("tiny_fashion", data=data, steps=2, out=tmp_path / "ft", progress=False)
    out = hub.export_model(tmp_path / "ft", tmp_path / "ft_model")
    lineage = json.loads((out / "config.json").read_text())["lineage"]
    pins = json.loads((tmp_path / "catalog" / "catalog.json").read_text())["models"]["tiny_fashion"]["files"]
    assert lineage == {"base_model": "tiny_fashion", "repo": "org/tiny", "revision": "b" * 40,
                       "sha256": {f: pins[f] for f in ("generator.safetensors", "discriminator.safetensors")}}
    assert ModelCard.load(out / "README.md").data.base_model == "org/tiny"
    # a new release of tiny_fashion continued from the old one: the card says so, but names no base model
    again = hub.export_model(tmp_path / "ft", tmp_path / "tiny_fashion_v2", name="tiny_fashion")
    card = ModelCard.load(again / "README.md")
    assert card.data.base_model is None and "Fine-tuned from `tiny_fashion` at revision `bbbb" in card.text


def test_finetune_freeze_and_cli(folder, data, tmp_path, capsys):
    base_D = ganzoo.load(folder, discriminator=True)[1]
    assert main(["finetune", str(folder), "--data", data, "--steps", "2", "--out", str(tmp_path / "ft"),
                 "--freeze", "head", "--lr-d", "0.05", "--quiet"]) == 0
    D = ganzoo.load(tmp_path / "ft", discriminator=True)[1]
    assert torch.equal(D.net[-1].weight, base_D.net[-1].weight)  # frozen
    assert not torch.equal(D.net[0].weight, base_D.net[0].weight)  # trained
    capsys.readouterr()
    assert main(["finetune", str(folder), "--data", data, "--steps", "2", "--out", str(tmp_path / "ft2"),
                 "--freeze", "encoder", "--quiet"]) == 2
    assert "freezable: head" in capsys.readouterr().err
    assert main(["finetune", str(folder), "--data", data, "--steps", "2", "--out", str(tmp_path / "ft3"),
                 "--image-size", "32", "--quiet"]) == 2
    # a fine-tune already in --out: --resume or --restart (which keeps nothing of it and says so)
    capsys.readouterr()
    assert main(["finetune", str(folder), "--data", data, "--steps", "1", "--out", str(tmp_path / "ft"), "--quiet"]) == 2
    assert "--restart" in capsys.readouterr().err
    assert main(["finetune", str(folder), "--data", data, "--steps", "1", "--out", str(tmp_path / "ft"), "--quiet",
                 "--restart"]) == 0
    assert "nothing of it is kept" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "ft" / "checkpoints").glob("step-*")] == ["step-00000001"]


def test_training_state_roundtrip(run, folder):
    raw = torch.load(latest_checkpoint(run) / "trainer_state.pt", weights_only=True)
    got = hub.decode_training_state(folder / "training_state.safetensors")
    for key in ("opt_g", "opt_d"):
        assert got[key]["param_groups"] == [{**g, "betas": tuple(g["betas"])} for g in raw[key]["param_groups"]]
        for idx, state in raw[key]["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(got[key]["state"][idx][name]), torch.as_tensor(value)), (key, idx, name)


@pytest.mark.parametrize("name", ["load", "list_pretrained"])
def test_top_level_wrappers_take_every_option_of_hub(name):
    """ganzoo.load restates ganzoo.hub.load's options (to keep `import ganzoo` light): once it dropped two."""
    import inspect

    from ganzoo import hub

    assert inspect.signature(getattr(ganzoo, name)).parameters.keys() == \
        inspect.signature(getattr(hub, name)).parameters.keys()
