"""What defines each objective and regularizer of ganzoo-losses, on tiny networks with known answers."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo.objective import StepContext
from ganzoo.plugins import get_registry
from ganzoo_losses import (
    OBJECTIVES, WGAN, WGANGP, Hinge, LeastSquares, NonSaturatingR1, clip_weights_, gradient_penalty,
    r1_penalty, spectral_norm_, top_singular_value,
)

SHAPE = (1, 2, 2)  # 4 pixels: linear critics have an exact gradient


class LinearG(ganzoo.Generator):
    def __init__(self, num_classes: int = 0):
        super().__init__(latent_dim=3, image_shape=SHAPE, num_classes=num_classes)
        self.net = nn.Linear(3, 4)
        self.embed = nn.Embedding(num_classes, 3) if num_classes else None

    def forward(self, z, labels=None):
        if self.embed is not None:
            z = z + self.embed(labels)
        return torch.tanh(self.net(z)).view(-1, *SHAPE)


class LinearD(ganzoo.Discriminator):
    """D(x) = <w, x> + b: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor | None = None, num_classes: int = 0, batchnorm: bool = False):
        super().__init__(latent_dim=3, image_shape=SHAPE, num_classes=num_classes)
        self.norm = nn.BatchNorm2d(1) if batchnorm else nn.Identity()
        self.net = nn.Linear(4, 1)
        if w is not None:
            with torch.no_grad():
                self.net.weight.copy_(w.view(1, 4))
        self.embed = nn.Embedding(num_classes, 1) if num_classes else None

    def forward(self, x, labels=None):
        out = self.net(self.norm(x).flatten(1)).squeeze(1)
        return out + self.embed(labels).squeeze(1) if self.embed is not None else out


def context(G, D, lr=1e-2, next_real=None):
    opt_g = torch.optim.Adam(G.parameters(), lr)
    opt_d = torch.optim.Adam(D.parameters(), lr)
    return StepContext(G, D, opt_g, opt_d, torch.device("cpu"), 0, next_real=next_real)


def count_steps(opt) -> list:
    calls = []
    opt.register_step_post_hook(lambda *_: calls.append(1))
    return calls


REAL = torch.tensor([2.0, 0.5, -1.0])
FAKE = torch.tensor([-2.0, 0.0, 1.0])


# -- registration and the papers' defaults ------------------------------------------------------

def test_registered_through_the_entry_point_with_the_papers_defaults():
    reg = get_registry()
    for name, cls in OBJECTIVES.items():
        assert reg.objective(name) is cls
        assert reg.provider[("objective", name)] == "ganzoo-losses"
    assert WGAN().config() == {"n_critic": 5, "clip": 0.01, "r1_gamma": 0.0}          # Arjovsky et al., Alg. 1
    assert WGANGP().config() == {"n_critic": 5, "gp_lambda": 10.0, "r1_gamma": 0.0}   # Gulrajani et al., Alg. 1
    assert LeastSquares().config() == {"a": 0.0, "b": 1.0, "c": 1.0, "n_critic": 1, "r1_gamma": 0.0}  # Mao et al.
    assert Hinge().config() == {"n_critic": 1, "r1_gamma": 0.0}
    assert NonSaturatingR1().config() == {"n_critic": 1, "r1_gamma": 10.0}          # Mescheder et al.


@pytest.mark.parametrize("kwargs", [{"n_critic": 0}, {"n_critic": 1.5}, {"r1_gamma": -1}])
def test_bad_hyper_parameters_are_one_line_errors(kwargs):
    with pytest.raises(ganzoo.GanzooError, match="Hinge"):
        Hinge(**kwargs)


def test_clip_must_be_positive():
    with pytest.raises(ganzoo.GanzooError, match="clip"):
        WGAN(clip=0)


# -- the losses on known scores -----------------------------------------------------------------

def test_hinge_on_known_scores():
    h = Hinge()
    # D: mean(relu(1 - [2, .5, -1])) + mean(relu(1 + [-2, 0, 1])) = (0 + .5 + 2)/3 + (0 + 1 + 2)/3
    assert h.d_loss(REAL, FAKE).item() == pytest.approx(2.5 / 3 + 3 / 3)
    assert h.g_loss(FAKE).item() == pytest.approx(1 / 3)  # -mean([-2, 0, 1])


def test_least_squares_on_known_scores():
    ls = LeastSquares()  # a = 0, b = 1, c = 1
    # D: 1/2 mean((x - 1)^2) + 1/2 mean((f - 0)^2) = 1/2 (1 + .25 + 4)/3 + 1/2 (4 + 0 + 1)/3
    assert ls.d_loss(REAL, FAKE).item() == pytest.approx(0.5 * 5.25 / 3 + 0.5 * 5 / 3)
    assert ls.g_loss(FAKE).item() == pytest.approx(0.5 * (9 + 1 + 0) / 3)  # 1/2 mean((f - 1)^2)
    chi2 = LeastSquares(a=-1, b=1, c=0)
    assert chi2.g_loss(FAKE).item() == pytest.approx(0.5 * (4 + 0 + 1) / 3)


def test_wasserstein_and_non_saturating_on_known_scores():
    for cls in (WGAN, WGANGP):
        assert cls().d_loss(REAL, FAKE).item() == pytest.approx(FAKE.mean() - REAL.mean())
        assert cls().g_loss(FAKE).item() == pytest.approx(-FAKE.mean().item())
    ns = NonSaturatingR1()
    bce = (F.binary_cross_entropy_with_logits(REAL, torch.ones(3))
           + F.binary_cross_entropy_with_logits(FAKE, torch.zeros(3)))
    assert ns.d_loss(REAL, FAKE).item() == pytest.approx(bce.item())
    assert ns.g_loss(FAKE).item() == pytest.approx(F.binary_cross_entropy_with_logits(FAKE, torch.ones(3)).item())


def test_g_joint_batch_judges_fakes_with_the_batch_statistics_of_ds_own_update():
    """ganzoo's built-in nonsaturating objective: with BatchNorm in D, G's loss is taken on the fake
    half of D(real + fake), as D's joint-batch update sees them, not on the fakes alone."""
    from ganzoo.builtins.objectives import NonSaturating

    torch.manual_seed(0)
    G, D = LinearG(), LinearD(batchnorm=True)
    real = torch.rand(4, *SHAPE) * 2 - 1
    G0 = LinearG()
    G0.load_state_dict(G.state_dict())
    torch.manual_seed(1)
    out = NonSaturating(joint_batch=True, g_joint_batch=True).step(context(G, D), real, None)
    torch.manual_seed(1)
    G0.sample_latent(4)  # the fakes of D's update
    fake = G0(G0.sample_latent(4))  # the fakes of G's update, from G before its update; D is after its own
    with torch.no_grad():
        joint = F.binary_cross_entropy_with_logits(D(torch.cat([real, fake]))[4:], torch.ones(4))
        alone = F.binary_cross_entropy_with_logits(D(fake), torch.ones(4))
    assert out["loss_g"].item() == pytest.approx(joint.item(), rel=1e-5)
    assert abs(joint.item() - alone.item()) > 1e-3  # the two differ: the test can tell them apart
    with pytest.raises(ganzoo.GanzooError, match="needs joint_batch=true"):
        NonSaturating(joint_batch=False, g_joint_batch=True)


# -- regularizers -------------------------------------------------------------------------------

def test_gradient_penalty_vanishes_on_a_1_lipschitz_critic():
    torch.manual_seed(0)
    real, fake = torch.randn(8, *SHAPE), torch.randn(8, *SHAPE)
    w = torch.randn(4)
    unit = LinearD(w / w.norm())  # ||grad|| = 1 everywhere
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    steep = LinearD(3 * w / w.norm())  # ||grad|| = 3 everywhere: (3 - 1)^2
    assert gradient_penalty(steep, real, fake).item() == pytest.approx(4.0, rel=1e-5)
    # it trains D: its gradient w.r.t. w is 2 (||w|| - 1) w / ||w||
    gp = gradient_penalty(steep, real, fake)
    (g,) = torch.autograd.grad(gp, steep.net.weight)
    assert torch.allclose(g.flatten(), 2 * 2 * w / w.norm(), atol=1e-5)


def test_r1_is_the_squared_gradient_norm_on_real_data():
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    real = torch.randn(5, *SHAPE, requires_grad=True)
    assert r1_penalty(LinearD(w)(real), real).item() == pytest.approx(float(w.pow(2).sum()))


def test_r1_option_adds_gamma_over_2_times_r1_to_the_d_loss():
    torch.manual_seed(0)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    for cls in (Hinge, LeastSquares, WGANGP, NonSaturatingR1):
        out = cls(r1_gamma=4.0, n_critic=1).step(context(LinearG(), LinearD(w), lr=0.0), torch.randn(6, *SHAPE), None)
        assert out["r1"].item() == pytest.approx(0.5 * 4.0 * float(w.pow(2).sum())), cls.__name__


def test_spectral_norm_makes_the_top_singular_value_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5), nn.Embedding(3, 4))
    with torch.no_grad():
        for m in (net[0], net[3]):
            m.weight.mul_(7.0)
    assert top_singular_value(net[3].weight) > 2
    spectral_norm_(net)
    x = torch.randn(2, 3, 6, 6)
    for _ in range(60):  # one power iteration per training forward pass
        net[3](net[2](net[1](net[0](x))))
    for m in (net[0], net[3]):
        assert top_singular_value(m.weight) == pytest.approx(1.0, abs=2e-3)
    assert not hasattr(net[4], "parametrizations")  # embeddings only when asked (layers=...)
    spectral_norm_(net)  # idempotent
    assert len(net[0].parametrizations.weight) == 1
    net.eval()  # eval: no power iteration, the weight stays put
    w = net[0].weight.clone()
    net[0](x)
    assert torch.equal(w, net[0].weight)


def test_clip_weights():
    D = LinearD(torch.tensor([1.0, -2.0, 0.005, 3.0]))
    clip_weights_(D, 0.01)
    assert D.net.weight.abs().max() <= 0.01 and D.net.weight[0, 2] == 0.005


# -- the step -----------------------------------------------------------------------------------

def test_wgan_keeps_every_critic_weight_within_the_clip_after_n_critic_updates():
    torch.manual_seed(0)
    G, D = LinearG(), LinearD(torch.tensor([1.0, -2.0, 0.5, 3.0]))
    ctx = context(G, D)
    d_steps, g_steps = count_steps(ctx.opt_d), count_steps(ctx.opt_g)
    out = WGAN().step(ctx, torch.randn(4, *SHAPE), None)
    assert (len(d_steps), len(g_steps)) == (5, 1)
    assert all(p.abs().max() <= 0.01 for p in D.parameters())
    assert torch.isfinite(out["loss_d"]) and torch.isfinite(out["loss_g"])


def test_each_critic_update_draws_a_fresh_real_batch_when_the_trainer_gives_one():
    torch.manual_seed(0)
    drawn = []

    def next_real():
        drawn.append(torch.randn(4, *SHAPE))
        return drawn[-1], None

    G, D = LinearG(), LinearD()
    seen = []
    D.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    ctx = context(G, D, next_real=next_real)
    first = torch.randn(4, *SHAPE)
    WGANGP(n_critic=3).step(ctx, first, None)
    assert len(drawn) == 2  # critic updates 2 and 3
    reals = [x for x in seen if any(x is r for r in (first, *drawn))]
    assert [id(x) for x in reals] == [id(first), id(drawn[0]), id(drawn[1])]
    # no stream: the step's batch is reused with fresh latents
    seen.clear()
    WGANGP(n_critic=3).step(context(G, D), first, None)
    assert sum(x is first for x in seen) == 3


def test_wgan_gp_warns_about_batchnorm_in_the_critic():
    with pytest.warns(UserWarning, match="BatchNorm"):
        WGANGP(n_critic=1).step(context(LinearG(), LinearD(batchnorm=True)), torch.randn(4, *SHAPE), None)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
@pytest.mark.parametrize("num_classes", [0, 3])
def test_one_step_of_every_objective_updates_both_networks(name, num_classes):
    torch.manual_seed(0)
    G, D = LinearG(num_classes), LinearD(num_classes=num_classes)
    before = [G.net.weight.clone(), D.net.weight.clone()]
    labels = torch.tensor([0, 1, 2, 0]) if num_classes else None
    out = OBJECTIVES[name](n_critic=2).step(context(G, D), torch.rand(4, *SHAPE) * 2 - 1, labels)
    assert {"loss_d", "loss_g", "d_real", "d_fake"} <= out.keys()
    assert all(v.ndim == 0 and torch.isfinite(v) and not v.requires_grad for v in out.values())
    assert not torch.equal(before[0], G.net.weight) and not torch.equal(before[1], D.net.weight)
    assert math.isfinite(float(out["loss_g"]))
