"""The data layer: datasets preloaded as one uint8 tensor at the model's size.

A dataset is named on the command line as ``KIND:PATH``; the kind is looked up
in the plugin registry (``ganzoo.plugins.get_registry().dataset(kind)``) and its
``build(path, image_size=..., channels=..., split=..., label=...)`` returns an
:class:`ImageDataset`. The built-in kinds (registered in
``ganzoo/builtins/datasets.py``) are:

``fashion-mnist:DIR``
    the four original IDX ``.gz`` files (uncompressed copies are accepted too);
    ``split`` is ``"train"`` (60,000), ``"test"`` (10,000) or ``"all"``.
``folder:DIR``
    an image folder; see :func:`load_folder` for the layouts it understands.
``utkface:DIR``
    UTKFace's flat folder of ``age_gender_race_date.jpg.chip.jpg`` files (or
    a folder holding it, e.g. ``utkface/`` with ``UTKFace/`` inside); see
    :func:`load_utkface` for the labels.

Every image is decoded once, resized, and kept in memory as uint8
``(N, C, H, W)``; :meth:`ImageDataset.batch` gathers a batch, moves it and
converts it to float in [-1, 1] on the device, so the trainer needs no
DataLoader. Slow loads (more than :data:`CACHE_MIN_SECONDS`) are cached under
``$GANZOO_CACHE/datasets`` (default ``~/.cache/ganzoo/datasets``).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import struct
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import PIL
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .errors import GanzooError, GanzooWarning
from .io import atomic_path, cache_dir as io_cache_dir
from .plugins import get_registry

__all__ = [
    "ImageDataset", "load_dataset", "parse_spec", "load_fashion_mnist", "load_folder",
    "load_utkface", "IMAGE_EXTENSIONS", "FASHION_MNIST_CLASSES", "UTKFACE_LABELS",
    "AGE_GROUPS", "CACHE_MIN_SECONDS",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

#: Age bins for ``label="age_group"``: (name, first age, last age) — ages are whole years.
AGE_GROUPS: list[tuple[str, int, int]] = [
    ("0-2", 0, 2), ("3-9", 3, 9), ("10-19", 10, 19), ("20-29", 20, 29), ("30-39", 30, 39),
    ("40-49", 40, 49), ("50-59", 50, 59), ("60-69", 60, 69), ("70+", 70, 10**6),
]

UTKFACE_LABELS: dict[str, list[str]] = {
    "gender": ["Male", "Female"],
    "race": ["White", "Black", "Asian", "Indian", "Others"],
    "age_group": [name for name, _, _ in AGE_GROUPS],
}

#: Loads that take longer than this many seconds to build are cached on disk.
CACHE_MIN_SECONDS = 2.0
#: Bump when decoding or resizing changes, so that old cache entries are not reused.
CACHE_VERSION = 1

_SPLITS_HELP = "use split='train', 'test' or 'all'"


# --------------------------------------------------------------------------- dataset


class ImageDataset(torch.utils.data.Dataset):
    """Images preloaded as a uint8 tensor (N, C, H, W) at the model's size and channels.

    ``labels`` is int64 ``(N,)`` (``-1`` where an image's label is unknown) or
    ``None`` for an unlabelled dataset; ``class_names`` is ``[]`` then.
    ``skipped`` lists the files that could not be read (``"path: reason"``).
    ``files`` names the source of each row where it came from files
    (relative to the dataset's folder). ``attributes`` holds extra per-image
    integer attributes (UTKFace: ``age``, ``gender``, ``race``; ``-1`` = unknown)
    and ``malformed`` the file names whose labels could not be fully parsed.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        class_names: Sequence[str] | None = None,
        *,
        skipped: Sequence[str] = (),
        source: str = "",
        kind: str = "",
        split: str = "",
        files: Sequence[str] | None = None,
        attributes: dict[str, torch.Tensor] | None = None,
        malformed: Sequence[str] = (),
        native_shape: tuple[int, int, int] | None = None,
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError("ImageDataset: images must be a uint8 tensor of shape (N, C, H, W)")
        n = images.shape[0]
        if labels is not None:
            labels = torch.as_tensor(labels, dtype=torch.int64)
            if labels.shape != (n,):
                raise ValueError(f"ImageDataset: labels have shape {tuple(labels.shape)}, expected ({n},)")
        self.images = images.contiguous()
        self.labels = labels
        self.class_names = list(class_names or [])
        self.skipped = list(skipped)
        self.source = source
        self.kind = kind
        self.split = split
        self.files = list(files) if files is not None else None
        self.attributes = {k: torch.as_tensor(v, dtype=torch.int64) for k, v in (attributes or {}).items()}
        self.malformed = list(malformed)
        #: (C, H, W) of the source images before resizing, where they all share one (IDX files);
        #: None where unknown or mixed
        self.native_shape = tuple(int(v) for v in native_shape) if native_shape else None
        self._fingerprint: str | None = None

    # -- shape ---------------------------------------------------------------
    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    # -- access --------------------------------------------------------------
    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.images[i].float().div_(127.5).sub_(1.0)
        y = int(self.labels[i]) if self.labels is not None else -1
        return x, y

    def batch(
        self,
        index: torch.Tensor,
        device: torch.device | str | None = None,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fast path for the trainer: gather rows, move them and convert to float in [-1, 1].

        The rows travel as uint8 (4x less than float) and are converted on the
        device. When the images are pinned (:meth:`pin_memory`) the copy is
        non-blocking; when they already live on the device (:meth:`to`) the
        gather happens there. Returns ``(images, labels)``, labels ``None`` for an
        unlabelled dataset.
        """
        index = torch.as_tensor(index, dtype=torch.long)
        src = self.images.device
        if index.device != src:
            index = index.to(src)
        x = self.images.index_select(0, index)
        y = self.labels.index_select(0, index.to(self.labels.device)) if self.labels is not None else None
        device = torch.device(device) if device is not None else src
        if device != x.device:
            pinned = device.type == "cuda" and self.images.is_pinned()
            if pinned:
                x = x.pin_memory()  # served by the caching host allocator: cheap
            x = x.to(device, non_blocking=pinned)
            if y is not None:
                y = y.to(device, non_blocking=pinned)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        x = x.to(dtype=dtype, memory_format=memory_format)
        x.div_(127.5).sub_(1.0)
        return x, y

    def pin_memory(self) -> "ImageDataset":
        """Pin the images in page-locked memory for faster, asynchronous copies (CUDA only)."""
        if torch.cuda.is_available() and self.images.device.type == "cpu" and not self.images.is_pinned():
            self.images = self.images.pin_memory()
        return self

    def to(self, device: torch.device | str) -> "ImageDataset":
        """Move the uint8 images (and labels) to ``device``, e.g. the GPU, in place; returns self."""
        self.images = self.images.to(device)
        if self.labels is not None:
            self.labels = self.labels.to(device)
        return self

    def subset(self, index: torch.Tensor | Sequence[int]) -> "ImageDataset":
        """A new dataset with the rows in ``index`` (labels, files and attributes follow)."""
        index = torch.as_tensor(index, dtype=torch.long)
        cpu_index = index.cpu()
        return ImageDataset(
            self.images.index_select(0, index.to(self.images.device)),
            self.labels.index_select(0, index.to(self.labels.device)) if self.labels is not None else None,
            self.class_names,
            skipped=self.skipped, source=self.source, kind=self.kind, split=self.split,
            files=[self.files[i] for i in cpu_index.tolist()] if self.files is not None else None,
            attributes={k: v.index_select(0, cpu_index) for k, v in self.attributes.items()},
            malformed=self.malformed, native_shape=self.native_shape,
        )

    def labelled(self) -> "ImageDataset":
        """The rows whose label is known (``label >= 0``); self when unlabelled."""
        if self.labels is None:
            return self
        keep = torch.nonzero(self.labels.cpu() >= 0).flatten()
        return self if len(keep) == len(self) else self.subset(keep)

    # -- identity ------------------------------------------------------------
    def fingerprint(self) -> str:
        """sha256 over the uint8 images' shape and bytes (computed once, then cached)."""
        if self._fingerprint is None:
            images = self.images.detach().cpu().contiguous()
            h = hashlib.sha256()
            h.update(f"uint8{tuple(images.shape)}".encode())
            h.update(memoryview(images.numpy()).cast("B"))
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def describe(self) -> str:
        """One line: kind, N images, shape, classes, skipped count."""
        n, c, hh, ww = self.images.shape
        what = self.source or self.kind or "dataset"
        split = f" [{self.split}]" if self.split else ""
        classes = f"{self.num_classes} classes" if self.labels is not None else "unlabelled"
        extra = f", {len(self.malformed)} malformed names" if self.malformed else ""
        return f"{what}{split}: {n} images {c}x{hh}x{ww}, {classes}, {len(self.skipped)} skipped{extra}"

    def __repr__(self) -> str:
        return f"ImageDataset({self.describe()})"


# --------------------------------------------------------------------------- specs


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``KIND:PATH`` into ``(kind, path)``; the kind must be registered.

    ``~`` in the path is expanded. Raises :class:`GanzooError` for a missing
    colon, an unknown kind (listing the known ones) or an empty path.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise GanzooError(f"dataset {spec!r}: write --data KIND:PATH, e.g. folder:path/to/images")
    spec = spec.strip()
    if ":" not in spec:
        known = ", ".join(sorted(get_registry().datasets)) or "none"
        raise GanzooError(
            f"dataset {spec!r} has no kind: write --data KIND:PATH, e.g. folder:{spec} (known kinds: {known})"
        )
    kind, path = spec.split(":", 1)
    kind = kind.strip()
    if not kind:
        raise GanzooError(f"dataset {spec!r} has no kind before ':': write --data KIND:PATH, e.g. folder{spec}")
    get_registry().dataset(kind)  # unknown kind: a GanzooError listing the known ones
    path = path.strip()
    if not path:
        raise GanzooError(f"dataset {spec!r} has no path after '{kind}:': write --data {kind}:PATH")
    return kind, os.path.expanduser(path)


def load_dataset(
    spec: str, *, image_size: int, channels: int, split: str = "train", label: str | None = None
) -> ImageDataset:
    """``KIND:PATH`` (e.g. ``fashion-mnist:../shared/datasets/fashion-mnist``, ``folder:PATH``,
    ``utkface:PATH``) → the registered kind's ``build(path, image_size=..., channels=...,
    split=..., label=...)``."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise GanzooError(f"image size {image_size!r}: use a positive whole number of pixels, e.g. 64")
    if channels not in (1, 3):
        raise GanzooError(f"channels {channels!r}: use 1 (grayscale) or 3 (RGB)")
    kind, path = parse_spec(spec)
    dataset = get_registry().dataset(kind).build(
        path, image_size=image_size, channels=channels, split=split, label=label
    )
    if not isinstance(dataset, ImageDataset):
        raise TypeError(f"dataset kind {kind!r} built a {type(dataset).__name__}, not a ganzoo.data.ImageDataset")
    dataset.source = spec.strip()
    dataset.kind = dataset.kind or kind
    if dataset.skipped:  # never silent: the count, and the first file with its reason
        first = " ".join(str(dataset.skipped[0]).split())
        warnings.warn(f"{dataset.source}: skipped {len(dataset.skipped)} unreadable image file(s) of "
                      f"{len(dataset.skipped) + len(dataset)} (first: {first[:300]}); fix or remove them "
                      f"(ImageDataset.skipped lists them all)", GanzooWarning, stacklevel=2)
    return dataset


def _no_label(kind: str, path: Path, label: str | None) -> None:
    if label not in (None, "class"):
        raise GanzooError(
            f"{kind}:{path}: unknown label {label!r}; this kind's only label is its class (use label=None)"
        )


# --------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """Where decoded datasets are cached: ``$GANZOO_CACHE/datasets`` or ``~/.cache/ganzoo/datasets``."""
    return io_cache_dir("datasets")


def _file_stats(root: Path, files: Sequence[str]) -> list[list]:
    out = []
    for name in sorted(files):
        st = os.stat(root / name)
        out.append([name, st.st_size, st.st_mtime_ns])
    return out


def _cache_key(kind: str, root: Path, files: Sequence[str], **params: Any) -> str:
    key = {
        "kind": kind,
        "path": str(root.resolve()),
        "files": _file_stats(root, files),
        "params": params,
        "version": CACHE_VERSION,
        "pillow": PIL.__version__,
        "torch": torch.__version__.split("+")[0],
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _cached(
    key: str, build: Callable[[], dict[str, Any]], check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Return ``build()``'s dict, from the cache when a valid entry exists.

    A fresh result is written (atomically) only when building took more than
    :data:`CACHE_MIN_SECONDS`. An unreadable or inconsistent entry is ignored,
    removed and rebuilt. Failing to write the cache never fails the load.
    """
    path = cache_dir() / f"{key}.pt"
    if path.is_file():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(payload, dict) and check(payload):
                return payload
            raise ValueError("unexpected contents")
        except Exception as exc:  # corrupt or stale: rebuild
            warnings.warn(f"ignoring corrupt dataset cache {path} ({type(exc).__name__}: {exc}); rebuilding")
            try:
                path.unlink()
            except OSError:
                pass
    t0 = time.perf_counter()
    payload = build()
    if time.perf_counter() - t0 > CACHE_MIN_SECONDS:
        _write_atomic(path, payload)
    return payload


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    """The decoded data set's cache, written atomically (io.atomic_path); a failure to write only warns."""
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except OSError as exc:
        warnings.warn(f"could not write dataset cache {path}: {exc}")


def _check_images(payload: dict[str, Any], image_size: int, channels: int) -> bool:
    images = payload.get("images")
    return (
        isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.dim() == 4
        and tuple(images.shape[1:]) == (channels, image_size, image_size)
    )


# --------------------------------------------------------------------------- Fashion-MNIST

_IDX_IMAGES = 0x00000803
_IDX_LABELS = 0x00000801
_FMNIST_PREFIX = {"train": "train", "test": "t10k", "t10k": "t10k"}
_FMNIST_FILES = "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"


def _idx_file(root: Path, name: str) -> Path:
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    raise GanzooError(
        f"fashion-mnist:{root}: missing {name}.gz; put the four Fashion-MNIST IDX files ({_FMNIST_FILES}) in that folder"
    )


def _read_idx(path: Path, magic: int, ndim: int) -> tuple[bytes, tuple[int, ...]]:
    """The payload and dims of an IDX file, checked against its header."""
    redownload = "re-download it (Fashion-MNIST's original IDX .gz files)"
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise GanzooError(f"{path}: not a readable gzip file ({exc}); {redownload}") from None
    header = 4 + 4 * ndim
    if len(data) < header:
        raise GanzooError(f"{path}: only {len(data)} bytes, too short for an IDX header; {redownload}")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        what = "images" if magic == _IDX_IMAGES else "labels"
        raise GanzooError(
            f"{path}: bad magic number 0x{found:08x} (IDX {what} files start with 0x{magic:08x}); "
            f"the file is corrupt or not an IDX {what} file, {redownload}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(data) - header
    if any(d == 0 for d in dims) or payload != expected:
        raise GanzooError(
            f"{path}: header says {'x'.join(map(str, dims))} ({expected} bytes) but the payload has "
            f"{payload} bytes; the file is truncated or corrupt, {redownload}"
        )
    return data[header:], dims


def _resize_weights(n_in: int, n_out: int) -> torch.Tensor:
    """The (n_out, n_in) matrix of 1-D bilinear antialiased resampling, taken from F.interpolate itself.

    (Interpolating the identity gives the weights; a width of 2 avoids the
    kernel's size-1 edge case.)
    """
    eye = torch.eye(n_in, dtype=torch.float64).view(n_in, 1, n_in, 1).expand(n_in, 1, n_in, 2).contiguous()
    w = F.interpolate(eye, size=(n_out, 2), mode="bilinear", antialias=True, align_corners=False)
    return w[:, 0, :, 0].t().to(torch.float32).contiguous()


def resize_uint8(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) to (N, C, size, size): bilinear with antialias, in chunks, rounded.

    Same result as ``F.interpolate(x.float(), mode="bilinear", antialias=True)``
    (to float rounding), computed as two matrix products with the separable
    weights, which is several times faster for small images such as 28 px.
    """
    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    wh = _resize_weights(h, size)
    ww_t = _resize_weights(w, size).t().contiguous()
    out = torch.empty((n, c, size, size), dtype=torch.uint8)
    for i in range(0, n, chunk):
        x = torch.matmul(images[i:i + chunk].float(), ww_t)  # (b, c, h, size)
        x = torch.matmul(wh, x)  # (b, c, size, size)
        # the weights are >= 0 and sum to 1, so x stays in [0, 255] (to float rounding):
        # adding 0.5 and truncating to uint8 rounds, with no clamp needed
        out[i:i + chunk].copy_(x.add_(0.5))
    return out


def load_fashion_mnist(
    path: str | os.PathLike, *, image_size: int, channels: int, split: str = "train", label: str | None = None
) -> ImageDataset:
    """Fashion-MNIST from its IDX ``.gz`` files in ``path``.

    ``split``: ``"train"`` (60,000), ``"test"`` (10,000) or ``"all"`` (both,
    train first). Images are resized from 28 px with bilinear antialiased
    interpolation and gray is repeated to 3 channels when ``channels=3``. The
    labels are the 10 classes (:data:`FASHION_MNIST_CLASSES`).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise GanzooError(
            f"fashion-mnist:{root}: no such folder; point it at the folder with the IDX files ({_FMNIST_FILES})"
        )
    _no_label("fashion-mnist", root, label)
    if split == "all":
        parts = ["train", "t10k"]
    elif split in _FMNIST_PREFIX:
        parts = [_FMNIST_PREFIX[split]]
    else:
        raise GanzooError(f"fashion-mnist:{root}: unknown split {split!r}; {_SPLITS_HELP}")

    pairs = [(_idx_file(root, f"{p}-images-idx3-ubyte"), _idx_file(root, f"{p}-labels-idx1-ubyte")) for p in parts]

    def build() -> dict[str, Any]:
        all_images, all_labels = [], []
        for image_file, label_file in pairs:
            pixels, (n, rows, cols) = _read_idx(image_file, _IDX_IMAGES, 3)
            raw_labels, (m,) = _read_idx(label_file, _IDX_LABELS, 1)
            if m != n:
                raise GanzooError(
                    f"{label_file}: has {m} labels but {image_file.name} has {n} images; "
                    "re-download both files of the split"
                )
            labels = torch.from_numpy(np.frombuffer(raw_labels, dtype=np.uint8).astype(np.int64))
            if int(labels.max()) >= len(FASHION_MNIST_CLASSES):
                raise GanzooError(
                    f"{label_file}: label {int(labels.max())} is out of range 0-9; re-download the labels file"
                )
            images = torch.from_numpy(np.frombuffer(pixels, dtype=np.uint8).reshape(n, 1, rows, cols).copy())
            images = resize_uint8(images, image_size)
            all_images.append(images)
            all_labels.append(labels)
        images = all_images[0] if len(all_images) == 1 else torch.cat(all_images)
        if channels == 3:
            images = images.expand(-1, 3, -1, -1).contiguous()
        return {"images": images, "labels": torch.cat(all_labels)}

    files = [p.name for pair in pairs for p in pair]
    key = _cache_key("fashion-mnist", root, files, image_size=image_size, channels=channels, split=split)
    payload = _cached(
        key, build,
        lambda p: _check_images(p, image_size, channels)
        and isinstance(p.get("labels"), torch.Tensor) and p["labels"].shape == (p["images"].shape[0],),
    )
    return ImageDataset(
        payload["images"], payload["labels"], FASHION_MNIST_CLASSES,
        source=f"fashion-mnist:{path}", kind="fashion-mnist", split=split,
        native_shape=_idx_image_shape(pairs[0][0]),
    )


def _idx_image_shape(path: Path) -> tuple[int, int, int] | None:
    """(1, rows, cols) from an IDX image file's header (16 bytes; no decoding of the images)."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            head = f.read(16)
        magic, _, rows, cols = struct.unpack(">IIII", head)
    except (OSError, EOFError, zlib.error, struct.error):
        return None
    return (1, rows, cols) if magic == _IDX_IMAGES else None


# --------------------------------------------------------------------------- image files


def _is_image(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _visible(root: Path) -> tuple[list[str], list[str]]:
    """(sorted image file names, sorted sub-folder names) directly in ``root``; hidden ones skipped."""
    files, dirs = [], []
    with os.scandir(root) as it:
        for e in it:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                dirs.append(e.name)
            elif _is_image(e.name) and e.is_file():
                files.append(e.name)
    return sorted(files), sorted(dirs)


def _walk_images(root: Path, rel: str) -> list[str]:
    """Image files under ``root/rel`` at any depth, as sorted paths relative to ``root``."""
    out = []
    seen: set[tuple[int, int]] = set()  # folders by (device, inode): a symlink loop is walked once, not forever
    # and a link back to an ancestor (a class folder's `loop -> ..`) is not walked at all: it would add the
    # dataset's other classes, and this class again, to this class
    for up in (root / rel).resolve().parents:
        try:
            st = os.stat(up)
            seen.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    for dirpath, dirnames, filenames in os.walk(root / rel, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        sub = os.path.relpath(dirpath, root)
        out.extend(os.path.join(sub, f) for f in sorted(filenames) if _is_image(f))
    return sorted(out)


def _decode_one(path: Path, size: int, mode: str) -> torch.Tensor:
    """Decode one image file to a uint8 ``(C, size, size)`` tensor.

    The centered square (side = the shorter side) is cropped and resized to
    ``size`` with antialiased bicubic interpolation: the same as resizing the
    shorter side to ``size`` and center-cropping. Pillow decodes (JPEGs at a
    reduced DCT scale when the image is at least twice the target size);
    torch's uint8 kernel resizes, which matches Pillow's bicubic to within 1
    and is several times faster. EXIF orientation is applied; alpha is
    composited onto white.
    """
    with Image.open(path) as im:
        im.draft(mode, (size, size))  # JPEG: let libjpeg decode at a reduced scale when it can
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
        im = _to_mode(im, mode)
        a = np.array(im, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, _ = a.shape
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    t = torch.from_numpy(a[top:top + m, left:left + m]).permute(2, 0, 1)  # (C, m, m), channels-last strides
    if m != size:
        t = F.interpolate(t[None], size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0]
    return t


def _to_mode(im, mode: str):
    if im.mode == mode:
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit / float gray: scale, don't clip
        a = np.asarray(im, dtype=np.float32)
        scale = 257.0 if im.mode.startswith("I;16") else max(float(a.max()), 1.0) / 255.0
        im = Image.fromarray(np.clip(a / scale + 0.5, 0, 255).astype(np.uint8), "L")
        return im if mode == "L" else im.convert(mode)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert(mode)


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return min(32, cpus + 4)


def decode_images(
    root: Path, files: Sequence[str], *, image_size: int, channels: int
) -> tuple[torch.Tensor, list[str], list[str]]:
    """Decode ``files`` (relative to ``root``) in a thread pool.

    Returns ``(images uint8 (N, C, S, S), the files that loaded, skipped)``
    where skipped lists ``"path: reason"`` for each file that could not be read.
    """
    mode = "L" if channels == 1 else "RGB"
    buf = torch.empty((len(files), channels, image_size, image_size), dtype=torch.uint8)

    def work(i: int) -> str | None:
        try:
            buf[i] = _decode_one(root / files[i], image_size, mode)
        except Exception as exc:  # an unreadable file never stops the load
            return f"{root / files[i]}: {type(exc).__name__}: {exc}"
        return None

    if len(files) <= 8:
        errors = [work(i) for i in range(len(files))]
    else:  # Pillow and torch release the GIL while decoding and resizing
        with ThreadPoolExecutor(max_workers=_workers()) as pool:
            errors = list(pool.map(work, range(len(files)), chunksize=16))
    ok = [i for i, e in enumerate(errors) if e is None]
    skipped = [e for e in errors if e is not None]
    images = buf if len(ok) == len(files) else buf[torch.tensor(ok, dtype=torch.long)]
    return images, [files[i] for i in ok], skipped


def _decode_cached(
    kind: str, root: Path, files: Sequence[str], *, image_size: int, channels: int, split: str
) -> tuple[torch.Tensor, list[str], list[str]]:
    def build() -> dict[str, Any]:
        images, kept, skipped = decode_images(root, files, image_size=image_size, channels=channels)
        return {"images": images, "files": kept, "skipped": skipped}

    def check(p: dict[str, Any]) -> bool:
        return (
            _check_images(p, image_size, channels)
            and isinstance(p.get("files"), list) and len(p["files"]) == p["images"].shape[0]
            and isinstance(p.get("skipped"), list) and len(p["files"]) + len(p["skipped"]) == len(files)
        )

    key = _cache_key(kind, root, files, image_size=image_size, channels=channels, split=split)
    p = _cached(key, build, check)
    return p["images"], list(p["files"]), list(p["skipped"])


def _nothing_loaded(kind: str, root: Path, files: Sequence[str], skipped: Sequence[str]) -> GanzooError:
    if not files:
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        return GanzooError(f"{kind}:{root}: no images found ({exts}); point it at a folder of images")
    return GanzooError(
        f"{kind}:{root}: none of its {len(files)} image files could be read (first: {skipped[0]}); "
        "check that they are valid images"
    )


# --------------------------------------------------------------------------- folder


def _is_split_layout(root: Path, loose: list[str], dirs: list[str]) -> bool:
    """``root`` holds only folders that themselves hold only folders (non-image files ignored)."""
    if loose or not dirs:
        return False
    for d in dirs:
        files, sub = _visible(root / d)
        if files or not sub:
            return False
    return True


def load_folder(
    path: str | os.PathLike, *, image_size: int, channels: int, split: str = "train", label: str | None = None
) -> ImageDataset:
    """An image folder (``.jpg .jpeg .png .webp .bmp``, any case), in one of three layouts.

    * **classes**: ``PATH/<class>/...`` — the class is the sub-folder; classes
      are the sorted sub-folder names → indices 0..K-1. Images may sit deeper
      inside a class folder.
    * **flat**: images directly in ``PATH`` and no sub-folders with images →
      unlabelled (``labels`` is ``None``).
    * **splits**: ``PATH`` holds only folders, each of which holds only folders
      (e.g. jellyfish's ``train/ test/ valid/<species>/``): the first level is
      the split, picked with ``split`` (default ``"train"``; ``"all"`` merges
      every split). The class names are the sorted union over *all* splits, so
      a class gets the same index whichever split is loaded.

    Non-image files (README, checksums) and hidden files/folders are ignored.
    Loose images next to class folders are an error (move them into a class
    folder). Without split folders, ``split`` must be ``"train"`` or ``"all"``.
    Each image's shorter side is resized to ``image_size`` (antialiased) and
    center-cropped, then converted to RGB or gray by ``channels``. Unreadable
    files are skipped and listed in ``skipped``; if none loads, GanzooError.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise GanzooError(f"folder:{root}: no such folder; point it at a folder of images or of class folders")
    _no_label("folder", root, label)
    loose, dirs = _visible(root)

    class_names, files, labels = _folder_files(root, loose, dirs, split)
    images, kept, skipped = _decode_cached(
        "folder", root, files, image_size=image_size, channels=channels, split=split
    )
    if not kept:
        raise _nothing_loaded("folder", root, files, skipped)
    label_tensor = None
    if labels is not None:
        label_of = dict(zip(files, labels))
        label_tensor = torch.tensor([label_of[f] for f in kept], dtype=torch.int64)
    return ImageDataset(
        images, label_tensor, class_names, skipped=skipped, source=f"folder:{path}",
        kind="folder", split=split, files=kept,
    )


def _folder_files(root: Path, loose: list[str], dirs: list[str], split: str):
    """An image folder's layout read (see :func:`load_folder`): ``(class_names, files, labels)``, the
    labels None for a flat folder."""
    if _is_split_layout(root, loose, dirs):
        if split == "all":
            splits = dirs
        elif split in dirs:
            splits = [split]
        else:
            raise GanzooError(
                f"folder:{root}: has split folders {', '.join(dirs)}; choose one with split="
                f"{' / '.join(repr(d) for d in dirs)} or 'all' (got {split!r})"
            )
        class_names = sorted({c for s in dirs for c in _visible(root / s)[1]})
        files, labels = [], []
        for s in splits:
            for c in _visible(root / s)[1]:
                found = _walk_images(root, os.path.join(s, c))
                files += found
                labels += [class_names.index(c)] * len(found)
    else:
        if split not in ("train", "all"):
            raise GanzooError(
                f"folder:{root}: has no split folders, so there is no {split!r} split; "
                "use split='train' (or 'all'), or give it train/ test/ sub-folders"
            )
        class_dirs = [d for d in dirs if _walk_images(root, d)]
        if class_dirs and loose:
            raise GanzooError(
                f"folder:{root}: has both loose images (e.g. {loose[0]}) and class folders "
                f"({', '.join(class_dirs)}); move the loose images into a class folder or into their own folder"
            )
        if class_dirs:
            class_names = class_dirs
            files, labels = [], []
            for k, c in enumerate(class_dirs):
                found = _walk_images(root, c)
                files += found
                labels += [k] * len(found)
        else:
            class_names, files, labels = [], list(loose), None

    return class_names, files, labels


# --------------------------------------------------------------------------- UTKFace

_UTK_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)\.jpg\.chip\.jpg$")


def parse_utkface_name(name: str) -> tuple[int, int, int, bool]:
    """``(age, gender, race, well_formed)`` from a UTKFace file name; ``-1`` = unknown.

    Well-formed: ``age_gender_race_date.jpg.chip.jpg`` with gender 0/1 and race
    0-4. For other names only what is unambiguous is kept: the age (always
    the first field), and gender and race when the name has all three leading
    fields (e.g. ``24_0_1_20170116220224657 .jpg.chip.jpg``, whose only fault is
    a space). A name with a field missing (``39_1_20170116174525125.jpg.chip.jpg``)
    gets gender and race -1, since which one is missing cannot be told.
    """
    m = _UTK_NAME.match(name)
    fields = name.split("_")
    age = int(fields[0]) if fields[0].isdigit() else -1
    gender = race = -1
    if len(fields) >= 4 and fields[1].isdigit() and fields[2].isdigit():
        g, r = int(fields[1]), int(fields[2])
        gender = g if g in (0, 1) else -1
        race = r if 0 <= r <= 4 else -1
    well_formed = m is not None and min(age, gender, race) >= 0
    return age, gender, race, well_formed


def _age_group(age: int) -> int:
    if age < 0:
        return -1
    for k, (_, lo, hi) in enumerate(AGE_GROUPS):
        if lo <= age <= hi:
            return k
    return -1


def _utkface_root(root: Path) -> Path:
    """The flat image folder: ``root`` itself, or its one sub-folder that holds the images."""
    loose, dirs = _visible(root)
    if loose:
        return root
    with_images = [d for d in dirs if _visible(root / d)[0]]
    if len(with_images) == 1:
        return root / with_images[0]
    if not with_images:
        raise GanzooError(
            f"utkface:{root}: no images found; point it at the flat folder of age_gender_race_date.jpg.chip.jpg files"
        )
    raise GanzooError(
        f"utkface:{root}: no images directly inside, and several sub-folders have some "
        f"({', '.join(with_images)}); point it at the one flat folder of UTKFace images"
    )


def load_utkface(
    path: str | os.PathLike, *, image_size: int, channels: int, split: str = "train", label: str | None = None
) -> ImageDataset:
    """UTKFace: a flat folder of ``age_gender_race_date.jpg.chip.jpg`` (the folder holding it works too).

    ``label``: ``None`` (unconditional, the default; ``labels`` is ``None``),
    ``"gender"`` (0 Male, 1 Female), ``"race"`` (0 White, 1 Black, 2 Asian,
    3 Indian, 4 Others) or ``"age_group"`` with the bins of :data:`AGE_GROUPS`:
    0-2, 3-9, 10-19, 20-29, 30-39, 40-49, 50-59, 60-69, 70+ (9 classes).
    Every image is kept; an image whose requested label cannot be read from its
    name gets label -1 (:meth:`ImageDataset.labelled` drops those). Names that
    don't follow the pattern are listed in ``malformed`` (see
    :func:`parse_utkface_name` for what is still read from them).
    ``attributes`` holds ``age``, ``gender`` and ``race`` for every image
    (-1 = unknown). UTKFace has no splits: ``split`` must be ``"train"`` or ``"all"``.
    Byte-identical duplicate files (390 in the full set) are kept as they are.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise GanzooError(f"utkface:{root}: no such folder; point it at the folder of UTKFace .jpg.chip.jpg files")
    if label not in (None, *UTKFACE_LABELS):
        raise GanzooError(
            f"utkface:{root}: unknown label {label!r}; use None (unconditional), "
            + ", ".join(repr(k) for k in UTKFACE_LABELS)
        )
    if split not in ("train", "all"):
        raise GanzooError(f"utkface:{root}: UTKFace has no {split!r} split; use split='train' (all images)")
    root = _utkface_root(root)
    files = _visible(root)[0]
    images, kept, skipped = _decode_cached(
        "utkface", root, files, image_size=image_size, channels=channels, split=split
    )
    if not kept:
        raise _nothing_loaded("utkface", root, files, skipped)
    parsed = [parse_utkface_name(f) for f in kept]
    attributes = {
        "age": torch.tensor([p[0] for p in parsed], dtype=torch.int64),
        "gender": torch.tensor([p[1] for p in parsed], dtype=torch.int64),
        "race": torch.tensor([p[2] for p in parsed], dtype=torch.int64),
    }
    malformed = [f for f, p in zip(files, map(parse_utkface_name, files)) if not p[3]]
    labels, class_names = None, []
    if label is not None:
        class_names = UTKFACE_LABELS[label]
        if label == "age_group":
            labels = torch.tensor([_age_group(p[0]) for p in parsed], dtype=torch.int64)
        else:
            labels = attributes[label].clone()
    return ImageDataset(
        images, labels, class_names, skipped=skipped, source=f"utkface:{path}", kind="utkface",
        split=split, files=kept, attributes=attributes, malformed=malformed,
    )
