"""The catalog: short names of released models mapped to a Hub repository, a pinned revision and the
sha256 of every file (``ganzoo/catalog.json``, or the file ``$GANZOO_CATALOG`` names)."""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

from huggingface_hub import try_to_load_from_cache

from ..errors import GanzooError
from ..io import refuse_pickle, write_json
from .folder import (
    CONFIG_NAME, DISCRIMINATOR_FILE, FORMAT, GENERATOR_FILE, HUB_ID, _folder_config, _one_line, file_sha256,
)

CATALOG_ENV = "GANZOO_CATALOG"
BUILTIN_CATALOG = Path(__file__).parent.parent / "catalog.json"  # ganzoo/catalog.json
CATALOG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def add_catalog_entry(name: str, folder: str | os.PathLike, *, repo: str, revision: str,
                      catalog: str | os.PathLike | None = None, embed: bool = True,
                      description: str | None = None) -> CatalogEntry:
    """(Re)write the catalog entry ``name`` from a model folder: the sha256 of each of its files,
    the Hub repository and pinned revision, and (``embed``) the folder's path relative to the catalog.
    ``description`` (for ``ganzoo list --pretrained``) defaults to the entry's own, else config.json's.

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
        refuse_pickle(p, str(folder))
        files[p.name] = file_sha256(p)
    for required in (GENERATOR_FILE, DISCRIMINATOR_FILE):
        if required not in files:
            raise GanzooError(f"{folder}: missing {required}; export the folder again with `ganzoo export RUN {folder}`")
    path = Path(catalog) if catalog is not None else catalog_path()
    data = _read_catalog_file(path) if path.exists() else {"format": FORMAT, "models": {}}
    if description is None:  # re-pinning an entry keeps its one-line description; a new one takes the card's
        description = (data["models"].get(name) or {}).get("description") or config.get("description", "")
    entry: dict[str, Any] = {
        "repo": repo,
        "revision": revision,
        "architecture": config.get("architecture", ""),
        "image_shape": list(config.get("image_shape", [])),
        "description": description,
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
