"""Does the fast sampler's measured choice ever lose to the baseline? ``python -m benchmarks.choice_check``

For each architecture (at the suite's sizes, ``suite.arch_config``) and batch, three ways to sample
the same latents, timed in one process in interleaved rounds (the order reversed every round):

* ``baseline``: the generator as built, eager fp32 NCHW (the suite's sampling baseline);
* ``fixed``: ``fast_sampler(G, measure=False)``: the rewritten network, channels_last for
  convolutional generators, bf16 where native (what the fast sampler did before it measured);
* ``measured``: ``fast_sampler(G)``: the variant it measured fastest, or found in the cache.

Prints per figure the minimum and median seconds per call and the speedups over the baseline
(of the minima: other processes' load only adds time). Set ``GANZOO_CACHE`` to a fresh folder to
include the first measurement in a clean state.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    import torch

    import ganzoo
    from ganzoo import speed

    from . import suite

    ap = argparse.ArgumentParser(prog="python -m benchmarks.choice_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", action="append", help="architecture (repeatable; default mlp bigan infogan progan wgan28)")
    ap.add_argument("--batch", type=int, action="append", help="batch size (repeatable; default 1)")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=5, help="calls per round")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    archs = a.arch or ["mlp", "bigan", "infogan", "progan", "wgan28"]
    known = ganzoo.list_architectures()
    bad = [x for x in archs if x not in known]
    if bad:
        print(f"error: unknown architecture(s) {', '.join(bad)}; registered: {', '.join(known)}", file=sys.stderr)
        return 2
    device = torch.device("cpu")
    print(f"{speed.cpu_model()}, torch {torch.__version__}, {a.threads} thread(s), cache {speed.choice_cache_path()}")
    print("| architecture | batch | baseline ms (min / median) | fixed ms | measured ms | fixed speedup | measured speedup | measured variant |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for arch in archs:
        config, _ = suite.arch_config(arch)
        torch.manual_seed(0)
        G, _ = ganzoo.create(arch, **config)
        G.eval()
        fixed = speed.fast_sampler(G, measure=False)
        measured = speed.fast_sampler(G)
        base = suite._baseline_sampler(G)
        for batch in a.batch or [1]:
            z, labels = suite._inputs(G, batch, device)
            fns = {"baseline": lambda: base(z, labels), "fixed": lambda: fixed(z, labels),
                   "measured": lambda: measured(z, labels)}
            for fn in fns.values():  # warm-up (and the measured sampler's first-call measurement)
                fn()
                fn()
            times: dict[str, list[float]] = {n: [] for n in fns}
            names = list(fns)
            for r in range(a.rounds):
                for n in (names if r % 2 == 0 else names[::-1]):
                    t0 = time.perf_counter()
                    for _ in range(a.calls):
                        fns[n]()
                    times[n].append((time.perf_counter() - t0) / a.calls)
            lo = {n: min(t) for n, t in times.items()}
            med = {n: statistics.median(t) for n, t in times.items()}
            v = measured.variant_for(batch)
            how = measured.decisions.get(speed.batch_bucket(batch), {}).get("how", "?")
            print(f"| {arch} | {batch} | {lo['baseline'] * 1e3:.2f} / {med['baseline'] * 1e3:.2f} | "
                  f"{lo['fixed'] * 1e3:.2f} / {med['fixed'] * 1e3:.2f} | {lo['measured'] * 1e3:.2f} / {med['measured'] * 1e3:.2f} | "
                  f"{lo['baseline'] / lo['fixed']:.2f}x | {lo['baseline'] / lo['measured']:.2f}x | "
                  f"{v.name if v else '-'} ({how}) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
