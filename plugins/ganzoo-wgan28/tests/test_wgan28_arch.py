"""The wgan28 plugin: registered through its entry point, the reference's shapes, and it trains."""
import gzip
import struct

import torch
from torch import nn

import ganzoo
from ganzoo.data import load_dataset
from ganzoo.plugins import get_registry
from ganzoo.trainer import TrainConfig, train
from ganzoo_wgan28 import ARCH, load_mnist


def write_mnist(folder, n=8):
    """A tiny MNIST in the IDX .gz format: n random 28x28 images, labels 0, 1, 2, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.numpy().tobytes())
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n)))
    return folder


def test_the_entry_point_registers_both_hooks():
    reg = get_registry()
    assert reg.architecture("wgan28") is ARCH
    assert reg.dataset("mnist").build is load_mnist
    info = next(p for p in reg.plugins if p.distribution == "ganzoo-wgan28")
    assert info.hooks == ["register_architectures", "register_datasets"]


def test_the_reference_networks():
    G, D = ganzoo.create("wgan28")
    assert G.latent_dim == 128 and G.image_shape == (1, 28, 28)
    x = G.project(torch.randn(2, 128))
    assert x.shape == (2, 128, 8, 8)  # cropped to 7x7 in forward
    images = G.sample(2, seed=0)
    assert images.shape == (2, 1, 28, 28) and images.abs().max() <= 1
    h, shapes = images, []
    for m in D.net:
        h = m(h)
        if isinstance(m, nn.Conv2d):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(64, 14, 14), (128, 7, 7), (256, 4, 4)]
    assert D(images).shape == (2,)


def test_no_batchnorm_in_the_critic_unless_asked():
    _, D = ganzoo.create("wgan28")  # WGAN-GP: the gradient penalty is per sample
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    _, D = ganzoo.create("wgan28", batchnorm=True)
    assert any(isinstance(m, nn.BatchNorm2d) for m in D.modules())


def test_the_mnist_dataset_kind(tmp_path):
    ds = load_dataset(f"mnist:{write_mnist(tmp_path / 'mnist')}", image_size=28, channels=1)
    assert len(ds) == 8 and ds.class_names == [str(d) for d in range(10)]


def test_trains_a_few_steps(tmp_path):
    cfg = TrainConfig(arch="wgan28", data=f"mnist:{write_mnist(tmp_path / 'mnist')}",
                      arch_config={"dim": 4}, batch_size=4, steps=2)
    trainer = train(cfg, tmp_path / "run", progress=False)
    assert trainer.step == 2 and (tmp_path / "run" / "samples.png").exists()
