"""Shared layers (ganzoo.layers)."""
from __future__ import annotations

import torch

from ganzoo.layers import Blur2d


def test_blur_keeps_constants_and_size_and_removes_period_2_exactly():
    blur = Blur2d()
    assert blur(torch.full((2, 3, 7, 9), 0.25)).sub(0.25).abs().max() < 1e-7
    yy, xx = torch.meshgrid(torch.arange(8), torch.arange(10), indexing="ij")
    for lattice in ((-1.0) ** (xx + yy), (-1.0) ** xx, (-1.0) ** yy):
        out = blur(lattice.expand(1, 2, 8, 10))
        assert out.shape == (1, 2, 8, 10)
        assert out.abs().max() < 1e-7  # reflect padding: gone at the border too


def test_blur_is_the_121_filter_per_channel_and_has_no_state():
    x = torch.zeros(1, 2, 5, 5)
    x[0, 1, 2, 2] = 16.0
    out = Blur2d()(x)
    assert torch.equal(out[0, 0], torch.zeros(5, 5))
    assert torch.equal(out[0, 1, 1:4, 1:4], torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]))
    assert Blur2d().state_dict() == {} and not list(Blur2d().parameters())


def test_blur_runs_in_bfloat16():
    out = Blur2d()(torch.ones(1, 1, 4, 4, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.allclose(out.float(), torch.ones(1, 1, 4, 4))
