"""One calling convention for networks: G(z, labels), D(x, labels), D.score(x, labels)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.augment import AugmentedDiscriminator

SHAPE = (1, 4, 4)


class CondG(ganzoo.Generator):
    def __init__(self):
        super().__init__(latent_dim=3, image_shape=SHAPE, num_classes=2)
        self.net = nn.Linear(3, 16)
        self.embed = nn.Embedding(2, 3)

    def forward(self, z, labels=None):
        return torch.tanh(self.net(z + self.embed(labels))).view(-1, *SHAPE)


class OldStyleG(ganzoo.Generator):
    """Written before the convention: forward(z) only."""

    def __init__(self):
        super().__init__(latent_dim=3, image_shape=SHAPE)
        self.net = nn.Linear(3, 16)

    def forward(self, z):
        return torch.tanh(self.net(z)).view(-1, *SHAPE)


class PatchD(ganzoo.Discriminator):
    """A 2x2 map of logits per image."""

    def __init__(self):
        super().__init__(latent_dim=3, image_shape=SHAPE)
        self.conv = nn.Conv2d(1, 1, 2, 2)

    def forward(self, x, labels=None):
        return self.conv(x)


def test_unconditional_and_conditional_networks_check_their_labels():
    z, y = torch.randn(2, 3), torch.tensor([0, 1])
    assert CondG()(z, y).shape == (2, *SHAPE)
    with pytest.raises(ValueError, match="CondG is conditional .*call it with labels"):
        CondG()(z)
    with pytest.raises(ValueError, match="OldStyleG is unconditional: call it without labels"):
        OldStyleG()(z, y)
    with pytest.raises(ValueError, match="PatchD is unconditional"):
        PatchD()(torch.zeros(2, *SHAPE), y)


def test_a_forward_without_labels_is_called_with_the_convention():
    G = OldStyleG()
    z = torch.randn(2, 3)
    assert torch.equal(G(z, None), G(z))
    assert G.sample(2, seed=0).shape == (2, *SHAPE)


def test_score_is_one_number_per_image_and_drops_the_labels_of_an_unconditional_d():
    D = PatchD()
    x = torch.randn(3, *SHAPE)
    want = D(x).reshape(3, -1).mean(1)
    assert torch.equal(D.score(x), want)
    assert torch.equal(D.score(x, torch.tensor([0, 1, 0])), want)  # a labelled data set, an unconditional D
    assert D.score_kind == "logit"


def test_score_through_a_wrapper_runs_the_wrappers_forward():
    torch.manual_seed(0)
    D = PatchD()
    wrapped = AugmentedDiscriminator(D, "translation")
    x = torch.randn(4, *SHAPE)
    calls = []
    wrapped.register_forward_hook(lambda m, args, out: calls.append(1))
    torch.manual_seed(1)
    got = wrapped.score(x)
    torch.manual_seed(1)
    assert calls == [1] and torch.equal(got, wrapped(x).reshape(4, -1).mean(1))
