"""Adaptive augmentation (ganzoo.augment.AdaptiveAugment, ``--ada``): the probability p, its
controller (Karras et al. 2020, section 3), logging, checkpoints and exact resume, bad input."""
from __future__ import annotations

import json

import pytest
import torch

from ganzoo import augment, cli
from ganzoo.errors import GanzooError
from ganzoo.trainer import TrainConfig, Trainer, latest_checkpoint, train


def _images(n=64, c=1, h=16, w=16, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) + 1  # > 0: zeros show


def test_p_is_the_probability_each_transformation_is_applied_per_image():
    x = _images(n=2000)
    torch.manual_seed(0)
    assert torch.equal(augment.diff_augment(x, "cutout", p=torch.tensor(0.0)), x)
    torch.manual_seed(0)
    assert ((augment.diff_augment(x, "cutout", p=torch.tensor(1.0)) == 0).flatten(1).any(1)).all()
    torch.manual_seed(0)
    cut = (augment.diff_augment(x, "cutout", p=torch.tensor(0.3)) == 0).flatten(1).any(1).float().mean()
    assert 0.26 < float(cut) < 0.34                     # 2000 images: 0.3 +- 4.5 standard errors
    # two transformations, each with p = 0.5 on its own: both on a quarter of the images
    torch.manual_seed(1)
    y = augment.diff_augment(x, "translation,cutout", p=0.5)
    changed = (y != x).flatten(1).any(1).float().mean()
    assert 0.70 < float(changed) < 0.80                 # 1 - 0.5 * 0.5, minus shifts by 0


def test_controller_steps_p_by_the_papers_rate_every_four_steps():
    ada = augment.AdaptiveAugment(batch_size=8, device="cpu", kimg=0.1)   # 8 * 4 / 100 = 0.32 per adjustment
    assert ada.adjust == pytest.approx(8 * augment.ADA_INTERVAL / 100)
    D = torch.nn.Linear(1, 1)
    ps = []
    for step in range(1, 17):
        real = torch.randn(8, 1, 4, 4)
        ada.set_real(real)
        ada.observe(D, real, torch.full((8,), 2.0 if step <= 12 else -2.0))   # overfit, then not
        ada.observe(D, torch.randn(8, 1, 4, 4), torch.full((8,), -5.0))        # fakes: not counted
        ada.end_step(step)
        ps.append(round(float(ada.p), 4))
    assert ps == [0, 0, 0, 0.32, 0.32, 0.32, 0.32, 0.64, 0.64, 0.64, 0.64, 0.96, 0.96, 0.96, 0.96, 0.64]
    assert float(ada.rt) == -1.0
    for _ in range(40):                                 # clamped to [0, 1]
        ada.set_real(real)
        ada.observe(D, real, torch.full((8,), -1.0))
        ada.end_step(4)
    assert float(ada.p) == 0.0


def test_r_t_counts_the_real_rows_of_a_joint_batch_and_only_in_ds_update():
    ada = augment.AdaptiveAugment(batch_size=4, device="cpu", target=0.5)
    D = torch.nn.Linear(1, 1)
    real, fake = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    ada.set_real(real)
    ada.observe(D, torch.cat([real, fake]), torch.tensor([1.0, 1.0, 1.0, -1.0, 9.0, 9.0, 9.0, 9.0]))
    ada.observe(D, real.detach().requires_grad_(True), torch.tensor([1.0, 1.0, 1.0, 1.0]))   # R1's copy: same data
    D.requires_grad_(False)                             # G's update: D frozen
    ada.observe(D, real, torch.tensor([-1.0, -1.0, -1.0, -1.0]))
    assert float(ada.count) == 8 and float(ada.signs) == 2 + 4
    ada.end_step(4)
    assert float(ada.rt) == pytest.approx(6 / 8) and float(ada.p) > 0


def _cfg(data, **kw):
    base = dict(arch="tiny", data=f"fashion-mnist:{data}", steps=12, log_every=1, sample_every=100,
                checkpoint_every=100, seed=3, arch_config={"num_classes": 0}, ada=True, ada_kimg=0.05)
    base.update(kw)
    return TrainConfig(**base)


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_trainer_moves_p_logs_it_and_resumes_exactly(tiny_plugin, tiny_fmnist, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    t = train(_cfg(tiny_fmnist), straight, progress=False)
    rows = _log(straight)
    ps = [r["ada_p"] for r in rows]
    assert all("ada_rt" in r and -1 <= r["ada_rt"] <= 1 for r in rows)
    assert len(set(ps)) > 1 and all(0 <= p <= 1 for p in ps)              # p moved
    # p changes only at every 4th step, by the paper's step (4 images x 4 steps / 50) or to a bound
    for i, (a, b) in enumerate(zip([0.0] + ps, ps), start=1):
        assert a == b or (i % 4 == 0 and (abs(abs(b - a) - 0.32) < 1e-6 or b in (0.0, 1.0))), (i, a, b)
    meta = json.loads((straight / "run.json").read_text())
    assert meta["train"]["ada"] and meta["train"]["diffaugment"] == augment.ADA_DEFAULT_POLICY
    assert (straight / "loss.png").stat().st_size > 0
    state = torch.load(latest_checkpoint(straight) / "trainer_state.pt", weights_only=True)
    assert float(state["ada"]["p"]) == pytest.approx(ps[-1], abs=1e-6) and t.ada is not None
    # stopped at step 6 (mid-interval: the running sums are in the checkpoint), resumed to 12
    train(_cfg(tiny_fmnist, steps=6, checkpoint_every=6), split, progress=False)
    train(_cfg(tiny_fmnist), split, resume=True, progress=False)
    assert [r["ada_p"] for r in _log(split)] == ps and [r["ada_rt"] for r in _log(split)] == [r["ada_rt"] for r in rows]
    a = torch.load(latest_checkpoint(straight) / "trainer_state.pt", weights_only=True)["opt_d"]["state"]
    b = torch.load(latest_checkpoint(split) / "trainer_state.pt", weights_only=True)["opt_d"]["state"]
    assert all(torch.equal(a[k]["exp_avg"], b[k]["exp_avg"]) for k in a)
    # an exported model's card says the augmentation was adaptive, with the p its checkpoint had reached
    from ganzoo import hub
    folder = hub.export_model(straight, tmp_path / "model")
    training = json.loads((folder / "config.json").read_text())["training"]
    assert training["ada"] == {"target": 0.6, "kimg": 0.05, "p": ps[-1]}
    assert f"adaptive probability p (ADA, Karras et al. 2020: target r_t 0.6, p moves 0 to 1 in 0.05 kimg, " \
           f"p {ps[-1]:.2f} at this checkpoint)" in (folder / "README.md").read_text()


@pytest.mark.parametrize("kw,fragment", [
    ({"ada_target": 1.5}, "--ada-target 1.5: the target of r_t = E[sign(D(real))] must be in (0, 1)"),
    ({"ada_target": 0.0}, "must be in (0, 1)"),
    ({"ada_target": float("nan")}, "must be in (0, 1)"),
    ({"ada_kimg": -1.0}, "--ada-kimg -1"),
    ({"ada": False, "ada_target": 0.5}, "--ada-target 0.5 only goes with --ada"),
    ({"diffaugment": "color,rotate"}, "unknown 'rotate'"),
    ({"diffaugment": ""}, "DiffAugment policy '' is empty"),            # given empty: not ADA's default
    ({"ada": False, "ada_kimg": 500.0, "diffaugment": ""}, "DiffAugment policy '' is empty"),  # nor silently none
])
def test_bad_ada_options_are_one_line_errors(tiny_plugin, tiny_fmnist, tmp_path, kw, fragment):
    with pytest.raises(GanzooError) as err:
        Trainer(_cfg(tiny_fmnist, **kw), tmp_path / "r")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_ada_is_refused_where_d_has_no_real_fake_boundary(tiny_plugin, tiny_fmnist, tmp_path):
    pytest.importorskip("ganzoo_losses")
    with pytest.raises(GanzooError, match="without a real/fake decision boundary"):
        Trainer(_cfg(tiny_fmnist, objective="wgan-gp"), tmp_path / "w")
    t = Trainer(_cfg(tiny_fmnist, objective="lsgan"), tmp_path / "l")   # targets 0 and 1: boundary 0.5
    assert t.ada.boundary == 0.5


def test_cli_ada_errors_are_one_line(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    rc = cli.main(["train", "tiny", "--data", f"fashion-mnist:{tiny_fmnist}", "--out", str(tmp_path / "c"),
                   "--steps", "1", "--ada", "--ada-target", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("ganzoo: error: --ada-target 1")
    assert not (tmp_path / "c" / "run.json").exists()
