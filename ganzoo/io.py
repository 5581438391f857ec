"""Atomic file writes and image grids: nothing half-written survives a crash.

The atomic-write family: :func:`atomic_path` (one file), :func:`atomic_folder` (a folder written
completely, then renamed into place: a run's checkpoint) and :func:`staging_folder` (files written
beside a folder, then moved in: an exported model folder). Also here: the one refusal of pickled
files (:func:`refuse_pickle`) and ganzoo's version (:func:`version`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

from ._version import version  # noqa: F401 (re-exported: callers take the version with the other file helpers)
from .errors import GanzooError

__all__ = ["atomic_path", "atomic_folder", "staging_folder", "write_json", "save_grid", "fsync_dir", "refuse_pickle",
           "version"]

#: suffixes of pickled files (torch.save, pickle): loading one can run code, so ganzoo never does
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_WEIGHTS_FIX = ("ganzoo loads safetensors only: convert it with safetensors.torch.save_file, or export the run "
                "with `ganzoo export RUN FOLDER`")


def refuse_pickle(path: str | os.PathLike, label: str | None = None, *, what: str = "weights",
                  fix: str = _WEIGHTS_FIX) -> None:
    """A one-line error when ``path`` names a pickled file (:data:`PICKLE_SUFFIXES`); ``what`` says what
    the file was meant to hold and ``fix`` what to give instead."""
    name = os.path.basename(str(path))
    if name.lower().endswith(PICKLE_SUFFIXES):
        raise GanzooError(f"{label or path}: refusing pickled {what} {name!r} (pickle can run code when loaded); {fix}")


def cache_dir(kind: str) -> Path:
    """Where ganzoo caches ``kind`` (``datasets``, ``fid``, ``speed``): ``$GANZOO_CACHE/KIND``, else
    ``$XDG_CACHE_HOME/ganzoo/KIND``, else ``~/.cache/ganzoo/KIND``."""
    root = os.environ.get("GANZOO_CACHE")
    if root:
        return Path(root).expanduser() / kind
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ganzoo" / kind


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


def fsync_files(folder: Path) -> None:
    """fsync every file directly in ``folder``, then the folder itself."""
    for f in folder.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, tmp_name: str | None = None, old_name: str | None = None
                  ) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success, fsync its files and rename it onto
    ``path`` (an existing ``path`` is moved aside first, then removed), then fsync the parent.

    On error the temporary folder is removed and ``path`` is left untouched. ``tmp_name`` and
    ``old_name`` name the temporary and the moved-aside folders (default ``.NAME.PID.tmp`` and
    ``.NAME.PID.old.tmp``), so that a cleaner knows what a killed writer left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / (tmp_name or f".{path.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        fsync_files(tmp)
        old = None
        if path.exists():
            old = path.parent / (old_name or f".{path.name}.{os.getpid()}.old.tmp")
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def staging_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path`` (``.NAME.XXXX``) to write files into before the
    caller moves them into ``path`` one by one (``os.replace``); it is always removed afterwards."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def json_number(v):
    """A metric as config.json and the card hold it: 6 significant digits (ints, None, NaN/inf as given)."""
    if isinstance(v, int) or v is None or (isinstance(v, float) and not math.isfinite(v)):
        return v
    return float(f"{v:.6g}")


def _json_default(o):
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor) and o.numel() == 1:
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def check_png_output(path: str | os.PathLike) -> None:
    """Image grids are PNG files: refuse another suffix, or a place a file cannot be written, before
    any work is done."""
    if Path(path).suffix.lower() != ".png":
        raise GanzooError(f"{path}: images are written as PNG; name the output file .png")
    check_output_file(path)


def expand(path: str | os.PathLike, what: str = "path") -> Path:
    """``Path(path).expanduser()``, with an unknown ``~user`` as a one-line error instead of a RuntimeError."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        raise GanzooError(f"{what} {path}: cannot expand {str(path).split('/')[0]!r} (no such user's home); "
                          f"write the full path") from None


def check_output_file(path: str | os.PathLike, *, what: str = "output") -> Path:
    """Refuse, before any work, an output file that cannot be written: an existing directory, a parent
    that is a file, or a folder where files cannot be created (permissions, a read-only or virtual
    file system such as /proc). Nothing is left behind: a probe file is created and removed in the
    nearest existing folder (``os.access`` says yes to root even on /proc)."""
    p = expand(path, what)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise GanzooError(f"{what} {str(path)!r}: give a file name, e.g. out.png")
    if p.is_dir():
        raise GanzooError(f"{what} {path}: is a directory; give a file name inside it, e.g. {p / 'out.png'}")
    parent = p.parent
    while not parent.exists():
        if parent.is_symlink():  # a dangling link where a folder would be made
            raise GanzooError(f"{what} {path}: {parent} is a broken symbolic link; fix it or choose another path")
        parent = parent.parent
    if not parent.is_dir():
        raise GanzooError(f"{what} {path}: {parent} is a file, not a folder; choose another path")
    if p.exists() and not os.access(p, os.W_OK):
        raise GanzooError(f"{what} {path}: the file exists and is not writable; choose another path")
    _probe_writable(parent, what, path)
    return p


def _probe_writable(folder: Path, what: str, path) -> None:
    """Create and remove a probe file in ``folder``: a one-line error naming ``path`` when files cannot be
    created there (``os.access`` says yes to root even on /proc)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".ganzoo-probe-", dir=folder)
    except OSError as exc:
        raise GanzooError(f"{what} {path}: cannot create files in {folder} ({exc.strerror or exc}); "
                          f"choose a writable folder") from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass


def check_output_folder(path: str | os.PathLike, *, what: str = "output folder") -> Path:
    """Like :func:`check_output_file` for a folder to be created or filled."""
    if str(path) == "":
        raise GanzooError(f"{what} '': give a folder name")
    p = expand(path, what)
    if p.exists() and not p.is_dir():
        raise GanzooError(f"{what} {path}: is a file, not a folder; choose another path")
    probe_in = p if p.is_dir() else p.parent
    while not probe_in.exists():
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise GanzooError(f"{what} {path}: {probe_in} is a file, not a folder; choose another path")
    _probe_writable(probe_in, what, path)
    return p


def meminfo(field: str) -> int | None:
    """A field of Linux's ``/proc/meminfo`` (``MemTotal``, ``MemAvailable``, ...) in bytes; None elsewhere."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None when unknown."""
    have = meminfo("MemAvailable")
    if have is not None:
        return have
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def check_memory(needed: int, what: str, fix: str) -> None:
    """Refuse work whose tensors alone need more memory than is available, naming the estimate."""
    have = available_memory()
    if have is not None and needed > have:
        raise GanzooError(f"{what} needs about {_gb(needed)} of memory for its tensors alone, but "
                          f"{_gb(have)} is available; {fix}")


def save_grid(images: torch.Tensor, path: str | os.PathLike, *, nrow: int | None = None, padding: int = 2) -> Path:
    """Save images in [-1, 1] (N, C, H, W) as one PNG grid, atomically."""
    check_png_output(path)

    from torchvision.utils import save_image  # start-up time: torchvision pulls in torch._dynamo

    n = images.shape[0]
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    path = Path(path)
    with atomic_path(path) as tmp:
        save_image(images.detach().float().cpu() * 0.5 + 0.5, tmp, nrow=nrow, padding=padding, format="png")
    return path
