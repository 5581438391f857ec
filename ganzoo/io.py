"""Atomic file writes and image grids: nothing half-written survives a crash."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

from .errors import GanzooError

__all__ = ["atomic_path", "write_json", "save_grid", "fsync_dir"]


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success, fsync it and rename it onto ``path``.

    On error the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp (and writers that recreate the file) leave 0600: give it the usual mode
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor) and o.numel() == 1:
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def check_png_output(path: str | os.PathLike) -> None:
    """Image grids are PNG files: refuse another suffix before any work is done."""
    if Path(path).suffix.lower() != ".png":
        raise GanzooError(f"{path}: images are written as PNG; name the output file .png")


def save_grid(images: torch.Tensor, path: str | os.PathLike, *, nrow: int | None = None, padding: int = 2) -> Path:
    """Save images in [-1, 1] (N, C, H, W) as one PNG grid, atomically."""
    import math

    check_png_output(path)

    from torchvision.utils import save_image

    n = images.shape[0]
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    path = Path(path)
    with atomic_path(path) as tmp:
        save_image(images.detach().float().cpu() * 0.5 + 0.5, tmp, nrow=nrow, padding=padding, format="png")
    return path
