"""`ganzoo export --format onnx|torchscript`: every released model and every registered architecture
(at its smallest size) runs in ONNX Runtime and after torch.jit.load as it does in PyTorch, with a
dynamic batch axis; bad input gets one line."""
from __future__ import annotations

import json

import pytest
import torch

import ganzoo
from ganzoo import deploy
from ganzoo.cli import main
from ganzoo.errors import GanzooError
from ganzoo.plugins import get_registry

onnx = pytest.importorskip("onnx", reason="the [onnx] extra is not installed: pip install -e '.[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed: pip install -e '.[onnx]'")

# PyTorch 2.14 deprecates torch.jit (for torch.export); its files still load, which is what is checked
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
TOL = 1e-4  # images in [-1, 1]: a tenth of a thousandth of the range
ARCHS = ganzoo.list_architectures()  # from the registry: a new plugin's architecture is covered by itself
MODELS = ganzoo.list_pretrained()


def _small(arch: str):
    """The architecture at its smallest image size (3 classes when it is class-conditional)."""
    spec = get_registry().architectures[arch]
    G, _ = ganzoo.create(arch, image_size=min(spec.image_sizes), **({"num_classes": 3} if spec.conditional else {}))
    # BatchNorm's running statistics as one training batch leaves them, as in a trained model: with the
    # initial ones (mean 0, variance 1) a deep G such as FastGAN's saturates tanh at every pixel, and
    # an all-±1 image compares nothing but signs decided by rounding
    bns = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, that batch's statistics
    with torch.no_grad():
        G.train()(*_inputs(G, 16, seed=3))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    return G.eval()


def _inputs(G, n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    z = G.sample_latent(n, generator=gen, device="cpu")
    return (z, torch.randint(G.num_classes, (n,), generator=gen)) if G.num_classes else (z,)


def _reference(G, inputs):
    with torch.no_grad():
        return G(*inputs)


def _check_onnx(G, path, n: int = 5):
    """Run the file in ONNX Runtime on latents of a batch size neither the export nor its own
    check used, and compare with the PyTorch generator: the test's own measurement."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == (["z", "labels"] if G.num_classes else ["z"])
    assert session.get_inputs()[0].shape[1] == G.latent_dim and not isinstance(session.get_inputs()[0].shape[0], int)
    if G.num_classes:
        assert session.get_inputs()[1].type == "tensor(int64)"
    inputs = _inputs(G, n, seed=7)
    got = session.run(None, {k: v.numpy() for k, v in zip(names, inputs)})[0]
    want = _reference(G, inputs)
    assert got.shape == (n, *G.image_shape)
    diff = float((torch.from_numpy(got) - want).abs().max())
    assert diff < TOL, diff
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["pixel_range"]) == list(G.pixel_range)
    assert int(meta["latent_dim"]) == G.latent_dim
    return diff


def _check_torchscript(G, path, n: int = 5):
    extra = {"ganzoo.json": ""}
    loaded = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    assert json.loads(extra["ganzoo.json"])["image_shape"] == json.dumps(list(G.image_shape))
    inputs = _inputs(G, n, seed=7)
    with torch.no_grad():
        got = loaded(*inputs)
    diff = float((got - _reference(G, inputs)).abs().max())
    assert got.shape == (n, *G.image_shape) and diff < TOL, diff
    return diff


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_exports_with_parity(arch, tmp_path):
    G = _small(arch)
    res = ganzoo.export(G, tmp_path, format="onnx")
    assert res.path == tmp_path / "generator.onnx" and res.max_abs_diff < TOL and res.batch == deploy.CHECK_BATCH
    _check_onnx(G, res.path)
    res = ganzoo.export(G, tmp_path, format="torchscript")
    assert res.path == tmp_path / "generator.torchscript.pt" and res.max_abs_diff < TOL
    _check_torchscript(G, res.path)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_every_released_model_exports_with_parity_from_the_cli(name, tmp_path, capsys):
    G = ganzoo.load(name)
    for fmt, check in (("onnx", _check_onnx), ("torchscript", _check_torchscript)):
        assert main(["export", name, str(tmp_path), "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert "max abs difference" in out, out
        path = tmp_path / (deploy.ONNX_FILE if fmt == "onnx" else deploy.TORCHSCRIPT_FILE)
        assert str(path) in out
        check(G, path)


def test_conditional_labels_change_the_image_and_input_order_is_z_labels(tmp_path):
    G = _small("cgan")
    with torch.no_grad():  # an untrained class-conditional BatchNorm starts label-blind (gain 1, shift 0)
        for m in G.modules():
            if isinstance(m, torch.nn.Embedding):
                m.weight.normal_()
    path = ganzoo.export(G, tmp_path, format="onnx").path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = torch.randn(2, G.latent_dim).numpy()
    a = session.run(None, {"z": z, "labels": torch.tensor([0, 0]).numpy()})[0]
    b = session.run(None, {"z": z, "labels": torch.tensor([1, 2]).numpy()})[0]
    assert abs(a - b).max() > 1e-3


# ---- bad input -----------------------------------------------------------------------------------
@torch.library.custom_op("ganzoo_test::wobble", mutates_args=())
def _wobble(x: torch.Tensor) -> torch.Tensor:
    return x.sin()


@_wobble.register_fake
def _(x):
    return torch.empty_like(x)


class _Odd(ganzoo.Generator):
    """A generator whose forward uses an operator with no ONNX translation."""

    def __init__(self):
        super().__init__(latent_dim=4, image_shape=(1, 2, 2))
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, z):
        return torch.ops.ganzoo_test.wobble(self.lin(z)).view(-1, 1, 2, 2)


def _one_line(fn, match):
    with pytest.raises(GanzooError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_an_op_onnx_cannot_express_is_named_and_torchscript_still_works(tmp_path, capfd):
    msg = _one_line(lambda: ganzoo.export(_Odd(), tmp_path, format="onnx"), r"cannot express operator ganzoo_test::wobble")
    assert "--format torchscript" in msg
    assert not (tmp_path / "generator.onnx").exists() and not list(tmp_path.glob(".*tmp"))
    assert "graph" not in capfd.readouterr().err  # the exporter's dump of the graph is held back
    assert ganzoo.export(_Odd(), tmp_path, format="torchscript").max_abs_diff == 0.0


def test_cli_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    assert main(["export", "dcgan_fashion", str(tmp_path), "--format", "tflite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ganzoo: error: --format tflite: use one of folder, onnx, torchscript", err
    _one_line(lambda: ganzoo.export("dcgan_fashion", tmp_path, format="tflite"), "use one of folder, onnx, torchscript")
    # a model folder's options mean nothing for a single file
    assert main(["export", "dcgan_fashion", str(tmp_path), "--format", "onnx", "--name", "x"]) == 2
    assert "--name describes a model folder" in capsys.readouterr().err
    # an existing file is kept unless --overwrite
    (tmp_path / "generator.onnx").write_bytes(b"mine")
    assert main(["export", "dcgan_fashion", str(tmp_path), "--format", "onnx"]) == 2
    assert "already exists" in capsys.readouterr().err and (tmp_path / "generator.onnx").read_bytes() == b"mine"
    # onnx / onnxruntime missing: say which pip extra installs them
    real = deploy.importlib.util.find_spec
    monkeypatch.setattr(deploy.importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert main(["export", "dcgan_fashion", str(tmp_path / "new"), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs onnxruntime" in err and "\"ganzoo[onnx] @ git+https://" in err and "\n" not in err, err


def test_default_format_is_still_the_model_folder(tmp_path, capsys):
    assert main(["export", "dcgan_fashion", str(tmp_path / "m")]) == 0
    assert "wrote model folder" in capsys.readouterr().out
    assert (tmp_path / "m" / "config.json").is_file()
