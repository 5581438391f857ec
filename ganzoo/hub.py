"""Released models: model folders, the catalog, loading, export, publishing and fine-tuning.

A released model is a folder laid out as a Hugging Face model repository::

    config.json                  architecture, plugin, every constructor argument, image shape,
                                 latent size, classes, pixel range, recipe, lineage (schema below)
    generator.safetensors        generator weights (float32, or bfloat16: config.json records it)
    discriminator.safetensors    discriminator weights (float32)
    README.md                    model card: YAML metadata, how to load, data license/attribution
    samples.png                  64 samples at a fixed seed
    loss.png, training_log.jsonl exported from a run: its learning curves and logged scalars
                                 up to the exported checkpoint
    training_state.safetensors   optional: Adam moments and objective state, for fine-tuning

It is saved and loaded through :class:`GANModel`, a ``huggingface_hub.ModelHubMixin``
(so ``save_pretrained``/``from_pretrained``/``push_to_hub`` come with it) and
safetensors only: pickled weights (.bin .pt .pth .ckpt) are refused.

The catalog (``ganzoo/catalog.json``, or the file ``$GANZOO_CATALOG`` names) maps
a short name to a Hub repository, a pinned revision and the sha256 of each file,
and optionally to an ``embedded`` folder (relative to the catalog file) that is
used before any download. Every file taken from either place is verified.

>>> G = ganzoo.load("began_fashion")                   # doctest: +SKIP
>>> G, D = ganzoo.load("org/name@main", discriminator=True)   # doctest: +SKIP

Releasing a model (e.g. ``began_fashion`` from the run ``runs/began_fashion``)::

    ganzoo export runs/began_fashion models/began_fashion --name began_fashion \\
        --description "BEGAN on Fashion-MNIST 64x64" [--bf16-generator] [--metric fid=...]
    ganzoo push models/began_fashion --repo ORG/began-fashion      # prints the commit
    ganzoo catalog add began_fashion models/began_fashion --repo ORG/began-fashion --revision COMMIT
    git add models/began_fashion ganzoo/catalog.json               # the embedded default

``catalog add`` (re)writes the entry: the sha256 of every file of the folder, the
repository, the pinned revision and ``embedded`` (the folder relative to the
catalog file; ``--no-embed`` leaves it out, so the files are downloaded).
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

import torch
from huggingface_hub import ModelCard, ModelCardData, ModelHubMixin, constants as hf_constants
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .errors import GanzooError
from .io import atomic_path, save_grid, write_json

__all__ = [
    "GANModel", "load", "list_pretrained", "export_model", "push", "finetune", "save_modules", "module_config",
    "catalog_path", "load_catalog", "add_catalog_entry", "CatalogEntry", "file_sha256", "install_line",
]

FORMAT = 1
CATALOG_ENV = "GANZOO_CATALOG"
BUILTIN_CATALOG = Path(__file__).with_name("catalog.json")
CONFIG_NAME = "config.json"
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
TRAINING_STATE_FILE = "training_state.safetensors"
CARD_NAME = "README.md"
SAMPLES_NAME = "samples.png"
CURVES_NAME = "loss.png"
TRAINING_LOG_NAME = "training_log.jsonl"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAMPLES_SEED = 1234
SAMPLES_N = 64
HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.\-]*/[\w.\-]+?)(?:@(?P<rev>[\w.\-/%]+))?$")
CATALOG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROJECT_URL = "https://github.com/ganzoo/ganzoo"
# ganzoo is installed from its repository: on the package index `ganzoo` is an unrelated project
# and the plugins are not published (see the README's "Install")
_CHECKOUT = Path(__file__).resolve().parents[1]

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
    from importlib import metadata

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


def _resolve_device(device) -> torch.device:
    from .trainer import resolve_device

    if device is None:
        return torch.device("cpu")
    return resolve_device(device)


def _refuse_pickle(path: str | os.PathLike, label: str | None = None) -> None:
    name = os.path.basename(str(path))
    if name.lower().endswith(PICKLE_SUFFIXES):
        raise GanzooError(
            f"{label or path}: refusing pickled weights {name!r} (pickle can run code when loaded); "
            f"ganzoo loads safetensors only: convert it with safetensors.torch.save_file, or export the run "
            f"with `ganzoo export RUN FOLDER`"
        )


def _read_safetensors(path: Path, label: str, source: "_Source | None" = None) -> dict[str, torch.Tensor]:
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


# ---- the catalog -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One released model: where it lives on the Hub and what its files hash to."""

    name: str
    repo: str
    revision: str
    files: dict[str, str]
    embedded: Path | None = None
    architecture: str = ""
    image_shape: tuple[int, ...] = ()
    description: str = ""
    catalog: Path | None = None


def catalog_path() -> Path:
    """The catalog in use: ``$GANZOO_CATALOG`` when set, else the built-in ``ganzoo/catalog.json``."""
    env = os.environ.get(CATALOG_ENV)
    return Path(env).expanduser() if env else BUILTIN_CATALOG


def _read_catalog_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        if path == BUILTIN_CATALOG:
            return {"format": FORMAT, "models": {}}
        raise GanzooError(f"catalog {path} (from ${CATALOG_ENV}) does not exist; fix the path or unset {CATALOG_ENV}")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise GanzooError(f"catalog {path} is not valid JSON ({_one_line(exc, 100)}); restore it from git") from None
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        raise GanzooError(f"catalog {path} must be an object with a \"models\" object; restore it from git")
    data.setdefault("models", {})
    return data


def load_catalog(path: str | os.PathLike | None = None) -> dict[str, CatalogEntry]:
    """Name -> :class:`CatalogEntry` for every model in the catalog."""
    path = Path(path) if path is not None else catalog_path()
    data = _read_catalog_file(path)
    out: dict[str, CatalogEntry] = {}
    for name, e in data["models"].items():
        if not isinstance(e, dict) or not all(k in e for k in ("repo", "revision", "files")):
            raise GanzooError(f"catalog {path}: entry {name!r} needs repo, revision and files; "
                              f"rewrite it with `ganzoo catalog add {name} FOLDER --repo ORG/NAME --revision REV`")
        emb = e.get("embedded")
        out[name] = CatalogEntry(
            name=name, repo=e["repo"], revision=e["revision"], files=dict(e["files"]),
            embedded=(path.parent / emb).resolve() if emb else None,
            architecture=e.get("architecture", ""), image_shape=tuple(e.get("image_shape", ())),
            description=e.get("description", ""), catalog=path,
        )
    return out


def _folder_config(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise GanzooError(f"{folder}: no such folder; pass a model folder written by `ganzoo export`")
    cfg = folder / CONFIG_NAME
    if not cfg.is_file():
        raise GanzooError(f"{folder}: missing {CONFIG_NAME}; export the folder again with `ganzoo export RUN {folder}`")
    return _read_config(cfg, str(folder))


def add_catalog_entry(name: str, folder: str | os.PathLike, *, repo: str, revision: str,
                      catalog: str | os.PathLike | None = None, embed: bool = True,
                      description: str | None = None) -> CatalogEntry:
    """(Re)write the catalog entry ``name`` from a model folder: the sha256 of each of its files,
    the Hub repository and pinned revision, and (``embed``) the folder's path relative to the catalog.

    >>> add_catalog_entry("began_fashion", "models/began_fashion", repo="org/began-fashion",
    ...                   revision="0123abc...")        # doctest: +SKIP
    """
    if not CATALOG_NAME.match(name):
        raise GanzooError(f"catalog name {name!r}: use letters, digits and underscores (a Python name, "
                          f"so torch.hub can offer it), e.g. began_fashion")
    if not HUB_ID.match(repo) or "@" in repo:
        raise GanzooError(f"--repo {repo!r}: write the Hub repository as ORG/NAME")
    folder = Path(folder)
    config = _folder_config(folder)
    files: dict[str, str] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        _refuse_pickle(p, str(folder))
        files[p.name] = file_sha256(p)
    for required in (GENERATOR_FILE, DISCRIMINATOR_FILE):
        if required not in files:
            raise GanzooError(f"{folder}: missing {required}; export the folder again with `ganzoo export RUN {folder}`")
    path = Path(catalog) if catalog is not None else catalog_path()
    data = _read_catalog_file(path) if path.exists() else {"format": FORMAT, "models": {}}
    entry: dict[str, Any] = {
        "repo": repo,
        "revision": revision,
        "architecture": config.get("architecture", ""),
        "image_shape": list(config.get("image_shape", [])),
        "description": description if description is not None else config.get("description", ""),
    }
    if embed:
        entry["embedded"] = Path(os.path.relpath(folder.resolve(), path.parent.resolve())).as_posix()
    entry["files"] = files
    data["format"] = FORMAT
    data["models"][name] = entry
    data["models"] = dict(sorted(data["models"].items()))
    write_json(path, data)
    return load_catalog(path)[name]


def list_pretrained(detail: bool = False):
    """Names of the catalog's models, sorted; ``detail=True``: one dict per model
    (name, repo, revision, architecture, image, where: embedded / cached / hub, description, and
    from its config.json when it is here: license and metrics)."""
    from huggingface_hub import try_to_load_from_cache

    entries = load_catalog()
    if not detail:
        return sorted(entries)
    rows = []
    for name, e in sorted(entries.items()):
        if e.embedded is not None and (e.embedded / GENERATOR_FILE).is_file():
            where = f"embedded ({e.embedded})"
        else:
            try:
                hit = try_to_load_from_cache(e.repo, GENERATOR_FILE, revision=e.revision)
            except Exception:
                hit = None
            where = "cached" if isinstance(hit, str) else f"hub {e.repo}@{e.revision[:12]}"
        config = _local_config(e)
        rows.append({"name": name, "repo": e.repo, "revision": e.revision, "architecture": e.architecture,
                     "image": "x".join(map(str, e.image_shape)), "where": where, "description": e.description,
                     "license": config.get("license") or "", "metrics": dict(config.get("metrics") or {})})
    return rows


def _local_config(e: CatalogEntry) -> dict[str, Any]:
    """A catalog model's config.json when it is here (embedded or cached) and matches the catalog's
    sha256; {} otherwise (listing never downloads)."""
    from huggingface_hub import try_to_load_from_cache

    path = e.embedded / CONFIG_NAME if e.embedded is not None else None
    if path is None or not path.is_file():
        try:
            hit = try_to_load_from_cache(e.repo, CONFIG_NAME, revision=e.revision)
        except Exception:
            hit = None
        path = Path(hit) if isinstance(hit, str) else None
    if path is None or file_sha256(path) != e.files.get(CONFIG_NAME):
        return {}
    try:
        config = json.loads(path.read_text())
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def _unknown_name(ref: str) -> GanzooError:
    names = sorted(load_catalog())
    close = difflib.get_close_matches(ref, names, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return GanzooError(
        f"unknown model {ref!r}: {hint}use a catalog name (`ganzoo list --pretrained`: {', '.join(names) or 'none yet'}), "
        f"a model folder, a run directory, or a Hub id ORG/NAME[@REVISION]"
    )


# ---- names: local paths, catalog names, Hub ids ------------------------------------------------
#: an explicit Hub reference (huggingface_hub's HfFileSystem writes ``hf://``, timm ``hf-hub:``)
HUB_PREFIXES = ("hf://", "hf-hub:")
_REVISION_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def _check_repo_id(repo: str, label: str) -> None:
    """The Hub's own rules for a repository id (``huggingface_hub.utils.validate_repo_id``), as ORG/NAME."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise GanzooError(f"{label}: {_one_line(exc, 200)}; write a Hub id as ORG/NAME[@REVISION]") from None
    if repo.count("/") != 1:
        raise GanzooError(f"{label}: Hub id {repo!r} needs an organisation or user: write ORG/NAME[@REVISION]")


def _check_revision(revision: str, label: str) -> None:
    """A revision is a branch, a tag or a commit: git's ref-name rules (``git check-ref-format``), so no
    ``..``, no component starting with ``.`` or ending with ``.lock``, no absolute or empty part, no
    ``@{``, no control characters, spaces or ``~^:?*[\\``. ``refs/pr/N`` and 40-hex commits pass. The
    revision becomes part of a path in the Hugging Face cache: this is what keeps it inside."""
    fix = "use a branch, tag or commit of the repository, e.g. main or a 40-hex commit"
    if not isinstance(revision, str) or not revision:
        raise GanzooError(f"{label}: revision {revision!r} is empty; {fix}")
    if len(revision) > 255:
        raise GanzooError(f"{label}: revision of {len(revision)} characters is too long; {fix}")
    parts = revision.split("/")
    if (_REVISION_BAD.search(revision) or "@{" in revision or revision == "@" or revision.endswith(".")
            or any(not part or part.startswith(".") or part.endswith(".lock") for part in parts)
            or ".." in revision):
        raise GanzooError(f"{label}: revision {revision!r} is not a valid git ref name (no '..', empty or "
                          f"hidden parts, absolute paths, spaces or ~^:?*[\\); {fix}")


def _local_path(ref, *, warn: bool = True) -> Path | None:
    """The local folder ``ref`` names, or None when it is a catalog name or a Hub id.

    As with ``huggingface_hub``'s hf:// and timm's ``hf-hub:``, a name is a local path when it looks like
    one: a ``Path`` object, or text starting with ``./ ../ / ~`` (or absolute). A bare name or ORG/NAME
    is local only when it exists, and then: a catalog name always means the catalog's verified model
    (a warning says so and how to load the folder: ``./NAME``), and an existing model folder shaped like
    a Hub id is loaded with a warning saying how to load the Hub repository instead (``hf://ORG/NAME``).
    ``hf://`` / ``hf-hub:`` always mean the Hub."""
    from .io import expand

    if isinstance(ref, os.PathLike):
        return expand(ref, "model")
    text = str(ref)
    if text.startswith(HUB_PREFIXES):
        return None
    p = expand(text, "model")
    if text.startswith((".", "~")) or os.path.isabs(text):
        return p
    if not p.exists():
        return None
    if text in load_catalog():
        if warn:
            _warn(f"{text!r} is both a catalog model and a local path ./{text}: loading the catalog's verified "
                  f"model (write ./{text} to load the local one)")
        return None
    if warn and HUB_ID.match(text) and (p / CONFIG_NAME).is_file():
        _warn(f"{text!r} is a local folder and also names a Hub repository: loading the local folder ./{text} "
              f"(write hf://{text} to load the Hub's)")
    return p


def _warn(message: str) -> None:
    import warnings

    from .errors import GanzooWarning

    warnings.warn(message, GanzooWarning, stacklevel=3)


def _explicit(ref) -> str:
    """``ref`` as text that keeps its meaning: a ``Path`` object stays a local path (``./name``)."""
    if isinstance(ref, os.PathLike):
        text = os.fspath(ref)
        return text if os.path.isabs(text) or text.startswith((".", "~")) else os.path.join(".", text)
    return str(ref)


# ---- where files come from -------------------------------------------------------------------
class _Source:
    """Files of one model, by name: from a folder, the catalog (embedded or downloaded) or the Hub."""

    label: str
    lineage: dict[str, Any]

    def path(self, filename: str, *, required: bool = True) -> Path | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def discard(self, path: Path) -> str:
        """Forget a bad file; returns how the user gets a good one ("" = the default advice)."""
        return ""


class _FolderSource(_Source):
    def __init__(self, folder: Path):
        self.folder = folder
        self.label = str(folder)
        self.lineage = {"base_model": str(folder), "revision": None}

    def path(self, filename: str, *, required: bool = True) -> Path | None:
        p = self.folder / filename
        if p.is_file():
            return p
        if required:
            if filename.endswith(".safetensors"):
                stem = filename[: -len(".safetensors")]
                for q in sorted(self.folder.glob(f"{stem}*")):
                    _refuse_pickle(q, str(self.folder))
            raise GanzooError(
                f"{self.folder}: missing {filename}; a model folder holds {CONFIG_NAME}, {GENERATOR_FILE} and "
                f"{DISCRIMINATOR_FILE}: export it again with `ganzoo export RUN {self.folder}`"
            )
        return None


class _HubSource(_Source):
    """A Hub repository at a revision; with ``sha256`` (a catalog entry) every file is verified,
    and files in ``embedded`` are used before any download."""

    def __init__(self, repo: str, revision: str | None, *, name: str | None = None,
                 sha256: dict[str, str] | None = None, embedded: Path | None = None,
                 cache_dir=None, force_download: bool = False, local_files_only: bool = False, token=None):
        where = name or repo
        _check_repo_id(repo, where)
        if revision is not None:
            _check_revision(revision, where)
        self.repo, self.revision = repo, revision
        self.name = name
        self.sha256 = sha256
        self.embedded = embedded
        self.kw = dict(cache_dir=cache_dir, force_download=force_download,
                       local_files_only=local_files_only, token=token)
        self.label = name or (f"{repo}@{revision}" if revision else repo)
        self.commit: str | None = None
        self.lineage = {"base_model": name or repo, "repo": repo, "revision": revision}

    def discard(self, path: Path) -> str:
        """Remove a corrupt downloaded file from the HF cache (its blob and snapshot link), so a retry downloads it."""
        path = Path(path)
        if self.embedded is not None and path.parent == self.embedded:
            return ""
        try:
            blob = path.resolve()
            if blob != path and blob.is_file():
                blob.unlink()
            path.unlink(missing_ok=True)
        except OSError:
            return f"delete {path} from the Hugging Face cache and load again"
        return "the bad copy was removed from the Hugging Face cache: load again to download it afresh"

    def _verify(self, path: Path, filename: str, where: str) -> None:
        if self.sha256 is None:
            return
        got = file_sha256(path)
        want = self.sha256[filename]
        if got != want:
            hint = ""
            if _is_lfs_pointer(path):
                hint = " (it is a git LFS pointer: run `git lfs pull`)"
            fix = (f"restore the embedded folder from git{hint}, or delete it to download from {self.repo}"
                   if where == "embedded" else
                   f"{self.discard(path)}; if it persists the Hub copy differs from the catalog: "
                   f"fix the entry with `ganzoo catalog add`")
            raise GanzooError(
                f"{self.label}: {filename} ({where}) has sha256 {got[:16]}… but the catalog pins {want[:16]}…; "
                f"the file is corrupt, truncated or changed: {fix}"
            )

    def path(self, filename: str, *, required: bool = True) -> Path | None:
        if self.sha256 is not None and filename not in self.sha256:
            if required:
                raise GanzooError(f"{self.label}: the catalog lists no sha256 for {filename}; rewrite the entry with "
                                  f"`ganzoo catalog add {self.name} FOLDER --repo {self.repo} --revision REV`")
            return None
        if self.embedded is not None and (self.embedded / filename).is_file():
            p = self.embedded / filename
            self._verify(p, filename, "embedded")
            if self.lineage.get("revision") is None:
                self.lineage["revision"] = self.revision
            return p
        try:
            local = hf_hub_download(self.repo, filename, revision=self.revision, library_name="ganzoo",
                                    library_version=_version(), **self.kw)
        except Exception as exc:
            if isinstance(exc, EntryNotFoundError) and not isinstance(exc, LocalEntryNotFoundError) and not required:
                return None
            raise _hub_error(exc, label=self.label, repo=self.repo, revision=self.revision, filename=filename) from None
        p = Path(local)
        self._verify(p, filename, "downloaded")
        commit = p.parent.name
        if re.fullmatch(r"[0-9a-f]{40}", commit):
            self.commit = commit
            self.lineage["revision"] = commit
        return p


def _hub_error(exc: Exception, *, label: str, repo: str, revision: str | None, filename: str) -> GanzooError:
    where = f"{repo}@{revision or 'main'}"
    endpoint = hf_constants.ENDPOINT
    if isinstance(exc, RepositoryNotFoundError):
        return GanzooError(f"{label}: repository {repo!r} not found on the Hub ({endpoint}); check the name, "
                           f"or log in (`hf auth login`) if it is private")
    if isinstance(exc, RevisionNotFoundError):
        return GanzooError(f"{label}: revision {revision!r} not found in {repo}; use an existing branch, tag or commit")
    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled)) or (
        isinstance(exc, ValueError) and "offline" in str(exc).lower()
    ):
        if hf_constants.is_offline_mode():
            return GanzooError(
                f"{label}: {filename} of {where} is not in the Hugging Face cache ({hf_constants.HF_HUB_CACHE}) and "
                f"HF_HUB_OFFLINE=1 forbids downloading it; unset HF_HUB_OFFLINE once to download it"
            )
        return GanzooError(f"{label}: cannot download {filename} of {where} from {endpoint} and it is not cached; "
                           f"check the connection (or HF_ENDPOINT) and retry")
    if isinstance(exc, EntryNotFoundError):
        return GanzooError(f"{label}: {where} has no {filename}; it is not a ganzoo model folder "
                           f"(one holds {CONFIG_NAME}, {GENERATOR_FILE}, {DISCRIMINATOR_FILE})")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return GanzooError(f"{label}: the Hub ({endpoint}) answered HTTP {status} for {filename} of {where}: "
                           f"{_one_line(str(exc).splitlines()[0], 120)}; retry later or check HF_ENDPOINT")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return GanzooError(f"{label}: the download of {filename} from {where} was incomplete (fewer bytes than the "
                           f"Hub announced); the partial file was discarded: retry")
    if isinstance(exc, ValueError):
        return GanzooError(f"{label}: {_one_line(exc, 160)}; write a Hub id as ORG/NAME[@REVISION]")
    return GanzooError(f"{label}: downloading {filename} of {where} failed ({type(exc).__name__}: "
                       f"{_one_line(exc, 160)}); retry, or check HF_ENDPOINT / HF_HUB_OFFLINE")


def _source_for(ref: str, *, revision: str | None = None, **download_kw) -> _Source:
    """A model folder, a catalog name, or a Hub id ``org/name[@revision]``."""
    local = _local_path(ref)
    ref = str(ref)
    _refuse_pickle(ref)
    if local is not None:
        p = local
        if p.is_dir():
            if (p / "run.json").exists() and not (p / CONFIG_NAME).exists():
                raise GanzooError(f"{p} is a run directory, not a model folder; export it first with `ganzoo export {p} FOLDER`")
            if not (p / CONFIG_NAME).exists():
                raise GanzooError(f"{p} is neither a model folder (no {CONFIG_NAME}) nor a run directory (no run.json) "
                                  f"or one of its checkpoints; point at a folder written by `ganzoo export` or "
                                  f"`ganzoo train --out`")
            if revision is not None:
                raise GanzooError(f"{p}: revision={revision!r} is for the Hub, but this is a local folder; drop the "
                                  f"revision, or write hf://ORG/NAME to load from the Hub")
            return _FolderSource(p)
        if p.is_file():
            raise GanzooError(f"{p} is a file; pass the model folder that holds it (with {CONFIG_NAME})")
        raise GanzooError(f"{ref}: no such folder; pass a model folder, a run directory, a catalog name or ORG/NAME")
    if revision is not None:
        _check_revision(revision, ref)
    hub_ref = ref
    for prefix in HUB_PREFIXES:
        if hub_ref.startswith(prefix):
            hub_ref = hub_ref[len(prefix):]
            break
    catalog = load_catalog()
    if hub_ref == ref and ref in catalog:
        e = catalog[ref]
        if revision is not None and revision != e.revision:
            # the pins and the embedded copy are the pinned revision's: another revision comes from the Hub,
            # unverified (HF_HUB_OFFLINE=1: from the cache, or an error saying so)
            _warn(f"{ref}: revision {revision!r} is not the catalog's pinned {e.revision[:12]}, so it is loaded "
                  f"from {e.repo} on the Hub without the catalog's sha256 pins")
            return _HubSource(e.repo, revision, name=f"{ref}@{revision}", **download_kw)
        return _HubSource(e.repo, e.revision, name=ref, sha256=e.files, embedded=e.embedded, **download_kw)
    m = HUB_ID.match(hub_ref)
    if m:
        rev = m.group("rev") and m.group("rev").replace("%2F", "/")
        if rev is not None:
            _check_revision(rev, ref)
        return _HubSource(m.group("repo"), revision or rev, **download_kw)
    if hub_ref != ref or "/" in ref or "@" in ref:
        raise GanzooError(f"{ref}: not a Hub id: write ORG/NAME[@REVISION] (letters, digits, '-', '_', '.'), "
                          f"or ./PATH for a local folder")
    if os.sep in ref:
        raise GanzooError(f"{ref}: no such folder; pass a model folder, a run directory, a catalog name or ORG/NAME")
    raise _unknown_name(ref)


# ---- the model container ---------------------------------------------------------------------
def _version() -> str:
    from . import __version__

    return __version__


def _plugin_of(arch: str) -> dict[str, str]:
    from .plugins import get_registry

    reg = get_registry()
    dist = reg.provider.get(("architecture", arch), "unknown")
    version = next((p.version for p in reg.plugins if p.distribution == dist), "unknown")
    return {"distribution": dist, "version": version}


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


_PIP_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")  # PEP 508 names
_PIP_VERSION = re.compile(r"[0-9][0-9A-Za-z.+!-]{0,40}")


def _check_build_memory(spec, cfg, label: str) -> None:
    """Build the networks on the meta device (no memory) to count their parameters and buffers, and refuse
    a config whose widths would need more memory than is free (a width of 10**6 asks for terabytes)."""
    from .io import check_memory
    from .models import build_from_config

    try:
        with torch.device("meta"):
            G, D = build_from_config(spec, cfg)
    except GanzooError:
        raise
    except Exception:  # an architecture that cannot be built on the meta device: built for real below
        return
    n = sum(t.numel() for net in (G, D) for t in (*net.parameters(), *net.buffers()))
    check_memory(8 * n, f"{label}: the arch_config of {CONFIG_NAME} ({n:,} weights)",
                 "the config.json was edited or is not this model's: export the folder again")


def _build(config: dict[str, Any], label: str, *, trusted: bool = True):
    from .models import build_from_config
    from .plugins import get_registry

    reg = get_registry()
    arch = config["architecture"]
    if arch not in reg.architectures:
        installed = ", ".join(sorted(reg.architectures)) or "none"
        plugin = config.get("plugin") or {}
        dist, ver = plugin.get("distribution"), plugin.get("version")
        if trusted and isinstance(dist, str) and _PIP_NAME.fullmatch(dist) and isinstance(ver, (str, type(None))):
            want = install_spec(dist) if install_spec(dist) != dist else (
                f"{dist}=={ver}" if ver and ver not in ("unknown", "local") and _PIP_VERSION.fullmatch(ver) else dist)
            raise GanzooError(
                f"{label}: architecture {_short(arch)} is not provided by any installed plugin; it comes from {dist}: "
                f"pip install {want} (installed: {installed})"
            )
        # a downloaded config.json is not vouched for by the catalog: never turn its text into a command
        raise GanzooError(
            f"{label}: architecture {_short(arch)} is not installed (installed: {installed}); find the plugin "
            f"that provides it from a source you trust (the model's card, `ganzoo list`, ganzoo's "
            f"docs/writing-a-plugin.md) before installing anything"
        )
    spec = reg.architectures[arch]
    cfg = spec.make_config(**config["arch_config"])
    _check_build_memory(spec, cfg, label)
    try:
        G, D = build_from_config(spec, cfg)
    except GanzooError:
        raise
    except (TypeError, ValueError, RuntimeError, OverflowError, ZeroDivisionError) as exc:
        raise GanzooError(f"{label}: the arch_config of {CONFIG_NAME} does not build a {arch} network "
                          f"({type(exc).__name__}: {_one_line(str(exc).splitlines()[0] if str(exc) else exc, 120)}); "
                          f"the file was edited or is corrupt: export the folder again") from None
    want_shape = config.get("image_shape")
    if want_shape is not None and tuple(want_shape) != tuple(G.image_shape):
        raise GanzooError(f"{label}: {CONFIG_NAME} says image_shape {tuple(want_shape)} but its arch_config builds "
                          f"{tuple(G.image_shape)}; the config.json was edited: restore it")
    return spec, cfg, G, D


def _attach(config: dict[str, Any], *nets) -> None:
    k = int(config.get("num_classes", 0) or 0)
    names = list(config.get("class_names") or [str(i) for i in range(k)])
    for net in nets:
        if net is None:
            continue
        net.class_names = list(names)
        net.model_info = config


class GANModel(ModelHubMixin, library_name="ganzoo", tags=["ganzoo", "gan"],
               pipeline_tag="unconditional-image-generation", repo_url=PROJECT_URL):
    """A generator and discriminator with their ``config.json``, saved and loaded as a model folder.

    ``save_pretrained(folder)`` writes the folder (config, safetensors weights, model card,
    samples); ``from_pretrained(ref)`` takes a folder, a catalog name or a Hub id
    ``org/name[@revision]``; ``push_to_hub(repo_id)`` uploads it (huggingface_hub's mixin).

    >>> model = GANModel.from_pretrained("began_fashion", discriminator=True)   # doctest: +SKIP
    >>> model.save_pretrained("my-model")                                         # doctest: +SKIP
    """

    def __init__(self, G, D=None, config: dict | None = None, training_state: dict | None = None,
                 generator_dtype: str | None = None) -> None:
        self.G, self.D = G, D
        self.config: dict[str, Any] = dict(config or {})
        self.training_state = training_state
        self.generator_dtype = generator_dtype or self.config.get("weights", {}).get("generator", {}).get("dtype", "float32")
        if self.generator_dtype not in _DTYPES:
            raise GanzooError(f"generator dtype {self.generator_dtype!r}: use one of {', '.join(_DTYPES)}")

    # -- saving -------------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        save_directory = Path(save_directory)
        config = dict(self.config)
        config["weights"] = {
            "generator": {"file": GENERATOR_FILE, "dtype": self.generator_dtype},
            "discriminator": {"file": DISCRIMINATOR_FILE, "dtype": "float32"} if self.D is not None else None,
        }
        g_state = _cast_state(self.G.state_dict(), _DTYPES[self.generator_dtype])
        meta = {"format": "pt", "ganzoo_architecture": str(config.get("architecture", ""))}
        with atomic_path(save_directory / GENERATOR_FILE) as tmp:
            save_file(g_state, str(tmp), metadata=meta)
        if self.D is not None:
            with atomic_path(save_directory / DISCRIMINATOR_FILE) as tmp:
                save_file(_cast_state(self.D.state_dict(), torch.float32), str(tmp), metadata=meta)
        if self.training_state is not None:
            tensors, tmeta = encode_training_state(self.training_state)
            with atomic_path(save_directory / TRAINING_STATE_FILE) as tmp:
                save_file(tensors, str(tmp), metadata=tmeta)
            config["training_state"] = TRAINING_STATE_FILE
        # the samples come from the weights as stored (bf16-rounded when so saved)
        G = self.G
        if self.generator_dtype != "float32":
            G = copy.deepcopy(self.G).cpu()
            G.load_state_dict({k: v.to(G.state_dict()[k].dtype) for k, v in g_state.items()})
        labels = torch.arange(SAMPLES_N) % G.num_classes if G.num_classes else None
        save_grid(G.sample(SAMPLES_N, seed=SAMPLES_SEED, labels=labels).cpu(), save_directory / SAMPLES_NAME)
        self.config = config
        self.generate_model_card().save(save_directory / CARD_NAME)
        write_json(save_directory / CONFIG_NAME, config)

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        return model_card(self.config, ref=getattr(self, "card_ref", None))

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, force_download: bool = False, token=None,
                        cache_dir=None, local_files_only: bool = False, revision: str | None = None,
                        **model_kwargs) -> "GANModel":
        """Load a model folder, a catalog name (verified against the catalog) or a Hub id ``org/name[@revision]``.

        Keyword arguments: ``device`` (default CPU; ``"auto"``: CUDA when available),
        ``discriminator`` (default True: also load D), ``training_state`` (default False).
        """
        source = _source_for(str(pretrained_model_name_or_path), revision=revision, cache_dir=cache_dir,
                             force_download=force_download, local_files_only=local_files_only, token=token)
        return cls._from_pretrained(model_id=str(pretrained_model_name_or_path), revision=revision,
                                    cache_dir=cache_dir, force_download=force_download,
                                    local_files_only=local_files_only, token=token, _source=source, **model_kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download, local_files_only, token,
                         config: dict | None = None, device=None, discriminator: bool = True,
                         training_state: bool = False, _source: _Source | None = None, **unused) -> "GANModel":
        source = _source or _source_for(model_id, revision=revision, cache_dir=cache_dir,
                                        force_download=force_download, local_files_only=local_files_only, token=token)
        label = source.label
        cfg_path = source.path(CONFIG_NAME)
        config = _read_config(Path(cfg_path), label)
        weights = config.get("weights") or {}
        for part in ("generator", "discriminator"):
            fname = ((weights.get(part) or {}).get("file")) or ""
            if fname:
                _refuse_pickle(fname, label)
        # a local folder or a catalog model (sha256-pinned) is trusted; a plain Hub download is not
        trusted = not (isinstance(source, _HubSource) and source.sha256 is None)
        spec, arch_cfg, G, D = _build(config, label, trusted=trusted)
        from .models import load_state_strict

        g_path = source.path(GENERATOR_FILE)
        load_state_strict(G, _read_safetensors(g_path, label, source), where=f"{label}: {GENERATOR_FILE}")
        if discriminator:
            d_path = source.path(DISCRIMINATOR_FILE)
            load_state_strict(D, _read_safetensors(d_path, label, source), where=f"{label}: {DISCRIMINATOR_FILE}")
        else:
            D = None
        state = None
        if training_state:
            ts = source.path(TRAINING_STATE_FILE, required=False)
            if ts is not None:
                state = decode_training_state(ts, label)
        dev = _resolve_device(device)
        for net in (G, D):
            if net is not None:
                net.to(dev).eval()
        _attach(config, G, D)
        model = cls(G, D, config=config, training_state=state)
        model.source = source
        model.lineage = dict(source.lineage)
        return model

    @property
    def arch_name(self) -> str:
        return self.config.get("architecture", "")

    def to(self, device) -> "GANModel":
        for net in (self.G, self.D):
            if net is not None:
                net.to(device)
        return self


# ---- model cards --------------------------------------------------------------------------------
CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ description }}

![64 samples at seed {{ seed }}](samples.png)

A **{{ architecture }}** generative adversarial network from the `{{ distribution }}` plugin of
[ganzoo]({{ repo_url }}): {{ image }} images{% if classes %}, conditional on {{ num_classes }} classes
({{ classes }}){% endif %}, latent size {{ latent_dim }}, output range {{ pixel_range }}.

## How to load

```bash
{{ install }}
ganzoo sample {{ ref }} -n 64 --seed {{ seed }}{{ label_arg }} -o grid.png    # the grid above
```

```python
import ganzoo{% if label_kw %}
import torch{% endif %}

G = ganzoo.load("{{ ref }}")              # the generator, in eval mode
images = G.sample(64, seed={{ seed }}{{ label_kw }})   # the grid above: float32 in [-1, 1], shape (64, {{ image_shape }})
G, D = ganzoo.load("{{ ref }}", discriminator=True)
```

The weights are safetensors (`generator.safetensors` in {{ g_dtype }}, `discriminator.safetensors`);
`config.json` holds every constructor argument, the training recipe and the lineage.

## Training

| | |
|---|---|
{% for k, v in recipe %}| {{ k }} | {{ v }} |
{% endfor %}
{% if curves %}
![learning curves]({{ curves.plot }})

The logged scalars (means over each logging interval) are in `{{ curves.log }}`.
{% endif %}
{% if lineage %}
## Lineage

Fine-tuned from `{{ lineage.base_model }}`{% if lineage.revision %} at revision `{{ lineage.revision }}`{% endif %}.
{% endif %}
{% if metrics %}
## Metrics

| metric | value |
|---|---|
{% for k, v in metrics %}| {{ k }} | {{ v }} |
{% endfor %}
{% endif %}
## Data

{{ data_attribution }}

Data license: {{ data_license }}. These weights were trained on that data; their use is subject to its terms.
"""


def portable_paths(text: str, start: str | os.PathLike | None = None) -> str:
    """``text`` with every absolute path (``/a/b``, ``KIND:/a/b``, ``--opt=/a/b``) made relative to
    ``start`` (default: the working directory), so that a card shows no machine's directories."""
    base = os.path.abspath(start or os.getcwd())

    def rel(path: str) -> str:
        try:
            return Path(os.path.relpath(path, base)).as_posix()
        except ValueError:  # another drive (Windows)
            return Path(path).name

    def fix(token: str) -> str:
        m = re.match(r"^((?:--[\w-]+=)?(?:[A-Za-z][\w-]*:(?!//))?)(/.*)$", token)
        return m.group(1) + rel(m.group(2)) if m else token

    return " ".join(fix(t) for t in text.split(" "))


def model_card(config: dict[str, Any], ref: str | None = None) -> ModelCard:
    """The README.md of a model folder, from its config.json (huggingface_hub ModelCard).

    ``ref``: how the card's commands name the model (default: ``hub_id``, else the name)."""
    data = config.get("data") or {}
    lineage = config.get("lineage") or None
    training = config.get("training") or {}
    metrics = config.get("metrics") or {}
    tags = ["ganzoo", "gan", "pytorch", "unconditional-image-generation" if not config.get("num_classes")
            else "class-conditional-image-generation", str(config.get("architecture", ""))]
    base = None
    if lineage and lineage.get("repo"):
        base = lineage["repo"]
    license = config.get("license") or "other"
    license_info = {}
    if license == "other":  # the Hub asks for a name and a link with an "other" license
        known = KNOWN_DATA.get(data.get("kind") or "", {})
        link = config.get("license_link") or known.get("license_link")
        license_info = {"license_name": config.get("license_name") or known.get("license_name") or "other",
                        **({"license_link": link} if link else {})}
    card_data = ModelCardData(
        license=license,
        **license_info,
        library_name="ganzoo",
        tags=[t for t in tags if t],
        datasets=list(config.get("datasets") or []) or None,
        pipeline_tag="unconditional-image-generation",
        metrics=sorted(metrics) or None,
        base_model=base,
    )
    plugin = config.get("plugin") or {}
    names = config.get("class_names") or []
    recipe_keys = [("command", "command"), ("steps", "steps"), ("epochs", "epochs"), ("wall time (s)", "wall_time_s"),
                   ("hardware", "hardware"), ("data", "data"), ("dataset", "dataset"), ("objective", "objective"),
                   ("batch size", "batch_size"), ("lr G / D", None), ("lr schedule", "lr_schedule"),
                   ("betas", "betas"), ("seed", "seed"),
                   ("augmentation", "augmentation"),
                   ("generator weights", "generator_weights"), ("changed at --resume", "changed_at_resume"),
                   ("torch", "torch"), ("ganzoo", "ganzoo_version")]
    recipe = []
    for label, key in recipe_keys:
        if key is None:
            if "lr_g" in training:
                recipe.append((label, f"{training.get('lr_g')} / {training.get('lr_d')}"))
            continue
        if training.get(key) not in (None, ""):
            v = training[key]
            if key in ("command", "data", "dataset"):  # no machine paths in a published card
                v = portable_paths(str(v))
            recipe.append((label, f"`{v}`" if key == "command" else str(v).replace("|", "\\|")))
    shape = config.get("image_shape") or []
    name = config.get("name") or config.get("architecture", "model")
    return ModelCard.from_template(
        card_data,
        template_str=CARD_TEMPLATE,
        title=name,
        description=config.get("description") or f"A {config.get('architecture')} GAN trained with ganzoo.",
        seed=SAMPLES_SEED,
        label_arg=(" --label " + ",".join(str(i) for i in range(int(config.get("num_classes") or 0)))
                   if config.get("num_classes") else ""),
        label_kw=(f", labels=torch.arange(64) % {config.get('num_classes')}" if config.get("num_classes") else ""),
        architecture=config.get("architecture"),
        distribution=plugin.get("distribution", "ganzoo"),
        install=install_line(plugin.get("distribution")),
        repo_url=PROJECT_URL,
        image="x".join(map(str, shape)),
        image_shape=", ".join(map(str, shape)),
        classes=", ".join(map(str, names)),
        num_classes=config.get("num_classes", 0),
        latent_dim=config.get("latent_dim"),
        pixel_range=str(list(config.get("pixel_range") or [-1, 1])),
        ref=config.get("hub_id") or ref or name,
        g_dtype=((config.get("weights") or {}).get("generator") or {}).get("dtype", "float32"),
        recipe=recipe,
        curves=config.get("curves"),
        lineage=lineage,
        metrics=sorted(metrics.items()),
        data_attribution=data.get("attribution") or "The data's source and attribution were not recorded.",
        data_license=data.get("license") or "not recorded",
    )


# ---- training state (optimizer + objective) without pickle -------------------------------------
def encode_training_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``{"opt_g": ..., "opt_d": ..., "objective": {...}}`` → (tensors, metadata) for safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {"format": "ganzoo-training-state-1"}
    for opt in ("opt_g", "opt_d"):
        sd = state.get(opt)
        if not sd:
            continue
        scalars: dict[str, dict[str, Any]] = {}
        for idx, pstate in sd["state"].items():
            for key, val in pstate.items():
                if isinstance(val, torch.Tensor):
                    tensors[f"{opt}/{idx}/{key}"] = val.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(idx), {})[key] = val
        meta[f"{opt}.param_groups"] = json.dumps(sd["param_groups"])
        meta[f"{opt}.scalars"] = json.dumps(scalars)
    for key, val in (state.get("objective") or {}).items():
        tensors[f"objective/{key}"] = torch.as_tensor(val).detach().cpu().contiguous()
    if "step" in state:
        meta["step"] = str(int(state["step"]))
    return tensors, meta


def decode_training_state(path: Path, label: str = "") -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise GanzooError(f"{label}: {path.name} is not a readable safetensors file ({_one_line(exc, 100)}); "
                          f"delete it to fine-tune without optimizer state") from None
    out: dict[str, Any] = {"objective": {}}
    for opt in ("opt_g", "opt_d"):
        if f"{opt}.param_groups" not in meta:
            continue
        groups = json.loads(meta[f"{opt}.param_groups"])
        for g in groups:
            if "betas" in g:
                g["betas"] = tuple(g["betas"])
        pstate: dict[int, dict[str, Any]] = {}
        for idx, scal in json.loads(meta.get(f"{opt}.scalars", "{}")).items():
            pstate.setdefault(int(idx), {}).update(scal)
        out[opt] = {"state": pstate, "param_groups": groups}
    for key, val in tensors.items():
        head, _, rest = key.partition("/")
        if head == "objective":
            out["objective"][rest] = val
        elif head in out:
            idx, _, name = rest.partition("/")
            out[head]["state"].setdefault(int(idx), {})[name] = val
    for opt in ("opt_g", "opt_d"):
        if opt in out:
            out[opt]["state"] = dict(sorted(out[opt]["state"].items()))
    if "step" in meta:
        out["step"] = int(meta["step"])
    return out


# ---- runs ---------------------------------------------------------------------------------------
def _is_run(path: Path) -> bool:
    return path.is_dir() and (path / "run.json").exists()


def _run_ref(path: Path) -> tuple[Path, Path | None] | None:
    """``(run, checkpoint)`` when ``path`` is a run directory (checkpoint None: its latest) or one
    of its checkpoints (``RUN/checkpoints/step-N``); None for anything else."""
    if _is_run(path) and not (path / CONFIG_NAME).exists():
        return path, None
    if (path / "trainer_state.pt").is_file() and path.parent.name == "checkpoints" and _is_run(path.parent.parent):
        return path.parent.parent, path
    return None


def _run_seconds(run: Path, step: int) -> float | None:
    log = run / "log.jsonl"
    if not log.exists():
        return None
    seconds = None
    for line in log.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("step", 0) <= step and "seconds" in rec:
            seconds = rec["seconds"]
    return seconds


def _data_info(data_spec: str, *, license: str | None = None, datasets: Iterable[str] | None = None,
               data_license: str | None = None, data_attribution: str | None = None) -> dict[str, Any]:
    kind = data_spec.split(":", 1)[0] if ":" in (data_spec or "") else ""
    known = KNOWN_DATA.get(kind, {})
    data_license = data_license or known.get("license")
    return {
        "kind": kind,
        "datasets": list(datasets) if datasets else list(known.get("datasets", [])),
        "license": data_license,
        "attribution": data_attribution or known.get("attribution")
        or f"Trained on {data_spec!r}; its source and license were not recorded (pass --data-license and --data-attribution).",
        "weights_license": license or data_license or "other",  # default: the data's, as the help says
    }


def _run_class_names(meta: dict, cfg, arch_cfg) -> list[str]:
    k = int(getattr(arch_cfg, "num_classes", 0) or 0)
    if not k:
        return []
    names = meta.get("class_names") or (meta.get("resolved") or {}).get("class_names")
    if names and len(names) == k:
        return list(map(str, names))
    try:  # the dataset loader caches decoded images, so this is cheap after training
        from .data import load_dataset

        ds = load_dataset(cfg.data, image_size=arch_cfg.image_size, channels=arch_cfg.channels, label=cfg.data_label)
        if len(ds.class_names) == k:
            return list(map(str, ds.class_names))
    except Exception:
        pass
    return [str(i) for i in range(k)]


def _load_run(run: Path, *, device=None, discriminator: bool = False, class_names: list[str] | None = None,
              load_class_names: bool = False, training_state: bool = False, weights: str = "auto",
              checkpoint: Path | None = None) -> GANModel:
    """A run's checkpoint (default: its latest) as a model. ``weights``: "auto" (the moving
    average of G when the run keeps one, else the trained weights), "ema" or "trained"."""
    from .models import build_from_config, load_state_strict
    from .plugins import get_registry
    from .trainer import EMA_FILE, checkpoint_step, latest_checkpoint, load_run

    cfg = load_run(run)
    meta = json.loads((run / "run.json").read_text())
    reg = get_registry()
    if cfg.arch not in reg.architectures:
        reg.architecture(cfg.arch)  # raises the registry's one-line error naming the known ones
    spec = reg.architectures[cfg.arch]
    arch_cfg = spec.make_config(**cfg.arch_config)
    G, D = build_from_config(spec, arch_cfg)
    ckpt = checkpoint or latest_checkpoint(run)
    if ckpt is None:
        raise GanzooError(f"{run} has no complete checkpoint yet; let `ganzoo train` reach its first checkpoint "
                          f"(--checkpoint-every) or finish")
    # a run that keeps a moving average of G (--ema) is sampled and exported through it, unless asked not to
    if weights not in ("auto", "ema", "trained"):
        raise GanzooError(f"generator weights {weights!r}: use auto, ema or trained")
    has_ema = bool(cfg.ema) and (ckpt / EMA_FILE).exists()
    if weights == "ema" and not has_ema:
        raise GanzooError(f"{ckpt} has no moving average of G (the run was not trained with --ema); "
                          f"export the trained weights (drop --generator-weights ema)")
    g_file = ckpt / EMA_FILE if has_ema and weights != "trained" else ckpt / GENERATOR_FILE
    run_json = str(Path(run) / "run.json")  # the file that chose the architecture, for a mismatch's fix
    load_state_strict(G, _read_safetensors(g_file, str(run)), where=str(g_file), config=run_json)
    if discriminator:
        load_state_strict(D, _read_safetensors(ckpt / DISCRIMINATOR_FILE, str(run)), where=f"{ckpt / DISCRIMINATOR_FILE}",
                          config=run_json)
    else:
        D = None
    step = checkpoint_step(ckpt)
    resolved = meta.get("resolved") or {}
    if class_names is None:
        if load_class_names:
            class_names = _run_class_names(meta, cfg, arch_cfg)
        else:
            k = arch_cfg.num_classes
            names = meta.get("class_names") or resolved.get("class_names")
            class_names = list(names) if names and len(names) == k else [str(i) for i in range(k)]
    spe = resolved.get("steps_per_epoch") or 0
    config = {
        "ganzoo_format": FORMAT,
        "library_name": "ganzoo",
        "ganzoo_version": _version(),
        "name": run.name,
        "description": "",
        "architecture": spec.name,
        "plugin": _plugin_of(spec.name),
        "arch_config": arch_cfg.to_dict(),
        "image_shape": list(G.image_shape),
        "latent_dim": G.latent_dim,
        "num_classes": G.num_classes,
        "class_names": list(class_names),
        "pixel_range": list(G.pixel_range),
        "training": {
            "command": meta.get("command"),
            "ganzoo_version": meta.get("ganzoo_version"),
            "data": cfg.data,
            "data_label": cfg.data_label,
            "dataset": resolved.get("dataset"),
            "steps": step,
            "epochs": round(step / spe, 3) if spe else None,
            "wall_time_s": _run_seconds(run, step),
            "hardware": resolved.get("hardware"),
            "torch": resolved.get("torch"),
            "objective": resolved.get("objective"),
            "objective_config": resolved.get("objective_config"),
            "batch_size": resolved.get("batch_size"),
            "lr_g": resolved.get("lr_g"),
            "lr_d": resolved.get("lr_d"),
            "betas": resolved.get("betas"),
            "seed": cfg.seed,
            "bf16": cfg.bf16,
            "flip": cfg.flip,
            "diffaugment": cfg.diffaugment,
            "augmentation": "; ".join(a for a in (
                "random horizontal flips of real images" if cfg.flip else "",
                f"DiffAugment {cfg.diffaugment} on every image D sees (Zhao et al. 2020)" if cfg.diffaugment else "",
            ) if a) or None,
            "freeze": list(cfg.freeze),
            "lr_schedule": f"{cfg.lr_decay} decay to 0 at the last step, from step {cfg.lr_decay_start}"
            if cfg.lr_decay else None,
            "checkpoint": ckpt.name,
            "generator_weights": f"exponential moving average, decay {cfg.ema}" if g_file.name == EMA_FILE
            else "the trained weights",
            "changed_at_resume": ", ".join(
                f"{k} {v} from step {c.get('at_step', '?')}" for c in meta.get("resume_changes") or []
                for k, v in c.items() if k != "at_step") or None,
        },
        "lineage": cfg.base_model or None,
        "metrics": dict(meta.get("metrics") or {}),
    }
    state = None
    if training_state:
        try:
            raw = torch.load(ckpt / "trainer_state.pt", map_location="cpu", weights_only=True)
        except Exception as exc:  # weights_only refuses anything but tensors and plain containers
            raise GanzooError(f"{ckpt / 'trainer_state.pt'}: not loadable as plain tensors "
                              f"({type(exc).__name__}: {_one_line(str(exc).splitlines()[0] if str(exc) else exc, 100)}); "
                              f"ganzoo never unpickles code: export without --training-state, or use an earlier "
                              f"checkpoint") from None
        if not isinstance(raw, dict) or not all(k in raw for k in ("opt_g", "opt_d")):
            raise GanzooError(f"{ckpt / 'trainer_state.pt'}: not a ganzoo training state (no optimizer states); "
                              f"export without --training-state, or use an earlier checkpoint")
        state = {"opt_g": raw["opt_g"], "opt_d": raw["opt_d"], "objective": raw.get("objective", {}),
                 "step": raw.get("step", step)}
    dev = _resolve_device(device)
    for net in (G, D):
        if net is not None:
            net.to(dev).eval()
    _attach(config, G, D)
    model = GANModel(G, D, config=config, training_state=state)
    model.source = None
    model.lineage = {"base_model": str(run), "revision": ckpt.name}
    return model


# ---- the public API -----------------------------------------------------------------------------
def load(ref: str | os.PathLike, *, device=None, discriminator: bool = False, revision: str | None = None,
         generator_weights: str = "auto"):
    """Load a released model: the Generator in eval mode, or ``(G, D)`` with ``discriminator=True``.

    ``ref`` is a catalog name (``ganzoo list --pretrained``), a model folder, a ganzoo run
    directory (its latest checkpoint) or one of its checkpoints (``RUN/checkpoints/step-00013000``),
    or a Hub id ``org/name[@revision]``. ``generator_weights`` (runs trained with ``--ema``):
    "auto" (the moving average), "ema" or "trained". ``device``: None
    (CPU), ``"auto"`` (CUDA when available) or any torch device. The modules carry
    ``.class_names``, ``.arch_name``, ``.gan_config`` and ``.model_info`` (the config.json).

    >>> G = ganzoo.load("began_fashion")                 # doctest: +SKIP
    >>> grid = G.sample(64, seed=0)                       # doctest: +SKIP
    """
    local = _local_path(ref, warn=False)
    run = _run_ref(local) if local is not None else None
    if run:
        if revision is not None:
            raise GanzooError(f"{ref}: revision={revision!r} is for the Hub, but this is a local run directory; "
                              f"drop the revision")
        model = _load_run(run[0], checkpoint=run[1], device=device, discriminator=discriminator,
                          weights=generator_weights)
    else:
        _one_generator(ref, generator_weights)
        model = GANModel.from_pretrained(_explicit(ref), revision=revision, device=device,
                                         discriminator=discriminator)
    return (model.G, model.D) if discriminator else model.G


def module_config(G, D=None, *, name: str | None = None, description: str | None = None) -> dict[str, Any]:
    """The config.json of a model folder holding ``G`` (and ``D``): a loaded model's own config
    (its recipe, lineage and data), or, for one built by :func:`ganzoo.create`, its architecture,
    plugin and config."""
    info = getattr(G, "model_info", None)
    cfg = getattr(G, "gan_config", None)
    arch = getattr(G, "arch_name", None)
    if info:
        config = copy.deepcopy(dict(info))
    elif cfg is not None and arch:
        k = int(G.num_classes)
        config = {
            "ganzoo_format": FORMAT, "library_name": "ganzoo", "ganzoo_version": _version(),
            "name": "", "description": "", "architecture": arch, "plugin": _plugin_of(arch),
            "arch_config": cfg.to_dict(), "image_shape": list(G.image_shape), "latent_dim": G.latent_dim,
            "num_classes": k, "class_names": list(getattr(G, "class_names", None) or [str(i) for i in range(k)]),
            "pixel_range": list(G.pixel_range), "training": {}, "lineage": None, "metrics": {},
        }
    else:
        raise GanzooError(f"save_pretrained: this {type(G).__name__} does not know its architecture (build it with "
                          f"ganzoo.create / ganzoo.create_model or load it with ganzoo.load)")
    if D is not None and getattr(D, "arch_name", arch) != config["architecture"]:
        raise GanzooError(f"save_pretrained: the discriminator is a {D.arch_name!r}, the generator a "
                          f"{config['architecture']!r}; pass the discriminator built with this generator")
    if name is not None:
        config["name"] = name
    if description is not None:
        config["description"] = description
    config.pop("weights", None)
    config.pop("training_state", None)
    config.pop("curves", None)  # the loss curves stay with the run they came from
    return config


def save_modules(G, folder: str | os.PathLike, *, discriminator=None, name: str | None = None,
                 description: str | None = None) -> Path:
    """``G.save_pretrained(folder)``: write ``G`` (and ``discriminator``) as a model folder."""
    folder = Path(folder)
    config = module_config(G, discriminator, name=name, description=description)
    config["name"] = config.get("name") or folder.name
    model = GANModel(G, discriminator, config=config)
    model.save_pretrained(folder)
    return folder


def _one_generator(ref, weights: str) -> None:
    from .io import expand

    if weights != "auto":
        if not expand(str(ref), "model").exists() and (Path(str(ref)).is_absolute() or str(ref).startswith(".")):
            raise GanzooError(f"{ref}: no such run directory or checkpoint; check the path (`ls RUN/checkpoints`)")
        raise GanzooError(f"{ref}: choosing the generator weights (--generator-weights) needs a run directory "
                          f"or one of its checkpoints (a model folder holds one generator)")


def _load_any(ref, *, discriminator=True, training_state=False, class_names=None, weights="auto") -> GANModel:
    local = _local_path(ref, warn=False)
    run = _run_ref(local) if local is not None else None
    if run:
        return _load_run(run[0], checkpoint=run[1], discriminator=discriminator, training_state=training_state,
                         class_names=class_names, load_class_names=True, weights=weights)
    _one_generator(ref, weights)
    model = GANModel.from_pretrained(_explicit(ref), discriminator=discriminator, training_state=training_state)
    if class_names is not None:
        model.config["class_names"] = list(class_names)
    return model


def export_model(ref: str | os.PathLike, out: str | os.PathLike, *, name: str | None = None,
                 description: str | None = None, license: str | None = None, datasets: Iterable[str] | None = None,
                 data_license: str | None = None, data_attribution: str | None = None,
                 metrics: dict[str, float] | None = None, class_names: list[str] | None = None,
                 generator_dtype: str = "float32", training_state: bool = False, hub_id: str | None = None,
                 overwrite: bool = False, generator_weights: str = "auto") -> Path:
    """Write a model folder (config.json, weights, README.md, samples.png) from a run directory
    (its latest checkpoint) or any loadable model. ``generator_dtype="bfloat16"`` halves the
    generator file; ``training_state=True`` adds the optimizer/objective state for fine-tuning;
    ``generator_weights`` ("auto", "ema", "trained") picks a run's moving average of G or its
    trained weights (auto: the average when the run keeps one)."""
    from .io import check_output_folder

    out = Path(out)
    _check_export_target(ref, out, overwrite)
    check_output_folder(out, what="output folder")
    for key, value in (metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise GanzooError(f"--metric {key}={value!r}: a metric in the card must be a finite number "
                              f"(JSON has no NaN/inf); give the measured value, e.g. {key}=23.1")
    if generator_dtype not in _DTYPES:
        raise GanzooError(f"generator dtype {generator_dtype!r}: use one of {', '.join(_DTYPES)}")
    model = _load_any(ref, discriminator=True, training_state=training_state, class_names=class_names,
                      weights=generator_weights)
    if training_state and model.training_state is None:
        raise GanzooError(f"{ref}: has no training state to export; drop --training-state")
    config = model.config
    training = config.get("training") or {}
    data_spec = training.get("data") or ""
    prev = config.get("data") or {}
    info = _data_info(data_spec, license=license or config.get("license"),
                      datasets=datasets or config.get("datasets"),
                      data_license=data_license or prev.get("license"),
                      data_attribution=data_attribution or prev.get("attribution"))
    local = _local_path(ref, warn=False)
    run = _run_ref(local) if local is not None else None
    # a run's export is named after its folder (the run's own name is a working title)
    config["name"] = name or (out.name if run else config.get("name") or out.name)
    if description is not None:
        config["description"] = description
    config["license"] = info.pop("weights_license")
    config["datasets"] = info.pop("datasets")
    config["data"] = info
    if metrics:
        config["metrics"] = {**(config.get("metrics") or {}), **metrics}
    if hub_id:
        config["hub_id"] = hub_id
    config.pop("weights", None)
    config.pop("training_state", None)
    run_log = run[0] / "log.jsonl" if run else None
    curves = bool(run_log and run_log.is_file())
    if curves:
        config["curves"] = {"plot": CURVES_NAME, "log": TRAINING_LOG_NAME}
    else:
        config.pop("curves", None)
    model.config = config
    model.card_ref = _card_ref(config, out)
    model.generator_dtype = generator_dtype
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:  # write beside, then move in: a crash never leaves a half-written model folder
        if curves:  # the run's curves up to the exported checkpoint (a run may have gone on)
            _export_curves(run_log, tmp, int(training.get("steps") or 0), title=f"{config['name']}: "
                           f"{config.get('architecture')} on {data_spec}")
        model.save_pretrained(tmp)
        out.mkdir(parents=True, exist_ok=True)
        # --overwrite replaces the files an export writes and nothing else: a file of the folder that
        # the export did not write is kept, except one of the export's own names left by an earlier
        # export of this model folder (e.g. training_state.safetensors, now dropped), which would
        # otherwise be read with the new weights
        stale = [out / n for n in EXPORT_FILES if not (tmp / n).exists() and (out / n).is_file()] \
            if _is_model_folder(out) else []
        for f in sorted(tmp.iterdir(), key=lambda f: f.name == CONFIG_NAME):  # config.json last
            os.replace(f, out / f.name)
        for old in stale:
            old.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _card_ref(config: dict[str, Any], out: Path) -> str:
    """How the card's commands name an exported model: its Hub id, its catalog name, else the
    folder's path as typed (relative; `ganzoo sample NAME` only finds catalog names)."""
    if config.get("hub_id"):
        return config["hub_id"]
    try:
        if config.get("name") in load_catalog():
            return config["name"]
    except GanzooError:
        pass
    path = portable_paths(str(out))
    return path if ("/" in path or path.startswith(".")) else f"./{path}"


def _space_requirements(config: dict[str, Any]) -> str:
    """requirements.txt of a Space: ganzoo with Gradio, and the model's plugin. First-party
    distributions come from the project's repository (plugins/NAME), since neither is on PyPI
    under its name; a third-party plugin by its distribution name."""
    dist = (config.get("plugin") or {}).get("distribution") or ""
    repo = f"git+{PROJECT_URL}.git"
    lines = ["# ganzoo (with the demo's Gradio) and the model's plugin, for `python app.py`",
             f"ganzoo[demo] @ {repo}"]
    if dist and dist != "ganzoo":
        first_party = (Path(__file__).resolve().parents[1] / "plugins" / dist / "pyproject.toml").is_file()
        lines.append(f"{dist} @ {repo}#subdirectory=plugins/{dist}" if first_party else dist)
    return "\n".join(lines) + "\n"


def write_space(folder: str | os.PathLike) -> Path:
    """Make a model folder a Hugging Face Space (Gradio SDK): ``app.py`` serving ganzoo's demo of the
    folder, ``requirements.txt``, and ``sdk: gradio`` / ``app_file: app.py`` in the card's metadata.
    ``python FOLDER/app.py`` runs the same page locally."""
    from importlib import metadata

    from .demo import space_files

    folder = Path(folder)
    config = _folder_config(folder)
    for name, text in space_files(config, install=_space_requirements(config)).items():
        with atomic_path(folder / name) as tmp:
            tmp.write_text(text)
    card_path = folder / CARD_NAME
    card = ModelCard.load(card_path) if card_path.is_file() else model_card(config)
    card.data.sdk = "gradio"
    try:
        card.data.sdk_version = metadata.version("gradio")
    except metadata.PackageNotFoundError:
        pass
    card.data.app_file = "app.py"
    with atomic_path(card_path) as tmp:
        card.save(tmp)
    return folder


#: every file ``export_model`` may write into a model folder
EXPORT_FILES = (CONFIG_NAME, GENERATOR_FILE, DISCRIMINATOR_FILE, TRAINING_STATE_FILE, CARD_NAME, SAMPLES_NAME,
                CURVES_NAME, TRAINING_LOG_NAME)


def _is_model_folder(folder: Path) -> bool:
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(config, dict) and isinstance(config.get("architecture"), str) \
        and isinstance(config.get("arch_config"), dict)


def _check_export_target(ref, out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that would destroy its own source or that cannot be a folder."""
    if out.exists() and not out.is_dir():
        raise GanzooError(f"{out} is a file, not a folder; choose a folder name for the model folder")
    src = _local_path(ref, warn=False)
    if src is not None and src.is_dir():
        run = _run_ref(src)
        source = run[0] if run else src
        o, s = out.expanduser().resolve(), source.resolve()
        if o == s or s in o.parents:
            what = "run directory" if run else "model folder"
            raise GanzooError(f"{out} is inside the {what} {source} being exported (writing there would replace "
                              f"its own files); choose a folder outside it, e.g. models/{source.name}")
    if out.is_dir() and not overwrite:
        try:
            empty = not any(out.iterdir())
        except OSError as exc:
            raise GanzooError(f"{out}: cannot read the folder ({exc.strerror}); choose another folder") from None
        if not empty:
            raise GanzooError(f"{out} already exists and is not empty; choose another folder or pass --overwrite "
                              f"(which replaces only the files an export writes)")


def _export_curves(log: Path, folder: Path, last_step: int, *, title: str) -> None:
    from .plots import plot_log, read_log

    rows = [r for r in read_log(log) if not last_step or int(r.get("step", 0)) <= last_step]
    with atomic_path(folder / TRAINING_LOG_NAME) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plot_log(folder / TRAINING_LOG_NAME, folder / CURVES_NAME, title=title)


def _is_connection_error(exc: BaseException) -> bool:
    """A failure to reach the server: OSError (sockets, DNS) or the HTTP client's transport errors
    (httpx's ``ConnectError``/``TimeoutException``, requests' ``ConnectionError``), which are not OSErrors."""
    if isinstance(exc, OSError):
        return True
    module = type(exc).__module__.split(".")[0]
    return module.startswith(("httpx", "httpcore", "requests", "urllib3")) and not isinstance(exc, HfHubHTTPError)


def push(ref: str | os.PathLike, repo: str, *, private: bool | None = None, branch: str | None = None,
         token: str | None = None, commit_message: str | None = None, **export_kwargs) -> dict[str, str]:
    """Publish a run or a model folder to the Hub repository ``repo`` (``create_repo`` + ``upload_folder``).

    A run is exported first (``export_kwargs`` as for :func:`export_model`); a model folder is
    checked (it must load) and uploaded as it is. Returns ``{"repo", "revision", "url"}``.
    """
    from huggingface_hub import HfApi

    if not HUB_ID.match(repo) or "@" in repo:
        raise GanzooError(f"--repo {repo!r}: write the Hub repository as ORG/NAME")
    if hf_constants.is_offline_mode():
        raise GanzooError("HF_HUB_OFFLINE=1 is set, so nothing can be pushed; unset HF_HUB_OFFLINE and retry")
    if token is None:  # before exporting anything: without a token the upload cannot succeed
        from huggingface_hub import get_token

        if get_token() is None:
            raise GanzooError(f"push to {repo}: no Hub token; log in with `hf auth login` (a write token), "
                              f"set HF_TOKEN, or pass --token")
    p = Path(str(ref)).expanduser()
    with tempfile.TemporaryDirectory(prefix="ganzoo-push-") as tmp:
        if p.is_dir() and (p / CONFIG_NAME).exists() and not export_kwargs:
            # refuse to publish a folder that does not load (G.save_pretrained may leave out D)
            GANModel.from_pretrained(str(p), discriminator=(p / DISCRIMINATOR_FILE).is_file())
            folder = p
        else:
            # exported under the repository's name, as a run's export is named after its folder
            folder = export_model(ref, Path(tmp) / repo.split("/")[-1], hub_id=repo, **export_kwargs)
        for f in folder.iterdir():
            _refuse_pickle(f, str(folder))
        api = HfApi(token=token)
        try:
            api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
            if branch:
                api.create_branch(repo, branch=branch, exist_ok=True, repo_type="model")
            info = api.upload_folder(repo_id=repo, folder_path=str(folder), repo_type="model", revision=branch,
                                     commit_message=commit_message or f"ganzoo {_version()}: upload {folder.name}",
                                     ignore_patterns=[".*", "**/.*"])
        except HfHubHTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", "?")
            raise GanzooError(f"push to {repo} failed: HTTP {status}: {_one_line(str(exc).splitlines()[0], 120)}; "
                              f"log in with `hf auth login` (a write token) or pass --token") from None
        except ValueError as exc:
            raise GanzooError(f"push to {repo} failed ({type(exc).__name__}: {_one_line(exc, 160)}); "
                              f"check the repository name and HF_ENDPOINT") from None
        except Exception as exc:
            if not _is_connection_error(exc):
                raise
            raise GanzooError(f"push to {repo} failed: cannot reach the Hub at {hf_constants.ENDPOINT} "
                              f"({type(exc).__name__}: {_one_line(exc, 120)}); check the network, or point "
                              f"HF_ENDPOINT at a Hub you can reach") from None
    return {"repo": repo, "revision": info.oid, "url": str(info.commit_url)}


def finetune(ref: str | os.PathLike, *, data: str, out: str | os.PathLike, steps: int | None = None,
             epochs: float | None = None, freeze: Iterable[str] = (), label: str | None = None,
             progress: bool = True, command: str | None = None, optimizer_state: bool = True, restart: bool = False,
             **train_options):
    """Continue training a released model (or a run) on new data; returns the :class:`~ganzoo.trainer.Trainer`.

    G and D start from ``ref``'s weights; the optimizer and objective state too when the
    model has them (a run's last checkpoint, or a folder's ``training_state.safetensors``),
    except for a network with parts frozen by ``freeze`` (its parameter list changes).
    ``train_options`` are :class:`~ganzoo.trainer.TrainConfig` fields (``lr_g``, ``batch_size``,
    ``device``, ...). The run records ``base_model`` (and so will its exported model folder:
    ``config.json`` ``lineage``). ``restart=True`` starts over a run already in ``out``,
    keeping nothing of it.

    >>> ganzoo.finetune("began_fashion", data="folder:shoes", steps=500, out="runs/shoes",
    ...                 freeze=["encoder"])             # doctest: +SKIP
    """
    from .data import load_dataset
    from .trainer import TrainConfig, train

    out = Path(out)
    if (out / "run.json").exists() and not restart:
        raise GanzooError(f"{out} already holds a run; continue it with `ganzoo train --resume --out {out}`, start the "
                          f"fine-tune over with --restart (keeps nothing of it), or choose another --out")
    model = _load_any(ref, discriminator=True, training_state=optimizer_state)
    config = model.config
    arch = config["architecture"]
    from .plugins import get_registry

    spec = get_registry().architecture(arch)
    freeze = list(freeze or [])
    for part in freeze:
        if part not in spec.freezable:
            raise GanzooError(f"--freeze {part}: architecture {arch!r} has no such part; "
                              f"freezable: {', '.join(spec.freezable) or 'none'}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(train_options) - fields - {"arch", "data", "arch_config"})
    if bad:
        raise GanzooError(f"finetune: unknown option(s) {', '.join(bad)}; known: {', '.join(sorted(fields))}")
    for fixed in ("arch", "arch_config"):
        if fixed in train_options:
            raise GanzooError(f"finetune: {fixed} comes from the base model; drop it")
    lineage = dict(model.lineage)
    lineage = {"base_model": lineage.get("base_model"), "repo": lineage.get("repo"), "revision": lineage.get("revision")}
    if lineage["repo"] is None:
        lineage.pop("repo")
    cfg = TrainConfig(arch=arch, data=data, arch_config=dict(config["arch_config"]), data_label=label,
                      steps=steps, epochs=epochs, freeze=freeze, base_model=lineage, **train_options)
    G, D = model.G, model.D
    G.train()
    D.train()
    arch_cfg = spec.make_config(**cfg.arch_config)
    dataset = load_dataset(data, image_size=arch_cfg.image_size, channels=arch_cfg.channels, label=label)
    if arch_cfg.num_classes:
        if dataset.labels is None or dataset.num_classes != arch_cfg.num_classes:
            got = dataset.num_classes if dataset.labels is not None else "no"
            raise GanzooError(f"--data {data}: has {got} classes but {model.config.get('name') or ref} is conditional on "
                              f"{arch_cfg.num_classes}; use a data set with the same classes")
    kwargs: dict[str, Any] = {"G": G, "D": D, "dataset": dataset}
    state = model.training_state
    if state is not None:
        for part in freeze:
            for module in spec.freezable[part](G, D):
                module.requires_grad_(False)
        opt = spec.optimizer
        lr = {"opt_g": cfg.lr_g if cfg.lr_g is not None else opt.lr_g,
              "opt_d": cfg.lr_d if cfg.lr_d is not None else opt.lr_d}
        betas = tuple(cfg.betas) if cfg.betas is not None else tuple(opt.betas)
        opt_state = {}
        for key, net in (("opt_g", G), ("opt_d", D)):
            sd = state.get(key)
            n = sum(1 for p in net.parameters() if p.requires_grad)
            if not sd or sum(len(g["params"]) for g in sd["param_groups"]) != n:
                print(f"ganzoo: the optimizers start fresh ({key[-1].upper()}'s trainable parameters differ from "
                      f"the base model's)", file=sys.stderr)
                opt_state = None
                break
            sd = copy.deepcopy(sd)
            for g in sd["param_groups"]:  # the fine-tune's learning rate, not the base run's
                g["lr"], g["betas"] = lr[key], betas
            opt_state[key] = sd
        if opt_state:
            kwargs["optimizer_state"] = opt_state
        if state.get("objective") and train_options.get("objective") in (None, config.get("training", {}).get("objective")):
            kwargs["objective_state"] = state["objective"]
    return train(cfg, out, progress=progress, command=command or f"ganzoo.finetune({str(ref)!r}, data={data!r})",
                 restart=restart, **kwargs)


def hub_entrypoint(name: str, *, pretrained: bool = True, device=None, discriminator: bool = False):
    """What each ``hubconf.py`` entrypoint does: load catalog model ``name``, or (``pretrained=False``)
    an untrained model of the same config."""
    if pretrained:
        return load(name, device=device, discriminator=discriminator)
    source = _source_for(name)
    config = _read_config(Path(source.path(CONFIG_NAME)), source.label)
    _, _, G, D = _build(config, source.label)
    dev = _resolve_device(device)
    G.to(dev).eval()
    D.to(dev).eval()
    _attach(config, G, D)
    return (G, D) if discriminator else G
