"""Shared fixtures: a tiny architecture plugin written only against ganzoo's public API, and tiny data."""
from __future__ import annotations

import gzip
import os
import struct
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from ganzoo import plugins

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# tests never write into the user's ~/.cache (datasets, FID statistics)
os.environ["GANZOO_CACHE"] = tempfile.mkdtemp(prefix="ganzoo-test-cache-")
torch.set_num_threads(min(2, torch.get_num_threads()))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "ganzoo-tiny"))
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))  # testkit: helpers test modules import
import ganzoo_tiny  # noqa: E402
from ganzoo_tiny import TINY  # noqa: E402


def _tiny_registered(name: str):
    """Register the tiny fixture architecture under ``name`` for the fixture's life, unless it is already
    visible (a module's ``tiny_arch``, or an installed copy's entry point): then it is left as it is."""
    mine = "tiny" not in plugins.get_registry().architectures
    if mine:
        plugins.register_plugin(ganzoo_tiny, name=name)
    yield TINY
    if mine:
        plugins.unregister_plugin(name)


@pytest.fixture
def tiny_plugin():
    """The tiny fixture architecture for one test."""
    yield from _tiny_registered("tiny-test-plugin")


@pytest.fixture(scope="module")
def tiny_arch():
    """The tiny fixture architecture for a whole test module."""
    yield from _tiny_registered("tiny-module-tests")


@pytest.fixture(scope="module")
def no_loss_plots():
    """Training without drawing loss.png (about 2 s a run on 2 cores), for modules that train many tiny runs."""
    import ganzoo.trainer

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ganzoo.trainer.Trainer, "plot_losses", lambda self: None)
        yield


def write_idx(folder: Path, split: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Write Fashion-MNIST-style IDX .gz files (uint8 images (N, 28, 28), labels (N,))."""
    prefix = "train" if split == "train" else "t10k"
    folder.mkdir(parents=True, exist_ok=True)
    n = images.shape[0]
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.to(torch.uint8).numpy().tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels.to(torch.uint8).numpy().tobytes())


@pytest.fixture
def tiny_fmnist(tmp_path) -> Path:
    """32 train and 16 test images of simple shapes (a bright square whose position is the class)."""
    folder = tmp_path / "fmnist"
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 32), ("test", 16)):
        labels = torch.arange(n) % 10
        images = (torch.rand(n, 28, 28, generator=g) * 40).to(torch.uint8)
        for i, lab in enumerate(labels.tolist()):
            r, c = divmod(lab, 4)
            images[i, 4 + 6 * r:10 + 6 * r, 2 + 6 * c:8 + 6 * c] = 230
        write_idx(folder, split, images, labels)
    return folder


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory, tiny_arch, no_loss_plots):
    """A factory: ``make(name, num_classes=0, seed=0, **export_options)`` trains the tiny architecture for 2 steps
    on 16 random 28x28 images (labels cycling through ``num_classes``) and exports the run as a model folder."""
    from ganzoo import hub
    from ganzoo.trainer import TrainConfig, train

    def make(name: str, *, num_classes: int = 0, seed: int = 0, **export_options) -> Path:
        root = tmp_path_factory.mktemp(name)
        g = torch.Generator().manual_seed(0)
        for split, n in (("train", 16), ("test", 8)):
            images = (torch.rand(n, 28, 28, generator=g) * 255).to(torch.uint8)
            write_idx(root / "fmnist", split, images, torch.arange(n) % max(num_classes, 1))
        train(TrainConfig(arch="tiny", data=f"fashion-mnist:{root / 'fmnist'}", steps=2, seed=seed,
                          arch_config={"num_classes": num_classes}), root / "run", progress=False)
        return hub.export_model(root / "run", root / "models" / name, **export_options)

    return make


@pytest.fixture
def hub_standin(monkeypatch, tmp_path):
    """The Hub stand-in (tests/hub_standin.py), with huggingface_hub pointed at it and a fresh cache."""
    import huggingface_hub.constants as hf_constants

    sys.path.insert(0, str(Path(__file__).parent))
    from hub_standin import HubStandin

    server = HubStandin().start()
    monkeypatch.setattr(hf_constants, "ENDPOINT", server.url)
    monkeypatch.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    yield server
    server.stop()
