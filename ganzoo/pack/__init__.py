"""Copy a run directory with every file at most N bytes, and put it back together.

For carrying a run (or a model folder) where files have a size limit (a transfer that takes
files up to 16 MB, a Git host without LFS): ``pack`` copies RUN into OUT, splitting each
larger file into ``NAME.part-000``, ``NAME.part-001``, ... beside ``NAME.parts.json`` (the
parts' names, sizes and sha256, and the whole file's); ``unpack`` joins them back, checks
every hash, and leaves a directory that ``ganzoo train --resume``, ``ganzoo eval`` and
``ganzoo sample`` read as the original (the bytes are the same, so a resume stays exact).
Only the latest checkpoint is copied unless ``all_checkpoints``.

    python -m ganzoo.pack pack runs/x packed/x --max-mb 16
    python -m ganzoo.pack unpack packed/x runs/x

(The command line is :mod:`ganzoo.cli.pack`; ``python -m ganzoo.pack`` runs it.)
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ..errors import GanzooError
from ..io import atomic_path
from ..runfolder import latest_checkpoint

__all__ = ["pack", "unpack", "MANIFEST_SUFFIX"]

MANIFEST_SUFFIX = ".parts.json"
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _files(run: Path, all_checkpoints: bool) -> list[Path]:
    skip: set[Path] = set()
    ck = run / "checkpoints"
    if not all_checkpoints and ck.is_dir():
        latest = latest_checkpoint(run)
        skip = {p for p in ck.iterdir() if p.is_dir() and p != latest}
    out = []
    for root, dirs, names in os.walk(run):
        root_p = Path(root)
        dirs[:] = sorted(d for d in dirs if root_p / d not in skip and not d.startswith(".tmp-"))
        out += [root_p / n for n in sorted(names) if not n.endswith(".lock")]
    return out


def pack(run: str | os.PathLike, out: str | os.PathLike, *, max_bytes: int = 16 * 2**20,
         all_checkpoints: bool = False) -> list[Path]:
    """Copy ``run`` into ``out`` (created; must not exist or be empty) with no file over ``max_bytes``."""
    run, out = Path(run), Path(out)
    if not run.is_dir():
        raise GanzooError(f"{run} is not a folder; pass a run directory or model folder")
    if max_bytes < 1024:
        raise GanzooError(f"--max-mb: parts of {max_bytes} bytes are too small; use at least 0.001 MB (1 KB)")
    if out.exists() and any(out.iterdir()):
        raise GanzooError(f"{out} is not empty; choose a new folder for the packed copy")
    if out.resolve().is_relative_to(run.resolve()):
        raise GanzooError(f"{out} is inside {run}; choose a folder outside the run")
    written = []
    for src in _files(run, all_checkpoints):
        rel = src.relative_to(run)
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        size = src.stat().st_size
        if size <= max_bytes:
            shutil.copyfile(src, dst)
            written.append(dst)
            continue
        parts = []
        with open(src, "rb") as f:
            i = 0
            while True:
                block = f.read(max_bytes)
                if not block:
                    break
                part = dst.with_name(f"{dst.name}.part-{i:03d}")
                part.write_bytes(block)
                parts.append({"file": part.name, "bytes": len(block), "sha256": hashlib.sha256(block).hexdigest()})
                written.append(part)
                i += 1
        manifest = dst.with_name(dst.name + MANIFEST_SUFFIX)
        manifest.write_text(json.dumps({"file": dst.name, "bytes": size, "sha256": _sha256(src), "parts": parts},
                                       indent=1) + "\n")
        written.append(manifest)
    return written


def unpack(packed: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Join the parts of ``packed`` (into ``out``, or in place when None), checking every sha256."""
    packed = Path(packed)
    if not packed.is_dir():
        raise GanzooError(f"{packed} is not a folder; pass the folder `pack` wrote")
    target = Path(out) if out is not None else packed
    if out is not None:
        if target.exists() and any(target.iterdir()):
            raise GanzooError(f"{target} is not empty; choose a new folder to unpack into")
        shutil.copytree(packed, target, dirs_exist_ok=True)
    for manifest in sorted(target.rglob("*" + MANIFEST_SUFFIX)):
        try:
            meta = json.loads(manifest.read_text())
            parts = [manifest.parent / p["file"] for p in meta["parts"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise GanzooError(f"{manifest}: not a parts manifest ({exc}); pack the run again") from None
        missing = [p.name for p in parts if not p.is_file()]
        if missing:
            raise GanzooError(f"{manifest.parent}: missing part(s) {', '.join(missing)} of {meta['file']}; copy them too")
        whole = manifest.parent / meta["file"]
        with atomic_path(whole) as tmp:
            with open(tmp, "wb") as f:
                for p in parts:
                    f.write(p.read_bytes())
            got = _sha256(Path(tmp))
            if got != meta["sha256"]:
                raise GanzooError(f"{whole}: the joined parts hash to {got[:12]}, not {meta['sha256'][:12]}; "
                                  "a part is damaged: copy it again")
        for p in parts:
            p.unlink()
        manifest.unlink()
    return target
