"""``ganzoo train`` and ``ganzoo finetune``: the training options, read into a :class:`ganzoo.trainer.TrainConfig`."""
from __future__ import annotations

import argparse
import sys

from ..errors import GanzooError
from . import lazy
from .commands import HELP
from .options import add_device_option, add_threads_option, key_value


def _betas(text: str) -> tuple[float, float]:
    try:
        b1, b2 = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not two numbers B1,B2 such as 0.5,0.999") from None
    if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
        raise argparse.ArgumentTypeError(f"betas {text!r} must each be in [0, 1)")
    return b1, b2


def _train_config_from_args(args):
    arch_config = dict(args.set or [])
    if args.image_size is not None:
        arch_config["image_size"] = args.image_size
    if args.channels is not None:
        arch_config["channels"] = args.channels
    return lazy.trainer.TrainConfig(
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
    if not args.resume and not args.restart and (not args.arch or not args.data):
        raise GanzooError("ganzoo train needs ARCH and --data KIND:PATH (or --resume or --restart with --out of an "
                          "earlier run)")
    cfg = _train_config_from_args(args)
    lazy.trainer.check_options(cfg)  # the numbers, before any work
    trainer = lazy.trainer.train(cfg, args.out, resume=args.resume, restart=args.restart, progress=not args.quiet,
                    command="ganzoo " + " ".join(sys.argv[1:]))
    if trainer.dist.is_main and trainer.step > trainer.start_step:
        print(f"trained {trainer.step} steps; run in {args.out} (samples.png, loss.png, checkpoints/)")
    return 0


def cmd_finetune(args) -> int:
    if not args.data:
        raise GanzooError("ganzoo finetune needs --data KIND:PATH (the new data)")
    for flag, value in (("--image-size", args.image_size), ("--channels", args.channels), ("--set", args.set)):
        if value:
            raise GanzooError(f"{flag}: a fine-tune keeps the base model's architecture config; drop {flag}")
    cfg = _train_config_from_args(args)
    lazy.trainer.check_options(cfg)  # the numbers, before any work
    cfg = cfg.to_dict()
    for key in ("arch", "data", "arch_config", "data_label", "steps", "epochs", "freeze", "base_model"):
        cfg.pop(key, None)
    trainer = lazy.hub.finetune(args.ref, data=args.data, out=args.out, steps=args.steps, epochs=args.epochs,
                       freeze=args.freeze or [], label=args.label, progress=not args.quiet,
                       command="ganzoo " + " ".join(sys.argv[1:]), restart=args.restart, **cfg)
    print(f"fine-tuned {args.ref} for {trainer.step} steps; run in {args.out}; "
          f"export it with `ganzoo export {args.out} FOLDER`")
    return 0


#: where a recipe option's default comes from (:func:`ganzoo.trainer._base_recipe` for finetune)
_RECIPE_DEFAULT = "the architecture's; finetune: the base model's recorded one"


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="dataset as KIND:PATH, e.g. fashion-mnist:../shared/datasets/fashion-mnist")
    p.add_argument("--label", help="which label a labelled dataset provides (e.g. utkface: gender, race, age_group)")
    p.add_argument("--out", required=True, help="run directory (created; holds logs, grids, checkpoints)")
    p.add_argument("--steps", type=int, help="number of training steps")
    p.add_argument("--epochs", type=float, help="number of epochs (instead of --steps)")
    p.add_argument("--batch-size", type=int, help=f"default: {_RECIPE_DEFAULT}; under torchrun the GLOBAL batch, "
                   "split evenly over the processes")
    p.add_argument("--lr-g", type=float, help=f"generator learning rate (default: {_RECIPE_DEFAULT})")
    p.add_argument("--lr-d", type=float, help=f"discriminator learning rate (default: {_RECIPE_DEFAULT})")
    p.add_argument("--betas", type=_betas, metavar="B1,B2",
                   help=f"Adam betas for both players, e.g. 0.0,0.9 (default: {_RECIPE_DEFAULT}s)")
    p.add_argument("--lr-decay", choices=("linear",),
                   help="learning-rate schedule: linear falls from the recipe's rates to 0 at the last step "
                        "(default: constant); at --resume it starts from the checkpoint")
    p.add_argument("--lr-decay-start", type=int, default=0, metavar="STEP",
                   help="with --lr-decay: the step the decay starts at (default 0)")
    p.add_argument("--image-size", type=int, help="image size in px (default: the architecture's)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="image channels (default: the architecture's)")
    p.add_argument("--set", type=key_value, action="append", metavar="KEY=VALUE", help="architecture config field")
    p.add_argument("--objective", help=f"objective name (default: {_RECIPE_DEFAULT}, with its hyper-parameters)")
    p.add_argument("--objective-arg", type=key_value, action="append", metavar="KEY=VALUE", help="objective hyper-parameter")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights, data order, latents and augmentations")
    add_device_option(p)
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


def add_parsers(sub) -> None:
    """Register ``ganzoo train`` and ``ganzoo finetune``."""
    p = sub.add_parser("train", help=HELP["train"])
    p.add_argument("arch", nargs="?", help="architecture name (see `ganzoo list`)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "finetune", help=HELP["finetune"],
        description="Fine-tune REF (catalog name, model folder, run directory or ORG/NAME[@REV]) on --data. "
                    "--freeze PART freezes a part the architecture declares freezable "
                    "(e.g. began: encoder; an unknown part's error lists them).")
    p.add_argument("ref", metavar="REF", help="the model to start from")
    _add_train_options(p)
    p.set_defaults(func=cmd_finetune, arch=None)
