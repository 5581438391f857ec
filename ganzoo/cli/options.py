"""The option types and option helpers that several commands share (``--threads``, ``--device``,
``--generator-weights``, ``KEY=VALUE`` values, whole numbers and finite numbers), and the memory check
before sampling. Every command group of :mod:`ganzoo.cli` builds its options from these."""
from __future__ import annotations

import argparse
import json
import math

from .. import io


def key_value(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def add_generator_weights_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator-weights", choices=("auto", "ema", "trained"), default="auto",
                   help="from a run trained with --ema: its moving average of G or the trained weights "
                        "(default auto: the average when there is one)")


def positive_int(text: str) -> int:
    """argparse type for counts: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def int_at_least(low: int, high: int | None = None):
    """argparse type: a whole number in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {'from ' + str(low) + ' to ' + str(high) if high is not None else 'at least ' + str(low)}, got {value}")
        return value

    parse.__name__ = "whole number"
    return parse


def finite_float(low: float | None = None, *, exclusive: bool = False):
    """argparse type: a finite number (not nan/inf), at least (or, ``exclusive``, above) ``low``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if low is not None and (value <= low if exclusive else value < low):
            raise argparse.ArgumentTypeError(f"must be {'above' if exclusive else 'at least'} {low:g}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def seed_int(text: str) -> int:
    """argparse type for seeds: a whole number torch.manual_seed takes (-2**63 .. 2**64-1)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not -(2 ** 63) <= value < 2 ** 64:
        raise argparse.ArgumentTypeError(f"{value} is out of range: use a seed from 0 to 2**64-1")
    return value


def check_sample_memory(G, n: int, flag: str = "-n") -> None:
    """Refuse before sampling when the latents and images of ``n`` samples alone exceed free memory."""
    per = 4 * (int(getattr(G, "latent_dim", 0) or 0) + 2 * math.prod(G.image_shape)) + math.prod(G.image_shape)
    io.check_memory(n * per, f"{flag} {n}", f"ask for fewer images (at most about "
                                         f"{max(1, _free_images(per))} fit)")


def _free_images(per: int) -> int:
    have = io.available_memory() or 0
    return have // max(per, 1)


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """--threads, for every command that runs torch on the CPU (main() applies it)."""
    p.add_argument("--threads", type=positive_int,
                   help="CPU threads for torch (default: torch's); 1 avoids OpenMP spin-wait collapse on a busy machine")


def add_device_option(p: argparse.ArgumentParser) -> None:
    """--device, for the commands that load a model or train one (default auto)."""
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
