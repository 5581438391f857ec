"""On-disk cache of real-data feature statistics (``$GANZOO_CACHE/fid`` or ``~/.cache/ganzoo/fid``).

An entry is keyed by everything that determines it: the dataset's fingerprint
(sha256 of its uint8 images, :meth:`ganzoo.data.ImageDataset.fingerprint`), the
extractor's name, sha256 and resize, the number of real images and, for the
reference-feature subsets of KID and precision/recall, the subset's size and
seed. Entries are written atomically (:func:`ganzoo.io.atomic_path`: a kill at any
instant leaves the old file or the new one, never half of one) and read with
``torch.load(weights_only=True)``; an unreadable entry is ignored with a one-line
warning naming the file, and rebuilt.

Besides the final entries (``stats-*.pt``, ``ref-*.pt``), a long real-data pass
keeps its progress in ``partial-*.pt`` (:func:`ganzoo.eval.real_reference`),
keyed like the entries plus what the pass computes, and removed when it ends.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from ..io import atomic_path

__all__ = ["cache_dir", "cache_key", "entry_path", "load_entry", "save_entry", "remove_entry"]

#: Bump when the way features or statistics are computed changes.
CACHE_VERSION = 1


def cache_dir() -> Path:
    root = os.environ.get("GANZOO_CACHE")
    if root:
        return Path(root).expanduser() / "fid"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ganzoo" / "fid"


def cache_key(**fields: Any) -> str:
    return hashlib.sha256(json.dumps({**fields, "version": CACHE_VERSION}, sort_keys=True).encode()).hexdigest()


def entry_path(key: str, kind: str) -> Path:
    return cache_dir() / f"{kind}-{key[:32]}.pt"


def load_entry(key: str, kind: str, check: Callable[[dict], bool], *, what: str = "feature cache",
               then: str = "recomputing") -> dict | None:
    """The entry, or None when there is none or it is unreadable or fails ``check`` (which may also
    raise): then one warning line names the file and the reason (``"ignoring unreadable {what} PATH
    (reason); {then}"``)."""
    path = entry_path(key, kind)
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(payload, dict) and payload.get("key") == key and check(payload):
            return payload
        raise ValueError("unexpected contents")
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:200]  # torch.load's messages span many lines
        warnings.warn(f"ignoring unreadable {what} {path} ({type(exc).__name__}: {reason}); {then}")
        return None


def save_entry(key: str, kind: str, payload: dict) -> Path | None:
    path = entry_path(key, kind)
    try:
        with atomic_path(path) as tmp:
            torch.save({**payload, "key": key}, tmp)
        return path
    except OSError as exc:  # a cache that cannot be written never fails an evaluation
        warnings.warn(f"could not write feature cache {path}: {exc}")
        return None


def remove_entry(key: str, kind: str) -> None:
    """Delete the entry if it exists (never fails)."""
    try:
        entry_path(key, kind).unlink(missing_ok=True)
    except OSError:
        pass
