"""The trainer: exact resume, divergence, signals, SIGKILL, run-directory contents."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ganzoo
from ganzoo import plugins
from ganzoo.errors import GanzooError
from ganzoo.trainer import TrainConfig, TrainingDiverged, latest_checkpoint, train
from testkit import tiny_train_config

REPO = Path(__file__).resolve().parents[1]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    ck = latest_checkpoint(run)
    out = {f"G.{k}": v for k, v in load_file(ck / "generator.safetensors").items()}
    out.update({f"D.{k}": v for k, v in load_file(ck / "discriminator.safetensors").items()})
    return out


def test_resume_is_exact(tiny_plugin, tiny_fmnist, tmp_path):
    # 32 images / batch 4 = 8 steps per epoch; cross an epoch boundary too
    straight = tmp_path / "straight"
    train(tiny_train_config(tiny_fmnist, steps=10), straight, progress=False)
    split = tmp_path / "split"
    train(tiny_train_config(tiny_fmnist, steps=6, checkpoint_every=3), split, progress=False)
    train(tiny_train_config(tiny_fmnist, steps=10), split, resume=True, progress=False)
    a, b = _weights(straight), _weights(split)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(l)["step"] for l in (split / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 11))


def test_two_plus_two_equals_four(tiny_plugin, tiny_fmnist, tmp_path):
    train(tiny_train_config(tiny_fmnist, steps=4), tmp_path / "a", progress=False)
    train(tiny_train_config(tiny_fmnist, steps=2), tmp_path / "b", progress=False)
    train(tiny_train_config(tiny_fmnist, steps=4), tmp_path / "b", resume=True, progress=False)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_directory_contents(tiny_plugin, tiny_fmnist, tmp_path):
    run = tmp_path / "run"
    train(tiny_train_config(tiny_fmnist, steps=6, sample_every=3, checkpoint_every=2, keep_checkpoints=2), run, progress=False)
    meta = json.loads((run / "run.json").read_text())
    assert meta["train"]["arch"] == "tiny" and meta["resolved"]["batch_size"] == 4
    assert (run / "samples.png").stat().st_size > 0 and (run / "loss.png").stat().st_size > 0
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000003.png", "step-00000006.png"]
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-00000004", "step-00000006"]
    state = torch.load(latest_checkpoint(run) / "trainer_state.pt", weights_only=True)
    assert state["step"] == 6 and "opt_g" in state and "rng" in state
    rows = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    assert {"loss_d", "loss_g", "d_acc"} <= rows[-1].keys()


def test_resume_refuses_options_that_would_change_the_run(tiny_plugin, tiny_fmnist, tmp_path):
    run = tmp_path / "r"
    train(tiny_train_config(tiny_fmnist, steps=2, checkpoint_every=1), run, progress=False)
    with pytest.raises(GanzooError, match=r"cannot change mid-run: batch_size 8 \(recorded: 4\); flip True") as err:
        train(tiny_train_config(tiny_fmnist, steps=3, batch_size=8, flip=True), run, resume=True, progress=False)
    assert "\n" not in str(err.value)
    assert json.loads((run / "log.jsonl").read_text().splitlines()[-1])["step"] == 2   # nothing ran
    # the recorded values repeated (also the architecture's defaults it ran with: batch 4, 16 px),
    # the length, and how the run is driven are fine
    trainer = train(tiny_train_config(tiny_fmnist, steps=3, sample_every=7, batch_size=4, arch_config={"image_size": 16}), run,
                    resume=True, progress=False)
    assert trainer.step == 3 and trainer.cfg.sample_every == 7


def test_existing_run_needs_resume(tiny_plugin, tiny_fmnist, tmp_path):
    train(tiny_train_config(tiny_fmnist, steps=1), tmp_path / "r", progress=False)
    with pytest.raises(GanzooError, match="--resume"):
        train(tiny_train_config(tiny_fmnist, steps=1), tmp_path / "r", progress=False)


class ExplodingObjective(ganzoo.Objective):
    """Finite for 3 steps, then NaN."""

    def __init__(self):
        self.calls = 0

    def step(self, ctx, real, labels):
        self.calls += 1
        fake = ctx.generate(real.shape[0])
        loss = fake.mean() + ctx.D(real).mean()
        ctx.update(loss, ctx.opt_g)
        bad = float("nan") if self.calls > 3 else 0.0
        return {"loss_d": loss.detach() + bad, "loss_g": loss.detach()}


class ExplodingPlugin:
    @staticmethod
    @ganzoo.hookimpl
    def register_objectives(register):
        register("exploding", ExplodingObjective)


def test_nan_stops_and_keeps_last_good_checkpoint(tiny_plugin, tiny_fmnist, tmp_path):
    plugins.register_plugin(ExplodingPlugin, name="exploding")
    try:
        run = tmp_path / "run"
        with pytest.raises(TrainingDiverged, match="step-00000002"):
            train(tiny_train_config(tiny_fmnist, steps=8, objective="exploding", checkpoint_every=2, log_every=2), run, progress=False)
        assert latest_checkpoint(run).name == "step-00000002"
    finally:
        plugins.unregister_plugin("exploding")


# ---- out-of-process: an installed plugin, SIGTERM and SIGKILL --------------------------------
@pytest.fixture(scope="module")
def installed_tiny(tmp_path_factory):
    """pip-install the out-of-tree fixture plugin into a target folder (no network)."""
    target = tmp_path_factory.mktemp("site")
    for pkg in ("ganzoo-tiny", "ganzoo-broken"):
        # build from a copy: a build leaves egg-info beside the sources, which would make the
        # in-process fixture (on sys.path) look pip-installed too
        src = tmp_path_factory.mktemp("src") / pkg
        shutil.copytree(REPO / "tests" / "fixtures" / pkg, src)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(target), str(src)],
                       check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(target), PYTHONUNBUFFERED="1")
    return env


def _ganzoo(env, *args, **kw):
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], env=env, capture_output=True, text=True, **kw)


def test_installed_plugin_appears_and_trains(installed_tiny, tiny_fmnist, tmp_path):
    out = _ganzoo(installed_tiny, "list")
    assert out.returncode == 0, out.stderr
    assert "tiny" in out.stdout
    # the broken plugin is reported and the others still load
    assert "ganzoo-broken" in out.stderr and "deliberate test failure" in out.stderr
    out = _ganzoo(installed_tiny, "plugins")
    assert "ganzoo-tiny" in out.stdout and "FAILED" in out.stdout
    run = tmp_path / "run"
    out = _ganzoo(installed_tiny, "train", "tiny", "--data", f"fashion-mnist:{tiny_fmnist}", "--steps", "2",
                  "--out", str(run), "--quiet")
    assert out.returncode == 0, out.stderr
    out = _ganzoo(installed_tiny, "sample", str(run), "-n", "4", "-o", str(tmp_path / "g.png"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "g.png").stat().st_size > 0
    # restricting plugins by name leaves the tiny one out
    env = dict(installed_tiny, GANZOO_PLUGINS="ganzoo-broken")
    out = _ganzoo(env, "list")
    assert "  tiny " not in out.stdout


def _start(env, run, data, *extra):
    return subprocess.Popen([sys.executable, "-m", "ganzoo", "train", "tiny", "--data", f"fashion-mnist:{data}",
                             "--steps", "1000000", "--checkpoint-every", "5", "--log-every", "5",
                             "--sample-every", "1000000", "--out", str(run), "--quiet", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(run, proc, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        ck = latest_checkpoint(run) if (run / "checkpoints").exists() else None
        if ck is not None and int(ck.name.split("-")[1]) >= 10:
            return ck
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("no checkpoint in time")


def test_sigterm_saves_a_checkpoint(installed_tiny, tiny_fmnist, tmp_path):
    run = tmp_path / "run"
    proc = _start(installed_tiny, run, tiny_fmnist)
    _wait_for_checkpoint(run, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143  # 128 + SIGTERM, as a shell reports it
    assert "SIGTERM received" in err and "--resume" in err and "Traceback" not in err
    # a stop the user asked for is reported as one, not as an error of the input
    assert "ganzoo: stopped: SIGTERM received" in err and "error" not in err
    step = int(latest_checkpoint(run).name.split("-")[1])
    state = torch.load(latest_checkpoint(run) / "trainer_state.pt", weights_only=True)
    assert state["step"] == step


def test_sigkill_resumes_from_last_checkpoint(installed_tiny, tiny_fmnist, tmp_path):
    run = tmp_path / "run"
    proc = _start(installed_tiny, run, tiny_fmnist, "--checkpoint-every", "1")
    _wait_for_checkpoint(run, proc)
    proc.kill()
    proc.communicate()
    ck = latest_checkpoint(run)
    step = int(ck.name.split("-")[1])
    # everything in the pointed-to checkpoint loads
    load_file(ck / "generator.safetensors")
    load_file(ck / "discriminator.safetensors")
    torch.load(ck / "trainer_state.pt", weights_only=True)
    out = _ganzoo(installed_tiny, "train", "--resume", "--out", str(run), "--steps", str(step + 3), "--quiet")
    assert out.returncode == 0, out.stderr
    assert latest_checkpoint(run).name == f"step-{step + 3:08d}"
    logged = [json.loads(l)["step"] for l in (run / "log.jsonl").read_text().splitlines()]
    assert logged == sorted(set(logged)) and logged[-1] == step + 3


def test_conditional_architecture_takes_classes_from_the_data(tiny_plugin, tiny_fmnist, tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(arch="tiny", data=f"fashion-mnist:{tiny_fmnist}", steps=1, log_every=1)
    train(cfg, run, progress=False)
    meta = json.loads((run / "run.json").read_text())
    assert meta["train"]["arch_config"]["num_classes"] == 10
    assert meta["resolved"]["class_names"][4] == "Coat"
    G = ganzoo.load(run)
    assert G.num_classes == 10 and G.sample(2, labels=[4, 4], seed=0).shape == (2, 1, 16, 16)


def test_architecture_weight_decay_reaches_the_optimizers(tiny_plugin, tiny_fmnist, tmp_path):
    import dataclasses
    import types

    from ganzoo.trainer import Trainer

    spec = dataclasses.replace(tiny_plugin, name="tiny-wd",
                               optimizer=dataclasses.replace(tiny_plugin.optimizer, weight_decay=0.01))
    mod = types.SimpleNamespace(register_architectures=ganzoo.hookimpl(lambda register: register(spec)))
    plugins.register_plugin(mod, name="tiny-wd-plugin")
    try:
        t = Trainer(TrainConfig(arch="tiny-wd", data=f"fashion-mnist:{tiny_fmnist}", steps=1,
                                arch_config={"num_classes": 0}), tmp_path / "wd")
        assert [g["weight_decay"] for g in t.opt_g.param_groups + t.opt_d.param_groups] == [0.01, 0.01]
    finally:
        plugins.unregister_plugin("tiny-wd-plugin")


@pytest.mark.parametrize("preference,forced,expect", [(None, False, True), (False, False, False),
                                                        (False, True, True), (None, "off", False)])
def test_architecture_memory_layout_preference(tiny_plugin, tiny_fmnist, tmp_path, preference, forced,
                                                expect):
    """channels_last is automatic for conv nets unless the architecture measured it slower
    (Architecture.channels_last=False, as BEGAN does); --channels-last still forces it."""
    import dataclasses
    import types

    from ganzoo.trainer import Trainer

    spec = dataclasses.replace(tiny_plugin, name="tiny-layout", channels_last=preference)
    mod = types.SimpleNamespace(register_architectures=ganzoo.hookimpl(lambda register: register(spec)))
    plugins.register_plugin(mod, name="tiny-layout-plugin")
    try:
        t = Trainer(TrainConfig(arch="tiny-layout", data=f"fashion-mnist:{tiny_fmnist}", steps=1,
                                channels_last=forced is True, nchw=forced == "off",
                                arch_config={"num_classes": 0}), tmp_path / "l")
        convs = [w for net in (t.G, t.D) for w in net.parameters()
                 if w.ndim == 4 and w.shape[1] > 1]  # conv weights; with 1 input channel both layouts match
        assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
                             for w in convs) == expect
        assert ("channels_last" in t.speed_notes) == expect
    finally:
        plugins.unregister_plugin("tiny-layout-plugin")


def test_cli_betas_reach_the_recipe(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    from ganzoo.cli import main

    out = tmp_path / "b"
    assert main(["train", "tiny", "--data", f"fashion-mnist:{tiny_fmnist}", "--steps", "1", "--betas", "0.0,0.9",
                 "--set", "num_classes=0", "--quiet", "--out", str(out)]) == 0
    assert json.loads((out / "run.json").read_text())["resolved"]["betas"] == [0.0, 0.9]
    with pytest.raises(SystemExit):
        main(["train", "tiny", "--betas", "0.5", "--out", str(tmp_path / "c")])
    assert "is not two numbers B1,B2" in capsys.readouterr().err


def test_ema_is_the_ramped_moving_average_and_resumes_exactly(tiny_plugin, tiny_fmnist, tmp_path):
    from ganzoo.hub import load
    from ganzoo.trainer import EMA_FILE, Trainer

    decay = 0.9
    run = tmp_path / "ema"
    train(tiny_train_config(tiny_fmnist, steps=4, ema=decay, checkpoint_every=1, keep_checkpoints=10), run, progress=False)
    G0 = Trainer(tiny_train_config(tiny_fmnist, steps=4), tmp_path / "init").G.state_dict()
    params = [k for k in G0 if "running" not in k and "num_batches" not in k]
    ema = {k: G0[k].float().clone() for k in params}
    for t in range(4):  # by hand: d_t = min(decay, (1 + t) / (10 + t))
        d = min(decay, (1 + t) / (10 + t))
        g = load_file(run / "checkpoints" / f"step-{t + 1:08d}" / "generator.safetensors")
        ema = {k: ema[k] + (1 - d) * (g[k].float() - ema[k]) for k in params}
    got = load_file(run / "checkpoints" / "step-00000004" / EMA_FILE)
    for k in params:
        assert torch.allclose(got[k], ema[k], atol=1e-6), k
    raw = load_file(run / "checkpoints" / "step-00000004" / "generator.safetensors")
    assert any(not torch.allclose(got[k], raw[k]) for k in params)  # the average is not the last weights

    # 2 + 2 steps == 4, the average included
    split = tmp_path / "split"
    train(tiny_train_config(tiny_fmnist, steps=2, ema=decay), split, progress=False)
    train(tiny_train_config(tiny_fmnist, steps=4), split, resume=True, progress=False)
    assert all(torch.equal(got[k], v) for k, v in load_file(latest_checkpoint(split) / EMA_FILE).items())

    # sampling and export from the run use the average, and say so
    G = load(str(run))
    assert all(torch.equal(G.state_dict()[k].cpu(), got[k]) for k in params)
    assert "moving average" in G.model_info["training"]["generator_weights"]
    # the trained weights are one option away, for load, sample and eval alike
    G_trained = load(str(run), generator_weights="trained")
    assert all(torch.equal(G_trained.state_dict()[k].cpu(), raw[k]) for k in params)
    assert G_trained.model_info["training"]["generator_weights"] == "the trained weights"
    import ganzoo  # the top-level API takes the same option (it once dropped it)

    G_top = ganzoo.load(str(run), generator_weights="trained")
    assert all(torch.equal(G_top.state_dict()[k].cpu(), raw[k]) for k in params)
    from ganzoo.cli import main

    assert main(["sample", str(run), "-n", "2", "--generator-weights", "trained", "-o", str(tmp_path / "t.png")]) == 0
    assert main(["sample", str(run), "-n", "2", "-o", str(tmp_path / "e.png")]) == 0
    assert (tmp_path / "t.png").read_bytes() != (tmp_path / "e.png").read_bytes()
    # ... unless the trained weights are asked for (measured better for BatchNorm generators, e.g. dcgan_fashion)
    from ganzoo.hub import export_model

    folder = export_model(run, tmp_path / "trained", generator_weights="trained")
    exported = load_file(folder / "generator.safetensors")
    assert all(torch.equal(exported[k], raw[k]) for k in params)
    with pytest.raises(GanzooError, match="needs a run directory or one of its checkpoints"):
        load(str(folder), generator_weights="ema")
    with pytest.raises(GanzooError, match="no such run directory or checkpoint"):   # a typo, not a model folder
        load(str(run / "checkpoints" / "step-99999999"), generator_weights="trained")
    assert json.loads((folder / "config.json").read_text())["training"]["generator_weights"] == "the trained weights"
    with pytest.raises(GanzooError, match="no moving average of G"):
        export_model(train(tiny_train_config(tiny_fmnist, steps=1), tmp_path / "plain", progress=False).out, tmp_path / "x",
                     generator_weights="ema")


def test_ema_can_be_switched_on_at_resume(tiny_plugin, tiny_fmnist, tmp_path):
    from ganzoo.trainer import EMA_FILE

    run = tmp_path / "r"
    train(tiny_train_config(tiny_fmnist, steps=2, keep_checkpoints=10), run, progress=False)
    train(tiny_train_config(tiny_fmnist, steps=4, ema=0.99, checkpoint_every=1, keep_checkpoints=10), run, resume=True,
          progress=False)
    assert (latest_checkpoint(run) / EMA_FILE).exists()
    # the ramp counts from the step the average started, not from step 0: d_t = min(0.99, (1 + t) / (10 + t))
    ckpt = lambda s: load_file(run / "checkpoints" / f"step-{s:08d}" / "generator.safetensors")  # noqa: E731
    ema = {k: v.float() for k, v in ckpt(2).items() if "running" not in k and "num_batches" not in k}
    for t, s in enumerate((3, 4)):
        d = min(0.99, (1 + t) / (10 + t))
        ema = {k: v + (1 - d) * (ckpt(s)[k].float() - v) for k, v in ema.items()}
    got = load_file(run / "checkpoints" / "step-00000004" / EMA_FILE)
    assert all(torch.allclose(got[k], v, atol=1e-6) for k, v in ema.items())
    meta = json.loads((run / "run.json").read_text())
    assert meta["train"]["ema"] == 0.99 and [{k: v for k, v in c.items() if k != "command"}
                                             for c in meta["resume_changes"]] == [{"ema": 0.99, "at_step": 2}]
    with pytest.raises(GanzooError, match="the decay must be in"):
        train(tiny_train_config(tiny_fmnist, steps=4, ema=1.5), tmp_path / "bad", progress=False)


def test_linear_lr_decay_falls_to_zero_at_the_last_step_and_can_start_at_resume(tiny_plugin, tiny_fmnist, tmp_path):
    def lrs(run):  # the rates of the optimizers' last step, from the checkpoint
        state = torch.load(latest_checkpoint(run) / "trainer_state.pt", weights_only=True)
        return [state[k]["param_groups"][0]["lr"] for k in ("opt_g", "opt_d")]

    run = tmp_path / "fresh"
    t = train(tiny_train_config(tiny_fmnist, steps=6, lr_decay="linear", lr_decay_start=2), run, progress=False)
    lr = t.lr_g
    logged = [json.loads(line)["lr_g"] for line in (run / "log.jsonl").read_text().splitlines()]
    # steps 0..5: factor 1 before step 2, then 1 - (s - 2) / 4
    assert logged == pytest.approx([lr, lr, lr, 0.75 * lr, 0.5 * lr, 0.25 * lr])
    assert lrs(run) == pytest.approx([0.25 * t.lr_g, 0.25 * t.lr_d])
    assert "linear decay to 0 at the last step, from step 2" in ganzoo.load(run).model_info["training"]["lr_schedule"]

    # 2 steps at a constant rate, then a decay switched on at --resume starts from the checkpoint
    split = tmp_path / "split"
    train(tiny_train_config(tiny_fmnist, steps=2), split, progress=False)
    assert lrs(split) == pytest.approx([t.lr_g, t.lr_d])
    train(tiny_train_config(tiny_fmnist, steps=4, lr_decay="linear"), split, resume=True, progress=False)
    meta = json.loads((split / "run.json").read_text())
    assert meta["train"]["lr_decay"] == "linear" and meta["train"]["lr_decay_start"] == 2
    (change,) = meta["resume_changes"]
    assert change.pop("command") and change == {"lr_decay": "linear", "lr_decay_start": 2, "at_step": 2}
    # the card's recipe says what changed, from when, and by which command
    resumed = ganzoo.load(split).model_info["training"]["changed_at_resume"]
    assert resumed.startswith("from step 2: lr_decay linear, lr_decay_start 2 (`") and resumed.endswith("`)")
    assert lrs(split) == pytest.approx([0.5 * t.lr_g, 0.5 * t.lr_d])  # step 3: 1 - (3 - 2) / 2
    train(tiny_train_config(tiny_fmnist, steps=5, lr_decay="linear"), split, resume=True, progress=False)  # repeating it is fine
    assert json.loads((split / "run.json").read_text())["train"]["lr_decay_start"] == 2
    with pytest.raises(GanzooError, match="already decays its learning rate"):
        train(tiny_train_config(tiny_fmnist, steps=5, lr_decay="linear", lr_decay_start=4), split, resume=True, progress=False)
    with pytest.raises(GanzooError, match="--lr-decay cosine: use one of linear"):
        train(tiny_train_config(tiny_fmnist, lr_decay="cosine"), tmp_path / "bad", progress=False)

    # one resume that changes several settings is one entry, with its command once
    both = tmp_path / "both"
    train(tiny_train_config(tiny_fmnist, steps=2), both, progress=False)
    train(tiny_train_config(tiny_fmnist, steps=3, lr_d=5e-4, ema=0.99, lr_decay="linear"), both, resume=True,
          progress=False, command="ganzoo train --resume --out both")
    assert json.loads((both / "run.json").read_text())["resume_changes"] == [
        {"lr_d": 5e-4, "ema": 0.99, "lr_decay": "linear", "lr_decay_start": 2, "at_step": 2,
         "command": "ganzoo train --resume --out both"}]
