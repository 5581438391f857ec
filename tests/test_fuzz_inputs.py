"""Bad inputs, as a hostile or careless user gives them: each must end in ONE line on stderr, an exit
status other than 0, no traceback, and nothing written (issue 20).

Classes: crafted safetensors weights, config.json files, Fashion-MNIST IDX .gz files, image files
(JPEG and friends), CLI numbers, paths, and Hub revisions / repo ids. The commands run in-process
(``ganzoo.cli.main``) against one tiny model folder, so the whole module takes seconds.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import ganzoo.trainer
from ganzoo import hub
from ganzoo.cli import main
from ganzoo.trainer import TrainConfig, train


# ---- fixtures ---------------------------------------------------------------------------------------


def _idx_bytes(n: int = 8, rows: int = 28, cols: int = 28, magic: int = 0x803) -> tuple[bytes, bytes]:
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, rows, cols, generator=g) * 255).to(torch.uint8)
    labels = (torch.arange(n) % 10).to(torch.uint8)
    return (struct.pack(">IIII", magic, n, rows, cols) + images.numpy().tobytes(),
            struct.pack(">II", 0x801, n) + labels.numpy().tobytes())


@pytest.fixture(scope="module")
def world(tiny_arch, tmp_path_factory):
    """A run (2 steps) of the tiny architecture, its model folder, and a good IDX data folder."""
    root = tmp_path_factory.mktemp("fuzz")
    data = root / "fmnist"
    data.mkdir()
    imgs, labs = _idx_bytes(16)
    (data / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(imgs))
    (data / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labs))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ganzoo.trainer.Trainer, "plot_losses", lambda self: None)
        run = root / "run"
        train(TrainConfig(arch="tiny", data=f"fashion-mnist:{data}", steps=2, seed=1, checkpoint_every=2), run,
              progress=False)
    folder = hub.export_model(run, root / "model")
    return {"root": root, "run": run, "folder": folder, "data": data}


def _snapshot(*roots: Path) -> dict[str, tuple]:
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            st = p.lstat()
            # a folder's own mtime is left out: the output check creates and removes a probe file in it
            out[str(p)] = (None, None, True) if p.is_dir() else (st.st_size, st.st_mtime_ns, False)
    return out


def _bad_input(argv: list, capsys, *roots: Path, expect: str | None = None) -> str:
    """Run ``ganzoo ARGV`` in-process: exit != 0, exactly one stderr line, no traceback, nothing written
    under ``roots``; returns that line."""
    before = _snapshot(*roots)
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    except BaseException as exc:  # an escaped exception is the failure this module looks for
        pytest.fail(f"ganzoo {' '.join(map(str, argv))} raised {type(exc).__name__}: {exc}")
    err = capsys.readouterr().err
    assert rc not in (0, None), f"exit {rc} for {argv}: {err}"
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"{len(lines)} lines on stderr for {argv}:\n{err}"
    assert lines[0].startswith(("ganzoo: error:", "ganzoo ")), lines[0]
    assert _snapshot(*roots) == before, f"{argv} wrote something"
    if expect:
        assert expect in lines[0], lines[0]
    return lines[0]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "ganzoo-cache"))


def _model_copy(world, tmp_path) -> Path:
    return Path(shutil.copytree(world["folder"], tmp_path / "m"))


# ---- 1. crafted safetensors ------------------------------------------------------------------------------
def _header(meta: dict) -> bytes:
    h = json.dumps(meta).encode()
    return struct.pack("<Q", len(h)) + h


def _crafted(good: bytes, state: dict[str, torch.Tensor], how: str) -> bytes | dict | None:
    """Bytes of a bad safetensors file, or a state dict to save, built from a good one."""
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    first = dict(state)
    if how == "empty":
        return b""
    if how == "one-byte":
        return b"\x00"
    if how == "huge-header-length":
        return struct.pack("<Q", 1 << 62) + b"{}"
    if how == "header-longer-than-file":
        return struct.pack("<Q", 10_000) + b"{}"
    if how == "header-not-json":
        return _header({})[:8] + b"not json"
    if how == "header-array":
        return _header([1, 2, 3])  # type: ignore[arg-type]
    if how == "bad-dtype":
        return _header({key: {"dtype": "Q99", "shape": [1], "data_offsets": [0, 4]}}) + b"\0" * 4
    if how == "offsets-out-of-range":
        return _header({key: {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]}}) + b"\0" * 16
    if how == "shape-size-mismatch":
        return _header({key: {"dtype": "F32", "shape": [1000], "data_offsets": [0, 16]}}) + b"\0" * 16
    if how == "truncated-half":
        return good[: len(good) // 2]
    if how == "truncated-last-byte":
        return good[:-1]
    if how == "random":
        return os.urandom(4096)
    if how == "pickle":
        import io

        buf = io.BytesIO()
        torch.save(state, buf)
        return buf.getvalue()
    if how == "lfs-pointer":
        return b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 1234\n"
    if how == "zip":
        return b"PK\x03\x04" + os.urandom(200)
    v = state[key]
    if how in ("nan", "inf", "-inf"):
        first[key] = v.clone().fill_(float(how))
    elif how == "one-nan":
        t = v.clone()
        t.view(-1)[-1] = float("nan")
        first[key] = t
    elif how in ("int32", "int64", "uint8", "int8", "int16"):
        first[key] = v.to(getattr(torch, how))
    elif how == "bool":
        first[key] = v > 0
    elif how == "missing-key":
        first.pop(key)
    elif how == "extra-key":
        first["evil.extra"] = torch.zeros(1)
    elif how == "wrong-shape":
        first[key] = torch.zeros(*[s + 1 for s in v.shape])
    elif how == "scalar":
        first[key] = torch.tensor(1.0)
    elif how == "no-tensors":
        first = {}
    else:
        raise AssertionError(how)
    return first


SAFETENSORS_CASES = ["empty", "one-byte", "huge-header-length", "header-longer-than-file", "header-not-json",
                     "header-array", "bad-dtype", "offsets-out-of-range", "shape-size-mismatch", "truncated-half",
                     "truncated-last-byte", "random", "pickle", "lfs-pointer", "zip", "nan", "inf", "-inf",
                     "one-nan", "int32", "int64", "uint8", "int8", "int16", "bool", "missing-key", "extra-key",
                     "wrong-shape", "scalar", "no-tensors"]


@pytest.mark.parametrize("how", SAFETENSORS_CASES)
@pytest.mark.parametrize("part", ["generator", "discriminator"])
def test_crafted_safetensors(world, tmp_path, capsys, part, how):
    m = _model_copy(world, tmp_path)
    f = m / f"{part}.safetensors"
    made = _crafted(f.read_bytes(), load_file(str(f)), how)
    if isinstance(made, dict):
        save_file(made, str(f))
    else:
        f.write_bytes(made)
    out = tmp_path / "out"
    if part == "generator":  # `sample` reads the generator only
        _bad_input(["sample", m, "-n", "1", "-o", out / "x.png"], capsys, tmp_path, expect=part)
    else:  # `export` reads both networks
        _bad_input(["export", m, out], capsys, tmp_path, expect=part)
    assert not out.exists()


# ---- 2. config.json --------------------------------------------------------------------------------------
def _arch(**fields):
    def edit(cfg):
        cfg["arch_config"].update(fields)
        return cfg
    return edit


def _top(**fields):
    def edit(cfg):
        cfg.update(fields)
        return cfg
    return edit


CONFIG_TEXT_CASES = {
    "empty": "",
    "not-json": "architecture: tiny",
    "truncated": '{"architecture": "tiny", "arch_con',
    "array": "[1, 2, 3]",
    "string": '"tiny"',
    "null": "null",
    "number": "42",
    "deep-arrays": "[" * 200_000 + "]" * 200_000,
    "deep-objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "bom": "\ufeff{}",
    "nan-literal-top": "NaN",
}
CONFIG_BYTES_CASES = {
    "invalid-utf8": b'{"architecture": "\xff\xfe"}',
    "utf16": json.dumps({"architecture": "tiny"}).encode("utf-16"),
    "nul-bytes": b"\0" * 64,
    "huge": b'{"pad": "' + b"x" * (2 << 20) + b'"}',
}
CONFIG_EDIT_CASES = {
    "no-architecture": lambda c: {k: v for k, v in c.items() if k != "architecture"},
    "no-arch-config": lambda c: {k: v for k, v in c.items() if k != "arch_config"},
    "architecture-int": _top(architecture=7),
    "architecture-unknown": _top(architecture="nosuch"),
    "arch-config-list": _top(arch_config=[1, 2]),
    "unknown-field": _arch(evil=1),
    "width-negative": _arch(width=-4),
    "width-zero": _arch(width=0),
    "width-string": _arch(width="8"),
    "width-float": _arch(width=8.5),
    "width-bool": _arch(width=True),
    "width-null": _arch(width=None),
    "width-list": _arch(width=[8]),
    "width-huge": _arch(width=10 ** 9),
    "width-bigint": _arch(width=10 ** 40),
    "dropout-string": _arch(dropout="0.1"),
    "dropout-negative": _arch(dropout=-0.5),
    "dropout-inf": _arch(dropout=float("inf")),
    "dropout-nan": _arch(dropout=float("nan")),
    "batchnorm-string": _arch(batchnorm="yes"),
    "batchnorm-int": _arch(batchnorm=1),
    "image-size-unsupported": _arch(image_size=17),
    "image-size-negative": _arch(image_size=-16),
    "channels-2": _arch(channels=2),
    "latent-zero": _arch(latent_dim=0),
    "num-classes-negative": _arch(num_classes=-1),
    "num-classes-unconditional": _arch(num_classes=3),
    "image-shape-mismatch": _top(image_shape=[3, 16, 16]),
    "image-shape-short": _top(image_shape=[1, 16]),
    "image-shape-string": _top(image_shape="1x16x16"),
    "format-future": _top(ganzoo_format=99),
    "format-string": _top(ganzoo_format="1"),
    "format-bool": _top(ganzoo_format=True),
    "weights-list": _top(weights=[1]),
    "weights-dtype-int8": _top(weights={"generator": {"file": "generator.safetensors", "dtype": "int8"}}),
    "weights-pickle-file": _top(weights={"generator": {"file": "generator.pkl"}}),
    "class-names-int": _top(class_names=5),
    "plugin-list": _top(plugin=["x"]),
    "latent-dim-string": _top(latent_dim="8"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_TEXT_CASES) + sorted(CONFIG_BYTES_CASES) + sorted(CONFIG_EDIT_CASES))
def test_crafted_config_json(world, tmp_path, capsys, case):
    m = _model_copy(world, tmp_path)
    cfg_path = m / "config.json"
    if case in CONFIG_TEXT_CASES:
        cfg_path.write_text(CONFIG_TEXT_CASES[case])
    elif case in CONFIG_BYTES_CASES:
        cfg_path.write_bytes(CONFIG_BYTES_CASES[case])
    else:
        cfg = CONFIG_EDIT_CASES[case](json.loads(cfg_path.read_text()))
        cfg_path.write_text(json.dumps(cfg))  # NaN/Infinity as Python's json writes them
    out = tmp_path / "x.png"
    line = _bad_input(["sample", m, "-n", "1", "-o", out], capsys, tmp_path)
    assert "config" in line.lower() or "architecture" in line or "format" in line, line


# ---- 3. IDX .gz files -----------------------------------------------------------------------------------------
def _idx_case(case: str) -> dict[str, bytes | None]:
    imgs, labs = _idx_bytes(8)
    gz = gzip.compress
    files = {"train-images-idx3-ubyte.gz": gz(imgs), "train-labels-idx1-ubyte.gz": gz(labs)}
    img, lab = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
    if case == "no-images":
        files[img] = None
    elif case == "no-labels":
        files[lab] = None
    elif case == "empty-gz":
        files[img] = b""
    elif case == "not-gzip":
        files[img] = imgs
    elif case == "truncated-gzip":
        files[img] = gz(imgs)[:-20]
    elif case == "corrupt-gzip":
        raw = bytearray(gz(imgs))
        raw[len(raw) // 2] ^= 0xFF
        files[img] = bytes(raw)
    elif case == "bad-crc":
        raw = bytearray(gz(imgs))
        raw[-8] ^= 0xFF
        files[img] = bytes(raw)
    elif case == "bad-magic":
        files[img] = gz(b"\0\0\x08\x04" + imgs[4:])
    elif case == "labels-bad-magic":
        files[lab] = gz(b"\0\0\x08\x03" + labs[4:])
    elif case == "short-header":
        files[img] = gz(imgs[:10])
    elif case == "zero-images":
        files[img] = gz(struct.pack(">IIII", 0x803, 0, 28, 28))
    elif case == "payload-short":
        files[img] = gz(imgs[:-5])
    elif case == "payload-long":
        files[img] = gz(imgs + b"\0" * 7)
    elif case == "dims-huge":
        files[img] = gz(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28) + imgs[16:])
    elif case == "label-count-mismatch":
        files[lab] = gz(struct.pack(">II", 0x801, 7) + labs[8:15])
    elif case == "swapped":
        files[img], files[lab] = files[lab], files[img]
    elif case == "labels-out-of-range":
        files[lab] = gz(struct.pack(">II", 0x801, 8) + bytes([200] * 8))
    elif case == "images-is-dir":
        files[img] = "dir"  # type: ignore[assignment]
    elif case == "empty-folder":
        files = {img: None, lab: None}
    elif case == "random-gz":
        files[img] = gz(os.urandom(1000))
    else:
        raise AssertionError(case)
    return files


IDX_CASES = ["no-images", "no-labels", "empty-gz", "not-gzip", "truncated-gzip", "corrupt-gzip", "bad-crc",
             "bad-magic", "labels-bad-magic", "short-header", "zero-images", "payload-short", "payload-long",
             "dims-huge", "label-count-mismatch", "swapped", "labels-out-of-range", "images-is-dir",
             "empty-folder", "random-gz"]


@pytest.mark.parametrize("case", IDX_CASES)
def test_crafted_idx_files(tmp_path, capsys, case):
    d = tmp_path / "fm"
    d.mkdir()
    for name, content in _idx_case(case).items():
        if content == "dir":
            (d / name).mkdir()
        elif content is not None:
            (d / name).write_bytes(content)
    _bad_input(["eval", "--real-only", "--data", f"fashion-mnist:{d}", "--image-size", "16", "--channels", "1",
                "--extractor", "fmnist", "--metrics", "fid", "--quiet"], capsys, tmp_path / "fm")


# ---- 4. image files (a folder dataset of only bad images; project's target image) -----------------------------
def _image_case(case: str) -> tuple[str, bytes]:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buf, "JPEG")
    jpeg = buf.getvalue()
    buf = BytesIO()
    Image.new("RGB", (32, 32)).save(buf, "PNG")
    png = buf.getvalue()
    return {
        "empty-jpg": ("x.jpg", b""),
        "soi-only": ("x.jpg", b"\xff\xd8"),
        "truncated-jpg": ("x.jpg", jpeg[:40]),
        "random-jpg": ("x.jpg", os.urandom(2000)),
        "text-jpg": ("x.jpg", b"hello, I am not a picture\n"),
        "html-jpg": ("x.jpg", b"<html><body>404</body></html>"),
        "truncated-png": ("x.png", png[:30]),
        "png-bad-crc": ("x.png", png[:29] + bytes([png[29] ^ 0xFF]) + png[30:]),
        "empty-webp": ("x.webp", b"RIFF\0\0\0\0WEBP"),
        "bmp-header-only": ("x.bmp", b"BM" + b"\0" * 12),
        "gzip-jpg": ("x.jpg", zlib.compress(jpeg)),
        "pdf-jpg": ("x.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"),
    }[case]


IMAGE_CASES = ["empty-jpg", "soi-only", "truncated-jpg", "random-jpg", "text-jpg", "html-jpg", "truncated-png",
               "png-bad-crc", "empty-webp", "bmp-header-only", "gzip-jpg", "pdf-jpg"]


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_folder_dataset_of_unreadable_images(tmp_path, capsys, case):
    d = tmp_path / "imgs"
    d.mkdir()
    name, content = _image_case(case)
    for i in range(3):
        (d / f"{i}{name}").write_bytes(content)
    _bad_input(["eval", "--real-only", "--data", f"folder:{d}", "--image-size", "16", "--channels", "1",
                "--extractor", "fmnist", "--metrics", "fid", "--quiet"], capsys, d, expect="could be read")


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_project_an_unreadable_image(world, tmp_path, capsys, case):
    name, content = _image_case(case)
    img = tmp_path / name
    img.write_bytes(content)
    _bad_input(["project", world["folder"], img, "--steps", "1", "--restarts", "1", "-o", tmp_path / "p.png"],
               capsys, tmp_path, world["folder"], expect="could not read the image")


# ---- 5. CLI numbers --------------------------------------------------------------------------------------------
NUMBER_CASES = [
    ("sample", ["-n", "0"]), ("sample", ["-n", "-1"]), ("sample", ["-n", "abc"]), ("sample", ["-n", "1e3"]),
    ("sample", ["-n", ""]), ("sample", ["-n", "1000000000"]), ("sample", ["-n", "99999999999999999999"]),
    ("sample", ["--nrow", "0"]), ("sample", ["--seed", str(2 ** 64)]), ("sample", ["--seed", str(-2 ** 63 - 1)]),
    ("sample", ["--seed", "1.5"]), ("sample", ["--seed", "x"]), ("sample", ["--truncation", "nan"]),
    ("sample", ["--truncation", "inf"]), ("sample", ["--truncation", "0"]), ("sample", ["--truncation", "-1"]),
    ("sample", ["--per-class", "0"]), ("sample", ["--per-class", "-3"]), ("sample", ["--threads", "0"]),
    ("sample", ["--threads", "-2"]),
    ("eval", ["-n", "0"]), ("eval", ["-n", "1"]), ("eval", ["-n", "1000000000000"]), ("eval", ["--batch-size", "0"]),
    ("eval", ["--kid-subsets", "0"]), ("eval", ["--kid-subset-size", "1"]), ("eval", ["--n-real", "0"]),
    ("eval", ["--seed", str(2 ** 70)]), ("eval", ["--batch-size", "-5"]),
    ("interpolate", ["--steps", "1"]), ("interpolate", ["--steps", "0"]), ("interpolate", ["--steps", "-5"]),
    ("interpolate", ["--steps", "1000000000"]), ("interpolate", ["--duration", "0"]),
    ("interpolate", ["--scale", "0"]), ("interpolate", ["--scale", "1000"]),
    ("interpolate", ["--seeds", "0-1000000000"]), ("interpolate", ["--seeds", "a,b"]),
    ("interpolate", ["--seeds", "5-1"]), ("interpolate", ["--seeds", "3"]),
    ("interpolate", ["--seeds", f"1,{2 ** 70}"]), ("interpolate", ["--truncation", "nan"]),
    ("arithmetic", ["--pool", "0"]), ("arithmetic", ["--per-group", "0"]), ("arithmetic", ["--variations", "-1"]),
    ("arithmetic", ["--noise", "nan"]), ("arithmetic", ["--noise", "-1"]), ("arithmetic", ["--seed", "x"]),
    ("arithmetic", ["--scale", "0"]), ("arithmetic", ["--pool", "1000000000"]),
    ("project", ["--steps", "-1"]), ("project", ["--restarts", "-1"]), ("project", ["--lr", "0"]),
    ("project", ["--lr", "nan"]), ("project", ["--lr", "-1"]), ("project", ["--perceptual-weight", "inf"]),
    ("project", ["--latent-weight", "-1"]), ("project", ["--restarts", "1000000000"]),
    ("project", ["--steps", "0", "--restarts", "0"]),
]


def _argv(world, tmp_path, command: str, extra: list[str]) -> list:
    m = world["folder"]
    if command == "sample":
        return ["sample", m, "-o", tmp_path / "o.png", *extra]
    if command == "eval":
        return ["eval", m, "--data", f"fashion-mnist:{world['data']}", "--extractor", "fmnist", "--metrics", "fid",
                "--quiet", *extra]
    if command == "interpolate":
        seeds = [] if "--seeds" in extra else ["--seeds", "1,2"]
        return ["interpolate", m, *seeds, "-o", tmp_path / "o.gif", *extra]
    if command == "arithmetic":
        return ["arithmetic", m, "--group", "a=1,2", "--group", "b=3", "--expr", "a - b", "-o", tmp_path / "o.png",
                *extra]
    if command == "project":
        from PIL import Image

        img = tmp_path.parent / f"{tmp_path.name}-target.png"
        Image.new("L", (16, 16), 128).save(img)
        return ["project", m, img, "-o", tmp_path / "o.png", *extra]
    raise AssertionError(command)


@pytest.mark.parametrize("command, extra", NUMBER_CASES, ids=[f"{c}{'_'.join(e)}"[:60] for c, e in NUMBER_CASES])
def test_cli_numbers(world, tmp_path, capsys, command, extra):
    _bad_input(_argv(world, tmp_path, command, extra), capsys, tmp_path, world["folder"])


# ---- 6. paths ---------------------------------------------------------------------------------------------------
def _path_case(tmp_path: Path, case: str) -> str:
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "adir.png").mkdir(exist_ok=True)
    (tmp_path / "adir.gif").mkdir(exist_ok=True)
    (tmp_path / "adir.json").mkdir(exist_ok=True)
    return {
        "parent-is-file": str(tmp_path / "afile" / "x.{ext}"),
        "grandparent-is-file": str(tmp_path / "afile" / "a" / "b" / "x.{ext}"),
        "existing-dir": str(tmp_path / "adir.{ext}"),
        "proc": "/proc/ganzoo-x.{ext}",
        "proc-deep": "/proc/self/nope/x.{ext}",
        "sys": "/sys/ganzoo-x.{ext}",
        "dev-null-child": "/dev/null/x.{ext}",
        "root-dir": "/",
        "empty": "",
        "dot": ".",
    }[case]


PATH_CASES = ["parent-is-file", "grandparent-is-file", "existing-dir", "proc", "proc-deep", "sys", "dev-null-child",
              "root-dir", "empty", "dot"]


@pytest.mark.parametrize("case", PATH_CASES)
@pytest.mark.parametrize("command", ["sample", "interpolate", "arithmetic", "project-o", "eval-json"])
def test_output_paths(world, tmp_path, capsys, command, case):
    ext = {"interpolate": "gif", "eval-json": "json"}.get(command, "png")
    target = _path_case(tmp_path, case).replace("{ext}", ext)
    m = world["folder"]
    if command == "eval-json":
        argv = _argv(world, tmp_path, "eval", ["-n", "4", "--json", target])
    elif command == "project-o":
        argv = _argv(world, tmp_path, "project", ["--steps", "1", "--restarts", "1"])
        argv[argv.index("-o") + 1] = target
    else:
        argv = _argv(world, tmp_path, command, [])
        argv[argv.index("-o") + 1] = target
    _bad_input(argv, capsys, tmp_path, m)
    assert (tmp_path / "afile").read_text() == "mine"


EXPORT_PATH_CASES = ["parent-is-file", "grandparent-is-file", "proc", "sys", "dev-null-child", "a-file",
                     "inside-run", "run-itself", "inside-checkpoints"]


@pytest.mark.parametrize("case", EXPORT_PATH_CASES)
def test_export_output_paths(world, tmp_path, capsys, case):
    run = Path(shutil.copytree(world["run"], tmp_path / "run"))
    (tmp_path / "afile").write_text("mine")
    target = {"a-file": tmp_path / "afile", "inside-run": run / "export", "run-itself": run,
              "inside-checkpoints": run / "checkpoints" / "m"}.get(case)
    if target is None:
        target = _path_case(tmp_path, case).replace("x.{ext}", "model")
    _bad_input(["export", run, target, "--overwrite"], capsys, tmp_path)


REF_CASES = ["./nope", "/nonexistent/model", "afile", ".", "..", "a/b/c", "hf://", "hf://a", "model.pt",
             "weights.bin", "nosuch_catalog_name", "org/name/extra@main", "~nosuchuser-ganzoo/x", "hf-hub:a/b/c"]


@pytest.mark.parametrize("ref", REF_CASES)
def test_model_references(tmp_path, capsys, monkeypatch, ref):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("mine")
    _bad_input(["sample", ref, "-n", "1", "-o", tmp_path / "o.png"], capsys, tmp_path)


# ---- 7. revisions and repo ids ------------------------------------------------------------------------------------
REVISION_CASES = ["..", "../../../X", "a/../../b", "/abs", "a//b", ".hidden", "x.lock", "a~1", "a^", "a:b", "a?b",
                  "a*b", "a[b", "a\\b", "@{1}", "@", "x/", "a..b", "a\tb", "a b", "a/./b"]
REPO_CASES = ["org/na..me", "org/-x", "org/x-", "org/x--y", "org/.x", "org/x.git", "a/b/c", "org/na me",
              "org/" + "x" * 97, "org/", "/name", "org/n$me"]


@pytest.mark.parametrize("rev", REVISION_CASES)
@pytest.mark.parametrize("how", ["@", "--revision"])
def test_bad_revisions(world, tmp_path, capsys, monkeypatch, rev, how):
    if how == "@":
        argv = ["sample", f"org/name@{rev}", "-n", "1", "-o", tmp_path / "o.png"]
        line = _bad_input(argv, capsys, tmp_path)
    else:  # the API's revision= (no CLI flag): the same check, as an exception
        from ganzoo.errors import GanzooError

        with pytest.raises(GanzooError) as info:
            hub.load("org/name", revision=rev)
        line = str(info.value)
        assert "\n" not in line
    assert "revision" in line or "Hub id" in line, line
    assert "HF_HUB_OFFLINE" not in line, line  # refused before any download was tried


@pytest.mark.parametrize("repo", REPO_CASES)
def test_bad_repo_ids(tmp_path, capsys, monkeypatch, repo):
    monkeypatch.chdir(tmp_path)
    line = _bad_input(["sample", repo, "-n", "1", "-o", tmp_path / "o.png"], capsys, tmp_path)
    assert "HF_HUB_OFFLINE" not in line, line
