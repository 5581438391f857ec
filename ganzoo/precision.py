"""Numeric precision: whether a device computes bfloat16 natively, and the one autocast context that
training, the fast sampler and ``Generator.sample`` run their networks under."""
from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast", "bf16_supported", "cpu_bf16_native", "cpu_features"]


def autocast(device: torch.device | str, enabled: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on ``device`` when ``enabled``, else a context that changes nothing."""
    if enabled:
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_features() -> dict[str, bool]:
    """What this CPU offers for fast bf16 / int8 math (from /proc/cpuinfo and torch's own checks)."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    feats = {
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
    }
    for name, probe in (("avx512_bf16", "_is_avx512_bf16_supported"), ("amx_bf16", "_is_amx_tile_supported")):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None:
            with contextlib.suppress(Exception):
                feats[name] = feats[name] or bool(fn())
    return feats


def cpu_bf16_native() -> bool:
    """True when this CPU computes bf16 matmuls/convolutions in hardware (AVX-512 BF16 or AMX).

    Without it oneDNN emulates bf16 and is far slower than fp32 (measured on an
    AVX2-only AMD EPYC: 0.7-2.6 GFLOP/s bf16 vs ~30 GFLOP/s fp32 for a matmul).
    """
    feats = cpu_features()
    if not (feats["avx512_bf16"] or feats["amx_bf16"]):
        return False
    mkldnn_bf16 = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if mkldnn_bf16 is not None:
        with contextlib.suppress(Exception):
            return bool(mkldnn_bf16())
    return torch.backends.mkldnn.is_available()


def bf16_supported(device: torch.device | str) -> bool:
    """Whether bf16 autocast pays on ``device`` (native bf16 math, not emulation)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return cpu_bf16_native()
    return False
