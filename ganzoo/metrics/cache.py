"""On-disk cache of real-data feature statistics (``$GANZOO_CACHE/fid`` or ``~/.cache/ganzoo/fid``).

An entry is keyed by everything that determines it: the dataset's fingerprint
(sha256 of its uint8 images, :meth:`ganzoo.data.ImageDataset.fingerprint`), the
extractor's name, sha256 and resize, the number of real images and, for the
reference-feature subsets of KID and precision/recall, the subset's size and
seed. Entries are written atomically (:func:`ganzoo.io.atomic_path`: a kill at any
instant leaves the old file or the new one, never half of one) and read with
``torch.load(weights_only=True)``; an unreadable entry is ignored with a one-line
warning naming the file, and rebuilt.

Every entry carries the sha256 of its contents (:func:`content_sha256`: each field's name and, for a
tensor, its dtype, shape and bytes), checked on load: an entry changed on disk since it was written
(a flipped bit, an edited mean) is not trusted but recomputed, with the warning. The caller's
``check`` then validates what the numbers must be (shapes, finite values, a symmetric covariance).

Besides the final entries (``stats-*.pt``, ``ref-*.pt``), a long real-data pass
keeps its progress in ``partial-*.pt`` (:func:`ganzoo.eval.real_reference`),
keyed like the entries plus what the pass computes, and removed when it ends.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import GanzooWarning
from .. import io
from ..io import atomic_path

__all__ = ["cache_dir", "cache_key", "entry_path", "load_entry", "save_entry", "remove_entry", "content_sha256",
           "check_gaussian", "check_features"]

#: Bump when the way features or statistics are computed changes.
CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where Inception features and statistics are cached: ``$GANZOO_CACHE/fid`` or ``~/.cache/ganzoo/fid``."""
    return io.cache_dir("fid")


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
        if not isinstance(payload, dict) or payload.get("key") != key:
            raise ValueError("unexpected contents")
        want = payload.get("sha256")
        if not isinstance(want, str):
            raise ValueError("no checksum (written by an older ganzoo, or not by ganzoo)")
        got = content_sha256({k: v for k, v in payload.items() if k != "sha256"})
        if got != want:
            raise ValueError(f"checksum mismatch: the file was changed after it was written (sha256 "
                             f"{got[:12]}..., recorded {want[:12]}...)")
        if check(payload):
            return payload
        raise ValueError("unexpected contents")
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:200]  # torch.load's messages span many lines
        warnings.warn(f"ignoring unreadable {what} {path} ({type(exc).__name__}: {reason}); {then}", GanzooWarning)
        return None


def save_entry(key: str, kind: str, payload: dict) -> Path | None:
    path = entry_path(key, kind)
    try:
        body = {**payload, "key": key}
        body["sha256"] = content_sha256(body)
        with atomic_path(path) as tmp:
            torch.save(body, tmp)
        return path
    except OSError as exc:  # a cache that cannot be written never fails an evaluation
        warnings.warn(f"could not write feature cache {path}: {exc}")
        return None


def content_sha256(payload: Any) -> str:
    """sha256 of an entry's contents: nested dicts (sorted keys), lists, tensors (dtype, shape and bytes)
    and plain values, so that any change to a number changes it."""
    h = hashlib.sha256()

    def feed(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            h.update(f"tensor:{t.dtype}:{tuple(t.shape)}:".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(obj, dict):
            h.update(b"dict:")
            for k in sorted(obj, key=str):
                h.update(f"{k!s}=".encode())
                feed(obj[k])
                h.update(b";")
        elif isinstance(obj, (list, tuple)):
            h.update(f"list{len(obj)}:".encode())
            for v in obj:
                feed(v)
                h.update(b",")
        else:
            h.update(f"{type(obj).__name__}:{obj!r}".encode())

    feed(payload)
    return h.hexdigest()


def check_gaussian(mu: Any, sigma: Any, dim: int | None = None) -> None:
    """Raise ValueError unless ``mu`` (D,) and ``sigma`` (D, D) are finite float tensors, ``sigma`` symmetric
    with a non-negative diagonal (a covariance), and D is ``dim`` when given."""
    if not isinstance(mu, torch.Tensor) or not isinstance(sigma, torch.Tensor):
        raise ValueError("mu and sigma must be tensors")
    if not (mu.is_floating_point() and sigma.is_floating_point()):
        raise ValueError(f"mu and sigma must be floating point, got {mu.dtype} and {sigma.dtype}")
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"mu {tuple(mu.shape)} and sigma {tuple(sigma.shape)} are not (D,) and (D, D)")
    if dim is not None and mu.shape[0] != dim:
        raise ValueError(f"statistics of {mu.shape[0]} features, but the extractor gives {dim}")
    if not (bool(torch.isfinite(mu).all()) and bool(torch.isfinite(sigma).all())):
        raise ValueError("mu or sigma holds NaN/inf")
    s = sigma.double()
    scale = max(1.0, float(s.abs().max()))
    if float((s - s.T).abs().max()) > 1e-9 * scale:
        raise ValueError("sigma is not symmetric, so not a covariance")
    if float(torch.diagonal(s).min()) < -1e-9 * scale:
        raise ValueError("sigma has a negative variance on its diagonal")


def check_features(features: Any, rows: int, dim: int | None = None) -> None:
    """Raise ValueError unless ``features`` is a finite float (rows, D) tensor (D = ``dim`` when given)."""
    if not isinstance(features, torch.Tensor) or not features.is_floating_point() or features.ndim != 2:
        raise ValueError(f"features must be a (N, D) float tensor, got {getattr(features, 'shape', type(features))}")
    if features.shape[0] != rows:
        raise ValueError(f"{features.shape[0]} feature rows, expected {rows}")
    if dim is not None and features.shape[1] != dim:
        raise ValueError(f"features of width {features.shape[1]}, but the extractor gives {dim}")
    if not bool(torch.isfinite(features).all()):
        raise ValueError("features hold NaN/inf")


def remove_entry(key: str, kind: str) -> None:
    """Delete the entry if it exists (never fails)."""
    try:
        entry_path(key, kind).unlink(missing_ok=True)
    except OSError:
        pass
