"""Time one BEGAN training step (D update + G update + k) on this machine.

    python plugins/ganzoo-began/benchmarks/time_step.py [--batch 64] [--size 64] [--steps 5] [--threads N]

Modes: fp32; fp32 + channels_last; bf16 autocast + channels_last. Reports the
median of ``--steps`` timed steps after one warm-up step.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time

import torch

from ganzoo.objective import StepContext
from ganzoo_began import ARCH, BEGANDiscriminator, BEGANGenerator, BoundaryEquilibrium


def run(mode: str, batch: int, size: int, channels: int, steps: int, device: str) -> list[float]:
    torch.manual_seed(0)
    cfg = ARCH.make_config(image_size=size, channels=channels)
    dev = torch.device(device)
    G, D = BEGANGenerator(cfg).to(dev), BEGANDiscriminator(cfg).to(dev)
    channels_last = mode != "fp32"
    if channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    o = ARCH.optimizer
    opt_g = torch.optim.Adam(G.parameters(), lr=o.lr_g, betas=o.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=o.lr_d, betas=o.betas)
    autocast = (
        functools.partial(torch.autocast, dev.type, dtype=torch.bfloat16)
        if mode.startswith("bf16") else contextlib.nullcontext
    )
    ctx = StepContext(G, D, opt_g, opt_d, dev, 0, autocast=autocast, channels_last=channels_last)
    obj = BoundaryEquilibrium().to(dev)
    real = torch.rand(batch, channels, size, size, device=dev) * 2 - 1
    if channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(steps + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = obj.step(ctx, real, None)
        float(out["loss_d"])  # sync
        if i:  # first step is warm-up
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--modes", default="fp32,fp32+channels_last,bf16+channels_last")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {a.device}, "
          f"batch {a.batch}, {a.channels}x{a.size}x{a.size}")
    for mode in a.modes.split(","):
        t = run(mode, a.batch, a.size, a.channels, a.steps, a.device)
        print(f"{mode:22s} median {statistics.median(t):7.3f} s/step  "
              f"(min {min(t):.3f}, max {max(t):.3f}, n={len(t)})", flush=True)


if __name__ == "__main__":
    main()
