"""The names timm and huggingface_hub users guess: list_models, create_model, G.config,
from_pretrained / save_pretrained / push_to_hub on a generator, and top-level train / export / push.
The older names (load, create, list_pretrained, list_architectures, finetune) keep working."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import ganzoo
import ganzoo.trainer
from ganzoo.errors import GanzooError



def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


def _one_line(fn, match):
    with pytest.raises(GanzooError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_list_models_is_the_registry_or_the_catalog_with_wildcards():
    assert ganzoo.list_models() == ganzoo.list_architectures() and "dcgan" in ganzoo.list_models()
    assert ganzoo.list_models(pretrained=True) == ganzoo.list_pretrained()
    gans = ganzoo.list_models("*gan")
    assert gans and all(n.endswith("gan") for n in gans) and "mlp" not in gans
    assert ganzoo.list_models(["dcgan", "mlp"]) == ["dcgan", "mlp"]
    assert ganzoo.list_models("*_fashion", pretrained=True) == ["began_fashion", "dcgan_fashion"]
    assert ganzoo.list_models("nothing*") == []


def test_create_model_fresh_architecture_with_config():
    G = ganzoo.create_model("dcgan", image_size=32, channels=1)
    assert isinstance(G, ganzoo.Generator) and G.training and G.image_shape == (1, 32, 32)
    assert G.config.image_size == 32 and G.config.channels == 1
    assert G.config.to_dict() == ganzoo.create("dcgan", image_size=32, channels=1)[0].config.to_dict()
    G, D = ganzoo.create_model("dcgan", image_size=32, channels=1, discriminator=True)
    assert isinstance(D, ganzoo.Discriminator) and D.config == G.config
    _one_line(lambda: ganzoo.create_model("dcgan", image_size=7), "image size 7")
    msg = _one_line(lambda: ganzoo.create_model("dcgna"), "unknown model 'dcgna'")
    assert "did you mean 'dcgan'" in msg
    msg = _one_line(lambda: ganzoo.create_model("dcgan", pretrained=True), "is an architecture")
    assert "dcgan_fashion" in msg


def test_create_model_released_pretrained_and_untrained():
    G = ganzoo.create_model("dcgan_fashion", pretrained=True)
    assert not G.training and _same(G, ganzoo.load("dcgan_fashion"))
    config = json.loads((Path(ganzoo.__file__).parents[1] / "models" / "dcgan_fashion" / "config.json").read_text())
    assert G.config.to_dict() == config["arch_config"]  # G.config is config.json's arch_config
    fresh = ganzoo.create_model("dcgan_fashion")
    assert fresh.config.to_dict() == config["arch_config"] and not _same(fresh, G)
    _one_line(lambda: ganzoo.create_model("dcgan_fashion", pretrained=True, image_size=64), "drop image_size")


def test_generator_from_pretrained_save_pretrained_roundtrip(tmp_path):
    G = ganzoo.Generator.from_pretrained("dcgan_fashion")
    assert _same(G, ganzoo.load("dcgan_fashion"))
    assert _same(type(G).from_pretrained("dcgan_fashion"), G)  # on the architecture's class too
    _one_line(lambda: type(G).from_pretrained("began_fashion"), "not a DCGANGenerator")
    # a loaded model keeps its config.json (recipe, data, license) when saved again
    folder = G.save_pretrained(tmp_path / "copy")
    again = ganzoo.load(folder)
    assert _same(again, G) and again.config == G.config
    saved = json.loads((folder / "config.json").read_text())
    assert saved["training"] == G.model_info["training"] and saved["license"] == G.model_info["license"]
    assert not (folder / "discriminator.safetensors").exists()
    # a new model, with its discriminator
    G2, D2 = ganzoo.create_model("dcgan", image_size=32, channels=1, discriminator=True)
    folder = G2.save_pretrained(tmp_path / "fresh", discriminator=D2, description="untrained")
    G3, D3 = ganzoo.load(folder, discriminator=True)
    assert _same(G3, G2) and _same(D3, D2) and G3.config == G2.config
    assert json.loads((folder / "config.json").read_text())["name"] == "fresh"
    assert (folder / "README.md").read_text().count("untrained") >= 1
    # a network built outside ganzoo does not know its architecture
    plain = ganzoo.Generator(latent_dim=2, image_shape=(1, 2, 2))
    _one_line(lambda: plain.save_pretrained(tmp_path / "plain"), "does not know its architecture")



def test_push_to_hub_and_top_level_push(hub_standin, tmp_path):
    G = ganzoo.create_model("dcgan", image_size=32, channels=1)
    info = G.push_to_hub("org/fresh", token="hf_test")
    assert {"config.json", "generator.safetensors", "README.md"} <= set(hub_standin.files("org/fresh"))
    assert _same(ganzoo.load(f"org/fresh@{info['revision']}"), G)
    folder = G.save_pretrained(tmp_path / "f")
    info = ganzoo.push(folder, "org/again", token="hf_test")
    assert hub_standin.files("org/again")["generator.safetensors"] == (folder / "generator.safetensors").read_bytes()


def test_top_level_train_and_export(tiny_plugin, tiny_fmnist, tmp_path, monkeypatch):
    monkeypatch.setattr(ganzoo.trainer.Trainer, "plot_losses", lambda self: None)  # matplotlib: not tested here
    data = f"fashion-mnist:{tiny_fmnist}"
    trainer = ganzoo.train("tiny", data=data, out=tmp_path / "run", steps=2, image_size=16, channels=1,
                           progress=False)
    assert trainer.step == 2 and trainer.G.image_shape == (1, 16, 16)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["train"]["arch_config"]["image_size"] == 16
    msg = _one_line(lambda: ganzoo.train("tiny", data=data, out=tmp_path / "r2", stepz=2), "unknown option")
    assert "steps" in msg and "image_size" in msg
    _one_line(lambda: ganzoo.train(data=data, out=tmp_path / "r3"), "needs an architecture")
    res = ganzoo.export(tmp_path / "run", tmp_path / "model", name="tiny_model")
    assert res.format == "folder" and Path(res) == tmp_path / "model"
    assert json.loads((tmp_path / "model" / "config.json").read_text())["name"] == "tiny_model"
    pytest.importorskip("onnx")
    res = ganzoo.export(tmp_path / "model", tmp_path / "deploy", format="torchscript")
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-4
    _one_line(lambda: ganzoo.export(tmp_path / "model", tmp_path / "d2", format="onnx", name="x"),
              "describe.* a model folder")


def test_list_pretrained_shows_license_description_and_numbers(capsys):
    from ganzoo.cli import main

    assert main(["list", "--pretrained"]) == 0
    out = capsys.readouterr().out
    rows = {r["name"]: r for r in ganzoo.list_pretrained(detail=True)}
    config = json.loads((Path(ganzoo.__file__).parents[1] / "models" / "dcgan_fashion" / "config.json").read_text())
    assert rows["dcgan_fashion"]["license"] == config["license"]
    assert rows["dcgan_fashion"]["metrics"] == config["metrics"]
    line = out.split("dcgan_fashion", 1)[1].splitlines()
    assert config["license"] in line[0]
    assert rows["dcgan_fashion"]["description"] in line[1]
    assert f"Inception FID {config['metrics']['fid']:.4g}" in line[1]
