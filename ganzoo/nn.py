"""Base classes every architecture's generator and discriminator derive from.

The bases carry what the rest of ganzoo needs to know about a network without
importing its plugin: latent size, image shape (C, H, W), number of classes and
the pixel range of the generator's output.
"""
from __future__ import annotations

import functools
import inspect
import tempfile
from pathlib import Path
from typing import Sequence

import torch
import torch.fx
from torch import nn

from . import precision
from .truncation import check_gaussian, truncate_latent
from .errors import GanzooError

__all__ = ["Generator", "Discriminator", "WrapperAttributes"]


def _hub():
    """``ganzoo.hub``, for the networks' huggingface_hub-style methods (from_pretrained, save_pretrained,
    push_to_hub). The hub sits above this module (it builds networks through ``ganzoo.models``, which
    never imports this one) and is imported on first use, not with ganzoo."""
    from . import hub  # start-up time: hub pulls huggingface_hub and safetensors (~0.3 s)

    return hub


def _innermost(module):
    while isinstance(module, WrapperAttributes):
        module = module.module
    return module


class WrapperAttributes:
    """Mixin for a module that wraps another as ``self.module`` (DDP, DiffAugment): attributes
    the wrapper lacks are looked up on the wrapped network, so objectives keep using
    ``ctx.G.sample_latent``, ``ctx.D.heads``, ``num_classes`` and the like through it."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)

    def score(self, x: torch.Tensor, labels: torch.Tensor | None = None, **inputs) -> torch.Tensor:
        """The wrapped discriminator's :meth:`Discriminator.score`, run through this wrapper's
        ``forward`` (augmentation, DDP's gradient reduction), not around it."""
        return type(_innermost(self.module)).score(self, x, labels, **inputs)


def _checked_forward(forward):
    """``forward`` of a ganzoo network, wrapped to hold the calling convention: ``net(x, labels=None)``.

    A ``forward`` that declares ``labels`` gets them checked against ``num_classes``: an
    unconditional network given labels, or a conditional one without them, is a ValueError
    that says so. A ``forward`` without a ``labels`` parameter (``forward(self, z)``, as plugins
    wrote it before the convention; BiGAN's ``D(x, z)``, whose second input is a latent) gets a
    None second argument dropped and anything else as written, so every caller can write
    ``G(z, labels)`` and ``D(x, labels)``.
    """
    if getattr(forward, "_ganzoo_checked", False):
        return forward
    params = list(inspect.signature(forward).parameters.values())[1:]
    takes_labels = any(p.name == "labels" for p in params)
    takes_second = any(p.kind is p.VAR_POSITIONAL for p in params) or \
        sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) >= 2

    @functools.wraps(forward)
    def checked(self, x, labels=None, *args, **kwargs):
        if takes_labels:
            if labels is None:
                if self.num_classes:
                    raise ValueError(f"{type(self).__name__} is conditional ({self.num_classes} classes): "
                                     "call it with labels, one class index per image")
            elif not self.num_classes and not isinstance(labels, torch.fx.Proxy):  # torch.fx traces labels=None too
                raise ValueError(f"{type(self).__name__} is unconditional: call it without labels")
            return forward(self, x, labels, *args, **kwargs)
        if labels is None:
            return forward(self, x, *args, **kwargs)
        if not takes_second:
            raise ValueError(f"{type(self).__name__} is unconditional: call it without labels")
        return forward(self, x, labels, *args, **kwargs)

    checked._ganzoo_checked = True  # type: ignore[attr-defined]
    return checked


class _GANModule(nn.Module):
    def __init__(
        self,
        *,
        latent_dim: int,
        image_shape: Sequence[int],
        num_classes: int = 0,
        pixel_range: tuple[float, float] = (-1.0, 1.0),
    ) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(s) for s in image_shape)
        if len(self.image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
        self.num_classes = int(num_classes)
        self.pixel_range = (float(pixel_range[0]), float(pixel_range[1]))

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _checked_forward(cls.__dict__["forward"])

    def accepted_labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """``labels`` as this network takes them: None for an unconditional network.

        A labelled data set trains unconditional models too; the labels of its batches
        reach the network only where it is conditional."""
        return labels if self.num_classes else None

    @property
    def channels(self) -> int:
        return self.image_shape[0]

    @property
    def image_size(self) -> int:
        return self.image_shape[1]

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    @property
    def config(self):
        """The architecture config this network was built from: the plugin's
        :class:`~ganzoo.GANConfig` dataclass (``G.config.image_size``; ``G.config.to_dict()`` is the
        ``arch_config`` of a model folder's config.json), as ``model.config`` is in transformers.
        None for a network built without :func:`ganzoo.create` / :func:`ganzoo.load`."""
        return self.__dict__.get("gan_config")

    @config.setter
    def config(self, value) -> None:
        self.__dict__["gan_config"] = value


class Generator(_GANModule):
    """Maps latent vectors (and labels, for conditional models) to images.

    Subclasses implement ``forward(z, labels=None)`` returning images of
    ``image_shape`` in ``pixel_range``; every caller writes ``G(z, labels)``
    (labels None for an unconditional generator: the base class checks them and
    raises ValueError on a mismatch). Latents are standard normal unless a
    subclass overrides :meth:`sample_latent`.

    >>> g = ganzoo.load("began_fashion")            # doctest: +SKIP
    >>> g.sample(16, seed=0).shape                    # doctest: +SKIP
    torch.Size([16, 1, 64, 64])
    """

    #: what this network is to ganzoo (``ganzoo.models`` checks a built network by it, not by class,
    #: so that the model builder and the hub below it never import this module)
    ganzoo_role = "generator"

    def sample_latent(
        self, n: int, *, generator: torch.Generator | None = None, device=None
    ) -> torch.Tensor:
        device = torch.device(device) if device is not None else self.device
        return torch.randn(n, self.latent_dim, generator=generator, device="cpu" if generator is not None else device).to(device)

    def to_unit_range(self, images: torch.Tensor) -> torch.Tensor:
        """Map the network's output range onto [-1, 1]."""
        lo, hi = self.pixel_range
        if (lo, hi) == (-1.0, 1.0):
            return images
        return (images - lo) / (hi - lo) * 2.0 - 1.0

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        labels: torch.Tensor | Sequence[int] | None = None,
        seed: int | None = None,
        device=None,
        z: torch.Tensor | None = None,
        batch_size: int = 256,
        autocast: bool = False,
        fast: bool = False,
        truncation: float | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` images in [-1, 1] as a float32 NCHW tensor.

        ``seed`` makes the draw reproducible regardless of the global RNG (the
        latents are drawn on the CPU, so a seed gives the same images on any
        device). ``labels`` (one per image, or one for all) is required for
        conditional generators. ``autocast`` runs the network in bfloat16
        (CUDA, or a CPU with bf16 support); the output is float32 either way.
        ``fast`` samples through :func:`ganzoo.speed.fast_sampler` (an
        equivalent rewritten copy of the network, channels_last, CUDA graphs on
        a GPU, or the network as it is where that measured faster: the choice
        is timed once per batch-size bucket and cached), built once and reused
        while the weights stay the same.
        ``truncation`` (a threshold T > 0; N(0, I) latents only) applies the
        truncation trick: components with |z| > T are redrawn until inside
        (:func:`ganzoo.latent.truncate_latent`), from the seed's stream after
        the labels, so the labels are those drawn without truncation.
        """
        if device is not None:
            self.to(device)
        device = self.device
        was_training = self.training
        self.eval()
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        if z is None:
            z = self.sample_latent(n, generator=gen, device=device)
        z = z.to(device)
        labels_given = labels is not None
        if self.num_classes:
            if labels is None:
                if gen is None:
                    labels = torch.randint(self.num_classes, (n,))
                else:
                    labels = torch.randint(self.num_classes, (n,), generator=gen)
            labels = torch.as_tensor(labels, dtype=torch.long)
            if labels.ndim == 0:
                labels = labels.expand(n)
            if labels.numel() != n:
                raise ValueError(f"got {labels.numel()} labels for {n} images; give one per image or one for all")
            if int(labels.min()) < 0 or int(labels.max()) >= self.num_classes:
                raise ValueError(f"labels must be in [0, {self.num_classes - 1}]")
            labels = labels.to(device)
        elif labels is not None:
            raise ValueError("this generator is unconditional: it takes no labels")
        if truncation is not None:
            check_gaussian(self)
            if gen is not None and self.num_classes and labels_given:
                torch.randint(self.num_classes, (n,), generator=gen)  # the same stream as without labels
            z = truncate_latent(z, truncation, generator=gen)
        if fast:
            from . import speed  # start-up time: the fast sampler (42 ms to import) only for fast=True

            self.train(was_training)
            return speed.sample(self, z, labels, batch_size=batch_size, bf16=bool(autocast), device=device)
        ctx = precision.autocast(device, autocast)
        out = []
        try:
            with ctx:
                for i in range(0, n, batch_size):
                    lab = labels[i : i + batch_size] if labels is not None else None
                    x = self(z[i : i + batch_size], lab)
                    out.append(self.to_unit_range(x.float()).clamp_(-1.0, 1.0))
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, *self.image_shape, device=device)


    # ---- huggingface_hub's names (ModelHubMixin): from_pretrained, save_pretrained, push_to_hub ----
    @classmethod
    def from_pretrained(cls, ref, *, device=None, discriminator: bool = False, revision: str | None = None,
                        generator_weights: str = "auto"):
        """:func:`ganzoo.load` under huggingface_hub's name: ``ganzoo.Generator.from_pretrained(ref)``
        takes a catalog name, a model folder, a run (or checkpoint) or ``org/name[@revision]``.
        Called on an architecture's class, the model must be of that class."""
        out = _hub().load(ref, device=device, discriminator=discriminator, revision=revision,
                   generator_weights=generator_weights)
        G = out[0] if discriminator else out
        if not isinstance(G, cls):
            raise GanzooError(f"{ref}: holds a {type(G).__name__} (architecture {getattr(G, 'arch_name', '?')!r}), "
                              f"not a {cls.__name__}; load it with ganzoo.Generator.from_pretrained")
        return out

    def save_pretrained(self, save_directory, *, discriminator: "Discriminator | None" = None,
                        name: str | None = None, description: str | None = None):
        """Write a model folder (config.json, generator.safetensors, README.md, samples.png; and
        discriminator.safetensors with ``discriminator``) that :func:`ganzoo.load` and the Hub read.
        A loaded model keeps its config.json (recipe, lineage, data); a new one records its
        architecture and config. Returns the folder."""
        return _hub().save_modules(self, save_directory, discriminator=discriminator, name=name, description=description)

    def push_to_hub(self, repo_id: str, *, discriminator: "Discriminator | None" = None, private: bool | None = None,
                    branch: str | None = None, token: str | None = None, commit_message: str | None = None,
                    name: str | None = None, description: str | None = None) -> dict:
        """Save as a model folder and upload it to the Hub repository ``repo_id`` (created if
        missing), as ``ganzoo push`` does; returns ``{"repo", "revision", "url"}``."""
        with tempfile.TemporaryDirectory(prefix="ganzoo-push-") as tmp:
            folder = self.save_pretrained(Path(tmp) / repo_id.split("/")[-1], discriminator=discriminator,
                                          name=name, description=description)
            return _hub().push(folder, repo_id, private=private, branch=branch, token=token, commit_message=commit_message)


class Discriminator(_GANModule):
    """Scores images (and labels, for conditional models).

    Subclasses implement ``forward(x, labels=None)``; every caller writes
    ``D(x, labels)`` (labels None for an unconditional discriminator). What
    ``forward`` returns is the contract between a discriminator and its own
    objective: a logit per image for the classic objectives, a reconstruction
    for BEGAN's autoencoder. :meth:`score` is what every other caller uses (the
    objectives built on :class:`ganzoo.objective.AdversarialLoss`, ``ganzoo eval``'s
    ``dconf``): one realness score per image. ``latent_dim`` is the generator's,
    recorded so that a discriminator alone describes the pair it was trained in.
    """

    #: what this network is to ganzoo (``ganzoo.models`` checks a built network by it, not by class,
    #: so that the model builder and the hub below it never import this module)
    ganzoo_role = "discriminator"

    #: what :meth:`score` returns: "logit" (higher = more real; a critic value for the Wasserstein
    #: objectives) or "reconstruction" (minus an autoencoder's error, BEGAN's); None (the default):
    #: found from ``forward``'s first output and then kept, for discriminators that do not say
    score_kind: str | None = None

    def score(self, x: torch.Tensor, labels: torch.Tensor | None = None, **inputs) -> torch.Tensor:
        """One realness score per image, shape (N,): higher means "real".

        The default is ``forward``'s output (the first, where it returns several) averaged over
        everything but the batch axis (a patch discriminator's map gives its mean logit); an output
        of the images' own shape is an autoencoder's reconstruction, scored by minus its mean L1
        error per image. ``labels`` are the images' classes, passed on only to a conditional
        discriminator (:meth:`accepted_labels`); ``inputs`` go to ``forward`` as keywords (BiGAN's
        latent ``z``). A discriminator whose score is something else overrides this (and says
        what in :attr:`score_kind`).

        >>> D.score(images, labels).shape           # doctest: +SKIP
        torch.Size([16])
        """
        out = self(x, self.accepted_labels(labels), **inputs)
        if isinstance(out, (tuple, list)):
            out = out[0]
        kind = self.score_kind or ("reconstruction" if out.shape == x.shape else "logit")
        if self.score_kind is None:
            self.score_kind = kind
        if kind == "reconstruction":
            return -(out.float() - x.float()).abs().flatten(1).mean(1)
        return out.reshape(out.shape[0], -1).mean(dim=1) if out.ndim > 1 else out
