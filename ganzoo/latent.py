"""Working in a model's latent space: interpolation, latent arithmetic, projection, truncation.

Everything here works on any loaded generator (``ganzoo.load(ref)``) and is on
the CLI as ``ganzoo interpolate``, ``ganzoo arithmetic``, ``ganzoo project`` and
``ganzoo sample --truncation``. See ``docs/latent.md`` for worked commands.

**Seeds.** A seed ``s`` names one latent point: exactly the latent (and, for a
conditional model, the label) that ``G.sample(1, seed=s)`` draws, i.e.
``z = G.sample_latent(1, generator=torch.Generator().manual_seed(s))`` followed, for
conditional models, by ``label = torch.randint(num_classes, (1,), generator=<same>)``.
So ``ganzoo sample REF -n 1 --seed s`` shows the image of seed ``s``. (Image ``i`` of
``ganzoo sample -n 64 --seed s`` is *not* seed ``s + i``: the 64 latents are one draw.)

**Latent files.** Latents are read from and written to ``.npy`` (``allow_pickle=False``)
or ``.safetensors`` (tensor ``z`` of shape ``(N, latent_dim)``, optional int64
``labels``); pickles (``.pt``, ``.pth``, ``.pkl``) are refused.

**Interpolation** (:func:`lerp`, :func:`slerp`, :func:`interpolate_path`,
:func:`interpolate`): ``slerp`` is the spherical interpolation of Shoemake (1985) as
applied to GAN latents by White (2016, "Sampling generative networks",
arXiv:1609.04468) on the unnormalised vectors: ``sin((1-t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b``
with ``Ω`` the angle between ``a`` and ``b``; where ``|cos Ω| > 0.9995`` (nearly
parallel, or nearly opposite, where the great circle is undefined) it falls back to
``lerp``. For equal-norm endpoints the norm stays constant along the path.

**Arithmetic** (:func:`parse_expression`, :class:`Group`, :func:`arithmetic`): as in
Radford et al. (2015, §6.3) and source 002 ("hombre sonriente − hombre neutral + bebé
neutral"), each operand is the *mean latent* of a group of samples, and the result is
``Σ coefficient · mean``. A group is chosen by seeds (``smile=3,17,42``), by class for a
conditional model (``coat=class:coat``: ``per_group`` seeds drawn with their label set
to that class), by a classifier's prediction on samples (``coat=pred:coat``: the
``per_group`` most confident of a pool of seeds whose samples the classifier assigns to
that class; the classifier is pluggable, see :func:`resolve_classifier`), or from a
latent file (``me=file:z.npy``, e.g. a projected photo). For a conditional model the
class is an input beside ``z``: a class group's mean ``z`` carries its samples' style,
not the class, and the result is drawn with the label of the last positively weighted
operand (the "base" of ``a − b + c``: ``c``) unless a label is given.

**Projection** (:func:`project`): Adam on ``z`` from several random starts (and from
``G.encode(x)`` when the generator has an encoder, e.g. BiGAN), loss pixel L2 or L1
plus an optional perceptual term, best restart kept. Errors are reported on the
[0, 1] pixel scale: ``mse`` and ``psnr = 10·log10(1 / mse)`` dB.

**Truncation** (:func:`truncate_latent`, :func:`check_gaussian`): in :mod:`ganzoo.truncation`,
re-exported here.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .data import FASHION_MNIST_CLASSES, decode_images
from .errors import GanzooError
from .io import atomic_path, check_png_output, refuse_pickle
from .metrics.fmnist import INPUT_SIZE, FmnistExtractor
from .truncation import TRUNCATION_ROUNDS, check_gaussian, truncate_latent  # noqa: F401 (re-exported)

__all__ = [
    "parse_seeds", "seed_latents", "check_gaussian", "truncate_latent", "load_latents", "save_latents",
    "lerp", "slerp", "interpolate_path", "interpolate", "Interpolation", "save_gif", "save_strip",
    "parse_expression", "combine", "Group", "seed_group", "class_group", "predicted_group", "file_group",
    "parse_group", "arithmetic", "ArithmeticResult", "save_arithmetic_grid", "resolve_classifier",
    "FmnistClassifierFn", "load_image", "project", "Projection", "psnr", "resolve_perceptual",
    "FmnistFeatures",
]

#: slerp falls back to lerp where |cos Ω| exceeds this (the usual shader/White threshold).
SLERP_DOT_THRESHOLD = 0.9995
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---- seeds, latent files, truncation ----------------------------------------------------------
#: the most seeds one argument may expand to (each is a latent and an image held in memory)
MAX_SEEDS = 100_000


def _short_text(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def parse_seeds(text: str | int | Iterable[int]) -> list[int]:
    """``"3,17,40-42"`` → ``[3, 17, 40, 41, 42]`` (an int or a list of ints passes through)."""
    if isinstance(text, int):
        return [int(text)]
    if not isinstance(text, str):
        return [int(s) for s in text]
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise GanzooError(f"seed range {part!r} runs backwards; write LOW-HIGH, e.g. 0-9")
            if hi >= 2 ** 64:
                raise GanzooError(f"seed range {part!r}: seeds go up to 2**64-1")
            if len(out) + hi - lo + 1 > MAX_SEEDS:
                raise GanzooError(f"seeds {_short_text(text)}: {len(out) + hi - lo + 1} seeds, more than the "
                                  f"{MAX_SEEDS} one command takes; give a shorter range")
            out.extend(range(lo, hi + 1))
        elif part.isdigit():
            if int(part) >= 2 ** 64:
                raise GanzooError(f"seed {part[:30]}: seeds go up to 2**64-1")
            out.append(int(part))
        else:
            raise GanzooError(f"seeds {text!r}: {part!r} is not a seed; write non-negative integers and "
                              "ranges separated by commas, e.g. 3,17,40-45")
    if not out:
        raise GanzooError(f"seeds {text!r}: no seeds given; write e.g. 3,17")
    return out


def seed_latents(G, seeds: Sequence[int] | str, *, truncation: float | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(z (K, latent_dim), labels (K,) or None)`` of seeds: what ``G.sample(1, seed=s)`` draws.

    With ``truncation`` each latent is truncated as ``G.sample(1, seed=s, truncation=t)``
    does (the redraws continue the seed's stream after its label).
    """
    seeds = parse_seeds(seeds)
    if truncation is not None:
        check_gaussian(G)
    zs, labels = [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s))
        z = G.sample_latent(1, generator=gen, device="cpu")
        if G.num_classes:
            labels.append(int(torch.randint(G.num_classes, (1,), generator=gen)))
        if truncation is not None:
            z = truncate_latent(z, truncation, generator=gen)
        zs.append(z)
    z = torch.cat(zs).to(G.device)
    return z, (torch.tensor(labels, dtype=torch.long) if G.num_classes else None)


def _refuse_pickle(path: Path) -> None:
    refuse_pickle(path, what="latents", fix="save latents as .npy (numpy.save) or .safetensors (tensor 'z')")


def load_latents(path: str | os.PathLike, latent_dim: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latents from ``.npy`` or ``.safetensors`` → ``(z float32 (N, D), labels (N,) or None)``.

    A ``.safetensors`` file holds ``z`` (or a single tensor of any name) and optionally
    ``labels``. A 1-d array is one latent. ``latent_dim`` checks the width.
    """
    path = Path(path).expanduser()
    _refuse_pickle(path)
    if not path.is_file():
        raise GanzooError(f"{path}: no such latent file")
    labels = None
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            z = torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float32))
        elif suffix == ".safetensors":
            tensors = load_file(str(path))
            if "z" in tensors:
                z = tensors["z"]
            elif len([k for k in tensors if k != "labels"]) == 1:
                z = next(v for k, v in tensors.items() if k != "labels")
            else:
                raise GanzooError(f"{path}: holds tensors {', '.join(sorted(tensors))}; name the latents 'z'")
            z = z.float()
            labels = tensors["labels"].long().reshape(-1) if "labels" in tensors else None
        else:
            raise GanzooError(f"{path}: unknown latent file type {suffix or '(none)'}; use .npy or .safetensors")
    except GanzooError:
        raise
    except Exception as exc:
        raise GanzooError(f"{path}: could not read latents ({type(exc).__name__}: {exc})") from None
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2:
        raise GanzooError(f"{path}: latents have shape {tuple(z.shape)}; expected (N, latent_dim) or (latent_dim,)")
    if latent_dim is not None and z.shape[1] != latent_dim:
        raise GanzooError(f"{path}: latents are {z.shape[1]}-d but this model's latent is {latent_dim}-d")
    if labels is not None and labels.numel() != z.shape[0]:
        raise GanzooError(f"{path}: {labels.numel()} labels for {z.shape[0]} latents")
    return z, labels


def save_latents(path: str | os.PathLike, z: torch.Tensor, labels: torch.Tensor | None = None) -> Path:
    """Write latents ``(N, D)`` atomically as ``.npy`` or ``.safetensors`` (``z``, and ``labels`` if given).

    ``.npy`` holds only ``z``; labels of a conditional model need ``.safetensors``.
    """
    path = Path(path).expanduser()
    _refuse_pickle(path)
    z = z.detach().float().cpu().contiguous()
    if z.ndim == 1:
        z = z[None]
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".safetensors"):
        raise GanzooError(f"{path}: write latents as .npy or .safetensors")
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, z.numpy(), allow_pickle=False)
        else:
            tensors = {"z": z}
            if labels is not None:
                tensors["labels"] = torch.as_tensor(labels, dtype=torch.long).reshape(-1).cpu().contiguous()
            save_file(tensors, str(tmp), metadata={"format": "ganzoo-latents"})
    return path


def class_index(G, text: str | int, what: str = "label") -> int:
    """A class name (case-insensitive, forgiving: "boot" → "Ankle boot") or index → the index; one-line error otherwise."""
    k = G.num_classes
    names = [str(c) for c in (getattr(G, "class_names", None) or [])]
    return _index_in(names, k, text, what)


def _index_in(names: Sequence[str], k: int, text: str | int, what: str) -> int:
    text = str(text).strip()
    lowered = [n.lower() for n in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    if text.isdigit() and int(text) < k:
        return int(text)
    # forgiving match: "tshirt" → "T-shirt/top", "boot" → "Ankle boot"
    squash = lambda s: re.sub(r"[^a-z0-9]", "", s.lower())  # noqa: E731
    hits = [i for i, n in enumerate(names) if squash(text) and squash(text) in squash(n)]
    if len(hits) == 1:
        return hits[0]
    choices = ", ".join(names) if names else f"0-{k - 1}"
    raise GanzooError(f"unknown {what} {text!r}; use an index 0-{k - 1} or one of: {choices}")


def _labels_for(G, label, n: int) -> torch.Tensor | None:
    """``label`` (name, index, or None) → n labels, or None for an unconditional model."""
    if label is None:
        return None
    if not G.num_classes:
        raise GanzooError("a label was given, but this model is unconditional; drop the label")
    return torch.full((n,), class_index(G, label), dtype=torch.long)


def _render(G, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Images in [-1, 1] for latents (and labels for a conditional model)."""
    if G.num_classes and labels is None:
        raise GanzooError("this model is conditional: give a label (e.g. --label NAME)")
    return G.sample(z.shape[0], z=z, labels=labels if G.num_classes else None)


# ---- interpolation ----------------------------------------------------------------------------
def _t_tensor(t, like: torch.Tensor) -> tuple[torch.Tensor, bool]:
    tt = torch.as_tensor(t, dtype=torch.float64, device=like.device)
    return tt.reshape(-1), tt.ndim == 0


def lerp(a: torch.Tensor, b: torch.Tensor, t) -> torch.Tensor:
    """Linear interpolation ``(1 - t)·a + t·b``; ``t`` a number, or a 1-d sequence (→ a leading axis)."""
    tt, scalar = _t_tensor(t, a)
    a64, b64 = a.double(), b.double()
    shape = (-1,) + (1,) * a.ndim
    out = (1.0 - tt.view(shape)) * a64 + tt.view(shape) * b64
    out = out.to(a.dtype)
    return out[0] if scalar else out


def slerp(a: torch.Tensor, b: torch.Tensor, t, *, dot_threshold: float = SLERP_DOT_THRESHOLD) -> torch.Tensor:
    """Spherical interpolation along the last axis (see the module docstring), falling back to lerp
    where ``|cos Ω| > dot_threshold`` (nearly parallel or opposite vectors, or a zero vector).

    ``a`` and ``b``: ``(..., D)``; ``t`` a number or a 1-d sequence (→ a leading axis).
    """
    tt, scalar = _t_tensor(t, a)
    a64, b64 = torch.broadcast_tensors(a.double(), b.double())
    na, nb = a64.norm(dim=-1, keepdim=True), b64.norm(dim=-1, keepdim=True)
    dot = (a64 * b64).sum(-1, keepdim=True) / (na * nb).clamp_min(1e-300)
    dot = dot.clamp(-1.0, 1.0)
    degenerate = (dot.abs() > dot_threshold) | (na == 0) | (nb == 0)
    omega = torch.arccos(dot)
    so = torch.sin(omega)
    safe_so = torch.where(degenerate, torch.ones_like(so), so)
    shape = (-1,) + (1,) * a64.ndim
    tv = tt.view(shape)
    sph = (torch.sin((1.0 - tv) * omega) / safe_so) * a64 + (torch.sin(tv * omega) / safe_so) * b64
    lin = (1.0 - tv) * a64 + tv * b64
    out = torch.where(degenerate, lin, sph).to(a.dtype)
    return out[0] if scalar else out


def interpolate_path(points: torch.Tensor, steps: int, *, method: str = "lerp") -> torch.Tensor:
    """A path through ``points`` (K, D): ``steps`` latents per segment, ends included and shared.

    Returns ``((K - 1)·(steps - 1) + 1, D)``: for two points, exactly ``steps`` latents
    from the first to the second.
    """
    if method not in ("lerp", "slerp", "linear"):
        raise GanzooError(f"interpolation method {method!r}: use 'lerp' (linear) or 'slerp' (spherical)")
    if points.ndim != 2 or points.shape[0] < 2:
        raise GanzooError(f"interpolation needs at least two latent points, got {points.shape[0] if points.ndim == 2 else 0}")
    if int(steps) < 2:
        raise GanzooError(f"steps {steps!r}: use at least 2 (the two end points)")
    fn = slerp if method == "slerp" else lerp
    t = torch.linspace(0.0, 1.0, int(steps), dtype=torch.float64)
    out = [points[:1]]
    for i in range(points.shape[0] - 1):
        out.append(fn(points[i], points[i + 1], t)[1:])
    return torch.cat(out)


@dataclasses.dataclass
class Interpolation:
    """What :func:`interpolate` made: the path's latents, labels and images, and the per-segment rows."""

    z: torch.Tensor
    labels: torch.Tensor | None
    images: torch.Tensor
    steps: int
    points: int
    method: str

    def segments(self) -> torch.Tensor:
        """The images as ``points - 1`` rows of ``steps`` (each row has both its ends)."""
        s = self.steps
        rows = [self.images[i * (s - 1): i * (s - 1) + s] for i in range(self.points - 1)]
        return torch.cat(rows)


def _points(G, points, truncation) -> tuple[torch.Tensor, list[int | None]]:
    """Seeds (ints) and latent files (paths) / tensors → ``(z (K, D), labels or None per point)``."""
    zs, labels = [], []
    if isinstance(points, torch.Tensor):
        points = [points]
    for p in points:
        if isinstance(p, torch.Tensor):
            z = p.reshape(-1, G.latent_dim).float().cpu()
            zs.append(z)
            labels += [None] * z.shape[0]
        elif isinstance(p, int) or (isinstance(p, str) and re.fullmatch(r"\s*\d+(\s*-\s*\d+)?\s*", p)):
            z, lab = seed_latents(G, parse_seeds(p if isinstance(p, str) else [p]), truncation=truncation)
            zs.append(z.cpu())
            labels += lab.tolist() if lab is not None else [None] * z.shape[0]
        else:
            z, lab = load_latents(p, G.latent_dim)
            zs.append(z)
            labels += lab.tolist() if lab is not None else [None] * z.shape[0]
    if not zs:
        raise GanzooError("no latent points given; name seeds (e.g. 3,17) or latent files")
    return torch.cat(zs).to(G.device), labels


def interpolate(G, points: Sequence[int | str | os.PathLike | torch.Tensor] | torch.Tensor, *, steps: int = 10,
                method: str = "lerp", label=None, truncation: float | None = None) -> Interpolation:
    """Images along a lerp/slerp path through latent points.

    ``points``: seeds (ints, or strings like ``"40-42"``), latent files (``.npy`` /
    ``.safetensors``) or tensors ``(D,)``/``(N, D)``, in path order. For a conditional
    model the label stays fixed along the path: ``label`` (name or index), else the
    label of the first point that has one (a seed's own label), else class 0.
    """
    z_pts, pt_labels = _points(G, list(points) if not isinstance(points, torch.Tensor) else points, truncation)
    path = interpolate_path(z_pts, steps, method=method)
    labels = None
    if G.num_classes:
        if label is not None:
            lab = class_index(G, label)
        else:
            lab = next((x for x in pt_labels if x is not None), 0)
        labels = torch.full((path.shape[0],), int(lab), dtype=torch.long)
    images = _render(G, path, labels)
    return Interpolation(path, labels, images, int(steps), z_pts.shape[0], "slerp" if method == "slerp" else "lerp")


def _to_uint8_hwc(img: torch.Tensor, scale: int = 1) -> np.ndarray:
    x = ((img.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    if scale > 1:
        x = x.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    return x.permute(1, 2, 0).numpy()


def _pil(img: torch.Tensor, scale: int = 1):
    a = _to_uint8_hwc(img, scale)
    return Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB")


def save_gif(images: torch.Tensor, path: str | os.PathLike, *, duration: int = 100, scale: int = 1,
             loop: int = 0, boomerang: bool = False) -> Path:
    """An animated GIF (Pillow), one frame per image in [-1, 1], written atomically.

    ``duration``: ms per frame; ``loop=0`` loops forever; ``boomerang`` plays the path
    back again (frames ``1 .. n-2`` reversed appended). Note that GIF encoders merge
    identical consecutive frames, so a path whose images do not change has fewer frames.
    """
    frames = [_pil(x, scale) for x in images]
    if boomerang and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    if not frames:
        raise GanzooError("no images to write")
    path = Path(path)
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=int(duration),
                       loop=int(loop), optimize=False)
    return path


def save_strip(images: torch.Tensor, path: str | os.PathLike, *, nrow: int | None = None, scale: int = 1,
               padding: int = 2) -> Path:
    """A PNG of images in [-1, 1] in rows of ``nrow`` (default: one row), written atomically.

    The layout is :func:`ganzoo.io.save_grid`'s (torchvision's ``make_grid``: ``padding``
    black pixels around every image), drawn with numpy and Pillow, so that these commands
    do not pay for importing torchvision.
    """
    check_png_output(path)
    n = images.shape[0]
    if n == 0:
        raise GanzooError("no images to write")
    nrow = max(1, min(int(nrow or n), n))
    ncol = math.ceil(n / nrow)
    tiles = [_to_uint8_hwc(x, scale) for x in images]
    h, w, c = tiles[0].shape
    canvas = np.zeros((padding + ncol * (h + padding), padding + nrow * (w + padding), c), np.uint8)
    for i, t in enumerate(tiles):
        r, q = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + q * (w + padding)
        canvas[y:y + h, x:x + w] = t
    img = Image.fromarray(canvas[:, :, 0], "L") if c == 1 else Image.fromarray(canvas, "RGB")
    path = Path(path)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


# ---- latent arithmetic ------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*])|(?P<bad>\S))")


def parse_expression(text: str, names: Iterable[str] | None = None) -> list[tuple[float, str]]:
    """``"a - b + c"`` → ``[(1.0, "a"), (-1.0, "b"), (1.0, "c")]``: a small, safe parser (no eval).

    Grammar: ``[+|-] term ((+|-) term)*`` with ``term = [NUMBER [*]] NAME``, e.g.
    ``smile_woman - neutral_woman + neutral_man`` or ``-0.5*a + 2 b``. A name used twice
    is summed. ``names`` (the bound groups) makes an unknown name an error. Every error is
    a one-line :class:`GanzooError` saying where.
    """
    if not isinstance(text, str) or not text.strip():
        raise GanzooError("empty expression; write e.g. --expr \"a - b + c\"")
    tokens: list[tuple[str, str, int]] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind is None:
            continue
        value = m.group(kind)
        col = m.start(kind) + 1
        if kind == "bad":
            raise GanzooError(f"expression {text!r}: unexpected {value!r} at column {col}; "
                              "use group names, numbers, + - and *")
        tokens.append((kind, value, col))
    known = None if names is None else list(names)
    terms: dict[str, float] = {}
    order: list[str] = []
    i, n = 0, len(tokens)

    def where(j: int) -> str:
        return f"at column {tokens[j][2]}" if j < n else "at the end"

    def fail(j: int, wanted: str):
        got = repr(tokens[j][1]) if j < n else "nothing"
        raise GanzooError(f"expression {text!r}: expected {wanted} {where(j)}, got {got}")

    first = True
    while i < n or first:
        sign = 1.0
        if i < n and tokens[i][0] == "op" and tokens[i][1] in "+-":
            sign = -1.0 if tokens[i][1] == "-" else 1.0
            i += 1
        elif not first:
            fail(i, "+ or -")
        coef = 1.0
        if i < n and tokens[i][0] == "num":
            coef = float(tokens[i][1])
            i += 1
            if i < n and tokens[i][0] == "op" and tokens[i][1] == "*":
                i += 1
        if i >= n or tokens[i][0] != "name":
            fail(i, "a group name")
        name = tokens[i][1]
        if known is not None and name not in known:
            bound = ", ".join(known) if known else "none"
            raise GanzooError(f"expression {text!r}: {name!r} is not a group (bound: {bound}); "
                              f"bind it with --group {name}=SEEDS (or class:NAME, pred:NAME, file:PATH)")
        if name not in terms:
            order.append(name)
            terms[name] = 0.0
        terms[name] += sign * coef
        i += 1
        first = False
        if i < n and tokens[i][0] != "op":
            fail(i, "+ or -")
        if i < n and tokens[i][1] == "*":
            fail(i, "+ or -")
    return [(terms[k], k) for k in order]


def combine(terms: Sequence[tuple[float, str]], vectors: dict[str, torch.Tensor]) -> torch.Tensor:
    """``Σ coefficient · vectors[name]`` for the parsed ``terms``."""
    out = None
    for coef, name in terms:
        if name not in vectors:
            raise GanzooError(f"no vector for {name!r}; bound: {', '.join(vectors) or 'none'}")
        v = vectors[name].double() * float(coef)
        out = v if out is None else out + v
    if out is None:
        raise GanzooError("empty expression")
    return out.float()


@dataclasses.dataclass
class Group:
    """A named group of latent samples; its :attr:`mean` is the attribute vector.

    ``labels``: one per sample for a conditional model (else None); ``seeds``: the
    seed of each sample where it came from a seed (else None); ``source``: how it was
    chosen, for captions and reports.
    """

    name: str
    z: torch.Tensor
    labels: torch.Tensor | None = None
    seeds: list[int | None] | None = None
    source: str = ""

    @property
    def mean(self) -> torch.Tensor:
        return self.z.double().mean(0).float()

    @property
    def label(self) -> int | None:
        """The most common label of the samples (None for an unconditional model)."""
        if self.labels is None or self.labels.numel() == 0:
            return None
        return Counter(self.labels.tolist()).most_common(1)[0][0]


def _check_name(name: str) -> str:
    name = str(name).strip()
    if not _NAME.match(name):
        raise GanzooError(f"group name {name!r}: use a letter or _ then letters, digits or _ (e.g. smile_man)")
    return name


def seed_group(G, name: str, seeds: Sequence[int] | str, *, truncation: float | None = None) -> Group:
    """The samples of the given seeds (each with its own label in a conditional model)."""
    seeds = parse_seeds(seeds)
    z, labels = seed_latents(G, seeds, truncation=truncation)
    return Group(_check_name(name), z, labels, list(seeds), f"seeds {_seed_text(seeds)}")


def _seed_text(seeds: Sequence[int | None]) -> str:
    s = [x for x in seeds if x is not None]
    if len(s) > 2 and s == list(range(s[0], s[0] + len(s))):
        return f"{s[0]}-{s[-1]}"
    return ",".join(map(str, s))


def class_group(G, name: str, cls, *, n: int = 3, first_seed: int = 0, truncation: float | None = None) -> Group:
    """A conditional model's class: the latents of seeds ``first_seed ..`` drawn with that class's label.

    Every class group takes the same seeds, so their rows show the same latents (styles)
    in each class, and their mean latents are equal: between classes, the label carries
    the difference (see :func:`arithmetic` for the result's label).
    """
    if not G.num_classes:
        raise GanzooError(f"group {name}=class:{cls}: this model is unconditional (no classes); choose samples by "
                          f"a classifier's prediction instead: {name}=pred:{cls} with --classifier")
    k = class_index(G, cls, "class")
    seeds = list(range(int(first_seed), int(first_seed) + int(n)))
    z, _ = seed_latents(G, seeds, truncation=truncation)
    labels = torch.full((len(seeds),), k, dtype=torch.long)
    names = getattr(G, "class_names", None) or []
    return Group(_check_name(name), z, labels, seeds, f"class {names[k] if k < len(names) else k}")


class FmnistClassifierFn:
    """The shipped Fashion-MNIST classifier as a classifier: images in [-1, 1] → 10 logits.

    ``path``: other weights of the same network (a ``.safetensors`` file).
    """

    def __init__(self, path: str | os.PathLike | None = None, device="cpu") -> None:
        self.extractor = FmnistExtractor(path, device=device)
        self.class_names = list(FASHION_MNIST_CLASSES)
        self.description = self.extractor.description

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        u8 = ((images.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return self.extractor(u8)["logits"]


def resolve_classifier(spec, device="cpu"):
    """A classifier for ``pred:`` groups: images in [-1, 1] (N, C, H, W) → logits or probabilities (N, K).

    ``spec`` is a callable (used as it is), or a string:

    * ``"fmnist"``: the shipped Fashion-MNIST classifier (:class:`FmnistClassifierFn`);
      ``"fmnist:PATH.safetensors"`` the same network with other weights;
    * ``"package.module:name"``: a Python object to import; a class is instantiated with
      no arguments. It may carry ``class_names`` (else targets are class indices).

    ganzoo ships no face classifier: for UTKFace age groups or gender, train one and
    point ``--classifier`` at it (e.g. ``mypkg.faces:GenderNet`` with
    ``class_names = ["Male", "Female"]``).
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise GanzooError("pred: groups need a classifier; pass --classifier fmnist (Fashion-MNIST models) "
                          "or --classifier package.module:name")
    spec = spec.strip()
    if spec == "fmnist" or spec.startswith("fmnist:"):
        return FmnistClassifierFn(spec.split(":", 1)[1] if ":" in spec else None, device=device)
    if ":" not in spec:
        raise GanzooError(f"classifier {spec!r}: use fmnist, fmnist:PATH.safetensors or package.module:name")
    mod_name, attr = spec.split(":", 1)
    try:
        obj = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise GanzooError(f"classifier {spec!r}: cannot import it ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, type):
        obj = obj()
    if isinstance(obj, torch.nn.Module):
        obj.to(device).eval()
    if not callable(obj):
        raise GanzooError(f"classifier {spec!r} is not callable; it must map images to logits")
    return obj


@torch.no_grad()
def _classify_pool(G, classifier, seeds: Sequence[int], batch_size: int = 64
                   ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    z, labels = seed_latents(G, seeds)
    probs = []
    for i in range(0, z.shape[0], batch_size):
        lab = labels[i:i + batch_size] if labels is not None else None
        x = G.sample(z[i:i + batch_size].shape[0], z=z[i:i + batch_size], labels=lab)
        out = classifier(x)
        if isinstance(out, (tuple, list)):
            out = out[-1]
        out = torch.as_tensor(out).float().cpu()
        if out.ndim != 2:
            raise GanzooError(f"the classifier returned shape {tuple(out.shape)}; it must return (N, classes) logits")
        is_prob = bool(((out >= 0) & (out <= 1)).all()) and torch.allclose(out.sum(1), torch.ones(out.shape[0]),
                                                                            atol=1e-4)
        probs.append(out if is_prob else out.softmax(1))
    return z, labels, torch.cat(probs)


def predicted_group(G, name: str, target, classifier, *, n: int = 3, pool: int = 256, first_seed: int = 0,
                    _cache: dict | None = None) -> Group:
    """The ``n`` samples among seeds ``first_seed .. first_seed + pool - 1`` that ``classifier``
    assigns to ``target`` most confidently (argmax = target, highest probability first)."""
    seeds = list(range(int(first_seed), int(first_seed) + int(pool)))
    key = (id(classifier), tuple(seeds[:1]), len(seeds))
    if _cache is not None and key in _cache:
        z, labels, probs = _cache[key]
    else:
        z, labels, probs = _classify_pool(G, classifier, seeds)
        if _cache is not None:
            _cache[key] = (z, labels, probs)
    names = [str(c) for c in (getattr(classifier, "class_names", None) or [])]
    k = _index_in(names, probs.shape[1], target, "classifier class")
    hit = torch.nonzero(probs.argmax(1) == k).flatten()
    if hit.numel() == 0:
        shown = names[k] if k < len(names) else k
        raise GanzooError(f"group {name}=pred:{target}: none of the {len(seeds)} samples (seeds {seeds[0]}-"
                          f"{seeds[-1]}) is classified as {shown!r}; raise --pool or pick another class")
    order = hit[probs[hit, k].argsort(descending=True)][: int(n)]
    shown = names[k] if k < len(names) else str(k)
    picked = [seeds[i] for i in order.tolist()]
    return Group(_check_name(name), z[order], labels[order] if labels is not None else None, picked,
                 f"predicted {shown} (seeds {_seed_text(picked)} of {seeds[0]}-{seeds[-1]})")


def file_group(G, name: str, path: str | os.PathLike) -> Group:
    """Latents from a ``.npy``/``.safetensors`` file (e.g. from ``ganzoo project --save-latent``)."""
    z, labels = load_latents(path, G.latent_dim)  # no labels: drawn with the result's label
    return Group(_check_name(name), z.to(G.device), labels if G.num_classes else None, [None] * z.shape[0],
                 f"file {Path(path).name}")


def parse_group(G, text: str, *, classifier=None, per_group: int = 3, pool: int = 256, pool_seed: int = 0,
                truncation: float | None = None, _cache: dict | None = None) -> Group:
    """``NAME=SEEDS`` | ``NAME=class:CLASS`` | ``NAME=pred:CLASS`` | ``NAME=file:PATH`` → a :class:`Group`.

    ``class:`` groups use seeds ``pool_seed ..`` (``per_group`` of them); ``pred:`` groups
    pick ``per_group`` of the seeds ``pool_seed .. pool_seed + pool - 1`` by the classifier.
    """
    if "=" not in text:
        raise GanzooError(f"group {text!r}: write NAME=SEEDS, NAME=class:CLASS, NAME=pred:CLASS or NAME=file:PATH")
    name, value = (s.strip() for s in text.split("=", 1))
    name = _check_name(name)
    if value.startswith("class:"):
        return class_group(G, name, value[6:], n=per_group, first_seed=pool_seed, truncation=truncation)
    if value.startswith("pred:"):
        if truncation is not None:
            raise GanzooError("--truncation does not combine with pred: groups; drop one of them")
        clf = resolve_classifier(classifier, G.device)
        return predicted_group(G, name, value[5:], clf, n=per_group, pool=pool, first_seed=pool_seed, _cache=_cache)
    if value.startswith("file:"):
        return file_group(G, name, value[5:])
    if value.startswith("seeds:"):
        value = value[6:]
    return seed_group(G, name, value, truncation=truncation)


@dataclasses.dataclass
class ArithmeticResult:
    """What :func:`arithmetic` made. ``z`` (D,) and ``label`` are the result's latent and label;
    ``image`` its image; ``variations`` images of ``z`` plus small noise (DCGAN's display)."""

    expression: str
    terms: list[tuple[float, str]]
    groups: dict[str, Group]
    z: torch.Tensor
    label: int | None
    image: torch.Tensor
    variations: torch.Tensor
    samples: dict[str, torch.Tensor]
    means: dict[str, torch.Tensor]


def arithmetic(G, expression: str, groups: dict[str, Group] | Sequence[Group], *, label=None,
               variations: int = 3, noise: float = 0.25, seed: int = 0, max_samples: int = 8) -> ArithmeticResult:
    """Evaluate ``expression`` on the groups' mean latents and render operands and result.

    The result is ``Σ c·mean(group)``. Its label (conditional models): ``label``, else the
    label of the last operand with a positive coefficient. ``variations`` images show the
    result with uniform noise in ``[-noise, noise]`` added to ``z`` (Radford et al. 2015,
    Fig. 7), drawn from ``seed``.
    """
    if not isinstance(groups, dict):
        groups = {g.name: g for g in groups}
    terms = parse_expression(expression, list(groups))
    means = {name: groups[name].mean for _, name in terms}
    z = combine(terms, means).to(G.device)
    res_label = None
    if G.num_classes:
        if label is not None:
            res_label = class_index(G, label)
        else:
            positive = [n for c, n in terms if c > 0 and groups[n].label is not None]
            res_label = groups[positive[-1]].label if positive else None
            if res_label is None:
                raise GanzooError("this model is conditional and no positive operand has a label; pass --label")
    samples, mean_images = {}, {}
    for c, name in terms:
        g = groups[name]
        m = min(g.z.shape[0], int(max_samples))
        if G.num_classes:
            lab = g.labels[:m] if g.labels is not None else torch.full((m,), res_label, dtype=torch.long)
            glab = g.label if g.label is not None else res_label
            samples[name] = _render(G, g.z[:m], lab)
            mean_images[name] = _render(G, g.mean[None], torch.tensor([glab]))[0]
        else:
            samples[name] = _render(G, g.z[:m], None)
            mean_images[name] = _render(G, g.mean[None], None)[0]
    lab1 = torch.tensor([res_label]) if res_label is not None else None
    image = _render(G, z[None], lab1)[0]
    gen = torch.Generator().manual_seed(int(seed))
    k = int(variations)
    if k > 0:
        zv = z[None].cpu() + (torch.rand(k, z.numel(), generator=gen) * 2 - 1) * float(noise)
        var = _render(G, zv.to(G.device), lab1.expand(k) if lab1 is not None else None)
    else:
        var = torch.empty(0, *G.image_shape)
    return ArithmeticResult(expression, terms, groups, z.cpu(), res_label, image, var, samples, mean_images)


def _coef_text(c: float, first: bool) -> str:
    sign = "-" if c < 0 else ("" if first else "+")
    mag = abs(c)
    num = "" if math.isclose(mag, 1.0) else f"{mag:g}*"
    return (f"{sign} " if sign else "") + num


def save_arithmetic_grid(result: ArithmeticResult, path: str | os.PathLike, *, scale: int = 1) -> Path:
    """A PNG: a row per operand (its samples, then its mean-latent image, right of a gap)
    and a last row with the result (noise variations, then the result itself), captioned
    on the left. Written atomically."""
    check_png_output(path)
    rows: list[tuple[str, list[torch.Tensor], torch.Tensor, str]] = []  # caption, samples, mean, note
    for i, (c, name) in enumerate(result.terms):
        g = result.groups[name]
        rows.append((f"{_coef_text(c, i == 0)}{name}", list(result.samples[name]), result.means[name], g.source))
    rows.append(("= result", list(result.variations), result.image, result.expression))
    imgs = [_pil(x, scale) for x in [result.image]]
    cw, ch = imgs[0].size
    pad, gap = 4, 12
    ncols = max(len(r[1]) for r in rows)
    try:
        font = ImageFont.load_default(size=max(11, min(16, ch // 3)))
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = int(max(probe.textlength(r[0], font=font) for r in rows)) + 2 * pad
    sub_w = int(max(probe.textlength(r[3][:48], font=font) for r in rows)) + 2 * pad
    row_h = max(ch, 2 * 16) + pad
    head = "samples (result: + noise)"
    samples_w = max(ncols * (cw + pad), int(probe.textlength(head, font=font)) + pad)
    width = label_w + samples_w + gap + max(cw + pad + sub_w, int(probe.textlength("mean latent", font=font)))
    head_h = 18
    height = head_h + pad + len(rows) * row_h + (gap - pad)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    xm = label_w + samples_w + gap
    draw.text((label_w, head_h // 2 + 2), head, fill=(90, 90, 90), font=font, anchor="lm")
    draw.text((xm, head_h // 2 + 2), "mean latent", fill=(90, 90, 90), font=font, anchor="lm")
    y = head_h + pad
    for r, (caption, samples, mean, note) in enumerate(rows):
        if r == len(rows) - 1:
            y += gap - pad
            draw.line([(pad, y - gap // 2), (width - pad, y - gap // 2)], fill=(160, 160, 160))
        draw.text((pad, y + ch // 2), caption, fill=(0, 0, 0), font=font, anchor="lm")
        x = label_w
        for img in samples:
            canvas.paste(_pil(img, scale).convert("RGB"), (x, y))
            x += cw + pad
        canvas.paste(_pil(mean, scale).convert("RGB"), (xm, y))
        draw.rectangle([xm - 2, y - 2, xm + cw + 1, y + ch + 1], outline=(200, 0, 0) if r == len(rows) - 1
                       else (120, 120, 120))
        draw.text((xm + cw + pad + 2, y + ch // 2), note[:48], fill=(90, 90, 90), font=font, anchor="lm")
        y += row_h
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


# ---- projection -------------------------------------------------------------------------------
def load_image(path: str | os.PathLike, G) -> torch.Tensor:
    """An image file → ``(1, C, H, W)`` in [-1, 1] at ``G``'s size and channels, prepared as
    ``ganzoo.data`` prepares folders: EXIF orientation, centered square crop, antialiased
    bicubic resize, RGB or gray (alpha composited onto white)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GanzooError(f"{path}: no such image file")
    c, h, w = G.image_shape
    if h != w:
        raise GanzooError(f"this model makes {h}x{w} images; only square models are supported for projection")
    images, kept, skipped = decode_images(path.parent, [path.name], image_size=h, channels=c)
    if not kept:
        raise GanzooError(f"{path}: could not read the image ({skipped[0].split(': ', 1)[-1] if skipped else '?'})")
    return images[:1].float().div(127.5).sub(1.0).to(G.device)


def psnr(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB of an MSE on a [0, ``peak``] scale (``inf`` for a perfect match)."""
    return float("inf") if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


class FmnistFeatures(torch.nn.Module):
    """Differentiable features of the shipped Fashion-MNIST classifier (128-d penultimate layer)
    for images in [-1, 1]: gray (RGB averaged), antialiased bilinear resize to 28x28."""

    def __init__(self, path=None, device="cpu") -> None:
        super().__init__()
        self.size = INPUT_SIZE
        self.net = FmnistExtractor(path, device=device).model
        self.net.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            x = x.mean(1, keepdim=True)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return self.net.features(x)


def resolve_perceptual(spec, device="cpu"):
    """A feature network for projection's perceptual loss: None/"none", a callable, ``"fmnist"``
    (:class:`FmnistFeatures`) or ``"package.module:name"`` (a class is instantiated). It maps
    images in [-1, 1] to features and must be differentiable."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "none")):
        return None
    if callable(spec):
        return spec
    spec = str(spec).strip()
    if spec == "fmnist" or spec.startswith("fmnist:"):
        return FmnistFeatures(spec.split(":", 1)[1] if ":" in spec else None, device=device)
    return resolve_classifier(spec, device)


@dataclasses.dataclass
class Projection:
    """The result of :func:`project`.

    ``z`` (1, D) and ``label`` (conditional models) give ``image`` (1, C, H, W);
    ``mse``/``psnr``/``l1`` compare it with the target on the [0, 1] scale; ``loss`` is the
    optimised objective; ``start`` says where the best run began (``"random"``,
    ``"encoder"``); ``start_mse`` is the MSE of the random starts before optimisation
    (mean), ``encoder_mse`` that of ``G.encode(x)`` alone (None without an encoder);
    ``restart_losses`` the best loss of each run.
    """

    z: torch.Tensor
    label: int | None
    image: torch.Tensor
    target: torch.Tensor
    mse: float
    psnr: float
    l1: float
    loss: float
    start: str
    start_mse: float
    encoder_mse: float | None
    restart_losses: list[float]
    steps: int

    def as_dict(self) -> dict:
        return {"mse": self.mse, "psnr_db": self.psnr, "l1": self.l1, "loss": self.loss, "start": self.start,
                "start_mse": self.start_mse, "encoder_mse": self.encoder_mse, "label": self.label,
                "restart_losses": self.restart_losses, "steps": self.steps}


def _forward(G, z, labels):
    x = G(z, labels) if G.num_classes else G(z)
    return G.to_unit_range(x.float())


def _encode(G, x: torch.Tensor) -> torch.Tensor | None:
    enc = getattr(G, "encode", None)
    if not callable(enc):
        return None
    with torch.no_grad():
        z = enc(x)
    if isinstance(z, (tuple, list)):
        z = z[0]
    return torch.as_tensor(z).reshape(x.shape[0], -1).float()


def _projection_starts(G, x: torch.Tensor, *, encoder: str, restarts: int, seed: int, label):
    """The starting latents of :func:`project` on ``G``'s device, what each is (``"encoder"``/``"random"``)
    and, for a conditional model, the class each run is tried with (every class unless ``label``)."""
    device = G.device
    z_enc = _encode(G, x) if encoder != "off" else None
    if encoder == "only" and z_enc is None:
        raise GanzooError(f"{type(G).__name__} has no encoder (G.encode); use --encoder auto or off")
    gen = torch.Generator().manual_seed(int(seed))
    starts, kinds = [], []
    if z_enc is not None:
        starts.append(z_enc.cpu())
        kinds.append("encoder")
    if encoder != "only" and restarts:
        starts.append(G.sample_latent(restarts, generator=gen, device="cpu"))
        kinds += ["random"] * restarts
    if not starts:
        raise GanzooError("nothing to optimise: use --restarts 1 or more")
    z0 = torch.cat(starts)
    if G.num_classes:
        classes = [class_index(G, label)] if label is not None else list(range(G.num_classes))
    else:
        classes = [None]
    r = z0.shape[0]
    labels = (torch.tensor([c for c in classes for _ in range(r)], dtype=torch.long, device=device)
              if G.num_classes else None)
    return z0.repeat(len(classes), 1).to(device), kinds * len(classes), labels


def _adam_search(objective, z0: torch.Tensor, best_z: torch.Tensor, best: torch.Tensor, *, steps: int, lr: float,
                 progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise ``objective(z) -> (per-run values, images)`` from ``z0`` with Adam, ``lr`` cosine-annealed
    to 0 over ``steps``; every run keeps its best latent (``best_z``, ``best``: updated and returned)."""
    bar = tqdm(total=steps, desc="projecting", unit="step", disable=not progress, dynamic_ncols=True, leave=False)
    z = z0.clone().requires_grad_(True)
    m, v = torch.zeros_like(z), torch.zeros_like(z)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for step in range(steps):
        per, _img = objective(z)
        with torch.no_grad():
            better = per < best
            best = torch.where(better, per.detach(), best)
            best_z[better] = z.detach()[better]
        (grad,) = torch.autograd.grad(per.sum(), z)
        with torch.no_grad():  # Adam (torch.optim's update; creating one costs seconds of imports)
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            rate = float(lr) * 0.5 * (1.0 + math.cos(math.pi * step / steps))  # cosine annealing
            m_hat = m / (1 - b1 ** (step + 1))
            v_hat = v / (1 - b2 ** (step + 1))
            z.sub_(rate * m_hat / (v_hat.sqrt() + eps))
        bar.update(1)
        if step % 10 == 0 or step == steps - 1:
            bar.set_postfix(best=f"{float(best.min()):.4g}", refresh=False)
    bar.close()
    with torch.no_grad():
        per, _img = objective(z)
        better = per < best
        best = torch.where(better, per, best)
        best_z[better] = z.detach()[better]
    return best_z, best


def project(G, target: torch.Tensor, *, steps: int = 300, restarts: int = 4, lr: float = 0.05, loss: str = "l2",
            perceptual=None, perceptual_weight: float = 0.1, latent_weight: float = 0.0, label=None,
            seed: int = 0, encoder: str = "auto", progress: bool = False) -> Projection:
    """Find ``z`` with ``G(z) ≈ target`` (an image in [-1, 1], (C, H, W) or (1, C, H, W)).

    All runs are optimised together with Adam (``lr``, cosine-annealed to 0 over
    ``steps``), each from its own start: ``restarts`` latents drawn from ``seed`` (as
    ``G.sample_latent``), plus ``G.encode(target)`` when the generator has an encoder and
    ``encoder="auto"``; ``encoder="only"`` returns the encoder's latent unrefined,
    ``"off"`` ignores it. The objective per run: pixel ``loss`` (``"l2"`` mean squared or
    ``"l1"`` mean absolute error, on [-1, 1]) + ``perceptual_weight`` × the squared
    distance of L2-normalised ``perceptual`` features (see :func:`resolve_perceptual`) +
    ``latent_weight`` × ``(|z|²/D − 1)²`` (keeps ``z`` near the Gaussian shell). Each run
    keeps its best latent; the run with the lowest objective wins. For a conditional model
    without ``label``, every class is tried (``restarts`` runs each) and the best kept.
    ``progress``: a tqdm bar over the steps with the best objective so far (the CLI's, unless --quiet).
    """
    if loss not in ("l2", "l1"):
        raise GanzooError(f"projection loss {loss!r}: use l2 or l1")
    if encoder not in ("auto", "only", "off"):
        raise GanzooError(f"encoder {encoder!r}: use auto, only or off")
    steps, restarts = int(steps), int(restarts)
    if steps < 0 or restarts < 0:
        raise GanzooError("steps and restarts must be >= 0")
    device = G.device
    x = torch.as_tensor(target).float().to(device)
    if x.ndim == 3:
        x = x[None]
    if tuple(x.shape[1:]) != tuple(G.image_shape):
        raise GanzooError(f"target image has shape {tuple(x.shape[1:])}; this model makes {tuple(G.image_shape)}")
    feat = resolve_perceptual(perceptual, device)
    was_training = G.training
    G.eval()
    flags = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)
    try:
        z0, kinds, labels = _projection_starts(G, x, encoder=encoder, restarts=restarts, seed=seed, label=label)
        xt = x.expand(z0.shape[0], *x.shape[1:])
        ft = None
        if feat is not None:
            with torch.no_grad():
                ft = F.normalize(feat(x).flatten(1), dim=1)

        def objective(z):
            img = _forward(G, z, labels)
            diff = img - xt
            per = (diff.pow(2) if loss == "l2" else diff.abs()).flatten(1).mean(1)
            if ft is not None:
                f = F.normalize(feat(img).flatten(1), dim=1)
                per = per + float(perceptual_weight) * (f - ft).pow(2).sum(1)
            if latent_weight:
                per = per + float(latent_weight) * (z.pow(2).mean(1) - 1.0).pow(2)
            return per, img

        with torch.no_grad():
            per0, img0 = objective(z0)
            mse0 = ((img0 - xt) / 2).pow(2).flatten(1).mean(1)
        rnd = [i for i, k in enumerate(kinds) if k == "random"]
        start_mse = float(mse0[rnd].mean()) if rnd else float("nan")
        enc = [i for i, k in enumerate(kinds) if k == "encoder"]
        encoder_mse = float(mse0[enc].min()) if enc else None  # the best class's, for a conditional model
        best_z, best = z0.clone(), per0.clone()
        if encoder != "only" and steps > 0:
            best_z, best = _adam_search(objective, z0, best_z, best, steps=steps, lr=lr, progress=progress)
        i = int(best.argmin())
        with torch.no_grad():
            lab = labels[i:i + 1] if labels is not None else None
            img = _forward(G, best_z[i:i + 1], lab).clamp(-1, 1)
            mse = float(((img - x) / 2).pow(2).mean())
            l1 = float(((img - x) / 2).abs().mean())
    finally:
        for p, f in zip(G.parameters(), flags):
            p.requires_grad_(f)
        G.train(was_training)
    return Projection(best_z[i:i + 1].detach().cpu(), int(lab) if lab is not None else None, img.cpu(), x.cpu(),
                      mse, psnr(mse), l1, float(best[i]), kinds[i], start_mse, encoder_mse,
                      [float(v) for v in best.cpu()], steps if encoder != "only" else 0)
