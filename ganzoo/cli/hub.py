"""``ganzoo export``, ``ganzoo push`` and ``ganzoo catalog``: released models (:mod:`ganzoo.hub`; the ONNX and
TorchScript exports: :mod:`ganzoo.deploy`)."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..errors import GanzooError
from . import lazy
from .commands import HELP
from .options import add_generator_weights_option, key_value


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
    deploy = lazy.deploy
    fmt = (args.format or "folder").lower()
    if fmt not in deploy.FORMATS:
        raise GanzooError(f"--format {args.format}: use one of {', '.join(deploy.FORMATS)}")
    if fmt != "folder":
        folder_only = sorted(k for k in _export_kwargs(args) if k != "generator_weights")
        if folder_only:
            flags = {"datasets": "dataset", "metrics": "metric", "generator_dtype": "bf16-generator"}
            flag = "--" + flags.get(folder_only[0], folder_only[0]).replace("_", "-")
            raise GanzooError(f"{flag} describes a model folder; it has no effect with --format {fmt}: drop it")
        res = deploy.export_generator(args.ref, args.out, format=fmt, overwrite=args.overwrite,
                               generator_weights=args.generator_weights)
        what = f"ONNX opset {deploy.OPSET}, ONNX Runtime" if fmt == "onnx" else "TorchScript, torch.jit.load"
        print(f"wrote {res.path} ({what} vs PyTorch on the same {res.batch} latents: "
              f"max abs difference {res.max_abs_diff:.3g})")
        return 0
    out = lazy.hub.export_model(args.ref, args.out, overwrite=args.overwrite, **_export_kwargs(args))
    if args.space:
        lazy.hub.write_space(out)
        print(f"wrote Space folder {out} (app.py, requirements.txt, config.json, weights, README.md with sdk: gradio); "
              f"try it with `python {out}/app.py`")
        return 0
    print(f"wrote model folder {out} (config.json, generator/discriminator.safetensors, README.md, samples.png)")
    return 0


def cmd_push(args) -> int:
    info = lazy.hub.push(args.ref, args.repo, private=args.private or None, branch=args.branch, token=args.token,
                commit_message=args.message, **_export_kwargs(args))
    print(f"pushed to {info['repo']} at revision {info['revision']} ({info['url']}); pin it in the catalog with: "
          f"ganzoo catalog add NAME FOLDER --repo {info['repo']} --revision {info['revision']}")
    return 0


def cmd_catalog_add(args) -> int:
    def add():
        return lazy.hub.add_catalog_entry(args.name, args.folder, repo=args.repo, revision=args.revision,
                                          catalog=args.catalog, embed=not args.no_embed, description=args.description)

    entry = add()
    # a folder exported before its entry existed has a card whose commands name the folder's path
    # (./models/NAME): the embedded model's card names the catalog entry, then the files are pinned again
    folder = Path(args.folder)
    card = folder / lazy.hub.CARD_NAME
    if entry.embedded is not None and json.loads((folder / lazy.hub.CONFIG_NAME).read_text()).get("name") == args.name:
        before = card.read_bytes() if card.is_file() else None
        lazy.hub.write_card(args.folder, ref=args.name)
        if card.read_bytes() != before:
            print(f"rebuilt {card} so that its commands load {args.name!r}", file=sys.stderr)
            entry = add()
    if not re.fullmatch(r"[0-9a-f]{40}", args.revision):
        print(f"warning: --revision {args.revision} is not a commit: a branch or tag can move (the sha256 check then "
              f"refuses the new files); pin the commit `ganzoo push` printed", file=sys.stderr)
    where = f", embedded at {entry.embedded}" if entry.embedded else ""
    print(f"catalog {args.catalog or lazy.hub.catalog_path()}: {entry.name} -> {entry.repo}@{entry.revision} "
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
    p.add_argument("--metric", type=key_value, action="append", metavar="NAME=VALUE", help="a metric for the card, e.g. fid=23.1")
    p.add_argument("--class-names", help="comma-separated class names (default: the training data's)")
    p.add_argument("--bf16-generator", action="store_true", help="store the generator in bfloat16 (half the size)")
    add_generator_weights_option(p)
    p.add_argument("--training-state", action="store_true",
                   help="include optimizer/objective state (training_state.safetensors) for fine-tuning")


def add_parsers(sub) -> None:
    """Register ``ganzoo export``, ``ganzoo push`` and ``ganzoo catalog add``."""
    p = sub.add_parser("export", help=HELP["export"])
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

    p = sub.add_parser("push", help=HELP["push"])
    p.add_argument("ref", metavar="RUN_OR_FOLDER", help="run directory (exported first) or model folder")
    p.add_argument("--repo", required=True, metavar="ORG/NAME", help="Hub repository (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--branch", "--revision", dest="branch", help="branch to commit to (created; default main)")
    p.add_argument("--token", help="Hub token (default: `hf auth login`'s, or HF_TOKEN)")
    p.add_argument("--message", help="commit message")
    _add_export_options(p, push=True)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("catalog", help=HELP["catalog"])
    csub = p.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    c = csub.add_parser("add", help="(re)write a catalog entry from a model folder: sha256 of each file, repo, revision")
    c.add_argument("name", help="catalog name (a Python name: it becomes a torch.hub entrypoint)")
    c.add_argument("folder", help="the model folder (as exported and pushed)")
    c.add_argument("--repo", required=True, metavar="ORG/NAME", help="Hub repository holding the same files")
    c.add_argument("--revision", required=True, help="the pinned revision: the commit `ganzoo push` printed")
    c.add_argument("--catalog", help="catalog file (default: $GANZOO_CATALOG, else ganzoo/catalog.json)")
    c.add_argument("--no-embed", action="store_true", help="do not record the folder as the embedded copy")
    c.add_argument("--description", help="one line for `ganzoo list --pretrained` (default: the entry's own when it exists, else "
                        "config.json's)")
    c.set_defaults(func=cmd_catalog_add)
