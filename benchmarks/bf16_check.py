"""How far bf16 samples land from fp32 ones: ``python -m benchmarks.bf16_check [--arch NAME]... [--n 8]``.

For each architecture at its released size (see ``suite.RELEASED``), a random-init
generator whose BatchNorm layers get trained-like running statistics samples the
same latents through :func:`ganzoo.speed.fast_sampler` in fp32 and under bf16
autocast; prints the mean and max absolute difference (images in [-1, 1]) and
the relative L2 error. On a CPU without native bf16 this runs emulated (slowly)
but computes the same numbers a native unit would.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn


def randomise_bn(G: nn.Module, seed: int = 1) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.5 + 0.75)
    return G.eval()


def check(arch: str, n: int, device: str = "cpu") -> dict:
    import ganzoo
    from ganzoo import speed
    from ganzoo.plugins import get_registry

    from .suite import RELEASED

    spec = get_registry().architecture(arch)
    config = dict(RELEASED.get(arch, {}))
    if spec.conditional:
        config.setdefault("num_classes", 10)
    torch.manual_seed(0)
    G = randomise_bn(ganzoo.create(arch, **config)[0]).to(device)
    z = torch.randn(n, G.latent_dim, device=device)
    labels = torch.arange(n, device=device) % G.num_classes if G.num_classes else None
    t0 = time.perf_counter()
    fp32 = speed.fast_sampler(G, device=device, bf16=False, threads=None)(z, labels)
    bf16 = speed.fast_sampler(G, device=device, bf16=True, threads=None)(z, labels)
    d = (bf16 - fp32).abs()
    return {"arch": arch, "image": tuple(G.image_shape), "mean_abs": float(d.mean()), "max_abs": float(d.max()),
            "rel_l2": float((bf16 - fp32).norm() / fp32.norm()), "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    import ganzoo

    from .suite import RELEASED

    ap = argparse.ArgumentParser(prog="python -m benchmarks.bf16_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", action="append", help="architecture (repeatable; default: the released ones registered)")
    ap.add_argument("--n", type=int, default=8, help="images per architecture")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    archs = a.arch or [x for x in RELEASED if x in ganzoo.list_architectures()]
    print("| architecture | image | mean abs diff | max abs diff | relative L2 |")
    print("| --- | --- | ---: | ---: | ---: |")
    for arch in archs:
        r = check(arch, a.n, a.device)
        c, h, w = r["image"]
        print(f"| {arch} | {h}x{w}x{c} | {r['mean_abs']:.4f} | {r['max_abs']:.4f} | {r['rel_l2']:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
