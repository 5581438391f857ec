"""``ganzoo sample``: a grid of samples from a model or a run (``--per-class``: a row per class)."""
from __future__ import annotations

import torch

from ..errors import GanzooError
from .. import io
from ..latent import class_index
from ..truncation import truncate_latent
from . import lazy
from .commands import HELP
from .options import (add_device_option, add_generator_weights_option, add_threads_option, check_sample_memory,
                      finite_float, positive_int, seed_int)


def _labels_arg(G, text: str | None, n: int):
    """`--label coat` / `--label 4` / `--label 0,3,4` → a label per image (None for unconditional)."""
    if text is None:
        return None
    if not G.num_classes:
        raise GanzooError("--label given, but this model is unconditional; drop --label")
    out = [class_index(G, part) for part in text.split(",")]
    return torch.tensor([out[i % len(out)] for i in range(n)])


def cmd_sample(args) -> int:
    io.check_png_output(args.output)
    if args.per_class is not None and args.per_class < 1:
        raise GanzooError(f"--per-class {args.per_class}: give the number of images per class, at least 1")
    G = lazy.hub.load(args.ref, device=args.device, generator_weights=args.generator_weights)
    n, nrow, z = args.n, args.nrow, None
    if args.per_class is not None:
        if G.num_classes:
            check_sample_memory(G, args.per_class * G.num_classes, f"--per-class {args.per_class}")
        labels, z = _class_rows(G, args.label, args.per_class, args.seed, args.truncation)
        n, nrow = labels.numel(), args.per_class
    else:
        check_sample_memory(G, n)
        labels = _labels_arg(G, args.label, args.n)
    images = G.sample(n, seed=args.seed, z=z, labels=labels, autocast=args.bf16, truncation=args.truncation)
    io.save_grid(images, args.output, nrow=nrow)
    print(f"wrote {n} samples of {args.ref} to {args.output}")
    return 0


def _class_rows(G, text: str | None, per_class: int, seed: int, truncation: float | None):
    """`--per-class K`: K images of each class (all, or those --label names), one row per class;
    column j has the same latent in every row, so the rows differ by class alone."""
    if not G.num_classes:
        raise GanzooError("--per-class needs a class-conditional model; this one is unconditional: drop --per-class")
    if per_class < 1:
        raise GanzooError(f"--per-class {per_class}: give the number of images per class, at least 1")
    rows = _labels_arg(G, text, len(text.split(","))) if text else torch.arange(G.num_classes)
    gen = torch.Generator().manual_seed(seed)
    z = G.sample_latent(per_class, generator=gen)
    if truncation is not None:
        z = truncate_latent(z, truncation, generator=gen)
    names = getattr(G, "class_names", None) or [str(i) for i in range(G.num_classes)]
    print("rows: " + ", ".join(names[int(k)] for k in rows))
    return rows.repeat_interleave(per_class), z.repeat(len(rows), 1)


def add_parsers(sub) -> None:
    """Register ``ganzoo sample``."""
    p = sub.add_parser("sample", help=HELP["sample"])
    p.add_argument("ref", help="pretrained name, model folder, run directory, or Hub id org/name[@revision]")
    p.add_argument("-n", type=positive_int, default=64, help="number of images")
    p.add_argument("-o", "--output", default="samples.png", help="PNG to write")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the latents (and labels); a card's grid names its seed")
    p.add_argument("--label", help="class name(s) or index(es), comma-separated, for conditional models")
    p.add_argument("--per-class", type=positive_int, metavar="K",
                   help="conditional models: a grid of K images per class, one row per class (all classes, or "
                        "those --label names), the same latents in every row; replaces -n and --nrow")
    p.add_argument("--nrow", type=positive_int, help="images per row")
    add_device_option(p)
    p.add_argument("--bf16", action="store_true", help="sample under bfloat16 autocast")
    add_threads_option(p)
    add_generator_weights_option(p)
    p.add_argument("--truncation", type=finite_float(0.0, exclusive=True), metavar="T",
                   help="truncation trick: redraw latent components "
                   "with |z| > T (N(0,1) truncated to [-T, T], as BigGAN); N(0, I) latents only, e.g. 0.7")
    p.set_defaults(func=cmd_sample)
