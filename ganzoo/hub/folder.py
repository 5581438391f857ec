"""The model folder's format: its file names, its ``config.json`` schema and checks, and how ganzoo
is installed from its repository (what a card and an error tell a user to run)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..errors import GanzooError, GanzooWarning

FORMAT = 1
CONFIG_NAME = "config.json"
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
TRAINING_STATE_FILE = "training_state.safetensors"
CARD_NAME = "README.md"
SAMPLES_NAME = "samples.png"
CURVES_NAME = "loss.png"
TRAINING_LOG_NAME = "training_log.jsonl"
SAMPLES_SEED = 1234
SAMPLES_N = 64
HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.\-]*/[\w.\-]+?)(?:@(?P<rev>[\w.\-/%]+))?$")
PROJECT_URL = "https://github.com/ganzoo/ganzoo"
# ganzoo is installed from its repository: on the package index `ganzoo` is an unrelated project
# and the plugins are not published (see the README's "Install")
_CHECKOUT = Path(__file__).resolve().parents[2]

# License and attribution of the data sets ganzoo knows, by dataset kind.
KNOWN_DATA = {
    "fashion-mnist": {
        "datasets": ["zalando-datasets/fashion_mnist"],
        "license": "mit",
        "attribution": "Fashion-MNIST by Zalando Research (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747), "
                       "MIT License, https://github.com/zalandoresearch/fashion-mnist",
    },
    "utkface": {
        # the aligned and cropped faces (UTKFace/*.jpg.chip.jpg) that `utkface:` reads, as on the Hub
        "datasets": ["py97/UTKFace-Cropped"],
        "license": "other",
        "license_name": "utkface-non-commercial-research",
        "license_link": "https://susanqq.github.io/UTKFace/",
        "attribution": "UTKFace (Zhang, Song & Qi, CVPR 2017, https://susanqq.github.io/UTKFace/): "
                       "for non-commercial research purposes only; the copyright of the images remains "
                       "with their owners",
    },
}


# ---- installing from the repository ----------------------------------------------------------
def install_spec(dist: str = "ganzoo", extra: str | None = None) -> str:
    """A pip requirement, quoted for a shell, that installs ``dist`` (the core, or a first-party
    plugin: one with a folder in the checkout's plugins/) from the repository; any other
    distribution by its name."""
    name = f"{dist}[{extra}]" if extra else dist
    if dist == "ganzoo":
        return f'"{name} @ git+{PROJECT_URL}"'
    if (_CHECKOUT / "plugins" / dist / "pyproject.toml").is_file():
        return f'"{name} @ git+{PROJECT_URL}#subdirectory=plugins/{dist}"'
    return name


def install_line(dist: str | None = None) -> str:
    """``pip install ...`` for the core and plugin ``dist`` with the first-party plugins it
    depends on (``ganzoo-cgan`` needs ``ganzoo-losses`` and ``ganzoo-sngan``), each from the
    repository, so that the line works as written."""
    order: list[str] = []

    def visit(d: str) -> None:
        if d in order or d in ("ganzoo", "unknown", ""):
            return
        try:
            reqs = metadata.requires(d) or []
        except metadata.PackageNotFoundError:
            reqs = []
        for r in reqs:
            dep = re.split(r"[\s<>=!~;\[(@]", r.strip(), maxsplit=1)[0].lower().replace("_", "-")
            if dep.startswith("ganzoo-") and "extra ==" not in r:
                visit(dep)
        order.append(d)

    if dist:
        visit(dist)
    return "pip install " + " ".join([install_spec()] + [install_spec(d) for d in order])


# ---- small helpers ----------------------------------------------------------------------------
def _one_line(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_lfs_pointer(path: Path) -> bool:
    try:
        return path.stat().st_size < 1024 and path.read_bytes().startswith(b"version https://git-lfs")
    except OSError:
        return False


def _read_safetensors(path: Path, label: str, source=None) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as exc:  # SafetensorError, OSError, ...: a corrupt or truncated file
        fix = source.discard(path) if source is not None else ""
        raise GanzooError(
            f"{label}: {path.name} is not a readable safetensors file (truncated or corrupt: {_one_line(exc, 120)}); "
            f"{fix or 'download it again or re-export the model folder'}"
        ) from None


def _cast_state(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous() for k, v in state.items()}


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _check_config(config: Any, label: str) -> dict[str, Any]:
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str) \
            or not isinstance(config.get("arch_config"), dict):
        raise GanzooError(f"{label}: {CONFIG_NAME} is not a ganzoo model config (needs \"architecture\" and "
                          f"\"arch_config\"); export the folder again with `ganzoo export`")
    fmt = config.get("ganzoo_format", FORMAT)
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise GanzooError(f"{label}: {CONFIG_NAME} has format {_short(fmt)}, not a ganzoo format number; "
                          f"export the folder again with `ganzoo export`")
    if fmt > FORMAT:
        raise GanzooError(f"{label}: {CONFIG_NAME} has format {fmt!r}, newer than this ganzoo reads ({FORMAT}); "
                          f"upgrade ganzoo ({install_line().replace('pip install', 'pip install -U', 1)})")

    def bad(field: str, want: str) -> GanzooError:
        return GanzooError(f"{label}: {CONFIG_NAME} field {field} = {_short(config.get(field))} must be {want}; "
                           f"the file was edited or is corrupt: export the folder again")

    def whole(v, low: int = 0) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    shape = config.get("image_shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == 3 and all(whole(v, 1) for v in shape)):
        raise bad("image_shape", "three positive whole numbers [C, H, W]")
    for field in ("latent_dim", "num_classes"):
        if config.get(field) is not None and not whole(config[field]):
            raise bad(field, "a whole number >= 0")
    names = config.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise bad("class_names", "a list of names")
    for field in ("plugin", "training", "data", "lineage", "curves"):
        if config.get(field) is not None and not isinstance(config[field], dict):
            raise bad(field, "an object")
    if config.get("metrics") is not None and not isinstance(config["metrics"], (dict, list)):
        raise bad("metrics", "an object")
    for field in ("name", "description", "license"):
        if config.get(field) is not None and not isinstance(config[field], str):
            raise bad(field, "text")
    weights = config.get("weights")
    if weights is not None:
        parts = [weights.get(p) for p in ("generator", "discriminator")] if isinstance(weights, dict) else [0]
        if not all(p is None or (isinstance(p, dict) and isinstance(p.get("file", ""), str)
                                 and p.get("dtype", "float32") in _DTYPES) for p in parts):
            raise bad("weights", f"{{generator: {{file, dtype: {' / '.join(_DTYPES)}}}, discriminator: ...}}")
    return config


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: config.json is a few kB; a file much larger than this is not one (and is not parsed)
CONFIG_MAX_BYTES = 1 << 20


def _read_config(path: Path, label: str) -> dict[str, Any]:
    """config.json parsed and checked (:func:`_check_config`); a malformed, huge or absurdly nested file is
    one line."""
    try:
        size = path.stat().st_size
        if size > CONFIG_MAX_BYTES:
            raise GanzooError(f"{label}: {CONFIG_NAME} is {size} bytes, not a ganzoo model config (a few kB); "
                              f"download or export the model folder again")
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else _one_line(exc, 80)
        raise GanzooError(f"{label}: {CONFIG_NAME} is not valid JSON ({why}); "
                          f"download or export the model folder again") from None
    except OSError as exc:
        raise GanzooError(f"{label}: cannot read {CONFIG_NAME} ({exc.strerror or exc}); check the file") from None
    return _check_config(data, label)


def _folder_config(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise GanzooError(f"{folder}: no such folder; pass a model folder written by `ganzoo export`")
    cfg = folder / CONFIG_NAME
    if not cfg.is_file():
        raise GanzooError(f"{folder}: missing {CONFIG_NAME}; export the folder again with `ganzoo export RUN {folder}`")
    return _read_config(cfg, str(folder))


def _warn(message: str) -> None:
    warnings.warn(message, GanzooWarning, stacklevel=3)
