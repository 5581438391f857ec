"""The benchmark suite behind ``python -m benchmarks``.

Every figure is a pair timed in the same process, in interleaved rounds
(baseline, fast, then fast, baseline, ...), so that the load of a shared
machine hits both; the figure that counts is the **speedup**, the median of the
per-round ratios baseline time / fast time.

Sampling
    baseline: the generator as built, eager, fp32, NCHW, under ``no_grad``
    (``G(z)``, mapped to [-1, 1] and clamped, as ``Generator.sample`` does);
    fast: :func:`ganzoo.speed.fast_sampler` with its defaults (what
    ``G.sample(..., fast=True)`` uses): the variant it measured fastest for the batch, or the
    one cached from an earlier measurement; each figure records which (``fast_variant``).
Training
    baseline: a plain loop as the sources write it: separate ``zero_grad`` /
    ``backward`` / ``step``, non-fused single-tensor Adam, fp32, NCHW, the batch
    converted with plain indexing, and ``.item()`` of every loss every step;
    fast: :class:`ganzoo.trainer.Trainer`'s own step (its data path, objective
    step and per-step bookkeeping, no host sync) as set up by the trainer.

Each figure: warm-up calls first, then ``--runs`` timed rounds (10 by
default, fewer when the time budget cannot afford them, never fewer than 3;
the JSON says how many), medians with IQR and min/max, images/s, achieved
GFLOP/s (model FLOPs counted with ``torch.utils.flop_counter.FlopCounterMode``)
against the machine's matmul peak measured at the start, and peak memory
(CUDA ``max_memory_allocated``; on CPU the peak RSS while the figure ran, from
``/proc/self/status`` VmHWM after resetting it, else ``ru_maxrss``).

The time budget (``--budget``; 540 s full, 45 s quick) is shared among the
figures as they come; a figure that cannot fit its share is measured at a
smaller batch (training) or skipped with the predicted time (sampling), and
the output says so.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

SCHEMA = 1
#: sizes of the models planned for release but not in the catalog yet (upsample_jellyfish;
#: deconv_utkface at 64 px, the size its run trains at on CPU; mlp: the source's MNIST size)
PLANNED = {
    "upsample": {"image_size": 64, "channels": 3},
    "deconv": {"image_size": 64, "channels": 3},
    "mlp": {"image_size": 28, "channels": 1},
}


def released_sizes() -> dict[str, dict]:
    """Per architecture, the size of its released model (``ganzoo list --pretrained``: the catalog;
    the first model by name when an architecture has several), else its planned size."""
    sizes = {k: dict(v) for k, v in PLANNED.items()}
    try:
        from ganzoo.hub import load_catalog

        catalog = load_catalog()
    except Exception:  # no catalog: the planned sizes only
        catalog = {}
    seen = set()
    for _, entry in sorted(catalog.items()):
        if entry.architecture in seen:
            continue
        seen.add(entry.architecture)
        c, h, _ = entry.image_shape
        sizes[entry.architecture] = {"image_size": int(h), "channels": int(c)}
    return sizes


#: released models' sizes; other architectures use their default config
RELEASED = released_sizes()
FULL_BATCHES = (1, 64, 256)
QUICK_BATCHES = (1, 16)
QUICK_TRAIN_BATCH = 16


class SuiteError(Exception):
    """A problem with the command line or the machine: reported in one line."""


# ------------------------------------------------------------------------------ helpers
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stats(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    if len(xs) >= 2:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    else:
        q1 = q3 = xs[0]
    return {"median": statistics.median(xs), "q1": q1, "q3": q3, "min": xs[0], "max": xs[-1], "n": len(xs)}


def _read_status(field: str) -> float | None:
    """A ``/proc/self/status`` field in MiB (VmRSS, VmHWM), or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so that the next peak
    RSS counts what the measured call allocates, not what earlier figures left cached."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class MemoryProbe:
    """Peak memory while the block runs: CUDA ``max_memory_allocated``, or the CPU peak RSS
    (VmHWM, reset through ``/proc/self/clear_refs`` after ``malloc_trim``). ``above_start_mb``
    is the peak minus what was in use when the block started: the call's own need."""

    def __init__(self, device) -> None:
        self.device = device
        self.result: dict[str, Any] = {}

    def __enter__(self):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device) / 2**20
            self.kind = "cuda_max_memory_allocated"
        elif _release_free_memory() or _reset_peak_rss() and _read_status("VmHWM") is not None:
            self.base = _read_status("VmRSS") or 0.0
            self.kind = "cpu_peak_rss"
        else:
            self.base = 0.0
            self.kind = "cpu_ru_maxrss_process_lifetime"
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.kind == "cuda_max_memory_allocated":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self.kind == "cpu_peak_rss":
            peak = _read_status("VmHWM") or 0.0
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        self.result = {"peak_mb": round(peak, 1), "above_start_mb": round(max(0.0, peak - self.base), 1),
                       "kind": self.kind}


class Budget:
    def __init__(self, seconds: float | None) -> None:
        self.t0 = time.perf_counter()
        self.total = seconds if seconds and seconds > 0 else None

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return math.inf if self.total is None else self.total - self.elapsed()

    def share(self, items_left: int) -> float:
        return self.left() / max(1, items_left)


def _time_calls(fn: Callable[[], Any], k: int, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / k


def paired_rounds(fns: dict[str, Callable[[], Any]], *, rounds: int, calls: int, device) -> dict[str, list[float]]:
    """Time each function ``calls`` times per round, alternating their order every round."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            times[n].append(_time_calls(fns[n], calls, device))
    return times


def _pair_summary(times: dict[str, list[float]], per_call_items: int, flops_per_call: dict[str, float | None],
                  peak_gflops: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("baseline", "fast"):
        st = _stats(times[name])
        med = st["median"]
        entry = {f"{k}_s": v for k, v in st.items() if k != "n"}
        entry["per_s"] = per_call_items / med if med > 0 else None
        fl = flops_per_call.get(name)
        if fl:
            entry["gflops"] = fl / med / 1e9
            entry["pct_of_peak"] = 100.0 * entry["gflops"] / peak_gflops if peak_gflops else None
        out[name] = entry
    ratios = [b / f for b, f in zip(times["baseline"], times["fast"]) if f > 0]
    out["speedup"] = _stats(ratios)
    out["speedup_of_medians"] = out["baseline"]["median_s"] / out["fast"]["median_s"]
    out["runs"] = len(ratios)
    return out


def _calls_per_run(t: float, min_run_s: float) -> int:
    return max(1, min(1000, math.ceil(min_run_s / max(t, 1e-6))))


def _count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of ``fn()`` by ``torch.utils.flop_counter.FlopCounterMode``.

    Its per-module attribution hooks into autograd and fails inside ``torch.autograd.grad``
    (gradient penalties: "A leaf node was passed to _will_engine_execute_node"); then the
    same per-op formulas (``flop_registry``) are summed without the module tracking."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as fc:
            fn()
        return int(fc.get_total_flops())
    except RuntimeError as exc:
        if "_will_engine_execute_node" not in str(exc):
            raise
    return _count_flops_plain(fn)


def _count_flops_plain(fn: Callable[[], Any]) -> int:
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            f = flop_registry.get(func._overloadpacket)
            if f is not None:
                Count.total += int(f(*args, **kwargs, out_val=out))
            return out

    with Count():
        fn()
    return Count.total


# ------------------------------------------------------------------------------ machine
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except Exception:
        return None


def machine_info(device) -> dict[str, Any]:
    import torch

    from ganzoo import speed
    from ganzoo.io import meminfo

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": speed.cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_features": speed.cpu_features(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "bf16_native": speed.bf16_supported(device),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY",
                                           "KMP_BLOCKTIME", "CUDA_VISIBLE_DEVICES") if k in os.environ},
    }
    mem = meminfo("MemTotal")
    if mem:
        info["memory_gb"] = round(mem / 2**30, 1)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = {"name": props.name, "capability": f"{props.major}.{props.minor}",
                       "memory_gb": round(props.total_memory / 2**30, 1),
                       "multiprocessors": props.multi_processor_count}
    return info


def torch_info(device) -> dict[str, Any]:
    import torch

    import ganzoo

    info = {"torch": torch.__version__, "cuda_build": torch.version.cuda, "ganzoo": ganzoo.__version__,
            "ganzoo_git": _git_commit()}
    if device.type == "cuda":
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def measure_peak(device, *, quick: bool) -> dict[str, Any]:
    """Achieved matmul GFLOP/s (fp32, bf16): square products, growing until a call takes 0.25 s."""
    import torch

    from ganzoo import speed

    target = (4096 if quick else 8192) if device.type == "cuda" else (512 if quick else 2048)
    limit = 0.1 if quick else 0.25
    out: dict[str, Any] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        n, best, used = 256, 0.0, 256
        if dtype == torch.bfloat16 and not speed.bf16_supported(device):
            target = min(target, 512)  # emulated: about 1 GFLOP/s, a 2048 product would take 20 s
        while True:
            g = torch.Generator(device="cpu").manual_seed(0)
            a = torch.randn(n, n, generator=g).to(device, dtype)
            b = torch.randn(n, n, generator=g).to(device, dtype)
            t = _time_calls(lambda: a @ b, 1, device)  # warm-up, and a first estimate
            reps = max(3, min(50, int(limit / max(t, 1e-6))))
            ts = [_time_calls(lambda: a @ b, 1, device) for _ in range(reps)]
            gflops = 2 * n**3 / min(ts) / 1e9
            if gflops > best:
                best, used = gflops, n
            if n >= target or min(ts) > limit:
                break
            n *= 2
        out[f"{name}_gflops"] = round(best, 2)
        out[f"{name}_n"] = used
    out["method"] = f"best of repeated n x n matmuls (n doubling from 256 until {limit} s per call)"
    out["threads"] = torch.get_num_threads()
    return out


def measure_peaks(device, *, quick: bool) -> dict[str, Any]:
    """:func:`measure_peak` with torch's thread count and, on a CPU, with one thread too: on a
    busy machine one thread can be several times faster (OpenMP threads wait on each other).
    ``fp32_gflops`` / ``bf16_gflops`` are the better of the two."""
    import torch

    peak = measure_peak(device, quick=quick)
    n = torch.get_num_threads()
    if device.type == "cpu" and n > 1:
        torch.set_num_threads(1)
        try:
            one = measure_peak(device, quick=quick)
        finally:
            torch.set_num_threads(n)
        peak = {**peak, "with_torch_threads": dict(peak), "with_1_thread": one}
        for k in ("fp32", "bf16"):
            if one[f"{k}_gflops"] > peak[f"{k}_gflops"]:
                peak[f"{k}_gflops"], peak[f"{k}_n"] = one[f"{k}_gflops"], one[f"{k}_n"]
    return peak


# ------------------------------------------------------------------------------ sampling
def _baseline_sampler(G):
    import torch

    G.eval()
    cond = bool(getattr(G, "num_classes", 0))

    def run(z, labels):
        with torch.no_grad():
            x = G(z, labels) if cond else G(z)
            return G.to_unit_range(x.float()).clamp_(-1.0, 1.0)

    return run


def _inputs(G, batch, device, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, G.latent_dim, generator=g).to(device)
    labels = torch.randint(G.num_classes, (batch,), generator=g).to(device) if G.num_classes else None
    return z, labels


def _predict(estimate: dict, name: str, batch: int, flops_img: float | None, peak: float | None) -> float:
    """Seconds per call at ``batch`` from the last measured batch: linear in the batch from a
    batch > 1; from batch 1 (mostly overhead), at least the FLOPs at a fifth of the matmul peak."""
    t, b0 = estimate[name], estimate["batch"]
    if b0 > 1 or not flops_img or not peak:
        return t * batch / b0
    rate = max(flops_img / t, 0.2 * peak * 1e9)
    return max(t, flops_img * batch / rate)


def speed_bucket(batch: int) -> int:
    from ganzoo import speed

    return speed.batch_bucket(batch)


def bench_sampling(G, sampler, batch: int, *, device, opts, budget: Budget, items_left: int,
                   flops_img: dict[str, float | None], peak: float | None, estimate: dict | None) -> dict[str, Any]:
    """One sampling figure: baseline vs fast at ``batch``."""
    base = _baseline_sampler(G)
    z, labels = _inputs(G, batch, device)
    share = budget.share(items_left)
    warm_fast = 1 + (len(sampler.threads.candidates) if sampler.threads is not None else 1)
    if estimate:
        tb, tf = (_predict(estimate, n, batch, flops_img.get(n), peak) for n in ("baseline", "fast"))
        need = tb + warm_fast * tf + opts.min_runs * (tb + tf)
        if need > share:
            return {"batch": batch, "status": "skipped",
                    "reason": f"predicted {need:.0f} s for warm-up + {opts.min_runs} rounds, over this "
                              f"figure's {max(share, 0):.0f} s share of the time budget (--budget)"}
    t0 = time.perf_counter()
    with MemoryProbe(device) as mb:
        t_base = _time_calls(lambda: base(z, labels), 1, device)
    if t_base < share / 40:  # cheap: a second, warm estimate
        t_base = _time_calls(lambda: base(z, labels), 1, device)
    with MemoryProbe(device) as mf:
        for _ in range(warm_fast):  # the thread tuner's warm-up and first tries
            t_fast = _time_calls(lambda: sampler(z, labels), 1, device)
    share_left = share - (time.perf_counter() - t0)
    k = _calls_per_run(min(t_base, t_fast), opts.min_run_s)
    per_round = k * (t_base + t_fast)
    rounds = int(max(opts.min_runs, min(opts.runs, share_left // per_round if per_round > 0 else opts.runs)))
    times = paired_rounds({"baseline": lambda: base(z, labels), "fast": lambda: sampler(z, labels)},
                          rounds=rounds, calls=k, device=device)
    fl = {n: (flops_img[n] * batch if flops_img.get(n) else None) for n in ("baseline", "fast")}
    res = {"batch": batch, "status": "ok", "calls_per_run": k,
           **_pair_summary(times, batch, fl, peak),
           "memory": {"baseline": mb.result, "fast": mf.result},
           "seconds": round(time.perf_counter() - t0, 2)}
    if rounds < opts.runs:
        res["note"] = f"{rounds} rounds instead of {opts.runs}: the time budget"
    if sampler.threads is not None:
        res["fast_threads"] = sampler.threads.best(tuple(z.shape))
    chosen = sampler.variant_for(batch)  # the fast sampler's measured (or cached, or given) variant
    if chosen is not None:
        res["fast_variant"] = chosen.name
        res["fast_variant_how"] = sampler.decisions.get(speed_bucket(batch), {}).get("how")
    res["baseline"]["model_flops_per_image"] = flops_img.get("baseline")
    return res


# ------------------------------------------------------------------------------ training
class _BaselineTrainer:
    """The plain loop: zero_grad/backward/step, single-tensor Adam, fp32 NCHW, .item() every step."""

    def __init__(self, arch: str, config: dict, batch: int, device, images, labels) -> None:
        import torch

        import ganzoo
        from ganzoo.objective import StepContext
        from ganzoo.plugins import get_registry

        reg = get_registry()
        spec = reg.architecture(arch)
        torch.manual_seed(0)
        self.G, self.D = ganzoo.create(arch, **config)
        self.G.to(device).train()
        self.D.to(device).train()
        o = spec.optimizer
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=o.betas, foreach=False, fused=False)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=o.betas, foreach=False, fused=False)
        self.objective = reg.objective(spec.objective)(**spec.objective_kwargs).to(device)
        self.ctx = StepContext(self.G, self.D, self.opt_g, self.opt_d, device, 0)
        self.images, self.labels, self.batch, self.device = images, labels, batch, device
        self.step_no = 0
        self.logged: dict[str, float] = {}

    def step(self) -> None:
        import torch

        idx = torch.randint(self.images.shape[0], (self.batch,))
        real = self.images[idx].to(self.device).float() / 127.5 - 1.0
        labels = self.labels[idx].to(self.device) if self.labels is not None else None
        self.ctx.step = self.step_no
        out = self.objective.step(self.ctx, real, labels)
        self.logged = {k: v.item() for k, v in out.items()}  # what a Keras-style loop prints every step
        self.step_no += 1


class _LibraryTrainer:
    """The library's training step: Trainer's data path, objective step and per-step bookkeeping."""

    def __init__(self, arch: str, config: dict, batch: int, device, images, labels, opts, tmp: Path) -> None:
        import torch

        from ganzoo.data import ImageDataset
        from ganzoo.objective import StepContext
        from ganzoo.trainer import TrainConfig, Trainer

        ds = ImageDataset(images, labels, [str(i) for i in range(int(labels.max()) + 1)] if labels is not None else None)
        cfg = TrainConfig(arch=arch, data="synthetic:benchmark", arch_config=dict(config), batch_size=batch,
                          steps=1, device=str(device), bf16=opts.train_bf16, compile=opts.compile, seed=0)
        self.trainer = tr = Trainer(cfg, tmp, dataset=ds)
        self.ctx = StepContext(tr.G, tr.D, tr.opt_g, tr.opt_d, tr.device, tr.step,
                               autocast=tr._autocast, channels_last=tr.cfg.channels_last)
        tr.G.train()
        tr.D.train()
        self.finite = torch.ones((), dtype=torch.bool, device=tr.device)
        self.acc: dict[str, torch.Tensor] = {}
        self.notes = list(getattr(tr, "speed_notes", []) or [])

    def step(self) -> None:
        import torch

        tr = self.trainer
        real, labels = tr._batch(tr.step)
        self.ctx.step = tr.step
        out = tr._step_fn(self.ctx, real, labels)
        for k, v in out.items():  # what Trainer.fit does per step: no host sync
            v = v.detach().float()
            self.finite &= torch.isfinite(v)
            self.acc[k] = self.acc[k] + v if k in self.acc else v
        tr.step += 1


def bench_training(arch: str, config: dict, *, device, opts, budget: Budget, items_left: int,
                   peak: float | None) -> dict[str, Any]:
    import torch

    from ganzoo.plugins import get_registry

    spec = get_registry().architecture(arch)
    default_batch = spec.optimizer.batch_size
    batch = min(default_batch, QUICK_TRAIN_BATCH) if opts.quick else default_batch
    share = budget.share(items_left)
    t0 = time.perf_counter()
    # FLOPs of one baseline step at batch 2 (BatchNorm needs 2), scaled: predicts the cost
    shape = (config.get("channels", spec.config_cls().channels), config.get("image_size", spec.config_cls().image_size))
    n_data = 256
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_data, shape[0], shape[1], shape[1]), dtype=torch.uint8, generator=g)
    num_classes = config.get("num_classes", spec.config_cls().num_classes)
    labels = torch.randint(num_classes, (n_data,), generator=g) if num_classes else None
    probe = _BaselineTrainer(arch, config, 2, device, images, labels)
    flops_2 = _count_flops(probe.step)
    t_2 = _time_calls(probe.step, 1, device)  # a step at batch 2 predicts the cost (linear in the batch)
    del probe
    flops_img = flops_2 / 2
    note = None
    spent = time.perf_counter() - t0

    def need(b: int) -> float:  # warm-up (1 baseline + 2 fast steps) and min_runs rounds of both
        return spent + t_2 * b / 2 * (3 + 2 * opts.min_runs)

    reduced_from = batch
    while batch > 2 and need(batch) > share:
        batch //= 2
    if need(batch) > 1.5 * share:
        return {"batch": batch, "default_batch": default_batch, "status": "skipped",
                "reason": f"a baseline step at batch 2 took {t_2:.1f} s: warm-up and {opts.min_runs} rounds do not "
                          f"fit this figure's {max(share, 0):.0f} s share of the time budget (--budget)"}
    if batch != reduced_from:
        note = (f"batch {batch} instead of {reduced_from}: a step at {reduced_from} was predicted to take "
                f"{t_2 * reduced_from / 2:.1f} s, too long for this figure's share of the time budget")
    if opts.quick and batch != default_batch and note is None:
        note = f"quick mode: batch {batch} instead of the default {default_batch}"
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        with MemoryProbe(device) as mb:
            base = _BaselineTrainer(arch, config, batch, device, images, labels)
            t_base = _time_calls(base.step, 1, device)
        with MemoryProbe(device) as mf:
            fast = _LibraryTrainer(arch, config, batch, device, images, labels, opts, Path(tmp))
            fast.step()
            t_fast = _time_calls(fast.step, 1, device)
        t_base = min(t_base, _time_calls(base.step, 1, device)) if t_base < share / 20 else t_base
        share_left = share - (time.perf_counter() - t0)
        k = _calls_per_run(min(t_base, t_fast), opts.min_run_s)
        per_round = k * (t_base + t_fast)
        rounds = int(max(opts.min_runs, min(opts.runs, share_left // per_round if per_round > 0 else opts.runs)))
        times = paired_rounds({"baseline": base.step, "fast": fast.step}, rounds=rounds, calls=k, device=device)
        finite = bool(fast.finite)
    fl = {"baseline": flops_img * batch, "fast": flops_img * batch}
    summ = _pair_summary(times, batch, fl, peak)
    for name in ("baseline", "fast"):
        summ[name]["steps_per_s"] = 1.0 / summ[name]["median_s"]
        summ[name]["images_per_s"] = summ[name].pop("per_s")
    res = {"batch": batch, "default_batch": default_batch, "status": "ok", "steps_per_run": k, **summ,
           "memory": {"baseline": mb.result, "fast": mf.result}, "model_flops_per_image": flops_img,
           "trainer_notes": fast.notes, "losses_finite": finite, "seconds": round(time.perf_counter() - t0, 2)}
    if note:
        res["note"] = note
    if rounds < opts.runs:
        res["note"] = (res.get("note", "") + "; " if res.get("note") else "") + \
            f"{rounds} rounds instead of {opts.runs}: the time budget"
    return res


# ------------------------------------------------------------------------------ per architecture
def arch_config(arch: str) -> tuple[dict, Any]:
    """The released size where there is one (and the architecture supports it), else the default;
    class-conditional architectures get 10 classes."""
    from ganzoo.plugins import get_registry

    spec = get_registry().architecture(arch)
    config = dict(RELEASED.get(arch, {}))
    for k in list(config):
        if k == "image_size" and config[k] not in spec.image_sizes or k == "channels" and config[k] not in spec.channels:
            config.pop(k)
    try:
        cfg = spec.make_config(**config)
    except Exception:
        if not spec.conditional:
            raise
        config["num_classes"] = 10
        cfg = spec.make_config(**config)
    if spec.conditional and not cfg.num_classes:
        config["num_classes"] = 10  # class-conditional: Fashion-MNIST's number of classes
        cfg = spec.make_config(**config)
    return config, cfg


class ArchBench:
    """One architecture's state across the suite's phases (built at its first figure)."""

    def __init__(self, arch: str, *, device, opts, peak: dict) -> None:
        self.arch, self.device, self.opts, self.peak = arch, device, opts, peak.get("fp32_gflops")
        self.config, cfg = arch_config(arch)
        self.res: dict[str, Any] = {"config": cfg.to_dict(), "released_size": arch in RELEASED}
        self.G = self.sampler = None
        self.estimate: dict | None = None

    def _setup_sampling(self) -> None:
        import torch

        import ganzoo
        from ganzoo import speed

        torch.manual_seed(0)
        G, _ = ganzoo.create(self.arch, **self.config)
        G.to(self.device).eval()
        t0 = time.perf_counter()
        sampler = speed.fast_sampler(G, device=self.device, bf16=self.opts.bf16, compile=self.opts.compile)
        self.res["sampler"] = {"build_s": round(time.perf_counter() - t0, 2), "notes": list(sampler.notes),
                               "bf16": sampler.bf16, "compiled": sampler.compiled, "cuda_graphs": sampler.cuda_graphs}
        z1, l1 = _inputs(G, 1, self.device)
        base1 = _baseline_sampler(G)
        flops = {"baseline": _count_flops(lambda: base1(z1, l1)) or None}
        eager = sampler._eager if sampler.compiled else sampler.module
        with torch.no_grad():
            flops["fast"] = _count_flops(lambda: eager(z1, l1) if sampler.conditional else eager(z1)) or None
        self.res["flops_per_image"] = flops
        self.res["sampling"] = []
        self.G, self.sampler = G, sampler

    def sample(self, batch: int, budget: Budget, items_left: int) -> dict[str, Any]:
        if self.sampler is None:
            self._setup_sampling()
        fig = bench_sampling(self.G, self.sampler, batch, device=self.device, opts=self.opts, budget=budget,
                             items_left=items_left, flops_img=self.res["flops_per_image"], peak=self.peak,
                             estimate=self.estimate)
        if fig["status"] == "ok":
            self.estimate = {"batch": batch, **{n: fig[n]["median_s"] for n in ("baseline", "fast")}}
        return fig

    def train(self, budget: Budget, items_left: int) -> dict[str, Any]:
        return bench_training(self.arch, self.config, device=self.device, opts=self.opts, budget=budget,
                              items_left=items_left, peak=self.peak)

    def finish(self) -> dict[str, Any]:
        if self.sampler is not None:
            s = self.sampler
            self.res["sampler"]["threads_chosen"] = s.threads.summary() if s.threads is not None else None
            self.res["sampler"]["notes"] = list(s.notes)
            self.res["sampling"].sort(key=lambda f: f["batch"])
        return self.res

    def profile(self) -> None:
        folder = self.opts.out / "profiles"
        if self.sampler is not None:
            ok = [f["batch"] for f in self.res.get("sampling", []) if f["status"] == "ok"]
            _profile_sampling(self.arch, self.G, self.sampler, max([b for b in ok if b <= 64] or [1]), self.device, folder)
        tr = self.res.get("training") or {}
        if tr.get("status") == "ok":
            _profile_training(self.arch, self.config, tr["batch"], self.device, self.opts, folder)


def plan(opts) -> list[tuple[str, int | None]]:
    """The figures in the order they are measured: every architecture's small figures before any
    large one, so that a tight budget skips the largest batches, not whole architectures."""
    if opts.quick:
        phases = [("sample", b) for b in QUICK_BATCHES] + [("train", None)]
    else:
        phases = [("sample", 1), ("sample", 64), ("train", None), ("sample", 256)]
    return [p for p in phases if (p[0] == "sample" and opts.sample) or (p[0] == "train" and opts.train)]


def _progress(arch: str, what: str, fig: dict) -> None:
    if fig.get("status") != "ok":
        print(f"  {arch:10s} {what:6s} batch {fig.get('batch', '?')}: {fig.get('status')} ({fig.get('reason', '')})",
              file=sys.stderr, flush=True)
        return
    unit = "img/s"
    b, f = fig["baseline"], fig["fast"]
    rate_b = b.get("per_s", b.get("images_per_s"))
    rate_f = f.get("per_s", f.get("images_per_s"))
    s = fig["speedup"]
    variant = f", {fig['fast_variant']} ({fig.get('fast_variant_how')})" if fig.get("fast_variant") else ""
    print(f"  {arch:10s} {what:6s} batch {fig['batch']:4d}: baseline {rate_b:9.1f} {unit}, fast {rate_f:9.1f} {unit}, "
          f"speedup {s['median']:.2f}x (IQR {s['q1']:.2f}-{s['q3']:.2f}, {fig['runs']} runs){variant}",
          file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ profiles
def _profile_table(fn, device, path: Path, title: str) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    fn()
    _sync(device)
    with profile(activities=acts, record_shapes=True) as prof:
        fn()
        _sync(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages(group_by_input_shape=True).table(sort_by=sort, row_limit=15,
                                                               max_name_column_width=40, max_shapes_column_width=60)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n# torch {torch.__version__}, threads {torch.get_num_threads()}\n{table}\n")


def _profile_sampling(arch, G, sampler, batch, device, folder: Path) -> None:
    base = _baseline_sampler(G)
    z, labels = _inputs(G, batch, device)
    _profile_table(lambda: base(z, labels), device, folder / f"{arch}-sample-b{batch}-baseline.txt",
                   f"{arch} sampling, batch {batch}, baseline")
    _profile_table(lambda: sampler(z, labels), device, folder / f"{arch}-sample-b{batch}-fast.txt",
                   f"{arch} sampling, batch {batch}, fast")


def _profile_training(arch, config, batch, device, opts, folder: Path) -> None:
    import torch

    from ganzoo.plugins import get_registry

    spec = get_registry().architecture(arch)
    cfg = spec.make_config(**config)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (256, cfg.channels, cfg.image_size, cfg.image_size), dtype=torch.uint8, generator=g)
    labels = torch.randint(cfg.num_classes, (256,), generator=g) if cfg.num_classes else None
    base = _BaselineTrainer(arch, config, batch, device, images, labels)
    _profile_table(base.step, device, folder / f"{arch}-train-b{batch}-baseline.txt", f"{arch} training step, batch {batch}, baseline")
    del base
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        fast = _LibraryTrainer(arch, config, batch, device, images, labels, opts, Path(tmp))
        _profile_table(fast.step, device, folder / f"{arch}-train-b{batch}-fast.txt", f"{arch} training step, batch {batch}, fast")


# ------------------------------------------------------------------------------ output
def _fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _fmt_variant(fig: dict) -> str:
    v = fig.get("fast_variant")
    if not v:
        return "-"
    return f"{v} ({fig['fast_variant_how']})" if fig.get("fast_variant_how") else v


def _fmt_mem(m: dict | None) -> str:
    if not m:
        return "-"
    return f"{m['above_start_mb']:,.0f}"


def markdown(report: dict[str, Any]) -> str:
    m, t, p = report["machine"], report["torch"], report["peak"]
    dev = report["options"]["device"]
    where = m["gpu"]["name"] if dev == "cuda" and m.get("gpu") else f"{m['cpu_model']}, {m['cpus_usable']} cores, {m['torch_threads']} torch threads"
    lines = [
        f"# ganzoo benchmarks ({dev})", "",
        f"`{report['command']}` on {report['created']}  ",
        f"{where}; torch {t['torch']}; ganzoo {t['ganzoo']} ({t.get('ganzoo_git') or 'no git'})  ",
        f"matmul peak measured in this run: fp32 {p['fp32_gflops']} GFLOP/s (n={p['fp32_n']}), "
        f"bf16 {p['bf16_gflops']} GFLOP/s (n={p['bf16_n']}); bf16 native: {m['bf16_native']}  ",
        f"load average at start {m.get('loadavg_start')}, at end {report.get('loadavg_end')}; "
        f"total {report['seconds']:.0f} s{' (quick)' if report['options']['quick'] else ''}", "",
        "Speedup = median over interleaved rounds of baseline time / fast time (IQR in brackets). "
        "Baseline: the module as built, eager fp32 NCHW (sampling); a plain loop with non-fused Adam and "
        "`.item()` every step (training). GFLOP/s counts the original model's FLOPs. Peak MB: the memory "
        "the call needed above what was in use before it (CPU peak RSS after `malloc_trim`; CUDA "
        "`max_memory_allocated`).", "",
        "## Sampling", "",
        "| architecture | image | batch | baseline img/s | fast img/s | speedup | fast variant | fast GFLOP/s (% of fp32 peak) | peak MB base / fast | runs |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    notes: list[str] = []
    for arch, r in report["architectures"].items():
        if "error" in r or "skipped" in r:
            notes.append(f"{arch}: error: {r['error']}" if "error" in r else f"{arch}: skipped: {r['skipped']}")
            continue
        c = r["config"]
        img = f"{c['image_size']}x{c['image_size']}x{c['channels']}"
        for f in r.get("sampling", []):
            if f["status"] != "ok":
                lines.append(f"| {arch} | {img} | {f['batch']} | - | - | {f['status']} | - | - | - | - |")
                notes.append(f"{arch} sampling batch {f['batch']}: {f['status']}: {f.get('reason')}")
                continue
            b, fa, s = f["baseline"], f["fast"], f["speedup"]
            gf = f"{fa['gflops']:.1f} ({fa['pct_of_peak']:.0f}%)" if fa.get("gflops") and fa.get("pct_of_peak") is not None else "-"
            lines.append(f"| {arch} | {img} | {f['batch']} | {_fmt_rate(b['per_s'])} | {_fmt_rate(fa['per_s'])} | "
                         f"**{s['median']:.2f}x** ({s['q1']:.2f}-{s['q3']:.2f}) | {_fmt_variant(f)} | {gf} | "
                         f"{_fmt_mem(f['memory']['baseline'])} / {_fmt_mem(f['memory']['fast'])} | {f['runs']} |")
            if f.get("note"):
                notes.append(f"{arch} sampling batch {f['batch']}: {f['note']}")
    lines += ["", "## Training step", "",
              "| architecture | image | batch | baseline steps/s | fast steps/s | fast img/s | speedup | peak MB base / fast | runs |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for arch, r in report["architectures"].items():
        f = r.get("training")
        if not f or "config" not in r:
            continue
        c = r["config"]
        img = f"{c['image_size']}x{c['image_size']}x{c['channels']}"
        if f["status"] != "ok":
            lines.append(f"| {arch} | {img} | {f.get('batch', '-')} | - | - | - | {f['status']} | - | - |")
            notes.append(f"{arch} training: {f['status']}: {f.get('reason')}")
            continue
        b, fa, s = f["baseline"], f["fast"], f["speedup"]
        lines.append(f"| {arch} | {img} | {f['batch']} | {_fmt_rate(b['steps_per_s'])} | {_fmt_rate(fa['steps_per_s'])} | "
                     f"{_fmt_rate(fa['images_per_s'])} | **{s['median']:.2f}x** ({s['q1']:.2f}-{s['q3']:.2f}) | "
                     f"{_fmt_mem(f['memory']['baseline'])} / {_fmt_mem(f['memory']['fast'])} | {f['runs']} |")
        if f.get("note"):
            notes.append(f"{arch} training: {f['note']}")
    lines += ["", "## What the fast paths did", ""]
    for arch, r in report["architectures"].items():
        if "sampler" in r:
            lines.append(f"- **{arch}** sampler: " + "; ".join(r["sampler"]["notes"]) +
                         (f"; threads chosen {r['sampler']['threads_chosen']}" if r["sampler"].get("threads_chosen") else ""))
        tr = r.get("training") or {}
        if tr.get("trainer_notes") is not None and tr.get("status") == "ok":
            lines.append(f"- **{arch}** trainer: " + ("; ".join(tr["trainer_notes"]) or "no rewrites"))
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("cuda", "cpu", "auto"), default="auto",
                    help="where to run (auto: cuda when available)")
    ap.add_argument("--arch", action="append", metavar="NAME", help="architecture to run (repeatable; default: all registered)")
    ap.add_argument("--quick", action="store_true", help="small batches, 3 rounds, a 45 s budget: a smoke test")
    ap.add_argument("--out", type=Path, default=Path("benchmark-results"), help="folder for benchmarks.json and benchmarks.md")
    ap.add_argument("--runs", type=int, default=None, help="timed rounds per figure (default 10; quick 3)")
    ap.add_argument("--budget", type=float, default=None,
                    help="total seconds for the suite (default 540; quick 45; 0 = no limit)")
    ap.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                    help="bf16 autocast in the fast sampler (auto: where the device computes bf16 natively)")
    ap.add_argument("--compile", action="store_true", help="add torch.compile to the fast sampler and trainer")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads for the whole run (default: torch's, or 1 when a quick check "
                         "finds the CPU oversubscribed)")
    ap.add_argument("--no-sample", dest="sample", action="store_false", help="skip the sampling figures")
    ap.add_argument("--no-train", dest="train", action="store_false", help="skip the training figures")
    ap.add_argument("--profile", action="store_true", help="also write torch.profiler tables to OUT/profiles/")
    a = ap.parse_args(argv)
    a.runs = a.runs or (3 if a.quick else 10)
    a.min_runs = min(a.runs, 2 if a.quick else 3)
    a.min_run_s = 0.02 if a.quick else 0.05
    if a.budget is None:
        a.budget = 45.0 if a.quick else 540.0
    a.bf16 = {"auto": None, "on": True, "off": False}[a.bf16]
    a.train_bf16 = a.bf16  # None: the trainer's own default (bf16 autocast where the device computes it natively)
    return a


def _resolve_device(name: str):
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
            raise SuiteError(f"--device cuda asked for, but no CUDA device is available here "
                             f"(torch {torch.__version__} {built}); use --device cpu")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _auto_threads() -> str | None:
    """On an oversubscribed CPU, run the whole suite (baselines included) with one thread.

    When other processes keep the cores busy, OpenMP threads wait for each other at every
    parallel region and a 2-thread process can run 10x slower than a 1-thread one; figures
    measured that way time the machine's load, not the code. Oversubscribed means: the 1-minute
    load average is at least the number of usable cores, or one thread runs a burst of small
    matmuls (many parallel regions, like a network's layers) 1.5x faster than torch's count."""
    import torch

    n = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    a, b = torch.randn(256, 256), torch.randn(256, 256)

    def burst() -> None:
        for _ in range(20):
            a @ b

    times: dict[int, list[float]] = {n: [], 1: []}
    for r in range(3):
        for t in ((n, 1) if r % 2 == 0 else (1, n)):
            torch.set_num_threads(t)
            burst()
            times[t].append(_time_calls(burst, 1, torch.device("cpu")))
    med = {t: statistics.median(v) for t, v in times.items()}
    why = []
    if load >= cores:
        why.append(f"1-minute load average {load:.1f} on {cores} cores")
    if med[1] * 1.5 < med[n]:
        why.append(f"20 256x256 matmuls took {med[n] * 1e3:.1f} ms with {n} threads and {med[1] * 1e3:.1f} ms with 1")
    if why:
        torch.set_num_threads(1)
        return f"1 (auto): the CPU is oversubscribed ({'; '.join(why)}); --threads {n} forces {n}"
    torch.set_num_threads(n)
    return None


def _run_phases(phases, archs: list[str], device, opts: argparse.Namespace, report: dict[str, Any],
                budget: Budget) -> dict[str, ArchBench | None]:
    """Each phase (sampling at a batch size, or training) over every architecture, within the time
    budget; an architecture that fails to build is reported and skipped. Returns the benches."""
    benches: dict[str, ArchBench | None] = {}
    report["architectures"] = {}
    items_left = len(phases) * len(archs)
    for what, batch in phases:
        for arch in archs:
            if arch not in benches:
                try:
                    benches[arch] = ArchBench(arch, device=device, opts=opts, peak=report["peak"])
                except Exception as exc:
                    benches[arch] = None
                    report["architectures"][arch] = {"error": f"{type(exc).__name__}: {exc}",
                                                     "traceback": traceback.format_exc(limit=8)}
                    print(f"  {arch}: error: {report['architectures'][arch]['error']}", file=sys.stderr, flush=True)
            bench = benches[arch]
            if bench is None:
                items_left -= 1
                continue
            if budget.left() < (2.0 if opts.quick else 10.0):
                fig = {"status": "skipped", "reason": f"the time budget ({opts.budget:.0f} s, --budget) was spent"}
            else:
                try:
                    fig = bench.sample(batch, budget, items_left) if what == "sample" else bench.train(budget, items_left)
                except Exception as exc:
                    fig = {"status": "error", "reason": f"{type(exc).__name__}: {exc}",
                           "traceback": traceback.format_exc(limit=8)}
            items_left -= 1
            if what == "sample":
                fig.setdefault("batch", batch)
                bench.res.setdefault("sampling", []).append(fig)
            else:
                bench.res["training"] = fig
            _progress(arch, what, fig)
    return benches


def run_suite(opts: argparse.Namespace) -> dict[str, Any]:
    import torch

    import ganzoo

    device = _resolve_device(opts.device)
    thread_note = None
    if opts.threads:
        torch.set_num_threads(opts.threads)
    elif device.type == "cpu" and torch.get_num_threads() > 1:
        thread_note = _auto_threads()
    known = ganzoo.list_architectures()
    archs = opts.arch or known
    unknown = [a for a in archs if a not in known]
    if unknown:
        raise SuiteError(f"unknown architecture(s) {', '.join(unknown)}; registered: {', '.join(known) or 'none'}")
    opts.out.mkdir(parents=True, exist_ok=True)
    budget = Budget(opts.budget)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(opts.argv),
        "options": {"device": device.type, "quick": opts.quick, "runs": opts.runs, "min_runs": opts.min_runs,
                    "budget_s": opts.budget, "bf16": opts.bf16, "compile": opts.compile,
                    "threads": opts.threads, "architectures": archs},
        "machine": machine_info(device),
        "torch": torch_info(device),
    }
    if thread_note:
        report["options"]["threads"] = torch.get_num_threads()
        report["options"]["threads_auto"] = thread_note
        print(f"  threads: {thread_note}", file=sys.stderr, flush=True)
    print(f"ganzoo benchmarks on {device} ({report['machine']['cpu_model']}, torch {torch.__version__}); "
          f"budget {opts.budget:.0f} s", file=sys.stderr, flush=True)
    report["peak"] = measure_peaks(device, quick=opts.quick)
    print(f"  matmul peak: fp32 {report['peak']['fp32_gflops']} GFLOP/s, bf16 {report['peak']['bf16_gflops']} GFLOP/s",
          file=sys.stderr, flush=True)
    benches = _run_phases(plan(opts), archs, device, opts, report, budget)
    for arch in archs:
        bench = benches.get(arch)
        if bench is not None:
            report["architectures"][arch] = bench.finish()
    report["architectures"] = {a: report["architectures"][a] for a in archs if a in report["architectures"]}
    for arch in archs:
        bench = benches.get(arch)
        if bench is not None:
            if opts.profile:
                try:
                    bench.profile()
                except Exception as exc:
                    print(f"  {arch}: profile failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    report["seconds"] = round(budget.elapsed(), 1)
    from ganzoo.io import atomic_path  # the suite imports ganzoo when it runs, not at --help

    with atomic_path(opts.out / "benchmarks.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
    with atomic_path(opts.out / "benchmarks.md") as tmp:
        tmp.write_text(markdown(report))
    return report


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    opts = parse_args(raw)
    opts.argv = raw
    import torch

    threads = torch.get_num_threads()
    try:
        report = run_suite(opts)
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(threads)
    print(markdown(report))
    print(f"wrote {opts.out / 'benchmarks.json'} and {opts.out / 'benchmarks.md'} in {report['seconds']:.0f} s",
          file=sys.stderr)
    return 0
