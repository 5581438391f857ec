"""A small Fashion-MNIST classifier: a cheap domain feature extractor (NOT Inception).

Numbers computed in its feature space are labelled ``*_fmnist_classifier``
everywhere they appear. They are fast on a CPU (seconds for 10k images) and
useful to compare checkpoints of Fashion-MNIST models with each other; they are
not comparable with published (Inception) FIDs.

Input: uint8 images ``(N, C, H, W)``, C = 1 or 3 (RGB is averaged to gray),
any size. They are resized to 28 x 28 (bilinear, antialiased: the same filter
``ganzoo.data`` uses to resize Fashion-MNIST), scaled to [-1, 1] and classified.
Features are the 128-d penultimate layer (after its ReLU); logits are the 10
Fashion-MNIST classes (:data:`ganzoo.data.FASHION_MNIST_CLASSES`).

The weights ship in ``ganzoo/assets/fmnist_classifier.safetensors`` and are
trained by ``scripts/train_fmnist_classifier.py`` (ganzoo's own data layer);
the file's metadata records its test accuracy.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from ..errors import GanzooError

__all__ = ["FmnistClassifier", "FmnistExtractor", "WEIGHTS", "INPUT_SIZE", "preprocess"]

WEIGHTS = Path(__file__).resolve().parent.parent / "assets" / "fmnist_classifier.safetensors"
INPUT_SIZE = 28
FEATURE_DIM = 128
NUM_CLASSES = 10


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FmnistClassifier(nn.Module):
    """28x28 gray in [-1, 1] → (128-d features, 10 logits). ~0.24 M parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_block(1, 32), nn.MaxPool2d(2),                       # 14
            *_block(32, 64), nn.MaxPool2d(2),                      # 7
            *_block(64, 128), nn.MaxPool2d(2),                     # 3
            nn.Flatten(),
        )
        self.penultimate = nn.Sequential(nn.Linear(128 * 3 * 3, FEATURE_DIM), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.penultimate(self.body(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, self.head(self.dropout(f))


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) → float (N, 1, 28, 28) in [-1, 1]."""
    x = images.float()
    if x.shape[1] == 3:
        x = x.mean(1, keepdim=True)
    elif x.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return x.div_(127.5).sub_(1.0)


class FmnistExtractor:
    """The shipped classifier as an extractor: ``extractor(uint8 batch) → {"features", "logits"}``."""

    name = "fmnist"
    suffix = "_fmnist_classifier"
    has_logits = True
    resize = (f"gray (RGB averaged), resized to {INPUT_SIZE}x{INPUT_SIZE} with antialiased bilinear "
              f"(torch, the filter ganzoo.data uses), scaled to [-1, 1]")

    def __init__(self, path: str | Path | None = None, device: torch.device | str = "cpu") -> None:
        path = Path(path) if path is not None else WEIGHTS
        if not path.is_file():
            raise GanzooError(f"{path}: the Fashion-MNIST classifier weights are missing; reinstall ganzoo "
                              "or run scripts/train_fmnist_classifier.py")
        data = path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        with safe_open(str(path), framework="pt") as f:
            self.metadata = dict(f.metadata() or {})
        self.model = FmnistClassifier()
        self.model.load_state_dict(load_file(str(path)))
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.dim = FEATURE_DIM
        acc = self.metadata.get("test_accuracy")
        self.description = (f"ganzoo Fashion-MNIST classifier (penultimate {FEATURE_DIM}-d features; NOT Inception"
                            f"{', test accuracy ' + acc if acc else ''}), sha256 {self.sha256[:12]}")

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = preprocess(images.to(self.device))
        f, logits = self.model(x)
        return {"features": f.float(), "logits": logits.float()}
