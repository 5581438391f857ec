"""``ganzoo interpolate``, ``ganzoo arithmetic`` and ``ganzoo project``: the commands over :mod:`ganzoo.latent`."""
from __future__ import annotations

import argparse
import math
from collections import Counter
from pathlib import Path

import torch

# io and the library through their modules: a test replacing ganzoo.io.save_grid or a ganzoo.latent function
# reaches the command, as when the commands lived in latent.py
from .. import io
from .. import latent as glatent
from ..errors import GanzooError
from . import lazy
from .commands import HELP
from .options import (add_device_option, add_threads_option, check_sample_memory, finite_float, int_at_least,
                      positive_int, seed_int)


def _load(args):
    return lazy.hub.load(args.ref, device=args.device)


def _split_points(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _scale(args, G) -> int:
    return max(1, int(args.scale)) if args.scale else 1


def cmd_interpolate(args) -> int:
    out = Path(args.output)
    ext = out.suffix.lower()
    if ext not in (".gif", ".png"):
        raise GanzooError(f"{out}: write .gif (animation) or .png (strip/grid)")
    io.check_output_file(out)
    points: list = _split_points(args.seeds) if args.seeds else []
    points += list(args.latent or [])
    if not points:
        raise GanzooError("interpolate needs at least two points: --seeds 3,17 (seeds or latent files)")
    if args.save_latents is not None:
        io.check_output_file(args.save_latents, what="--save-latents")
    G = _load(args)
    check_sample_memory(G, args.steps * max(1, len(points) - 1) * (args.scale or 1) ** 2, f"--steps {args.steps}")
    res = glatent.interpolate(G, points, steps=args.steps, method="slerp" if args.slerp else "lerp", label=args.label,
                      truncation=args.truncation)
    scale = _scale(args, G)
    if ext == ".gif":
        glatent.save_gif(res.images, out, duration=args.duration, scale=scale, boomerang=args.boomerang)
        what = f"{res.images.shape[0] + (max(0, res.images.shape[0] - 2) if args.boomerang else 0)}-frame GIF"
    else:
        glatent.save_strip(res.segments(), out, nrow=res.steps, scale=scale)
        what = ("strip" if res.points == 2 else f"grid ({res.points - 1} rows)") + f" of {res.steps} per row"
    if args.save_latents:
        glatent.save_latents(args.save_latents, res.z, res.labels)
    print(f"wrote {res.method} interpolation through {res.points} points, {what}, to {out}")
    return 0


def cmd_arithmetic(args) -> int:
    if not args.group:
        raise GanzooError("bind the expression's names with --group NAME=SEEDS (or class:NAME, pred:NAME, file:PATH)")
    # parse the expression before loading anything, so a typo fails fast
    names = []
    for text in args.group:
        if "=" not in text:
            raise GanzooError(f"--group {text!r}: write NAME=SEEDS, NAME=class:CLASS, NAME=pred:CLASS "
                              "or NAME=file:PATH")
        names.append(glatent._check_name(text.split("=", 1)[0]))
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise GanzooError(f"--group {dup[0]} is bound twice; give each group its own name")
    glatent.parse_expression(args.expr, names)
    io.check_png_output(args.output)
    if args.save_latent is not None:
        io.check_output_file(args.save_latent, what="--save-latent")
    G = _load(args)
    check_sample_memory(G, (max(args.pool, args.per_group) + args.variations) * len(args.group)
                        * (args.scale or 1) ** 2, "--pool/--per-group/--variations")
    cache: dict = {}
    groups = {}
    for text in args.group:
        g = glatent.parse_group(G, text, classifier=args.classifier, per_group=args.per_group, pool=args.pool,
                        pool_seed=args.pool_seed, truncation=args.truncation, _cache=cache)
        groups[g.name] = g
    res = glatent.arithmetic(G, args.expr, groups, label=args.label, variations=args.variations, noise=args.noise,
                     seed=args.seed)
    glatent.save_arithmetic_grid(res, args.output, scale=_scale(args, G))
    if args.save_latent:
        glatent.save_latents(args.save_latent, res.z[None],
                     torch.tensor([res.label]) if res.label is not None else None)
    for c, name in res.terms:
        print(f"  {c:+g} x {name}: mean of {groups[name].z.shape[0]} latents ({groups[name].source})")
    lab = ""
    if res.label is not None:
        cn = getattr(G, "class_names", None) or []
        lab = f", label {cn[res.label] if res.label < len(cn) else res.label}"
    print(f"wrote {args.expr.strip()} (|z| = {float(res.z.norm()):.2f}{lab}) to {args.output}")
    return 0


def cmd_project(args) -> int:
    if args.output is not None:
        io.check_png_output(args.output)
    for flag, path in (("--save-latent", args.save_latent), ("--json", args.json)):
        if path is not None:
            io.check_output_file(path, what=flag)
    G = _load(args)
    check_sample_memory(G, 2 * max(1, args.restarts), f"--restarts {args.restarts}")
    target = glatent.load_image(args.image, G)
    res = glatent.project(G, target, steps=args.steps, restarts=args.restarts, lr=args.lr, loss=args.loss,
                  perceptual=args.perceptual, perceptual_weight=args.perceptual_weight,
                  latent_weight=args.latent_weight, label=args.label, seed=args.seed, encoder=args.encoder,
                  progress=not args.quiet)
    if args.output:
        glatent.save_strip(torch.cat([res.target, res.image]), args.output, nrow=2, scale=_scale(args, G))
    if args.save_latent:
        glatent.save_latents(args.save_latent, res.z, torch.tensor([res.label]) if res.label is not None else None)
    if args.json:
        io.write_json(args.json, {"image": str(args.image), "ref": str(args.ref), **res.as_dict()})
    lab = ""
    if res.label is not None:
        cn = getattr(G, "class_names", None) or []
        lab = f", label {cn[res.label] if res.label < len(cn) else res.label}"
    before = [f"random starts MSE {res.start_mse:.4f}"] if math.isfinite(res.start_mse) else []
    if res.encoder_mse is not None:
        before.append(f"encoder alone MSE {res.encoder_mse:.4f}")
    print(f"projected {args.image}: MSE {res.mse:.4f}, PSNR {res.psnr:.2f} dB ([0,1] pixel scale; "
          f"{', '.join(before)}), best run from {res.start}{lab}, {res.steps} steps"
          + (f"; wrote {args.output} (target | reconstruction)" if args.output else "")
          + (f", latent {args.save_latent}" if args.save_latent else ""))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", help="pretrained name, model folder, run directory, or Hub id org/name[@revision]")
    p.add_argument("--label", help="class name or index for conditional models")
    add_device_option(p)
    add_threads_option(p)


def _truncation_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--truncation", type=finite_float(0.0, exclusive=True), metavar="T",
                   help="truncation trick: seeds' latent components with |z| > T are redrawn (N(0,1) truncated "
                        "to [-T, T], as BigGAN); N(0, I) latents only")


def add_parsers(sub) -> None:
    """Register ``ganzoo interpolate``, ``ganzoo arithmetic`` and ``ganzoo project``."""
    p = sub.add_parser(
        "interpolate", help=HELP["interpolate"],
        description="Seed S is the latent of `ganzoo sample REF -n 1 --seed S`. The format follows -o: .gif "
                    "animates the path; .png is a strip (two points) or a row per segment (more points).")
    _common(p)
    p.add_argument("--seeds", "--points", dest="seeds", metavar="S1,S2,...",
                   help="path points: seeds, seed ranges (40-42) or latent files (.npy/.safetensors)")
    p.add_argument("--latent", action="append", metavar="FILE", help="a latent file to add as point(s) at the end")
    p.add_argument("--steps", type=int_at_least(2), default=10, help="images per segment, both ends included (default 10)")
    p.add_argument("--slerp", action="store_true", help="spherical interpolation (default: linear)")
    p.add_argument("-o", "--output", default="interpolation.gif", help=".gif or .png")
    p.add_argument("--duration", type=positive_int, default=100, help="GIF: ms per frame (default 100)")
    p.add_argument("--boomerang", action="store_true", help="GIF: play the path back again")
    p.add_argument("--scale", type=int_at_least(1, 64), help="enlarge each image by this integer factor (nearest)")
    p.add_argument("--save-latents", metavar="FILE", help="write the path's latents (.npy/.safetensors)")
    _truncation_arg(p)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser(
        "arithmetic", help=HELP["arithmetic"],
        description="Each --group NAME=... is a group of samples; its mean latent is the operand NAME. "
                    "NAME=3,17,40-45 (seeds), NAME=class:CLASS (a conditional model's class), "
                    "NAME=pred:CLASS (samples a --classifier assigns to CLASS), NAME=file:PATH (latents, "
                    "e.g. from `ganzoo project --save-latent`). The grid shows a row per operand (samples, "
                    "then the mean's image) and the result.")
    _common(p)
    p.add_argument("--group", action="append", metavar="NAME=SPEC", help="bind a name (repeat)")
    p.add_argument("--expr", required=True, help="e.g. 'smile_woman - neutral_woman + neutral_man', '0.5*a + b'")
    p.add_argument("--classifier", help="for pred: groups: fmnist, fmnist:WEIGHTS.safetensors, or package.module:name")
    p.add_argument("--per-group", type=int_at_least(1, glatent.MAX_SEEDS), default=3, help="samples per class:/pred: group (default 3)")
    p.add_argument("--pool", type=int_at_least(1, glatent.MAX_SEEDS), default=256, help="pred: seeds searched (default 256)")
    p.add_argument("--pool-seed", type=int_at_least(0, 2 ** 64 - 1 - glatent.MAX_SEEDS), default=0,
                   help="first seed of class:/pred: groups (default 0)")
    p.add_argument("--variations", type=int_at_least(0, glatent.MAX_SEEDS), default=3, help="result images with noise added (default 3)")
    p.add_argument("--noise", type=finite_float(0.0), default=0.25, help="uniform noise amplitude of the variations")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the variations' noise")
    p.add_argument("--scale", type=int_at_least(1, 64), help="enlarge each image by this integer factor")
    p.add_argument("-o", "--output", default="arithmetic.png", help="PNG to write")
    p.add_argument("--save-latent", metavar="FILE", help="write the result's latent (.npy/.safetensors)")
    _truncation_arg(p)
    p.set_defaults(func=cmd_arithmetic)

    p = sub.add_parser(
        "project", help=HELP["project"],
        description="Loads IMAGE like ganzoo.data (centre crop, resize, RGB/gray), optimises z with Adam from "
                    "several random starts (and G.encode(IMAGE) when the model has an encoder) and keeps the "
                    "best. MSE and PSNR are on the [0, 1] pixel scale.")
    _common(p)
    p.add_argument("image", help="the image file (jpg, png, ...)")
    p.add_argument("--steps", type=int_at_least(0, 10 ** 7), default=300, help="Adam steps (default 300)")
    p.add_argument("--restarts", type=int_at_least(0, 10 ** 4), default=4, help="random starts (default 4)")
    p.add_argument("--lr", type=finite_float(0.0, exclusive=True), default=0.05,
                   help="Adam learning rate, cosine-annealed (default 0.05)")
    p.add_argument("--loss", choices=("l2", "l1"), default="l2", help="pixel loss (default l2)")
    p.add_argument("--perceptual", help="feature network for a perceptual term: none, fmnist, package.module:name")
    p.add_argument("--perceptual-weight", type=finite_float(0.0), default=0.1,
                   help="weight of the perceptual term (with --perceptual)")
    p.add_argument("--latent-weight", type=finite_float(0.0), default=0.0, help="weight of the (|z|^2/D - 1)^2 prior term")
    p.add_argument("--encoder", choices=("auto", "only", "off"), default="auto",
                   help="use G.encode when the model has one: as a start (auto), alone (only), or not (off)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the random starts")
    p.add_argument("-o", "--output", help="PNG: target | reconstruction")
    p.add_argument("--scale", type=int_at_least(1, 64), help="enlarge the PNG's images by this integer factor")
    p.add_argument("--save-latent", metavar="FILE", help="write the latent (.npy, or .safetensors with the label)")
    p.add_argument("--json", metavar="FILE", help="write the errors and settings as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_project)
