"""The built-in commands: each one's group module in :mod:`ganzoo.cli` and the line ``ganzoo --help`` shows.

``ganzoo --help`` is printed from this table alone, and a command's own parser is built from its group module
when that command is named, so the help does not import the library modules behind the commands (latent, eval
and their neighbours). A group module registers its commands with these lines (``help=HELP[name]``).
"""
from __future__ import annotations

#: command: (its group module of ganzoo.cli, its line in `ganzoo --help`), in the order the help lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("models",
             "architectures, objectives and datasets (or --pretrained models)"),
    "plugins": ("models",
                "installed plugin distributions and what each registered"),
    "train": ("train",
              "train an architecture on a dataset"),
    "sample": ("sample",
               "draw a grid of samples from a model or a run"),
    "export": ("hub",
               "write a model folder (config, safetensors, card, samples) from a run, "
              "or the generator as ONNX / TorchScript"),
    "push": ("hub",
             "publish a run or a model folder to the Hugging Face Hub"),
    "finetune": ("train",
                 "continue training a released model (or a run) on new data"),
    "catalog": ("hub",
                "maintain the catalog of released models"),
    "demo": ("demo",
             "a local web page (Gradio) to sample, walk between seeds and do latent arithmetic"),
    "eval": ("eval",
             "FID/KID/precision-recall (Inception or a Fashion-MNIST classifier) and D's confusion matrix"),
    "interpolate": ("latent",
                    "images along a lerp/slerp path between seeds or latent files (GIF or PNG)"),
    "arithmetic": ("latent",
                   "latent arithmetic on mean latents of sample groups: --expr 'a - b + c'"),
    "project": ("latent",
                "find the latent of a real image (optimisation, or a BiGAN encoder)"),
}
#: the built-in groups, in the order the full parser (build_parser()) registers them
GROUPS = tuple(dict.fromkeys(group for group, _ in COMMANDS.values()))
HELP = {name: text for name, (_, text) in COMMANDS.items()}
