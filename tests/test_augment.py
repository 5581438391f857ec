"""DiffAugment (ganzoo.augment): each transformation does what the paper says, gradients pass,
and the trainer applies it to every image D sees."""
from __future__ import annotations

import contextlib
import json

import pytest
import torch

from ganzoo import augment
from ganzoo.errors import GanzooError
from ganzoo.trainer import TrainConfig, Trainer, latest_checkpoint, train


def _images(n=64, c=3, h=32, w=32, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_brightness_adds_one_offset_per_image_in_half_range():
    x = _images()
    d = augment.brightness(x) - x
    per_image = d.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)
    assert per_image.abs().max() <= 0.5 and per_image[:, 0].std() > 0.1


def test_saturation_scales_the_deviation_from_the_channel_mean():
    x = _images()
    mean = x.mean(1, keepdim=True)
    y = augment.saturation(x)
    assert torch.allclose(y.mean(1, keepdim=True), mean, atol=1e-5)       # grey level kept
    ratio = ((y - mean).flatten(1) / (x - mean).flatten(1))[:, 0]
    assert (ratio >= 0).all() and (ratio <= 2).all() and ratio.std() > 0.2
    grey = x.mean(1, keepdim=True).expand_as(x).contiguous()
    assert torch.allclose(augment.saturation(grey), grey, atol=1e-6)     # no colour: unchanged


def test_contrast_scales_the_deviation_from_the_image_mean():
    x = _images()
    mean = x.mean((1, 2, 3), keepdim=True)
    y = augment.contrast(x)
    ratio = ((y - mean).flatten(1) / (x - mean).flatten(1))
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-3)
    assert (ratio[:, 0] >= 0.5).all() and (ratio[:, 0] <= 1.5).all()


def _shift(x, dy, dx):
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_translation_is_a_zero_filled_integer_shift_of_at_most_an_eighth():
    torch.manual_seed(1)
    x = _images(n=40, h=32, w=32) + 2          # strictly positive: the zero fill is visible
    y = augment.translation(x)
    seen = set()
    for i in range(len(x)):
        match = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if torch.equal(y[i], _shift(x[i], dy, dx))]
        assert len(match) == 1, i
        seen.add(match[0])
    assert len(seen) > 20                      # draws spread over the 81 shifts


def test_cutout_zeroes_one_half_size_square_clipped_at_the_border():
    torch.manual_seed(2)
    x = torch.ones(200, 2, 32, 32)
    y = augment.cutout(x)
    assert torch.equal(y[:, 0], y[:, 1])       # the same square in every channel
    zero = y[:, 0] == 0
    full = 0
    for m in zero:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        assert len(rows) and len(cols)
        assert m.sum() == len(rows) * len(cols)                    # a rectangle
        assert rows.max() - rows.min() + 1 == len(rows) <= 16 and len(cols) <= 16
        full += int(len(rows) == 16 and len(cols) == 16)
    assert 0 < full < 200                      # interior squares whole, border ones clipped
    assert zero[:, 0, 0].any() and zero[:, -1, -1].any()          # centres reach the corners


def test_ranks_augment_their_slices_of_the_global_batch_as_one_process_would():
    x = _images(n=8)
    torch.manual_seed(5)
    whole = augment.diff_augment(x, "color,translation,cutout")
    parts = []
    for rank in range(2):                      # ranks start from the same (lockstep) RNG state
        torch.manual_seed(5)
        parts.append(augment.diff_augment(x[rank * 4:(rank + 1) * 4], "color,translation,cutout",
                                          rank=rank, world_size=2))
    assert torch.allclose(torch.cat(parts), whole, atol=1e-6)


def test_gradients_pass_through_every_policy():
    x = _images(n=8).requires_grad_(True)
    y = augment.diff_augment(x, "color,translation,cutout,zoom")
    assert y.shape == x.shape and y.dtype == x.dtype
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


class _Fixed:
    """Draws that return one value for every image (to pin a transformation down)."""

    def __init__(self, n, scale, centre, keep=0.0):
        # zoom draws rand(1) for the scale, rand(2) for the centre, then rand(1) for whether to keep the image
        self.n, self.values = n, [scale, centre, keep]

    def rand(self, *shape):
        return torch.full((self.n, *shape), float(self.values.pop(0)))


def test_zoom_is_identity_at_scale_one_and_a_bilinear_crop_at_two():
    x = _images(n=4, h=16, w=16)
    # scale draw 0 -> zoom 1, centre draw anything: the crop is the whole image
    assert torch.allclose(augment.zoom(x, _Fixed(4, scale=0.0, centre=0.9)), x, atol=1e-5)
    # scale draw 1 -> zoom 2; centre draw 0.5 -> centred: the middle 8x8 upsampled bilinearly
    y = augment.zoom(x, _Fixed(4, scale=1.0, centre=0.5))
    ref = torch.nn.functional.interpolate(x[..., 4:12, 4:12], scale_factor=2, mode="bilinear", align_corners=False)
    # (the outermost ring differs: the zoom reads the pixels around the crop, interpolate clamps to it)
    assert torch.allclose(y[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5)
    # keep draw >= 0.5: the image passes unchanged
    assert torch.equal(augment.zoom(x, _Fixed(4, scale=1.0, centre=0.5, keep=0.5)), x)
    # centre draw 0 -> the crop sits in the top-left corner
    y = augment.zoom(x, _Fixed(4, scale=1.0, centre=0.0))
    ref = torch.nn.functional.interpolate(x[..., :8, :8], scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(y[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5)


def test_zoom_turns_a_pixel_period_lattice_into_one_a_stride_two_conv_sees():
    # a +-1 checkerboard: a stride-2 sampling of it is constant (the Nyquist frequency aliases to DC)
    i = torch.arange(32)
    lattice = ((-1.0) ** (i.view(-1, 1) + i.view(1, -1))).expand(16, 1, 32, 32)
    assert lattice[..., ::2, ::2].flatten(1).std(1).max() == 0
    torch.manual_seed(0)
    z = augment.zoom(lattice)
    visible = z[..., ::2, ::2].flatten(1).std(1) > 0.05        # no longer a flat colour to D's first conv
    unchanged = (z == lattice).flatten(1).all(1)
    assert (visible ^ unchanged).all() and 3 <= visible.sum() <= 13   # zoomed: about half of the 16
    assert z.abs().max() <= 1 + 1e-6                           # bilinear: no overshoot


@pytest.mark.parametrize("policy,fragment", [("", "is empty"), ("color,rotate", "'rotate'"), ("colour", "known: color")])
def test_bad_policy_is_a_one_line_error(policy, fragment):
    with pytest.raises(GanzooError) as err:
        augment.parse_policy(policy)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_wrapper_augments_forward_and_passes_attributes():
    seen = []

    class D(torch.nn.Module):
        num_classes = 3

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)

        def forward(self, x, labels=None):
            seen.append((x.clone(), labels))
            return x.mean((1, 2, 3))

    inner = D()
    wrapped = augment.AugmentedDiscriminator(inner, "translation")
    x = _images(n=16) + 2
    wrapped(x, "lab")
    assert not torch.equal(seen[0][0], x) and seen[0][1] == "lab"
    assert wrapped.num_classes == 3 and list(wrapped.parameters()) == list(inner.parameters())
    from ganzoo.distributed import no_sync

    with no_sync(wrapped):                     # a plain D inside: nothing to do
        pass
    entered = []
    inner.no_sync = lambda: contextlib.nullcontext(entered.append(1))  # as DDP has one
    with no_sync(wrapped):                     # reached through the wrapper
        pass
    assert entered == [1]


def _cfg(data, **kw):
    base = dict(arch="tiny", data=f"fashion-mnist:{data}", steps=4, log_every=1, sample_every=100,
                checkpoint_every=100, seed=3, arch_config={"dropout": 0.0, "num_classes": 0},
                diffaugment="color,translation,cutout")
    base.update(kw)
    return TrainConfig(**base)


def test_trainer_feeds_d_augmented_images_and_resumes_exactly(tiny_plugin, tiny_fmnist, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    t = Trainer(_cfg(tiny_fmnist), tmp_path / "t")
    assert isinstance(t.D_step, augment.AugmentedDiscriminator) and t.D_step.module is t.D
    # every image D sees goes through the augmentation: count calls
    calls = []
    real = augment.diff_augment
    monkeypatch.setattr(augment, "diff_augment", lambda x, p, **kw: calls.append(x.shape[0]) or real(x, p, **kw))
    t.fit(progress=False)
    assert len(calls) >= 3 * 4                 # D(real), D(fake) for D's update, D(fake) for G's: per step
    monkeypatch.setattr(augment, "diff_augment", real)

    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_cfg(tiny_fmnist, steps=6), straight, progress=False)
    train(_cfg(tiny_fmnist, steps=3, checkpoint_every=3), split, progress=False)
    train(_cfg(tiny_fmnist, steps=6), split, resume=True, progress=False)
    a = load_file(latest_checkpoint(straight) / "discriminator.safetensors")
    b = load_file(latest_checkpoint(split) / "discriminator.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    plain = tmp_path / "plain"
    train(_cfg(tiny_fmnist, steps=6, diffaugment=None), plain, progress=False)
    c = load_file(latest_checkpoint(plain) / "discriminator.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a)   # the augmentation changed training
    assert json.loads((straight / "run.json").read_text())["train"]["diffaugment"] == "color,translation,cutout"


def test_trainer_refuses_objectives_that_do_not_support_it(tiny_plugin, tiny_fmnist, tmp_path):
    pytest.importorskip("ganzoo_began")
    with pytest.raises(GanzooError, match="does not support DiffAugment .*autoencoder"):
        Trainer(TrainConfig(arch="began", data=f"fashion-mnist:{tiny_fmnist}", steps=1,
                            arch_config={"image_size": 32}, diffaugment="color"), tmp_path / "b")
    with pytest.raises(GanzooError, match="unknown 'rotate'"):
        Trainer(_cfg(tiny_fmnist, diffaugment="rotate"), tmp_path / "z")
