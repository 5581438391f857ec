"""ganzoo.latent: interpolation maths, truncation, the expression parser, latent arithmetic,
projection, latent files, and the interpolate/arithmetic/project/sample --truncation commands.
Everything runs on the ``tiny`` fixture architecture (8-d latent, 16x16 images)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ganzoo
import ganzoo_tiny  # on sys.path through conftest
from ganzoo import hub, latent
from ganzoo.cli import main
from ganzoo.errors import GanzooError
from ganzoo.metrics.fmnist import WEIGHTS as FMNIST_WEIGHTS

torch.set_num_threads(1)  # a shared machine: one thread, no OpenMP spin-waits




def _G(num_classes: int = 0, seed: int = 0):
    torch.manual_seed(seed)
    G, _ = ganzoo.create("tiny", num_classes=num_classes)
    return G.eval()


FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(scope="module")
def run(tiny_arch, tmp_path_factory):
    """A model folder of an untrained conditional tiny model with Fashion-MNIST's class names.

    (Built directly rather than by a training run, and without its samples.png: both would
    import torch.optim/torchvision, which pull in torch._dynamo, seconds on a busy machine.)
    """
    folder = tmp_path_factory.mktemp("models") / "tiny_latent"
    torch.manual_seed(0)
    G, D = ganzoo.create("tiny", num_classes=10)
    config = {"architecture": "tiny", "arch_config": G.gan_config.to_dict(), "num_classes": 10,
              "class_names": FASHION, "name": "tiny_latent"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hub.model, "save_grid", lambda *a, **k: None)
        hub.GANModel(G, D, config=config).save_pretrained(folder)
    return folder


# ---- interpolation maths ----------------------------------------------------------------------
def test_lerp_endpoints_and_midpoint():
    a, b = torch.tensor([1.0, -2.0, 4.0]), torch.tensor([3.0, 2.0, 0.0])
    assert torch.equal(latent.lerp(a, b, 0.0), a) and torch.equal(latent.lerp(a, b, 1.0), b)
    assert torch.allclose(latent.lerp(a, b, 0.5), (a + b) / 2)
    path = latent.lerp(a, b, [0.0, 0.25, 1.0])
    assert path.shape == (3, 3) and torch.allclose(path[1], 0.75 * a + 0.25 * b)


@pytest.mark.parametrize("dim", [2, 8, 128])
def test_slerp_endpoints_constant_norm_and_uniform_angle(dim):
    g = torch.Generator().manual_seed(dim)
    a, b = torch.randn(dim, generator=g), torch.randn(dim, generator=g)
    b = b / b.norm() * a.norm()  # equal norms
    t = torch.linspace(0, 1, 11)
    path = latent.slerp(a, b, t)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    assert torch.allclose(path.norm(dim=1), a.norm().expand(11), rtol=1e-5)
    # equal angular steps: the angle from a grows linearly in t
    p64, a64 = path.double(), a.double()
    angles = torch.arccos(((p64 @ a64) / (p64.norm(dim=1) * a64.norm())).clamp(-1, 1))
    assert torch.allclose(angles, t.double() * angles[-1], atol=1e-4)
    # a linear midpoint of two non-parallel vectors is shorter: slerp is not lerp
    assert latent.lerp(a, b, 0.5).norm() < path[5].norm() - 1e-3


def test_slerp_falls_back_to_lerp_for_parallel_and_opposite_vectors():
    a = torch.tensor([1.0, 2.0, 3.0])
    for b in (2.0 * a, -a, a + 1e-6):
        assert torch.allclose(latent.slerp(a, b, 0.3), latent.lerp(a, b, 0.3), atol=1e-6)
    assert torch.isfinite(latent.slerp(torch.zeros(3), a, 0.5)).all()


def test_interpolate_path_through_several_points():
    pts = torch.tensor([[0.0, 0.0], [4.0, 0.0], [4.0, 8.0]])
    path = latent.interpolate_path(pts, 5)
    assert path.shape == (9, 2)
    assert torch.equal(path[0], pts[0]) and torch.equal(path[4], pts[1]) and torch.equal(path[8], pts[2])
    assert torch.allclose(path[2], torch.tensor([2.0, 0.0])) and torch.allclose(path[6], torch.tensor([4.0, 4.0]))
    with pytest.raises(GanzooError):
        latent.interpolate_path(pts, 1)
    with pytest.raises(GanzooError):
        latent.interpolate_path(pts[:1], 5)


# ---- seeds, truncation, latent files ----------------------------------------------------------
def test_seeds_are_the_latents_and_images_of_sample(tiny_arch):
    assert latent.parse_seeds("3, 17,40-42") == [3, 17, 40, 41, 42]
    with pytest.raises(GanzooError):
        latent.parse_seeds("3,x")
    for k in (0, 10):
        G = _G(k)
        z, labels = latent.seed_latents(G, [3, 17])
        assert torch.equal(z[0:1], G.sample_latent(1, generator=torch.Generator().manual_seed(3)))
        res = latent.interpolate(G, [3, 17], steps=4, label=None)
        for row, s in ((0, 3), (-1, 17)):
            lab = labels[:1] if k else None  # the path keeps one label: the first point's
            assert torch.allclose(res.images[row], G.sample(1, seed=s, labels=lab)[0], atol=1e-6)
        if k:  # the path keeps the first seed's label, as G.sample(1, seed=3) draws it
            assert torch.allclose(res.images[0], G.sample(1, seed=3)[0], atol=1e-6)
            assert set(res.labels.tolist()) == {int(labels[0])}


def test_truncation_bound_and_consistency(tiny_arch):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(500, 64, generator=g)
    for t in (0.05, 0.7, 2.0):
        zt = latent.truncate_latent(z, t, generator=torch.Generator().manual_seed(1))
        assert zt.abs().max() <= t
        inside = z.abs() <= t
        assert torch.equal(zt[inside], z[inside])  # components already inside are kept
    zt = latent.truncate_latent(z, 0.5, generator=torch.Generator().manual_seed(1))
    assert abs(zt.std().item() - math.sqrt(1 - 2 * 0.5 * math.exp(-0.125) / math.sqrt(2 * math.pi)
                                             / (math.erf(0.5 / math.sqrt(2))))) < 0.02  # truncnorm std
    G = _G(10)
    z1, lab1 = latent.seed_latents(G, [5], truncation=0.7)
    assert z1.abs().max() <= 0.7
    assert torch.equal(G.sample(1, seed=5, truncation=0.7), G.sample(1, seed=5, z=z1, labels=lab1))
    assert torch.equal(lab1, latent.seed_latents(G, [5])[1])  # truncation leaves the seed's label alone
    # the same z with an explicit label
    assert torch.equal(G.sample(1, seed=5, labels=[2], truncation=0.7), G.sample(1, z=z1, labels=[2]))
    with pytest.raises(GanzooError):
        G.sample(1, seed=0, truncation=0.0)

    class Codes(type(G)):
        def sample_latent(self, n, *, generator=None, device=None):
            return torch.randint(0, 2, (n, self.latent_dim), generator=generator).float()

    H = Codes(ganzoo_tiny.TinyConfig(num_classes=10))
    with pytest.raises(GanzooError, match="standard normal"):
        H.sample(2, seed=0, truncation=0.7)
    Codes.latent_distribution = "normal"  # a plugin may declare its override N(0, I)
    assert H.sample(2, seed=0, truncation=0.7).shape == (2, 1, 16, 16)


def test_latent_files_roundtrip_and_refuse_pickles(tmp_path):
    z = torch.randn(3, 8)
    latent.save_latents(tmp_path / "z.npy", z)
    z2, lab = latent.load_latents(tmp_path / "z.npy", 8)
    assert torch.equal(z, z2) and lab is None
    latent.save_latents(tmp_path / "z.safetensors", z, torch.tensor([1, 2, 3]))
    z3, lab3 = latent.load_latents(tmp_path / "z.safetensors", 8)
    assert torch.equal(z, z3) and lab3.tolist() == [1, 2, 3]
    np.save(tmp_path / "one.npy", np.zeros(8, np.float32))
    assert latent.load_latents(tmp_path / "one.npy")[0].shape == (1, 8)
    torch.save(z, tmp_path / "z.pt")
    for bad, msg in ((tmp_path / "z.pt", "pickled"), (tmp_path / "z.npy", "16-d")):
        with pytest.raises(GanzooError, match=msg):
            latent.load_latents(bad, 16)


# ---- expressions and arithmetic ---------------------------------------------------------------
def test_parse_expression():
    assert latent.parse_expression("a - b + c") == [(1.0, "a"), (-1.0, "b"), (1.0, "c")]
    assert latent.parse_expression("-0.5*smile_w + 2 b - a + a", ["smile_w", "a", "b"]) == [
        (-0.5, "smile_w"), (2.0, "b"), (0.0, "a")]


@pytest.mark.parametrize("expr, names, where", [
    ("", None, "empty"), ("a -", None, "at the end"), ("a b", None, "column 3"), ("a + * b", None, "column 5"),
    ("a $ b", None, "'$'"), ("a - d", ["a", "b"], "'d' is not a group"), ("2*", None, "a group name"),
    ("a * b", None, "column 3"), ("__import__('os')", None, "column 11"),
])
def test_parse_expression_errors_are_one_line(expr, names, where):
    with pytest.raises(GanzooError) as info:
        latent.parse_expression(expr, names)
    assert where in str(info.value) and "\n" not in str(info.value)


def test_arithmetic_on_known_vectors(tiny_arch):
    G = _G(0)
    e = torch.eye(8)
    groups = [latent.Group("a", torch.stack([e[0], 3 * e[0]])), latent.Group("b", e[1:2]),
              latent.Group("c", torch.stack([e[2], e[3], e[4]]))]
    res = latent.arithmetic(G, "a - b + 0.5*c", groups, variations=2)
    want = 2 * e[0] - e[1] + 0.5 * (e[2] + e[3] + e[4]) / 3
    assert torch.allclose(res.z, want, atol=1e-6)
    assert torch.equal(res.image, G.sample(1, z=want[None])[0])
    assert res.variations.shape == (2, 1, 16, 16) and res.label is None
    # conditional: the result takes the label of the last positive operand unless one is given
    H = _G(10)
    ga = latent.Group("a", e[:2], torch.tensor([4, 4]))
    gb = latent.Group("b", e[2:3], torch.tensor([1]))
    gc = latent.Group("c", e[3:4], torch.tensor([7]))
    assert latent.arithmetic(H, "a - b + c", [ga, gb, gc]).label == 7
    assert latent.arithmetic(H, "c - b + a", [ga, gb, gc]).label == 4
    assert latent.arithmetic(H, "a - b + c", [ga, gb, gc], label="2").label == 2


def test_groups_by_class_and_by_classifier(tiny_arch):
    G = _G(10)
    G.class_names = [f"k{i}" for i in range(10)]
    g = latent.class_group(G, "coat", "k4", n=3, first_seed=10)
    assert g.labels.tolist() == [4, 4, 4] and g.seeds == [10, 11, 12] and g.label == 4
    with pytest.raises(GanzooError, match="unconditional"):
        latent.class_group(_G(0), "coat", "coat")

    U = _G(0)
    m0 = U.sample(32, z=latent.seed_latents(U, range(32))[0]).mean((1, 2, 3)).median()

    def brightness(images):  # a pluggable classifier: "dark" vs "bright" by mean pixel
        m = images.mean((1, 2, 3)) - m0
        return torch.stack([-m, m], 1) * 50

    brightness.class_names = ["dark", "bright"]
    bright = latent.predicted_group(U, "b", "bright", brightness, n=4, pool=32)
    dark = latent.predicted_group(U, "d", "dark", brightness, n=4, pool=32)
    mb = U.sample(4, z=bright.z).mean((1, 2, 3))
    md = U.sample(4, z=dark.z).mean((1, 2, 3))
    assert (mb > m0).all() and (md < m0).all() and mb.min() > md.max()
    assert all(torch.equal(bright.z[i:i + 1], latent.seed_latents(U, [s])[0]) for i, s in enumerate(bright.seeds))
    with pytest.raises(GanzooError, match="cannot import"):
        latent.resolve_classifier("no_such_module_xyz:Net")


@pytest.mark.skipif(not FMNIST_WEIGHTS.is_file(), reason="the Fashion-MNIST classifier weights are not here")
def test_fmnist_classifier_and_features_plug_in(tiny_arch):
    U = _G(0)
    fm = latent.resolve_classifier("fmnist")
    assert fm(U.sample(2, seed=0)).shape == (2, 10) and "Coat" in fm.class_names
    k = int(fm(U.sample(1, seed=0)).argmax())  # whatever noise looks like to it
    group = latent.predicted_group(U, "g", fm.class_names[k].lower(), fm, n=2, pool=16)
    assert (fm(U.sample(len(group.seeds), z=group.z)).argmax(1) == k).all()
    x = U.sample(1, seed=5)
    res = latent.project(U, x, steps=20, restarts=1, loss="l1", perceptual="fmnist", latent_weight=0.01)
    assert res.mse < res.start_mse


# ---- projection -------------------------------------------------------------------------------
def test_projection_recovers_a_known_latent(tiny_arch):
    G = _G(0, seed=3)
    z_star = latent.seed_latents(G, [99])[0]
    x = G.sample(1, z=z_star)
    kw = dict(steps=60, restarts=2, lr=0.1, seed=0)
    res = latent.project(G, x, **kw)
    assert res.mse < 0.05 * res.start_mse  # far better than where the random starts began
    assert res.psnr == pytest.approx(10 * math.log10(1 / res.mse))
    assert res.start == "random" and len(res.restart_losses) == 2 and res.z.shape == (1, 8)
    again = latent.project(G, x, **kw)
    assert torch.equal(res.z, again.z)  # a fixed seed: the same answer
    assert all(p.requires_grad for p in G.parameters())  # G is left as it was
    l1 = latent.project(G, x, steps=20, restarts=1, loss="l1", latent_weight=0.01)
    assert l1.mse < l1.start_mse


def test_projection_uses_an_encoder_and_tries_every_class(tiny_arch):
    G = _G(10, seed=4)
    z_star = latent.seed_latents(G, [7])[0]
    x = G.sample(1, z=z_star, labels=[6])
    G.encode = lambda img: z_star.expand(img.shape[0], -1)  # a perfect encoder, BiGAN-style
    only = latent.project(G, x, encoder="only", label=6)
    assert only.start == "encoder" and only.mse < 1e-10 and only.steps == 0
    res = latent.project(G, x, steps=5, restarts=1)  # no label: every class is tried
    assert res.label == 6 and res.start == "encoder" and res.encoder_mse < 1e-10
    del G.encode
    with pytest.raises(GanzooError, match="no encoder"):
        latent.project(G, x, encoder="only")


# ---- the commands -----------------------------------------------------------------------------
def test_cli_interpolate_gif_png_and_latents(run, tmp_path, capsys):
    from PIL import Image

    gif = tmp_path / "walk.gif"
    assert main(["interpolate", str(run), "--seeds", "3,17", "--steps", "6", "--slerp", "-o", str(gif),
                 "--scale", "2", "--save-latents", str(tmp_path / "path.safetensors"), "--threads", "1"]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 6 and im.size == (32, 32) and im.info.get("loop") == 0
    z, labels = latent.load_latents(tmp_path / "path.safetensors", 8)
    assert z.shape == (6, 8) and len(set(labels.tolist())) == 1
    assert "slerp interpolation through 2 points" in capsys.readouterr().out
    # a latent file as a point, and a grid (a row per segment) as PNG
    latent.save_latents(tmp_path / "me.npy", z[2])
    png = tmp_path / "grid.png"
    assert main(["interpolate", str(run), "--seeds", f"3,{tmp_path / 'me.npy'},17", "--steps", "4",
                 "--label", "Coat", "-o", str(png)]) == 0
    with Image.open(png) as im:
        assert im.size == (2 + 4 * 18, 2 + 2 * 18)
    gif2 = tmp_path / "boom.gif"
    assert main(["interpolate", str(run), "--seeds", "3,17", "--steps", "5", "--boomerang", "-o", str(gif2)]) == 0
    with Image.open(gif2) as im:
        assert im.n_frames == 8


def test_cli_arithmetic_project_and_truncation(run, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "arith.png"
    assert main(["arithmetic", str(run), "--group", "a=1,2,3", "--group", "b=class:coat", "--group", "c=40-41",
                 "--expr", "a - b + c", "-o", str(out), "--save-latent", str(tmp_path / "r.npy")]) == 0
    text = capsys.readouterr().out
    assert "-1 x b: mean of 3 latents (class Coat)" in text and out.exists()
    ga, _ = latent.seed_latents(ganzoo.load(run), [1, 2, 3])
    gc, _ = latent.seed_latents(ganzoo.load(run), [40, 41])
    gb, _ = latent.seed_latents(ganzoo.load(run), [0, 1, 2])
    r, _ = latent.load_latents(tmp_path / "r.npy")
    assert torch.allclose(r[0], ga.mean(0) - gb.mean(0) + gc.mean(0), atol=1e-5)
    with Image.open(out) as im:
        assert im.size[1] > 4 * 16

    # a user error is one line and exit code 2, before any model is loaded
    assert main(["arithmetic", "no/such/model", "--group", "a=1", "--expr", "a - zz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'zz' is not a group" in err

    # project an image file, then use its latent as a group
    img = tmp_path / "photo.png"
    G = ganzoo.load(run)
    latent.save_strip(G.sample(1, seed=8, labels=[3]), img, padding=0)
    rec = tmp_path / "recon.png"
    assert main(["project", str(run), str(img), "--steps", "30", "--restarts", "2", "--label", "3", "-o", str(rec),
                 "--save-latent", str(tmp_path / "me.safetensors"), "--json", str(tmp_path / "p.json")]) == 0
    text = capsys.readouterr().out
    assert "MSE" in text and "PSNR" in text and rec.exists()
    import json

    report = json.loads((tmp_path / "p.json").read_text())
    assert report["mse"] < report["start_mse"] and report["label"] == 3
    assert main(["arithmetic", str(run), "--group", f"me=file:{tmp_path / 'me.safetensors'}", "--group", "s=5",
                 "--expr", "me + 0.5*s", "-o", str(tmp_path / "a2.png")]) == 0



def test_cli_sample_truncation(run, monkeypatch, capsys):
    import ganzoo.io

    saved = []
    monkeypatch.setattr(ganzoo.io, "save_grid", lambda images, path, **kw: saved.append(images))
    assert main(["sample", str(run), "-n", "4", "--seed", "2", "--truncation", "0.5", "-o", "x.png"]) == 0
    G = ganzoo.load(run)
    assert torch.equal(saved[0], G.sample(4, seed=2, truncation=0.5))
    assert not torch.equal(saved[0], G.sample(4, seed=2))
    with pytest.raises(SystemExit) as info:  # refused while parsing, before the model is loaded
        main(["sample", str(run), "-n", "4", "--truncation", "-1", "-o", "x.png"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--truncation: must be above 0" in err and err.count("\n") == 1


def test_cli_image_outputs_refuse_bad_counts_and_non_png_names_before_any_work(run, tmp_path, capsys):
    for argv in (["sample", str(run), "-o", str(tmp_path / "x.txt")],
                 ["arithmetic", str(run), "--group", "a=1", "--group", "b=2", "--expr", "a - b",
                  "-o", str(tmp_path / "a.jpg")],
                 ["project", str(run), str(tmp_path / "missing.png"), "-o", str(tmp_path / "r.gif")]):
        assert main(argv) == 2
        assert "images are written as PNG; name the output file .png" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    with pytest.raises(SystemExit):  # argparse: exit 2, "-n: must be at least 1"
        main(["sample", str(run), "-n", "0", "-o", str(tmp_path / "x.png")])
    assert "must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(GanzooError, match="name the output file .png"):
        latent.save_strip(torch.zeros(1, 1, 4, 4), tmp_path / "s.bmp")


@pytest.mark.parametrize("command", [["sample"], ["interpolate"], ["eval"], ["train", "--out", "RUN"]])
def test_every_torch_command_takes_threads_and_refuses_zero(command, capsys):
    """One --threads for all commands that compute: sample lacked it, and --threads 0 was silently ignored."""
    from ganzoo.cli import build_parser

    assert build_parser().parse_args([*command, "REF", "--threads", "1"]).threads == 1
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "REF", "--threads", "0"])
    assert "must be at least 1, got 0" in capsys.readouterr().err


def test_cli_sample_threads_sets_torch_threads(run, tmp_path):
    before = torch.get_num_threads()
    try:
        assert main(["sample", str(run), "-n", "2", "--threads", "1", "-o", str(tmp_path / "x.png")]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert (tmp_path / "x.png").is_file()
