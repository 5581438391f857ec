"""Which torch device: ``--device`` checked and resolved, in one place for training, loading and evaluation."""
from __future__ import annotations

import platform

import torch

from .errors import GanzooError

__all__ = ["check_device", "resolve_device", "load_device", "hardware_summary", "cpu_model"]


def check_device(device: str | torch.device | None) -> torch.device | None:
    """``--device``: auto, cpu, cuda, cuda:N or mps, and present on this machine; None for auto."""
    if device is None or str(device) == "auto":
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise GanzooError(f"--device {device}: use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise GanzooError(f"--device {device}: CUDA is not available here (no GPU, or a CPU-only torch); "
                              f"use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise GanzooError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s), "
                              f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise GanzooError(f"--device {device}: MPS (Apple GPU) is not available here; use --device cpu")
    return dev


def resolve_device(device: str | torch.device | None, *, local_rank: int | None = None) -> torch.device:
    """The torch device for ``--device``; under torchrun (``local_rank`` given) a bare
    ``cuda`` or ``auto`` means this process's own GPU, ``cuda:LOCAL_RANK``."""
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = check_device(device)
    if device.type == "cuda" and device.index is None and local_rank is not None:
        if local_rank >= torch.cuda.device_count():
            raise GanzooError(f"LOCAL_RANK {local_rank} but this machine has {torch.cuda.device_count()} GPUs; "
                              f"start torchrun with --nproc_per_node at most {torch.cuda.device_count()}")
        device = torch.device("cuda", local_rank)
    return device


def load_device(device) -> torch.device:
    """Where a loaded model goes: None means the CPU (as ``from_pretrained`` and ``torch.hub.load``
    default to); ``"auto"`` or any other value as :func:`resolve_device`."""
    if device is None:
        return torch.device("cpu")
    return resolve_device(device)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_summary(device: torch.device) -> str:
    """The training receipt's device: the GPU's name, or the CPU's model and torch's thread count."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    n = torch.get_num_threads()
    return f"CPU {cpu_model()} ({platform.machine()}), {n} thread{'s' if n != 1 else ''}"
