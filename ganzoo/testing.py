"""Checks every architecture plugin's tests make: public API for plugin tests.

Each architecture's own tests say what defines it (its paper's layer sizes and defaults);
these helpers are the checks that are the same for all of them, so that a plugin tests
them in one line and every plugin tests them alike:

>>> from ganzoo.testing import check_registered, check_shapes_and_range, train_step  # doctest: +SKIP
>>> check_registered(ARCH, "ganzoo-dcgan")                                           # doctest: +SKIP
>>> G, D, images = check_shapes_and_range("dcgan", image_size=32, ngf=8, ndf=8)      # doctest: +SKIP
>>> G, D, out = train_step("dcgan", torch.rand(4, 3, 32, 32) * 2 - 1,               # doctest: +SKIP
...                        watch=lambda G, D: [G.net[0].weight, D.net[0].weight], ngf=8, ndf=8)
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

from .errors import GanzooError
from .models import build
from .objective import StepContext
from .plugins import Registry, get_registry
from .spec import Architecture

__all__ = ["check_registered", "check_shapes_and_range", "check_rejected", "train_step", "CLASSIC_LOGS"]

#: what an objective built on :class:`ganzoo.objective.AdversarialLoss` logs every step
CLASSIC_LOGS = ("loss_d", "loss_g", "d_real", "d_fake")


def check_registered(arch: Architecture, distribution: str) -> Registry:
    """Assert that ``arch`` is in the registry under its name, provided by ``distribution``
    (so through that distribution's entry point); returns the registry."""
    reg = get_registry()
    assert reg.architecture(arch.name) is arch
    assert reg.provider[("architecture", arch.name)] == distribution
    return reg


def check_shapes_and_range(arch: str, n: int = 3, *, scale: float = 3.0, **config):
    """Build ``arch`` with ``config`` and assert the contract of its networks: ``G.sample`` gives
    ``n`` images of G's ``image_shape``; G's raw output (training mode, latents scaled by ``scale``
    to reach the tails) has that shape and stays in [-1, 1]; ``D`` gives one score per image.
    Returns ``(G, D, images)``."""
    G, D = build(arch, **config)
    images = G.sample(n, seed=0)
    assert images.shape == (n, *G.image_shape)
    G.train()
    with torch.no_grad():
        raw = G(torch.randn(n, G.latent_dim) * scale)
    assert raw.shape == images.shape and raw.abs().max() <= 1
    assert D(images).shape == (n,)
    return G, D, images


def check_rejected(arch: str, *configs: dict, networks: Sequence[dict] = (), match: str = "") -> None:
    """Assert that ``ganzoo.create(arch, **cfg)`` refuses each of ``configs`` with a one-line
    :class:`~ganzoo.GanzooError` (containing ``match``), and that the networks themselves, built
    from the architecture's config class without the registry's checks, refuse each of ``networks``
    (what a network cannot build, e.g. an image size that is not a power of 2)."""
    spec = get_registry().architecture(arch)
    for cfg in configs:
        _assert_refused(lambda: build(arch, **cfg), f"{arch} {cfg}", match)
    for cfg in networks:
        def direct(cfg=cfg):
            config = spec.config_cls(**cfg)
            spec.build_generator(config)
            spec.build_discriminator(config)
        _assert_refused(direct, f"{arch} networks {cfg}", match)


def _assert_refused(make: Callable[[], object], what: str, match: str) -> None:
    try:
        make()
    except GanzooError as e:
        assert "\n" not in str(e) and match in str(e), f"{what}: {e}"
    else:
        raise AssertionError(f"{what} was accepted")


def train_step(arch: str, real: torch.Tensor, *, labels: torch.Tensor | None = None,
               watch: Callable[[torch.nn.Module, torch.nn.Module], Iterable[torch.Tensor]] | None = None,
               logged: Sequence[str] | None = CLASSIC_LOGS, seed: int = 0, **config):
    """One step of ``arch``'s registered objective (with its registered hyper-parameters) and Adam
    with its registered optimizer settings, on the real batch ``real``, from ``torch.manual_seed(seed)``.

    Asserts that the logged values named in ``logged`` (None: all of them) are finite and that
    every tensor of ``watch(G, D)`` changed. Returns ``(G, D, out)``."""
    torch.manual_seed(seed)
    G, D = build(arch, **config)
    spec = get_registry().architecture(arch)
    opt = spec.optimizer
    opt_g = torch.optim.Adam(G.parameters(), opt.lr_g, betas=opt.betas)
    opt_d = torch.optim.Adam(D.parameters(), opt.lr_d, betas=opt.betas)
    obj = get_registry().objective(spec.objective)(**spec.objective_kwargs)
    before = [p.detach().clone() for p in watch(G, D)] if watch is not None else []
    out = obj.step(StepContext(G, D, opt_g, opt_d, torch.device("cpu"), 0), real, labels)
    for name in (out if logged is None else logged):
        assert torch.isfinite(out[name]).all(), name
    if watch is not None:
        for i, (was, now) in enumerate(zip(before, watch(G, D))):
            assert not torch.equal(was, now), f"watched tensor {i} did not change"
    return G, D, out
