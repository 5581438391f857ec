"""Truncation of N(0, I) latents: BigGAN's truncation trick, and the check that a generator's latent is N(0, I).

A leaf: it imports nothing of ganzoo but the error class, so that the network classes
(``ganzoo.Generator.sample(..., truncation=T)``) and :mod:`ganzoo.latent` (seeds, groups)
both use it without importing each other.

**Truncation** (:func:`truncate_latent`): BigGAN's truncation trick (Brock et al.
2019, §3.1): every component with ``|z_i| > threshold`` is redrawn from N(0, 1) until
it falls inside, so ``z`` follows a standard normal truncated to
``[-threshold, threshold]`` and components already inside stay as they are. It applies
only to N(0, I) latents; see :func:`check_gaussian`.
"""
from __future__ import annotations

import math

import torch

from .errors import GanzooError

__all__ = ["TRUNCATION_ROUNDS", "check_gaussian", "truncate_latent"]

#: truncation: rounds of redrawing before the remaining components are drawn by inverse CDF.
TRUNCATION_ROUNDS = 100


def _is_custom_latent(G) -> bool:
    """Whether ``G``'s class overrides :meth:`ganzoo.Generator.sample_latent`.

    The method is recognised by its module and name, not by importing :mod:`ganzoo.nn`:
    this module sits below the network classes (``Generator.sample`` truncates through it)."""
    method = getattr(type(G), "sample_latent", None)
    return (getattr(method, "__module__", None), getattr(method, "__qualname__", None)) != (
        "ganzoo.nn", "Generator.sample_latent")


def check_gaussian(G, what: str = "truncation") -> None:
    """Raise :class:`GanzooError` unless ``G``'s latents are standard normal N(0, I).

    A generator declares its latent law with a class attribute ``latent_distribution``
    (``"normal"`` for N(0, I)); without one, the latent is taken to be N(0, I) when the
    class keeps :meth:`ganzoo.Generator.sample_latent`, and unknown when it overrides it
    (e.g. uniform or discrete codes), which is refused.
    """
    dist = getattr(G, "latent_distribution", None)
    if dist is None:
        dist = "unknown (it overrides sample_latent)" if _is_custom_latent(G) else "normal"
    if dist != "normal":
        raise GanzooError(f"{what} needs a standard normal latent, but {type(G).__name__}'s latent is {dist}; "
                          f"drop --truncation for this model")


def truncate_latent(z: torch.Tensor, threshold: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Redraw the components of ``z`` outside ``[-threshold, threshold]`` from N(0, 1) until inside.

    The result is N(0, 1) truncated to ``[-threshold, threshold]`` (BigGAN's truncation
    trick); components already inside are kept, so a seed's truncated latent agrees with
    its untruncated one wherever it can. After :data:`TRUNCATION_ROUNDS` rounds (only
    reached for tiny thresholds) the rest is drawn by the inverse CDF. Draws come from
    ``generator`` (CPU) when given.
    """
    t = float(threshold)
    if not math.isfinite(t) or t <= 0:
        raise GanzooError(f"truncation {threshold!r}: use a threshold > 0, e.g. 0.7 (smaller: less varied samples)")
    device = z.device
    out = z.detach().to("cpu", copy=True)
    for _ in range(TRUNCATION_ROUNDS):
        bad = out.abs() > t
        k = int(bad.sum())
        if not k:
            return out.to(device)
        out[bad] = torch.randn(k, generator=generator, dtype=out.dtype)
    bad = out.abs() > t
    k = int(bad.sum())
    if k:
        lo = 0.5 * (1.0 + math.erf(-t / math.sqrt(2.0)))
        u = torch.rand(k, generator=generator, dtype=torch.float64) * (1.0 - 2.0 * lo) + lo
        out[bad] = torch.special.ndtri(u).clamp_(-t, t).to(out.dtype)
    return out.to(device)
