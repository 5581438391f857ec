"""The data layer: Fashion-MNIST IDX files, image folders, UTKFace, the cache, batches.

Every test makes its own tiny data in tmp_path; only the ``realdata`` test
reads ../shared/datasets (skipped when it is absent).
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo.data as data
from ganzoo.data import ImageDataset, load_dataset, parse_spec
from ganzoo.errors import GanzooError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Never write a cache outside tmp_path."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))


# --------------------------------------------------------------------------- helpers


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, *,
              image_magic=0x803, label_magic=0x801, cut=0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    img = struct.pack(">IIII", image_magic, n, h, w) + images.astype(np.uint8).tobytes()
    if cut:
        img = img[:-cut]
    lab = struct.pack(">II", label_magic, len(labels)) + labels.astype(np.uint8).tobytes()
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(img))
    (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(lab))


def fmnist(tmp_path: Path, n_train=20, n_test=10) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    root = tmp_path / "fmnist"
    images = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    labels = np.arange(n_train) % 10
    write_idx(root, "train", images, labels)
    write_idx(root, "t10k", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), np.arange(n_test) % 10)
    return root, images, labels


def save_image(path: Path, size=(40, 30), color=None, seed=0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if color is None:
        arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    else:
        arr = np.broadcast_to(np.array(color, dtype=np.uint8), (size[1], size[0], 3)).copy()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP"}[path.suffix.lower()]
    Image.fromarray(arr).save(path, format=fmt)


# --------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_fashion_mnist_shapes_and_labels(tmp_path, size, channels):
    root, images, labels = fmnist(tmp_path)
    ds = load_dataset(f"fashion-mnist:{root}", image_size=size, channels=channels)
    assert ds.images.shape == (20, channels, size, size)
    assert ds.images.dtype == torch.uint8 and ds.images.is_contiguous()
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels.tolist()
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot" and ds.num_classes == 10
    assert ds.skipped == [] and ds.source == f"fashion-mnist:{root}"
    if size == 28:
        assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
    if channels == 3:
        assert torch.equal(ds.images[:, 0], ds.images[:, 2])
    x, y = ds[3]
    assert x.shape == (channels, size, size) and x.dtype == torch.float32
    assert -1.0 <= x.min() and x.max() <= 1.0 and y == 3
    assert f"20 images {channels}x{size}x{size}" in ds.describe()


def test_fashion_mnist_resize_matches_interpolate(tmp_path):
    root, images, _ = fmnist(tmp_path)
    ds = load_dataset(f"fashion-mnist:{root}", image_size=64, channels=1)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(images).float()[:, None], size=(64, 64), mode="bilinear", antialias=True
    )
    # equal up to how ties at .5 round
    assert (ds.images.float() - ref).abs().max() <= 0.5 + 1e-3


def test_fashion_mnist_splits(tmp_path):
    root, _, _ = fmnist(tmp_path)
    assert len(load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1, split="test")) == 10
    assert len(load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1, split="all")) == 30
    with pytest.raises(GanzooError, match="split"):
        load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1, split="valid")


def test_fashion_mnist_bad_magic(tmp_path):
    root = tmp_path / "f"
    write_idx(root, "train", np.zeros((5, 28, 28)), np.zeros(5), image_magic=0x801)
    with pytest.raises(GanzooError, match=r"train-images-idx3-ubyte\.gz.*magic"):
        load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1)
    write_idx(root, "train", np.zeros((5, 28, 28)), np.zeros(5), label_magic=0x803)
    with pytest.raises(GanzooError, match=r"train-labels-idx1-ubyte\.gz.*magic"):
        load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1)


def test_fashion_mnist_truncated_payload(tmp_path):
    root = tmp_path / "f"
    write_idx(root, "train", np.zeros((5, 28, 28)), np.zeros(5), cut=100)
    with pytest.raises(GanzooError, match=r"train-images-idx3-ubyte\.gz.*truncated"):
        load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1)


def test_fashion_mnist_not_gzip_and_count_mismatch(tmp_path):
    root, _, _ = fmnist(tmp_path)
    good = (root / "train-images-idx3-ubyte.gz").read_bytes()
    (root / "train-images-idx3-ubyte.gz").write_bytes(good[: len(good) // 2])  # cut-off download
    with pytest.raises(GanzooError, match=r"train-images-idx3-ubyte\.gz"):
        load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1)
    write_idx(root, "train", np.zeros((5, 28, 28)), np.zeros(4))
    with pytest.raises(GanzooError, match=r"train-labels-idx1-ubyte\.gz.*4 labels.*5 images"):
        load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1)


def test_fashion_mnist_missing_file(tmp_path):
    root, _, _ = fmnist(tmp_path)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1)  # train does not need it
    with pytest.raises(GanzooError, match=r"missing t10k-labels-idx1-ubyte\.gz"):
        load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1, split="test")
    with pytest.raises(GanzooError, match="no such folder"):
        load_dataset(f"fashion-mnist:{tmp_path / 'nope'}", image_size=28, channels=1)


# --------------------------------------------------------------------------- folders


def class_folder(root: Path) -> None:
    save_image(root / "cat" / "a.png", (40, 40), seed=1)
    save_image(root / "cat" / "b.JPG", (64, 48), seed=2)
    save_image(root / "Bird" / "c.JPEG", (20, 20), seed=3)
    save_image(root / "Bird" / "d.webp", (33, 50), seed=4)
    save_image(root / "dog" / "e.bmp", (30, 30), seed=5)
    save_image(root / "dog" / "sub" / "f.jpeg", (30, 30), seed=6)  # deeper inside a class: kept
    (root / "dog" / "broken.jpg").write_bytes(os.urandom(300))  # corrupt: skipped
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("ignored")
    save_image(root / ".hidden" / "x.png", (30, 30))  # hidden: ignored


def test_folder_classes(tmp_path):
    root = tmp_path / "imgs"
    class_folder(root)
    ds = load_dataset(f"folder:{root}", image_size=16, channels=3)
    assert ds.images.shape == (6, 3, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.class_names == ["Bird", "cat", "dog"]
    assert sorted(ds.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert len(ds.skipped) == 1 and "broken.jpg" in ds.skipped[0]
    assert dict(zip(ds.files, ds.labels.tolist()))[os.path.join("dog", "sub", "f.jpeg")] == 2
    assert "1 skipped" in ds.describe() and "3 classes" in ds.describe()
    gray = load_dataset(f"folder:{root}", image_size=8, channels=1)
    assert gray.images.shape == (6, 1, 8, 8)


def test_folder_center_crop(tmp_path):
    # a wide image: red | green | blue thirds; the center crop is the green third
    arr = np.zeros((30, 90, 3), dtype=np.uint8)
    arr[:, :30, 0] = 255
    arr[:, 30:60, 1] = 255
    arr[:, 60:, 2] = 255
    root = tmp_path / "wide"
    root.mkdir()
    Image.fromarray(arr).save(root / "w.png")
    ds = load_dataset(f"folder:{root}", image_size=10, channels=3)
    assert ds.labels is None and ds.class_names == []
    mid = ds.images[0, :, 2:8, 2:8].float().mean(dim=(1, 2))
    assert mid[1] > 240 and mid[0] < 15 and mid[2] < 15


def test_folder_split_layout(tmp_path):
    root = tmp_path / "jelly"
    for split, classes in {"train": ["moon", "blue"], "test": ["blue"], "valid": ["moon", "blue"]}.items():
        for k, c in enumerate(classes):
            save_image(root / split / c / f"{split}{k}.jpg", (24, 24), seed=k)
            save_image(root / split / c / f"{split}{k}b.PNG", (24, 20), seed=k + 10)
    (root / "SOURCE.md").write_text("notes")
    train = load_dataset(f"folder:{root}", image_size=8, channels=3)
    assert len(train) == 4 and train.class_names == ["blue", "moon"] and train.split == "train"
    test = load_dataset(f"folder:{root}", image_size=8, channels=3, split="test")
    assert len(test) == 2 and test.class_names == ["blue", "moon"] and test.labels.tolist() == [0, 0]
    everything = load_dataset(f"folder:{root}", image_size=8, channels=3, split="all")
    assert len(everything) == 10
    with pytest.raises(GanzooError, match="split"):
        load_dataset(f"folder:{root}", image_size=8, channels=3, split="val")


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GanzooError, match=f"folder:{empty}.*no images"):
        load_dataset(f"folder:{empty}", image_size=8, channels=3)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(GanzooError, match="could be read"):
        load_dataset(f"folder:{bad}", image_size=8, channels=3)
    with pytest.raises(GanzooError, match="no such folder"):
        load_dataset(f"folder:{tmp_path / 'missing'}", image_size=8, channels=3)
    mixed = tmp_path / "mixed"
    save_image(mixed / "loose.png")
    save_image(mixed / "cls" / "a.png")
    with pytest.raises(GanzooError, match="loose images"):
        load_dataset(f"folder:{mixed}", image_size=8, channels=3)
    with pytest.raises(GanzooError, match="no split folders"):
        load_dataset(f"folder:{mixed / 'cls'}", image_size=8, channels=3, split="test")


# --------------------------------------------------------------------------- UTKFace

UTK_GOOD = ["25_0_0_20170116174525125.jpg.chip.jpg", "3_1_2_20161219140635530.jpg.chip.jpg",
            "75_1_4_20170109150557335.jpg.chip.jpg"]
UTK_BAD = ["39_1_20170116174525125.jpg.chip.jpg", "24_0_1_2017 .jpg.chip.jpg", "55_0_0_2017jpg.chip.jpg"]


def utkface(tmp_path: Path) -> Path:
    root = tmp_path / "utkface" / "UTKFace"
    for i, name in enumerate(UTK_GOOD + UTK_BAD):
        save_image(root / name, (20, 20), seed=i)
    (tmp_path / "utkface" / "SOURCE.md").write_text("notes")
    return root


def test_utkface_labels(tmp_path):
    root = utkface(tmp_path)
    plain = load_dataset(f"utkface:{root.parent}", image_size=8, channels=3)  # the folder holding it works
    assert len(plain) == 6 and plain.labels is None and plain.class_names == []
    assert sorted(plain.malformed) == sorted(UTK_BAD)
    assert "3 malformed" in plain.describe()
    attrs = {f: (int(plain.attributes["age"][i]), int(plain.attributes["gender"][i]), int(plain.attributes["race"][i]))
             for i, f in enumerate(plain.files)}
    assert attrs[UTK_GOOD[0]] == (25, 0, 0) and attrs[UTK_GOOD[2]] == (75, 1, 4)
    assert attrs["39_1_20170116174525125.jpg.chip.jpg"] == (39, -1, -1)  # which field is missing is unknown
    assert attrs["24_0_1_2017 .jpg.chip.jpg"] == (24, 0, 1)  # only the date part is off

    gender = load_dataset(f"utkface:{root}", image_size=8, channels=3, label="gender")
    assert gender.class_names == ["Male", "Female"]
    by_file = dict(zip(gender.files, gender.labels.tolist()))
    assert by_file[UTK_GOOD[1]] == 1 and by_file["39_1_20170116174525125.jpg.chip.jpg"] == -1
    assert len(gender.labelled()) == 5

    race = load_dataset(f"utkface:{root}", image_size=8, channels=1, label="race")
    assert race.class_names[4] == "Others" and dict(zip(race.files, race.labels.tolist()))[UTK_GOOD[2]] == 4

    age = load_dataset(f"utkface:{root}", image_size=8, channels=3, label="age_group")
    groups = dict(zip(age.files, (age.class_names[k] for k in age.labels.tolist())))
    assert groups[UTK_GOOD[0]] == "20-29" and groups[UTK_GOOD[1]] == "3-9" and groups[UTK_GOOD[2]] == "70+"
    assert groups["39_1_20170116174525125.jpg.chip.jpg"] == "30-39"

    with pytest.raises(GanzooError, match="unknown label 'age'"):
        load_dataset(f"utkface:{root}", image_size=8, channels=3, label="age")


# --------------------------------------------------------------------------- specs and registry


def test_registered_kinds():
    from ganzoo.plugins import get_registry

    reg = get_registry()
    for kind in ("fashion-mnist", "folder", "utkface"):
        assert kind in reg.datasets and reg.provider[("dataset", kind)] == "ganzoo"


def test_parse_spec(tmp_path):
    assert parse_spec(f"folder:{tmp_path}") == ("folder", str(tmp_path))
    assert parse_spec("folder:~/x")[1] == os.path.expanduser("~/x")
    with pytest.raises(GanzooError, match="KIND:PATH"):
        parse_spec(str(tmp_path))
    with pytest.raises(GanzooError, match=r"unknown dataset kind 'foldr'.*did you mean 'folder'.*fashion-mnist"):
        parse_spec("foldr:x")
    with pytest.raises(GanzooError, match="no path"):
        parse_spec("utkface:")
    with pytest.raises(GanzooError, match="no kind"):
        parse_spec(":x")
    with pytest.raises(GanzooError, match="channels"):
        load_dataset(f"folder:{tmp_path}", image_size=8, channels=2)
    with pytest.raises(GanzooError, match="image size"):
        load_dataset(f"folder:{tmp_path}", image_size=0, channels=3)


# --------------------------------------------------------------------------- cache


def test_cache_round_trip_and_corrupt_entry(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    class_folder(root)
    cache = tmp_path / "cache" / "datasets"

    load_dataset(f"folder:{root}", image_size=8, channels=3)
    assert not cache.exists()  # fast loads are not cached

    monkeypatch.setattr(data, "CACHE_MIN_SECONDS", -1.0)
    first = load_dataset(f"folder:{root}", image_size=8, channels=3)
    entries = list(cache.glob("*.pt"))
    assert len(entries) == 1 and not list(cache.glob("*.tmp"))

    real_decode = data.decode_images
    calls = []

    def counting_decode(*args, **kwargs):
        calls.append(1)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(data, "decode_images", counting_decode)
    again = load_dataset(f"folder:{root}", image_size=8, channels=3)
    assert calls == []  # served from the cache
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    assert again.skipped == first.skipped and again.files == first.files
    assert again.fingerprint() == first.fingerprint()

    entries[0].write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="corrupt dataset cache"):
        rebuilt = load_dataset(f"folder:{root}", image_size=8, channels=3)
    assert calls == [1] and torch.equal(rebuilt.images, first.images)
    load_dataset(f"folder:{root}", image_size=8, channels=3)
    assert calls == [1]  # the rebuilt entry is valid again

    load_dataset(f"folder:{root}", image_size=16, channels=3)  # another size: another entry
    assert len(list(cache.glob("*.pt"))) == 2
    save_image(root / "cat" / "new.png", seed=9)  # the files changed: rebuilt
    assert len(load_dataset(f"folder:{root}", image_size=8, channels=3)) == 7 and len(calls) == 3


def test_cache_fashion_mnist(tmp_path, monkeypatch):
    root, _, _ = fmnist(tmp_path)
    monkeypatch.setattr(data, "CACHE_MIN_SECONDS", -1.0)
    a = load_dataset(f"fashion-mnist:{root}", image_size=32, channels=3)
    monkeypatch.setattr(data, "_read_idx", lambda *a, **k: pytest.fail("not cached"))
    b = load_dataset(f"fashion-mnist:{root}", image_size=32, channels=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


# --------------------------------------------------------------------------- batches


def test_batch_and_getitem(tmp_path):
    root, images, labels = fmnist(tmp_path)
    ds = load_dataset(f"fashion-mnist:{root}", image_size=32, channels=3)
    idx = torch.tensor([4, 0, 7])
    x, y = ds.batch(idx)
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and y.tolist() == [4, 0, 7]
    assert torch.allclose(x[1], ds[0][0])
    assert torch.allclose((x + 1) * 127.5, ds.images[idx].float(), atol=1e-4)
    xc, _ = ds.batch(idx, device="cpu", channels_last=True)
    assert xc.is_contiguous(memory_format=torch.channels_last) and torch.equal(xc, x)
    assert ds.pin_memory() is ds  # a no-op without CUDA

    flat = ImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))
    fx, fy = flat.batch(torch.tensor([1]))
    assert fy is None and fx.shape == (1, 1, 4, 4) and fx.eq(-1).all()
    assert flat[0][1] == -1


def test_fingerprint_and_subset(tmp_path):
    root, _, _ = fmnist(tmp_path)
    ds = load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1)
    same = load_dataset(f"fashion-mnist:{root}", image_size=28, channels=1)
    assert ds.fingerprint() == same.fingerprint() and len(ds.fingerprint()) == 64
    part = ds.subset([0, 1, 2])
    assert len(part) == 3 and part.labels.tolist() == [0, 1, 2]
    assert part.fingerprint() != ds.fingerprint()


# --------------------------------------------------------------------------- the real data


@pytest.mark.realdata
def test_real_fashion_mnist_test_split():
    root = SHARED / "fashion-mnist"
    if not (root / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{root} not present")
    ds = load_dataset(f"fashion-mnist:{root}", image_size=32, channels=1, split="test")
    assert ds.images.shape == (10000, 1, 32, 32)
    assert torch.bincount(ds.labels, minlength=10).tolist() == [1000] * 10
