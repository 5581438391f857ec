"""A generator for deployment: ONNX and TorchScript files, each checked against PyTorch.

``ganzoo export REF OUT --format onnx`` writes ``OUT/generator.onnx``;
``--format torchscript`` writes ``OUT/generator.torchscript.pt``. Either file maps
latents ``z`` (float32, shape (N, latent_dim)) and, for a class-conditional model,
``labels`` (int64, shape (N,)) to images (float32, NCHW) in the model's pixel range
(``pixel_range`` in its config.json; [-1, 1] for every first-party architecture),
with a dynamic batch axis N. They are the generator's ``forward``, not
``G.sample``: no clamping, no latent sampling (draw z from N(0, I) yourself, or as
the architecture's ``sample_latent`` does, e.g. InfoGAN's codes).

Every export is run once on latents of a batch size other than the one it was
traced with (so a baked-in batch size fails) and compared with the PyTorch
generator on the same latents, through ONNX Runtime or ``torch.jit.load``; the file
lands in OUT only when the largest absolute difference is within tolerance.

ONNX uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``)
at opset :data:`OPSET`; an operator it cannot express (a plugin's custom op,
for one) is reported by name, and TorchScript is the way out for such a model.
ONNX needs the ``[onnx]`` extra (onnx, onnxruntime), which the README's set-up installs.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.util
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from . import hub
from .errors import GanzooError
from .io import atomic_path
from .nn import Generator

__all__ = ["FORMATS", "OPSET", "ONNX_FILE", "TORCHSCRIPT_FILE", "Exported", "export_onnx", "export_torchscript",
           "export_generator"]

#: ``ganzoo export --format``: ``folder`` is the model folder (config, safetensors, card)
FORMATS = ("folder", "onnx", "torchscript")
ONNX_FILE = "generator.onnx"
TORCHSCRIPT_FILE = "generator.torchscript.pt"
#: ONNX opset: 17 has every op the first-party generators use (LayerNorm among them) and runs on
#: ONNX Runtime >= 1.14
OPSET = 17
TRACE_BATCH = 2
CHECK_BATCH = 3  # differs from TRACE_BATCH: a batch size baked into the graph fails the check
#: largest absolute difference from PyTorch accepted, as a fraction of the pixel range's width
#: (float32 kernels differ in summation order: measured up to about 1e-6 on the released models)
TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class Exported:
    """What an export wrote: ``path`` (also ``os.fspath(result)``), its ``format`` and, for ONNX
    and TorchScript, the largest absolute difference from PyTorch on ``batch`` latents."""

    path: Path
    format: str
    max_abs_diff: float | None = None
    batch: int | None = None

    def __fspath__(self) -> str:
        return str(self.path)


class _Unconditional(nn.Module):
    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z)


class _Conditional(nn.Module):
    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.G(z, labels)


def _prepare(G) -> tuple[nn.Module, bool]:
    """A float32 CPU copy of G in eval mode, wrapped so that its inputs are (z) or (z, labels)."""
    if not isinstance(G, Generator):
        raise GanzooError(f"export: expected a ganzoo.Generator, got {type(G).__name__}")
    G = copy.deepcopy(G).float().cpu().eval()
    _bake_reparametrizations(G)
    for p in G.parameters():
        p.requires_grad_(False)
    conditional = bool(G.num_classes)
    return (_Conditional(G) if conditional else _Unconditional(G)).eval(), conditional


def _bake_reparametrizations(G: nn.Module) -> None:
    """Replace spectral and weight normalisation by the weights they compute in eval mode.

    In eval mode ``torch.nn.utils.parametrizations.spectral_norm`` divides by sigma from its
    stored vectors (no power iteration), which the ONNX exporter cannot express (``aten::vdot``
    has no ONNX translation); the weight it computes is a constant, so the exported graph holds
    that constant: the same numbers, and less work per image. ``G`` must be a copy: this is
    ``torch.nn.utils.parametrize.remove_parametrizations(leave_parametrized=True)`` done by hand,
    because that function deletes the property from the ``Parametrized<Layer>`` class, which a
    deep copy shares with the original network. The older hook-based ``spectral_norm`` and
    ``weight_norm`` (per-instance hooks) are removed by their ``remove_*`` functions.
    """
    for module in G.modules():
        if parametrize.is_parametrized(module):
            values = {name: getattr(module, name).detach().clone() for name in module.parametrizations}
            module.__class__ = type(module).__bases__[0]  # the layer's class before parametrize wrapped it
            del module._modules["parametrizations"]
            for name, value in values.items():
                module.register_parameter(name, nn.Parameter(value, requires_grad=False))
        for key, hook in list(module._forward_pre_hooks.items()):
            kind = type(hook).__name__
            if kind == "SpectralNorm":
                torch.nn.utils.remove_spectral_norm(module, name=hook.name)
            elif kind == "WeightNorm":
                torch.nn.utils.remove_weight_norm(module, name=hook.name)


def _inputs(G, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    z = G.sample_latent(n, generator=gen, device="cpu").float()
    if G.num_classes:
        return z, torch.randint(G.num_classes, (n,), generator=gen, dtype=torch.int64)
    return (z,)


def _metadata(G) -> dict[str, str]:
    """What a deployment needs to know besides the graph: shapes, classes, pixel range."""
    info = getattr(G, "model_info", None) or {}
    return {
        "ganzoo_architecture": str(getattr(G, "arch_name", "") or info.get("architecture", "")),
        "ganzoo_name": str(info.get("name", "")),
        "latent_dim": str(G.latent_dim),
        "image_shape": json.dumps(list(G.image_shape)),
        "num_classes": str(G.num_classes),
        "class_names": json.dumps(list(getattr(G, "class_names", None) or [])),
        "pixel_range": json.dumps(list(G.pixel_range)),
        "inputs": "z float32 (N, latent_dim)" + (", labels int64 (N,)" if G.num_classes else ""),
        "output": "images float32 (N, C, H, W) in pixel_range",
    }


def _parity(label: str, fmt: str, got: torch.Tensor, want: torch.Tensor, G) -> float:
    if tuple(got.shape) != tuple(want.shape):
        raise GanzooError(f"{label}: the {fmt} export returned shape {tuple(got.shape)} for a batch of "
                          f"{want.shape[0]} but PyTorch returns {tuple(want.shape)}; the architecture's forward "
                          f"bakes a batch size into the graph (use x.shape[0], not a Python int)")
    diff = float((got.float() - want.float()).abs().max()) if want.numel() else 0.0
    lo, hi = G.pixel_range
    tol = TOLERANCE * max(hi - lo, 1.0)
    if not diff <= tol:  # also catches NaN
        raise GanzooError(f"{label}: the {fmt} export differs from the PyTorch generator by up to {diff:.3g} "
                          f"(tolerance {tol:.1g}) on the same latents; it was not written")
    return diff


def _op_of(exc: BaseException) -> str | None:
    """The operator an exporter error names (``aten::fft_rfft2``, ``mylib::op``), if any."""
    text = f"{exc} {exc.__cause__ or ''}"
    op = r"[A-Za-z_]\w*::[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?"
    m = re.search(rf"operator '?({op})", text) or re.search(rf"\b({op})", text)
    return m.group(1) if m else None


@contextlib.contextmanager
def _quiet_native_output():
    """Hold back what the exporter's C++ side prints (torch 2.14's TorchScript exporter logs the
    whole graph to stderr on any failure, whatever ``verbose`` says): the error is reported as
    one line instead. Python's own streams are flushed around the switch."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = []
    try:
        fds = [sys.stdout.fileno(), sys.stderr.fileno()]
    except (AttributeError, OSError, ValueError):  # streams without a descriptor (captured): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as sink:
        for fd in fds:
            saved.append((fd, os.dup(fd)))
            os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy_ in saved:
                os.dup2(copy_, fd)
                os.close(copy_)


def _need_onnx() -> None:
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise GanzooError(f"--format onnx needs {' and '.join(missing)}, which are not installed: install the extra "
                          f"[onnx]: pip install {hub.install_spec(extra='onnx')} (in a checkout: pip install -e '.[onnx]')")


def export_onnx(G, path: str | os.PathLike, *, label: str = "generator", opset: int = OPSET) -> Exported:
    """Write ``G`` as ONNX to ``path`` and check it with ONNX Runtime (see the module's docstring)."""
    _need_onnx()
    import onnx  # optional dependency (checked just above): only ONNX export needs it
    import onnxruntime as ort  # optional dependency, as onnx

    wrapper, conditional = _prepare(G)
    G = wrapper.G
    names = ["z", "labels"] if conditional else ["z"]
    axes = {n: {0: "batch"} for n in names}
    axes["images"] = {0: "batch"}
    path = Path(path)
    arch = getattr(G, "arch_name", "") or type(G).__name__
    with atomic_path(path) as tmp:
        try:
            with warnings.catch_warnings(), _quiet_native_output():
                warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
                torch.onnx.export(wrapper, _inputs(G, TRACE_BATCH, 0), str(tmp), input_names=names,
                                  output_names=["images"], dynamic_axes=axes, opset_version=opset,
                                  do_constant_folding=True, dynamo=False)
        except Exception as exc:
            op = _op_of(exc)
            what = f"operator {op}" if op else f"its graph ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})"
            raise GanzooError(f"{label}: ONNX (opset {opset}) cannot express {what} of architecture {arch!r}; "
                              f"export it with --format torchscript instead") from None
        model = onnx.load(str(tmp))
        for k, v in _metadata(G).items():
            model.metadata_props.add(key=k, value=v)
        model.producer_name = "ganzoo"
        onnx.save(model, str(tmp))
        try:
            onnx.checker.check_model(str(tmp))
            session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        except Exception as exc:
            op = _op_of(exc)
            raise GanzooError(f"{label}: ONNX Runtime cannot run the export of architecture {arch!r} "
                              f"({'operator ' + op if op else ' '.join(str(exc).split())[:160]}); "
                              f"export it with --format torchscript instead") from None
        inputs = _inputs(G, CHECK_BATCH, 1)
        got = session.run(["images"], {n: t.numpy() for n, t in zip(names, inputs)})[0]
        with torch.no_grad():
            want = wrapper(*inputs)
        diff = _parity(label, "ONNX", torch.from_numpy(got), want, G)
    return Exported(path, "onnx", diff, CHECK_BATCH)


def export_torchscript(G, path: str | os.PathLike, *, label: str = "generator") -> Exported:
    """Write ``G`` as a traced TorchScript module to ``path`` and check it after ``torch.jit.load``."""
    wrapper, _ = _prepare(G)
    G = wrapper.G
    path = Path(path)
    arch = getattr(G, "arch_name", "") or type(G).__name__
    with atomic_path(path) as tmp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(wrapper, _inputs(G, TRACE_BATCH, 0), check_trace=False)
                torch.jit.save(traced, str(tmp), _extra_files={"ganzoo.json": json.dumps(_metadata(G))})
                loaded = torch.jit.load(str(tmp), map_location="cpu")
        except Exception as exc:
            raise GanzooError(f"{label}: TorchScript cannot trace architecture {arch!r} "
                              f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
        inputs = _inputs(G, CHECK_BATCH, 1)
        with torch.no_grad():
            got = loaded(*inputs)
            want = wrapper(*inputs)
        diff = _parity(label, "TorchScript", got, want, G)
    return Exported(path, "torchscript", diff, CHECK_BATCH)


def export_generator(ref, out: str | os.PathLike, *, format: str, overwrite: bool = False,
                     generator_weights: str = "auto") -> Exported:
    """``ganzoo export REF OUT --format onnx|torchscript``: load ``ref`` (anything :func:`ganzoo.load`
    takes, or a Generator) and write ``OUT/generator.onnx`` or ``OUT/generator.torchscript.pt``."""
    if format not in FORMATS or format == "folder":
        raise GanzooError(f"export format {format!r}: use one of {', '.join(FORMATS)}")
    if format == "onnx":
        _need_onnx()  # before loading anything
    out = Path(out)
    target = out / (ONNX_FILE if format == "onnx" else TORCHSCRIPT_FILE)
    if out.exists() and not out.is_dir():
        raise GanzooError(f"{out} is a file; name a folder to write {target.name} into")
    if target.exists() and not overwrite:
        raise GanzooError(f"{target} already exists; choose another folder or pass --overwrite")
    if isinstance(ref, Generator):
        G, label = ref, getattr(ref, "arch_name", "") or "generator"
    else:
        G, label = hub.load(ref, generator_weights=generator_weights), str(ref)
    if format == "onnx":
        return export_onnx(G, target, label=label)
    return export_torchscript(G, target, label=label)
