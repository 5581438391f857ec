"""InfoGAN's networks and latent codes (Chen et al. 2016, arXiv:1606.03657, Appendix C.1, Table 1).

Latent layout (the authors' ``run_mnist_exp.py`` ``latent_spec``, in this
order)::

    z = [ noise (noise_dim, U(-1, 1)) | one-hot c_1 (K_1) | ... | continuous codes (U(-1, 1)) ]

MNIST defaults: 62 noise dimensions, one categorical code with 10 values and
two continuous codes: ``latent_dim = 74`` (Table 1 "Input in R^74").

Networks at 28 px (Table 1)::

    G: z -> FC 1024 -> BN -> ReLU -> FC 7x7x128 -> BN -> ReLU
         -> 4x4 upconv 64, stride 2 -> BN -> ReLU -> 4x4 upconv C, stride 2 -> tanh
    D: x -> 4x4 conv 64, stride 2 -> lReLU -> 4x4 conv 128, stride 2 -> BN -> lReLU
         -> FC 1024 -> BN -> lReLU                                           (shared trunk)
         D head: FC 1 (a logit)
         Q head: FC 128 -> BN -> lReLU -> FC (categorical logits, continuous means[, log-stds])

At 32 px G starts from 8x8 (and D's FC sees 8x8x128); at 64 px each network
has one more stride-2 block (G: FC 8x8x256 -> upconv 128 -> 64 -> C; D: 64 ->
128 -> 256), this plugin's extension of the MNIST network.

The Q head shares D's trunk and lives in the discriminator module, so D's
optimizer trains it (and the trunk) on the mutual-information term; G's
optimizer trains G on the same term (the ``infogan`` objective).

Choices the paper leaves to its code: weights N(0, 0.02), zero biases, batch
norm gamma N(1, 0.02) (the authors' ``custom_ops.py``); leaky ReLU slope 0.1 is
the paper's leaky rate (the code's default is 0.01). G's output is tanh
in [-1, 1], ganzoo's pixel range (the paper's MNIST output is a Bernoulli mean
in [0, 1]). Continuous codes are Gaussian under Q with fixed unit standard
deviation (the code's ``Uniform(1, fix_std=True)``), or a learned one
(``learn_cont_std=True``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo.layers.blocks import fc_upconv_generator
from ganzoo.layers.init import normal_init_
from ganzoo.errors import GanzooError

__all__ = ["InfoGANConfig", "InfoGANGenerator", "InfoGANDiscriminator", "QOutput"]


@dataclass
class InfoGANConfig(ganzoo.GANConfig):
    #: Table 1: MNIST, 28x28 gray images
    image_size: int = 28
    channels: int = 1
    #: derived: noise_dim + sum(categorical) + continuous (74 for MNIST); 0 = derive it
    latent_dim: int = 0
    num_classes: int = 0
    #: run_mnist_exp.py: Uniform(62) noise, Categorical(10), two Uniform(1) continuous codes
    noise_dim: int = 62
    categorical: tuple[int, ...] = (10,)
    continuous: int = 2
    #: "uniform" U(-1, 1) (the authors' code) or "normal" N(0, 1) for the incompressible noise
    noise: str = "uniform"
    #: Q's Gaussian for continuous codes: fixed std 1 (the code's fix_std=True) or a learned one
    learn_cont_std: bool = False
    #: Table 1 widths: G FC 1024, last upconv block 64 (128 before it); D conv 64, 128, FC 1024; Q FC 128
    g_fc: int = 1024
    g_base: int = 64
    d_base: int = 64
    d_fc: int = 1024
    q_hidden: int = 128
    #: Appendix C: D's hidden layers use leaky ReLU with leaky rate 0.1 (the code's default: 0.01)
    leaky_slope: float = 0.1
    #: the authors' custom_ops.py: weights ~ N(0, 0.02)
    init_std: float = 0.02

    def __post_init__(self) -> None:
        self.categorical = tuple(int(k) for k in self.categorical)
        if any(k < 2 for k in self.categorical):
            raise GanzooError(f"infogan: each categorical code needs at least 2 values, got {self.categorical}")
        if self.noise_dim < 0 or self.continuous < 0:
            raise GanzooError("infogan: noise_dim and continuous must be >= 0")
        if self.noise not in ("uniform", "normal"):
            raise GanzooError(f"infogan: noise must be 'uniform' or 'normal', got {self.noise!r}")
        derived = self.noise_dim + sum(self.categorical) + self.continuous
        if self.latent_dim not in (0, derived):
            raise GanzooError(
                f"infogan: latent_dim is noise_dim + sum(categorical) + continuous = {derived}, got {self.latent_dim}; "
                f"leave latent_dim out and set those fields instead")
        self.latent_dim = derived


def _upsamplings(size: int) -> int:
    if size in (28, 32):
        return 2
    if size == 64:
        return 3
    raise GanzooError(f"infogan: image_size must be 28, 32 or 64, got {size}")


class InfoGANGenerator(ganzoo.Generator):
    """z = [noise | one-hot categorical codes | continuous codes] -> images in [-1, 1].

    Fix codes when sampling::

        G.sample(10, cat=range(10), seed=0)            # one image per value of the categorical code
        G.sample(8, cat=3, cont=[[-1, 0], [1, 0]] * 4) # code 3, sweeping the first continuous code
        z = G.make_latent(noise=noise, cat=..., cont=...)  # build z yourself (shared noise, etc.)
    """

    def __init__(self, cfg: InfoGANConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        self.noise_dim = cfg.noise_dim
        self.categorical = tuple(cfg.categorical)
        self.continuous = cfg.continuous
        self.noise = cfg.noise
        n_up = _upsamplings(cfg.image_size)
        self.start = cfg.image_size // 2 ** n_up              # 7 (28 px) or 8
        width = cfg.g_base * 2 ** (n_up - 1)                   # 128 at 28/32 px, 256 at 64 px
        self.start_channels = width
        self.fc, self.net = fc_upconv_generator(cfg.latent_dim, cfg.g_fc, width, self.start, n_up, cfg.channels)
        normal_init_(self, cfg.init_std)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(z.reshape(z.shape[0], -1))
        return self.net(h.view(z.shape[0], self.start_channels, self.start, self.start))

    # -- latent codes ------------------------------------------------------------------
    @property
    def code_slices(self) -> tuple[slice, list[slice], slice]:
        """Where noise, each categorical code and the continuous codes sit in z."""
        i = self.noise_dim
        cats = []
        for k in self.categorical:
            cats.append(slice(i, i + k))
            i += k
        return slice(0, self.noise_dim), cats, slice(i, i + self.continuous)

    def split_latent(self, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """``(noise, [categorical indices (N,) per code], continuous (N, k))`` from ``z``."""
        s_noise, s_cats, s_cont = self.code_slices
        return z[:, s_noise], [z[:, s].argmax(dim=1) for s in s_cats], z[:, s_cont]

    def make_latent(
        self,
        n: int | None = None,
        *,
        noise: torch.Tensor | None = None,
        cat=None,
        cont=None,
        generator: torch.Generator | None = None,
        device=None,
    ) -> torch.Tensor:
        """Build z with chosen codes; whatever is not given is drawn from its prior.

        ``cat``: an int for all images; with one categorical code, a sequence
        or (N,) tensor of values (one per image); with several, a (n_codes,)
        vector for all images or (N, n_codes). ``cont``: a float for all; with
        one continuous code, (N,) values; with several, a (k,) vector for all or
        (N, k). ``noise``: (N, noise_dim). ``n`` defaults to the number of rows
        of whatever is given. Random draws use ``generator`` (on the CPU) when
        given, so a seed gives the same z on any device.
        """
        device = torch.device(device) if device is not None else self.device
        cat_t, cat_rows = self._as_code(cat, torch.long, len(self.categorical), "cat", device)
        cont_t, cont_rows = self._as_code(cont, torch.float32, self.continuous, "cont", device)
        if noise is not None:
            noise = torch.as_tensor(noise, dtype=torch.float32, device=device)
        if n is None:
            rows = [r for r in (noise.shape[0] if noise is not None else None, cat_rows, cont_rows) if r is not None]
            if not rows:
                raise ValueError("say how many latents: pass n, or noise/cat/cont with one row per image")
            n = rows[0]
        n = int(n)
        for name, rows in (("cat", cat_rows), ("cont", cont_rows)):
            if rows is not None and rows != n:
                raise ValueError(f"{name} gives {rows} rows for {n} latents")
        draw_device = "cpu" if generator is not None else device

        def uniform(*shape):
            return (torch.rand(*shape, generator=generator, device=draw_device) * 2 - 1).to(device)

        if noise is None:
            if self.noise == "normal":
                noise = torch.randn(n, self.noise_dim, generator=generator, device=draw_device).to(device)
            else:
                noise = uniform(n, self.noise_dim)
        if noise.shape != (n, self.noise_dim):
            raise ValueError(f"noise must have shape ({n}, {self.noise_dim}), got {tuple(noise.shape)}")
        if cat_t is None:
            cat_t = torch.stack([torch.randint(k, (n,), generator=generator, device=draw_device)
                                 for k in self.categorical], dim=1).to(device) if self.categorical \
                else torch.empty(n, 0, dtype=torch.long, device=device)
        else:  # values the caller chose (drawn ones need no check, and no host sync)
            for j, k in enumerate(self.categorical):
                if int(cat_t[:, j].min()) < 0 or int(cat_t[:, j].max()) >= k:
                    raise ValueError(f"categorical code {j} takes values 0..{k - 1}")
        cat_t = cat_t.expand(n, len(self.categorical))
        parts = [noise] + [F.one_hot(cat_t[:, j], k).float() for j, k in enumerate(self.categorical)]
        parts.append(uniform(n, self.continuous) if cont_t is None else cont_t.expand(n, self.continuous))
        return torch.cat(parts, dim=1)

    @staticmethod
    def _as_code(value, dtype, k: int, name: str, device) -> tuple[torch.Tensor | None, int | None]:
        """``value`` as (1, k) (the same for all images) or (N, k), and N when given per image."""
        if value is None:
            return None, None
        if not k:
            raise ValueError(f"this InfoGAN has no {'categorical' if name == 'cat' else 'continuous'} code")
        t = torch.as_tensor(list(value) if isinstance(value, range) else value, dtype=dtype, device=device)
        per_image = t.ndim == 2 or (t.ndim == 1 and k == 1)
        if t.ndim == 0:
            t = t.expand(1, k)
        elif t.ndim == 1:
            t = t[:, None] if k == 1 else t[None, :]
        if t.ndim != 2 or t.shape[1] != k:
            shape = "(N,)" if k == 1 else f"({k},) or (N, {k})"
            raise ValueError(f"{name} must be a number or {shape}, got shape {tuple(torch.as_tensor(value).shape)}")
        return t, (t.shape[0] if per_image else None)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        return self.make_latent(n, generator=generator, device=device)

    @torch.no_grad()
    def sample(self, n: int, *, cat=None, cont=None, noise: torch.Tensor | None = None, seed: int | None = None,
               z: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """:meth:`ganzoo.Generator.sample` with the codes optionally fixed (``cat``, ``cont``, ``noise``)."""
        if cat is not None or cont is not None or noise is not None:
            if z is not None:
                raise ValueError("give either z or cat/cont/noise, not both")
            gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
            z = self.make_latent(n, noise=noise, cat=cat, cont=cont, generator=gen, device=kwargs.get("device"))
        return super().sample(n, seed=seed, z=z, **kwargs)


class QOutput(NamedTuple):
    """Q(c | x): logits per categorical code, means (and log-stds, or None) of the continuous codes."""

    cat_logits: list[torch.Tensor]
    cont_mean: torch.Tensor
    cont_logstd: torch.Tensor | None


class InfoGANDiscriminator(ganzoo.Discriminator):
    """Images -> logits (N,); :meth:`heads` also returns Q's code predictions from the shared trunk."""

    def __init__(self, cfg: InfoGANConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        self.categorical = tuple(cfg.categorical)
        self.continuous = cfg.continuous
        self.learn_cont_std = bool(cfg.learn_cont_std)
        n_down = _upsamplings(cfg.image_size)
        slope = cfg.leaky_slope
        width = cfg.d_base
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, width, 4, 2, 1), nn.LeakyReLU(slope, True)]  # no BN
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1), nn.BatchNorm2d(width * 2), nn.LeakyReLU(slope, True)]
            width *= 2
        side = cfg.image_size // 2 ** n_down
        self.trunk = nn.Sequential(
            *layers, nn.Flatten(),
            nn.Linear(width * side * side, cfg.d_fc), nn.BatchNorm1d(cfg.d_fc), nn.LeakyReLU(slope, True),
        )
        self.d_head = nn.Linear(cfg.d_fc, 1)
        n_out = sum(self.categorical) + self.continuous * (2 if self.learn_cont_std else 1)
        self.q_head = nn.Sequential(
            nn.Linear(cfg.d_fc, cfg.q_hidden), nn.BatchNorm1d(cfg.q_hidden), nn.LeakyReLU(slope, True),
            nn.Linear(cfg.q_hidden, n_out),
        )
        normal_init_(self, cfg.init_std)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.d_head(self.trunk(x)).view(x.shape[0])

    def split_q(self, out: torch.Tensor) -> QOutput:
        cats, i = [], 0
        for k in self.categorical:
            cats.append(out[:, i:i + k])
            i += k
        mean = out[:, i:i + self.continuous]
        logstd = out[:, i + self.continuous:i + 2 * self.continuous] if self.learn_cont_std else None
        return QOutput(cats, mean, logstd)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, QOutput]:
        """``(D's logits (N,), Q(c | x))`` from one pass through the shared trunk."""
        h = self.trunk(x)
        return self.d_head(h).view(x.shape[0]), self.split_q(self.q_head(h))

    def q(self, x: torch.Tensor) -> QOutput:
        return self.split_q(self.q_head(self.trunk(x)))

    @torch.no_grad()
    def infer_codes(self, x: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Q's most likely codes for images in [-1, 1]: ``(categorical (N, n_cat), continuous means (N, k))``."""
        was = self.training
        self.eval()
        try:
            cats, conts = [], []
            for i in range(0, x.shape[0], batch_size):
                q = self.q(x[i:i + batch_size].to(self.device))
                cats.append(torch.stack([c.argmax(dim=1) for c in q.cat_logits], dim=1) if q.cat_logits
                            else torch.empty(q.cont_mean.shape[0], 0, dtype=torch.long, device=q.cont_mean.device))
                conts.append(q.cont_mean)
            return torch.cat(cats), torch.cat(conts)
        finally:
            self.train(was)


LOG_2PI = math.log(2 * math.pi)
