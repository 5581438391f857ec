"""The ``cgan`` architecture: the class steers G, and D's projection term (Miyato & Koyama 2018) is used."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.cli import main as ganzoo_cli
from ganzoo.objective import StepContext
from ganzoo.plugins import get_registry
from ganzoo.testing import check_registered
from ganzoo_cgan import ARCH, CGANConfig
from ganzoo_sngan import ConditionalBatchNorm2d

NARROW = dict(g_ch=8, d_ch=8, image_size=32, channels=1)


def make(conditioning="projection", num_classes=10, **kw):
    torch.manual_seed(0)
    return ganzoo.create("cgan", num_classes=num_classes, conditioning=conditioning, **{**NARROW, **kw})


def train_one_step(G, D, labels):
    opt = ARCH.optimizer
    ctx = StepContext(G, D, torch.optim.Adam(G.parameters(), opt.lr_g, betas=opt.betas),
                      torch.optim.Adam(D.parameters(), opt.lr_d, betas=opt.betas), torch.device("cpu"), 0)
    obj = get_registry().objective(ARCH.objective)(**{**ARCH.objective_kwargs, "n_critic": 1})
    return obj.step(ctx, torch.rand(len(labels), G.channels, 32, 32) * 2 - 1, labels)


def test_registered_as_conditional_with_the_papers_recipe():
    check_registered(ARCH, "ganzoo-cgan")
    assert ARCH.conditional and (ARCH.objective, ARCH.objective_kwargs) == ("hinge", {"n_critic": 5})
    opt = ARCH.optimizer
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (2e-4, 2e-4, (0.0, 0.9), 64)
    assert "1802.05637" in ARCH.reference and "1411.1784" in ARCH.reference
    assert CGANConfig().conditioning == "projection"


def test_needs_num_classes_and_a_known_conditioning():
    with pytest.raises(ganzoo.GanzooError, match="num_classes=10"):
        ganzoo.create("cgan", **NARROW)
    with pytest.raises(ganzoo.GanzooError, match="projection, concat"):
        make(conditioning="film")


@pytest.mark.parametrize("num_classes", [10, 6, 2, 5, 9])  # Fashion-MNIST, jellyfish, UTKFace gender/race/age
def test_any_number_of_classes(num_classes):
    G, D = make(num_classes=num_classes)
    labels = torch.arange(num_classes)
    x = G.sample(num_classes, labels=labels, seed=0)
    assert x.shape == (num_classes, 1, 32, 32) and D(x, labels).shape == (num_classes,)
    assert G.num_classes == D.num_classes == num_classes


def test_projection_discriminator_adds_the_inner_product_with_the_class_embedding():
    G, D = make()
    D.eval()
    x = torch.randn(4, 1, 32, 32)
    y = torch.tensor([0, 3, 3, 9])
    phi = D.features(x, y)
    embed = D.embed.weight  # spectrally normalised SNEmbedID
    assert torch.allclose(D(x, y), D.linear(phi).squeeze(1) + (embed[y] * phi).sum(1), atol=1e-4)
    other = torch.tensor([1, 1, 2, 0])
    assert torch.allclose(D(x, y) - D(x, other), ((embed[y] - embed[other]) * phi).sum(1), atol=1e-4)
    assert not torch.allclose(D(x, y), D(x, other))
    # G conditions through its BatchNorms
    assert all(isinstance(b.b1, ConditionalBatchNorm2d) for b in G.blocks)


def test_concatenation_feeds_one_hot_labels_to_both_networks():
    G, D = make("concat")
    assert D.embed is None and G.linear.in_features == 128 + 10
    assert D.blocks[0].c1.in_channels == 1 + 10
    x = torch.randn(2, 1, 32, 32)
    D.eval()
    assert not torch.allclose(D(x, torch.tensor([0, 0])), D(x, torch.tensor([5, 5])))


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_same_latent_different_labels_give_different_images(conditioning):
    G, D = make(conditioning)
    train_one_step(G, D, torch.tensor([0, 1, 2, 3, 4, 5, 6, 7]))  # conditional BN starts label-blind (gamma 1)
    z = G.sample_latent(1).expand(3, -1)
    x = G.sample(3, z=z, labels=torch.tensor([0, 4, 7]))
    assert (x[0] - x[1]).abs().mean() > 1e-4 and (x[1] - x[2]).abs().mean() > 1e-4
    again = G.sample(3, z=z, labels=torch.tensor([0, 4, 7]))
    assert torch.allclose(x, again)  # the label, not chance, made the difference


def _write_class_folder(root: Path, classes=("circle", "square", "stripe"), per_class=4) -> Path:
    g = torch.Generator().manual_seed(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = (torch.rand(16, 16, 3, generator=g) * 60).to(torch.uint8)
            img[4 * k:4 * k + 6, :, k] = 220
            Image.fromarray(img.numpy()).save(root / name / f"{i}.png")
    return root


def test_trains_from_the_command_line_and_samples_one_row_per_class(tmp_path, capsys):
    data = _write_class_folder(tmp_path / "shapes")
    run, model = tmp_path / "run", tmp_path / "model"
    assert ganzoo_cli(["train", "cgan", "--data", f"folder:{data}", "--image-size", "32", "--channels", "3",
                       "--set", "num_classes=3", "--set", "g_ch=4", "--set", "d_ch=4", "--batch-size", "4",
                       "--steps", "2", "--out", str(run), "--quiet"]) == 0
    assert ganzoo_cli(["export", str(run), str(model)]) == 0
    G = ganzoo.load(model)
    assert G.class_names == ["circle", "square", "stripe"]  # the model folder records the data's class names
    grid = tmp_path / "grid.png"
    assert ganzoo_cli(["sample", str(model), "--per-class", "2", "-o", str(grid)]) == 0
    assert "circle" in capsys.readouterr().out
    w, h = Image.open(grid).size
    assert h > w  # 3 rows (one per class) of 2 columns
    assert ganzoo_cli(["sample", str(model), "--label", "square,stripe", "--per-class", "3", "-o", str(grid)]) == 0
    w, h = Image.open(grid).size
    assert w > h  # 2 rows of 3
