"""The ``ganzoo`` command. A user's mistake ends in one line and a non-zero exit (``--debug`` for tracebacks)."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path

from .errors import GanzooError, GanzooWarning

EXIT_USER_ERROR = 2


def _kv(text: str) -> tuple[str, object]:
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
    import math

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
    import math

    from .io import check_memory

    per = 4 * (int(getattr(G, "latent_dim", 0) or 0) + 2 * math.prod(G.image_shape)) + math.prod(G.image_shape)
    check_memory(n * per, f"{flag} {n}", f"ask for fewer images (at most about "
                                         f"{max(1, _free_images(per))} fit)")


def _free_images(per: int) -> int:
    from .io import available_memory

    have = available_memory() or 0
    return have // max(per, 1)


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """--threads, for every command that runs torch on the CPU (main() applies it)."""
    p.add_argument("--threads", type=positive_int,
                   help="CPU threads for torch (default: torch's); 1 avoids OpenMP spin-wait collapse on a busy machine")


def _labels_arg(G, text: str | None, n: int):
    """`--label coat` / `--label 4` / `--label 0,3,4` → a label per image (None for unconditional)."""
    if text is None:
        return None
    if not G.num_classes:
        raise GanzooError("--label given, but this model is unconditional; drop --label")
    import torch

    from .latent import class_index

    out = [class_index(G, part) for part in text.split(",")]
    return torch.tensor([out[i % len(out)] for i in range(n)])


# ---- commands -------------------------------------------------------------------------------
def cmd_list(args) -> int:
    from .plugins import get_registry

    if args.pretrained:
        from .hub import list_pretrained

        from .hub import catalog_path

        rows = list_pretrained(detail=True)
        for entry in rows:
            print(f"{entry['name']:<24} {entry['architecture']:<12} {entry['image']:<10} "
                  f"{entry['license'] or '?':<10} {entry['where']}")
            m = entry["metrics"]
            numbers = ", ".join(f"{label} {m[key]:.4g}" for key, label in (
                ("fid", "Inception FID"), ("kid", "KID"), ("precision", "precision"), ("recall", "recall"),
                ("fid_fmnist_classifier", "classifier FID")) if isinstance(m.get(key), (int, float)))
            if entry["description"] or numbers:
                print(f"    {entry['description']}" + (f"; {numbers}" if numbers else ""))
        if not rows:
            print(f"no pretrained models in the catalog {catalog_path()} yet; add one with `ganzoo catalog add`")
        return 0
    reg = get_registry()
    print("architectures:")
    for name, spec in sorted(reg.architectures.items()):
        sizes = "/".join(map(str, spec.image_sizes))
        print(f"  {name:<14} {sizes:>8} px  {spec.description or spec.reference}  [{reg.provider[('architecture', name)]}]")
    print("objectives:")
    for name, cls in sorted(reg.objectives.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"  {name:<14} {doc}")
    print("datasets:")
    for name, ds in sorted(reg.datasets.items()):
        print(f"  {name + ':PATH':<20} {ds.description}")
    _report_failures(reg)
    return 0


def _report_failures(reg) -> None:
    for f in reg.failures:
        print(f"warning: plugin {f.name!r} from {f.distribution} failed to load: {f.error}", file=sys.stderr)


def cmd_plugins(args) -> int:
    from .plugins import get_registry

    reg = get_registry()
    rows = []
    for p in reg.plugins:
        rows.append({"name": p.name, "distribution": p.distribution, "version": p.version,
                     "hooks": p.hooks, "registered": p.registered})
    for f in reg.failures:
        rows.append({"name": f.name, "distribution": f.distribution, "error": f.error})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        if "error" in r:
            print(f"{r['distribution']:<22} FAILED  {r['error']}")
            continue
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["registered"].items()) or "nothing"
        print(f"{r['distribution']:<22} {r['version']:<8} {what}")
    return 0


def _betas(text: str) -> tuple[float, float]:
    try:
        b1, b2 = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not two numbers B1,B2 such as 0.5,0.999") from None
    if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
        raise argparse.ArgumentTypeError(f"betas {text!r} must each be in [0, 1)")
    return b1, b2


def _train_config_from_args(args):
    from .trainer import TrainConfig

    arch_config = dict(args.set or [])
    if args.image_size is not None:
        arch_config["image_size"] = args.image_size
    if args.channels is not None:
        arch_config["channels"] = args.channels
    return TrainConfig(
        arch=args.arch or "", data=args.data or "", arch_config=arch_config, data_label=args.label,
        objective=args.objective, objective_kwargs=dict(args.objective_arg or []) or None,
        batch_size=args.batch_size, steps=args.steps, epochs=args.epochs,
        lr_g=args.lr_g, lr_d=args.lr_d, betas=args.betas, seed=args.seed, device=args.device,
        bf16=args.bf16, channels_last=args.channels_last, nchw=args.nchw, compile=args.compile, flip=args.flip,
        diffaugment=args.diffaugment, ada=args.ada, ada_target=args.ada_target, ada_kimg=args.ada_kimg,
        log_every=args.log_every, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints,
        freeze=args.freeze or [], sync_bn=args.sync_bn, ema=args.ema, lr_decay=args.lr_decay,
        lr_decay_start=args.lr_decay_start,
    )


def cmd_train(args) -> int:
    from .trainer import check_options, train

    if not args.resume and not args.restart and (not args.arch or not args.data):
        raise GanzooError("ganzoo train needs ARCH and --data KIND:PATH (or --resume or --restart with --out of an "
                          "earlier run)")
    cfg = _train_config_from_args(args)
    check_options(cfg)  # the numbers, before any work
    trainer = train(cfg, args.out, resume=args.resume, restart=args.restart, progress=not args.quiet,
                    command="ganzoo " + " ".join(sys.argv[1:]))
    if trainer.dist.is_main and trainer.step > trainer.start_step:
        print(f"trained {trainer.step} steps; run in {args.out} (samples.png, loss.png, checkpoints/)")
    return 0


def cmd_sample(args) -> int:
    from .hub import load
    from .io import check_png_output, save_grid

    check_png_output(args.output)
    if args.per_class is not None and args.per_class < 1:
        raise GanzooError(f"--per-class {args.per_class}: give the number of images per class, at least 1")
    G = load(args.ref, device=args.device, generator_weights=args.generator_weights)
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
    save_grid(images, args.output, nrow=nrow)
    print(f"wrote {n} samples of {args.ref} to {args.output}")
    return 0


def _class_rows(G, text: str | None, per_class: int, seed: int, truncation: float | None):
    """`--per-class K`: K images of each class (all, or those --label names), one row per class;
    column j has the same latent in every row, so the rows differ by class alone."""
    import torch

    if not G.num_classes:
        raise GanzooError("--per-class needs a class-conditional model; this one is unconditional: drop --per-class")
    if per_class < 1:
        raise GanzooError(f"--per-class {per_class}: give the number of images per class, at least 1")
    rows = _labels_arg(G, text, len(text.split(","))) if text else torch.arange(G.num_classes)
    gen = torch.Generator().manual_seed(seed)
    z = G.sample_latent(per_class, generator=gen)
    if truncation is not None:
        from .latent import truncate_latent

        z = truncate_latent(z, truncation, generator=gen)
    names = getattr(G, "class_names", None) or [str(i) for i in range(G.num_classes)]
    print("rows: " + ", ".join(names[int(k)] for k in rows))
    return rows.repeat_interleave(per_class), z.repeat(len(rows), 1)


# ---- released models: export, push, fine-tune, catalog (ganzoo.hub) ---------------------------
def _export_kwargs(args) -> dict:
    kw = {"name": args.name, "description": args.description, "license": args.license,
          "datasets": args.dataset, "data_license": args.data_license, "data_attribution": args.data_attribution,
          "metrics": dict(args.metric) if args.metric else None,
          "class_names": [c.strip() for c in args.class_names.split(",")] if args.class_names else None,
          "generator_dtype": "bfloat16" if args.bf16_generator else None,
          "training_state": True if args.training_state else None,
          "generator_weights": None if args.generator_weights == "auto" else args.generator_weights}
    return {k: v for k, v in kw.items() if v is not None}


def cmd_export(args) -> int:
    from .deploy import FORMATS, OPSET, export_generator
    from .hub import export_model

    fmt = (args.format or "folder").lower()
    if fmt not in FORMATS:
        raise GanzooError(f"--format {args.format}: use one of {', '.join(FORMATS)}")
    if fmt != "folder":
        folder_only = sorted(k for k in _export_kwargs(args) if k != "generator_weights")
        if folder_only:
            flags = {"datasets": "dataset", "metrics": "metric", "generator_dtype": "bf16-generator"}
            flag = "--" + flags.get(folder_only[0], folder_only[0]).replace("_", "-")
            raise GanzooError(f"{flag} describes a model folder; it has no effect with --format {fmt}: drop it")
        res = export_generator(args.ref, args.out, format=fmt, overwrite=args.overwrite,
                               generator_weights=args.generator_weights)
        what = f"ONNX opset {OPSET}, ONNX Runtime" if fmt == "onnx" else "TorchScript, torch.jit.load"
        print(f"wrote {res.path} ({what} vs PyTorch on the same {res.batch} latents: "
              f"max abs difference {res.max_abs_diff:.3g})")
        return 0
    out = export_model(args.ref, args.out, overwrite=args.overwrite, **_export_kwargs(args))
    if args.space:
        from .hub import write_space

        write_space(out)
        print(f"wrote Space folder {out} (app.py, requirements.txt, config.json, weights, README.md with sdk: gradio); "
              f"try it with `python {out}/app.py`")
        return 0
    print(f"wrote model folder {out} (config.json, generator/discriminator.safetensors, README.md, samples.png)")
    return 0


def cmd_push(args) -> int:
    from .hub import push

    info = push(args.ref, args.repo, private=args.private or None, branch=args.branch, token=args.token,
                commit_message=args.message, **_export_kwargs(args))
    print(f"pushed to {info['repo']} at revision {info['revision']} ({info['url']}); pin it in the catalog with: "
          f"ganzoo catalog add NAME FOLDER --repo {info['repo']} --revision {info['revision']}")
    return 0


def cmd_finetune(args) -> int:
    from .hub import finetune

    if not args.data:
        raise GanzooError("ganzoo finetune needs --data KIND:PATH (the new data)")
    for flag, value in (("--image-size", args.image_size), ("--channels", args.channels), ("--set", args.set)):
        if value:
            raise GanzooError(f"{flag}: a fine-tune keeps the base model's architecture config; drop {flag}")
    from .trainer import check_options

    cfg = _train_config_from_args(args)
    check_options(cfg)  # the numbers, before any work
    cfg = cfg.to_dict()
    for key in ("arch", "data", "arch_config", "data_label", "steps", "epochs", "freeze", "base_model"):
        cfg.pop(key, None)
    trainer = finetune(args.ref, data=args.data, out=args.out, steps=args.steps, epochs=args.epochs,
                       freeze=args.freeze or [], label=args.label, progress=not args.quiet,
                       command="ganzoo " + " ".join(sys.argv[1:]), restart=args.restart, **cfg)
    print(f"fine-tuned {args.ref} for {trainer.step} steps; run in {args.out}; "
          f"export it with `ganzoo export {args.out} FOLDER`")
    return 0


def cmd_catalog_add(args) -> int:
    from .hub import add_catalog_entry, catalog_path

    entry = add_catalog_entry(args.name, args.folder, repo=args.repo, revision=args.revision,
                              catalog=args.catalog, embed=not args.no_embed, description=args.description)
    import re

    if not re.fullmatch(r"[0-9a-f]{40}", args.revision):
        print(f"warning: --revision {args.revision} is not a commit: a branch or tag can move (the sha256 check then "
              f"refuses the new files); pin the commit `ganzoo push` printed", file=sys.stderr)
    where = f", embedded at {entry.embedded}" if entry.embedded else ""
    print(f"catalog {args.catalog or catalog_path()}: {entry.name} -> {entry.repo}@{entry.revision} "
          f"({len(entry.files)} files pinned by sha256{where})")
    return 0


def _add_export_options(p: argparse.ArgumentParser, *, push: bool = False) -> None:
    p.add_argument("--name", help="model name in the card and config (default: "
                   + ("the repository's name" if push else "OUT_FOLDER's name for a run; a model folder keeps its name")
                   + ")")
    p.add_argument("--description", help="one paragraph for the model card")
    p.add_argument("--license", help="license of the weights, a Hub license id (default: the data's, else 'other')")
    p.add_argument("--dataset", action="append", metavar="HUB_DATASET_ID", help="dataset id for the card metadata")
    p.add_argument("--data-license", help="the training data's license (default: known for fashion-mnist, utkface)")
    p.add_argument("--data-attribution", help="the training data's source and attribution, for the card")
    p.add_argument("--metric", type=_kv, action="append", metavar="NAME=VALUE", help="a metric for the card, e.g. fid=23.1")
    p.add_argument("--class-names", help="comma-separated class names (default: the training data's)")
    p.add_argument("--bf16-generator", action="store_true", help="store the generator in bfloat16 (half the size)")
    add_generator_weights_option(p)
    p.add_argument("--training-state", action="store_true",
                   help="include optimizer/objective state (training_state.safetensors) for fine-tuning")


def _add_hub_commands(sub) -> None:
    p = sub.add_parser("export", help="write a model folder (config, safetensors, card, samples) from a run, "
                                      "or the generator as ONNX / TorchScript")
    p.add_argument("ref", metavar="REF", help="run directory, checkpoint, model folder, catalog name or ORG/NAME[@REV]")
    p.add_argument("out", metavar="OUT_FOLDER", help="folder to write (the model folder; with --format onnx or "
                   "torchscript: the folder that gets generator.onnx or generator.torchscript.pt)")
    p.add_argument("--format", default="folder", metavar="FORMAT",
                   help="folder (default: a model folder), onnx (OUT_FOLDER/generator.onnx, checked with ONNX "
                        "Runtime; needs the [onnx] extra) or torchscript "
                        "(OUT_FOLDER/generator.torchscript.pt, checked with torch.jit.load)")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an existing folder")
    p.add_argument("--space", action="store_true",
                   help="also write app.py and requirements.txt: the folder is then a Hugging Face (Gradio) Space "
                        "serving `ganzoo demo` for this model")
    _add_export_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("push", help="publish a run or a model folder to the Hugging Face Hub")
    p.add_argument("ref", metavar="RUN_OR_FOLDER", help="run directory (exported first) or model folder")
    p.add_argument("--repo", required=True, metavar="ORG/NAME", help="Hub repository (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--branch", "--revision", dest="branch", help="branch to commit to (created; default main)")
    p.add_argument("--token", help="Hub token (default: `hf auth login`'s, or HF_TOKEN)")
    p.add_argument("--message", help="commit message")
    _add_export_options(p, push=True)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser(
        "finetune", help="continue training a released model (or a run) on new data",
        description="Fine-tune REF (catalog name, model folder, run directory or ORG/NAME[@REV]) on --data. "
                    "--freeze PART freezes a part the architecture declares freezable "
                    "(e.g. began: encoder; an unknown part's error lists them).")
    p.add_argument("ref", metavar="REF", help="the model to start from")
    _add_train_options(p)
    p.set_defaults(func=cmd_finetune, arch=None)

    p = sub.add_parser("catalog", help="maintain the catalog of released models")
    csub = p.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    c = csub.add_parser("add", help="(re)write a catalog entry from a model folder: sha256 of each file, repo, revision")
    c.add_argument("name", help="catalog name (a Python name: it becomes a torch.hub entrypoint)")
    c.add_argument("folder", help="the model folder (as exported and pushed)")
    c.add_argument("--repo", required=True, metavar="ORG/NAME", help="Hub repository holding the same files")
    c.add_argument("--revision", required=True, help="the pinned revision: the commit `ganzoo push` printed")
    c.add_argument("--catalog", help="catalog file (default: $GANZOO_CATALOG, else ganzoo/catalog.json)")
    c.add_argument("--no-embed", action="store_true", help="do not record the folder as the embedded copy")
    c.add_argument("--description", help="one line for `ganzoo list --pretrained` (default: config.json's)")
    c.set_defaults(func=cmd_catalog_add)


# ---- demo (Gradio, optional: imported only when the command runs) ------------------------------
def cmd_demo(args) -> int:
    from .demo import launch_demo

    try:
        launch_demo(args.models, host=args.host, port=args.port, share=args.share, device=args.device,
                    include_catalog=not args.no_catalog, open_browser=args.open)
    except KeyboardInterrupt:
        pass
    return 0


def _add_demo_command(sub) -> None:
    p = sub.add_parser(
        "demo", help="a local web page (Gradio) to sample, walk between seeds and do latent arithmetic",
        description="Serves a page on http://HOST:PORT for the models named (model folders, runs, catalog names, "
                    "ORG/NAME) and the catalog's: a grid (seed, count, truncation), a slerp walk between two seeds "
                    "(GIF) and latent arithmetic. Offline, on the CPU; needs `pip install 'ganzoo[demo]'`. "
                    "Stop it with Ctrl-C.")
    p.add_argument("models", nargs="*", metavar="MODEL", help="models to offer first (default: the catalog's)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--share", action="store_true",
                   help="also open a public gradio.live link (needs the internet; off by default)")
    p.add_argument("--no-catalog", action="store_true", help="offer only the MODELs named")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.add_argument("--device", default=None, help="auto (CUDA when available), cpu, cuda (default: cpu)")
    add_threads_option(p)
    p.set_defaults(func=cmd_demo)


# ---- parser ---------------------------------------------------------------------------------
class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default, as ArgumentDefaultsHelpFormatter does, where there is one to
    show: not for flags, options without a default (None), or help that already states it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default is None or default is False or default == argparse.SUPPRESS
                or "default" in text
                or "%(default)" in text or isinstance(action, (argparse._StoreTrueAction, argparse._VersionAction))):
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with :class:`HelpFormatter` for itself and its sub-commands, and a usage
    error in one line (the command, the error, where the help is) with exit 2, like every other
    user error of ganzoo (argparse prints the whole usage block first)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        message = " ".join(str(message).split())
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="dataset as KIND:PATH, e.g. fashion-mnist:../shared/datasets/fashion-mnist")
    p.add_argument("--label", help="which label a labelled dataset provides (e.g. utkface: gender, race, age_group)")
    p.add_argument("--out", required=True, help="run directory (created; holds logs, grids, checkpoints)")
    p.add_argument("--steps", type=int, help="number of training steps")
    p.add_argument("--epochs", type=float, help="number of epochs (instead of --steps)")
    p.add_argument("--batch-size", type=int, help="default: the architecture's; under torchrun the GLOBAL batch, "
                   "split evenly over the processes")
    p.add_argument("--lr-g", type=float, help="generator learning rate (default: the architecture's)")
    p.add_argument("--lr-d", type=float, help="discriminator learning rate (default: the architecture's)")
    p.add_argument("--betas", type=_betas, metavar="B1,B2",
                   help="Adam betas for both players, e.g. 0.0,0.9 (default: the architecture's)")
    p.add_argument("--lr-decay", choices=("linear",),
                   help="learning-rate schedule: linear falls from the recipe's rates to 0 at the last step "
                        "(default: constant); at --resume it starts from the checkpoint")
    p.add_argument("--lr-decay-start", type=int, default=0, metavar="STEP",
                   help="with --lr-decay: the step the decay starts at (default 0)")
    p.add_argument("--image-size", type=int, help="image size in px (default: the architecture's)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="image channels (default: the architecture's)")
    p.add_argument("--set", type=_kv, action="append", metavar="KEY=VALUE", help="architecture config field")
    p.add_argument("--objective", help="objective name (default: the architecture's)")
    p.add_argument("--objective-arg", type=_kv, action="append", metavar="KEY=VALUE", help="objective hyper-parameter")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights, data order, latents and augmentations")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
    p.add_argument("--bf16", action="store_const", const=True, default=None,
                   help="bfloat16 autocast even where the device does not compute bf16 natively (default: on "
                        "where it does: a CPU with AVX-512 BF16 or AMX, a CUDA GPU with bf16; the run records "
                        "the choice and --resume keeps it)")
    p.add_argument("--no-bf16", dest="bf16", action="store_const", const=False,
                   help="train in fp32 where bf16 autocast would be the default (also at --resume)")
    p.add_argument("--restart", action="store_true",
                   help="start the run in --out over from step 0, deleting what ganzoo wrote there (keeps nothing of "
                        "it); without ARCH/--data it takes the run's recorded settings, the options given replacing them")
    p.add_argument("--channels-last", action="store_true",
                   help="channels_last memory format (default: automatic for convolutional networks, unless the "
                        "architecture measured it slower)")
    p.add_argument("--no-channels-last", dest="nchw", action="store_true",
                   help="keep NCHW where channels_last would be automatic")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D (falls back to eager)")
    p.add_argument("--flip", action="store_true", help="augment with random horizontal flips")
    p.add_argument("--diffaugment", metavar="POLICY",
                   help="DiffAugment (Zhao et al. 2020) on every image D sees, real and generated, for small "
                        "datasets: some of color,translation,cutout,zoom, comma-separated (zoom: ganzoo's "
                        "bilinear zoom-in by 1-2x of half the images, see ganzoo.augment)")
    p.add_argument("--ada", action="store_true",
                   help="adaptive augmentation (Karras et al. 2020, ADA): the --diffaugment policy (default "
                        "color,translation,cutout) applied with a probability p that rises while D overfits "
                        "(r_t = E[sign(D(real))] above --ada-target) and falls otherwise; p and r_t are logged")
    p.add_argument("--ada-target", type=float, default=0.6, metavar="T",
                   help="with --ada: the target of r_t, in (0, 1) (default 0.6, the paper's)")
    p.add_argument("--ada-kimg", type=float, default=500.0, metavar="K",
                   help="with --ada: thousands of images for p to go from 0 to 1 (default 500, the paper's); "
                        "smaller reacts faster in short runs")
    p.add_argument("--log-every", type=int, default=50, metavar="STEPS",
                   help="log the losses (log.jsonl, loss.png, the progress bar) every STEPS steps")
    p.add_argument("--sample-every", type=int, default=500, metavar="STEPS",
                   help="write a fixed-latent sample grid to samples/ every STEPS steps")
    p.add_argument("--checkpoint-every", type=int, default=500, metavar="STEPS",
                   help="save a checkpoint every STEPS steps (and at the end, and on Ctrl-C/SIGTERM)")
    p.add_argument("--keep-checkpoints", type=int, default=2, metavar="K", help="keep the K newest checkpoints")
    p.add_argument("--freeze", action="append", metavar="PART", help="freeze a part the architecture declares freezable")
    p.add_argument("--ema", type=float, metavar="DECAY", default=0.0,
                   help="keep an exponential moving average of G's weights (e.g. 0.999) for grids, sampling and "
                        "export; allowed with --resume to switch it on for the rest of a run. With BatchNorm in G "
                        "the average borrows G's running statistics: measure it against the trained weights "
                        "(eval --generator-weights trained)")
    p.add_argument("--sync-bn", action="store_true",
                   help="under torchrun on GPUs: SyncBatchNorm, BatchNorm statistics over the global batch")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no start and speed lines")
    add_threads_option(p)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = ArgumentParser(prog="ganzoo", description="A zoo of GANs: list, train, sample, share.")
    parser.add_argument("--version", action="version", version=f"ganzoo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)

    p = sub.add_parser("list", help="architectures, objectives and datasets (or --pretrained models)")
    p.add_argument("--pretrained", action="store_true", help="list pretrained models instead")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("plugins", help="installed plugin distributions and what each registered")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list: name, distribution, version, hooks and what each registered (or its error)")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("train", help="train an architecture on a dataset")
    p.add_argument("arch", nargs="?", help="architecture name (see `ganzoo list`)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw a grid of samples from a model or a run")
    p.add_argument("ref", help="pretrained name, model folder, run directory, or Hub id org/name[@revision]")
    p.add_argument("-n", type=positive_int, default=64, help="number of images")
    p.add_argument("-o", "--output", default="samples.png", help="PNG to write")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the latents (and labels); a card's grid names its seed")
    p.add_argument("--label", help="class name(s) or index(es), comma-separated, for conditional models")
    p.add_argument("--per-class", type=positive_int, metavar="K",
                   help="conditional models: a grid of K images per class, one row per class (all classes, or "
                        "those --label names), the same latents in every row; replaces -n and --nrow")
    p.add_argument("--nrow", type=positive_int, help="images per row")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
    p.add_argument("--bf16", action="store_true", help="sample under bfloat16 autocast")
    add_threads_option(p)
    add_generator_weights_option(p)
    p.add_argument("--truncation", type=finite_float(0.0, exclusive=True), metavar="T",
                   help="truncation trick: redraw latent components "
                   "with |z| > T (N(0,1) truncated to [-T, T], as BigGAN); N(0, I) latents only, e.g. 0.7")
    p.set_defaults(func=cmd_sample)

    _add_hub_commands(sub)
    _add_demo_command(sub)
    from .eval import add_eval_command  # `ganzoo eval` lives with its code in ganzoo/eval.py

    add_eval_command(sub)
    from .latent import add_latent_commands  # interpolate, arithmetic, project: ganzoo/latent.py

    add_latent_commands(sub)
    return parser


@contextlib.contextmanager
def _one_line_warnings(debug: bool):
    """ganzoo's own warnings (a skipped image, a recomputed cache file) as ``ganzoo: warning: ...``, one
    line each, without the source line Python's default format adds."""
    if debug:
        yield
        return
    old = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not (isinstance(category, type) and issubclass(category, GanzooWarning)) and "ganzoo" not in str(filename):
            return old(message, category, filename, lineno, file, line)
        text = " ".join(str(message).split())
        print(f"ganzoo: warning: {text}", file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = old


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the sub-command's help, not the top level's, for an option that command lacks
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        (sub.choices.get(getattr(args, "command", None) or "", parser) if sub else parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USER_ERROR
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        with _one_line_warnings(args.debug):
            return int(args.func(args) or 0)
    except GanzooError as exc:
        if args.debug:
            raise
        print(f"ganzoo: error: {exc}", file=sys.stderr)
        # a training stopped by SIGTERM/SIGINT (after saving) exits 143/130, as the signal would
        return getattr(exc, "exit_code", EXIT_USER_ERROR)
    except (OSError, MemoryError) as exc:  # the disk or the machine said no: one line, not a traceback
        if args.debug:
            raise
        what = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        reason = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__
        print(f"ganzoo: error: {what}{reason} ({type(exc).__name__}); nothing was finished: free the resource "
              f"or choose another path and retry (--debug shows where)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ganzoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
