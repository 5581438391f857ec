"""A run folder a user can trust: numbers checked before work, one writer (a lock), only intact
checkpoints kept and resumed, a run that can always be resumed or restarted, signal exit codes,
and SIGKILLs at random points (in the checkpoint writer too) that resume or restart cleanly."""
from __future__ import annotations

import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganzoo.cli import main
from ganzoo.runlock import LOCK_NAME, RunLock
from ganzoo.trainer import latest_checkpoint, train, verify_checkpoint
from testkit import tiny_train_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import kill_test  # noqa: E402  (scripts/kill_test.py: the SIGKILL test, also run 20x by hand)


def _weights(ck: Path) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v for k, v in load_file(ck / "generator.safetensors").items()}
    out.update({f"D.{k}": v for k, v in load_file(ck / "discriminator.safetensors").items()})
    return out


def _same(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _train_cli(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "tiny", "--data", f"fashion-mnist:{data}", "--set", "num_classes=0", "--quiet",
            "--out", str(out), *extra]


def _one_line_error(capsys, rc: int, *, code: int = 2) -> str:
    err = capsys.readouterr().err
    assert rc == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ganzoo: error: ") and "Traceback" not in err, err
    return lines[0]


# ---- 1. numbers checked before any work ---------------------------------------------------------
BAD_NUMBERS = [
    (["--batch-size", "-4"], "--batch-size -4"), (["--batch-size", "0"], "--batch-size 0"),
    (["--steps", "0"], "--steps 0"), (["--steps", "-5"], "--steps -5"),
    (["--epochs", "0"], "--epochs 0"), (["--epochs", "-1"], "--epochs -1"), (["--epochs", "nan"], "--epochs nan"),
    (["--log-every", "0"], "--log-every 0"), (["--sample-every", "-1"], "--sample-every -1"),
    (["--checkpoint-every", "0"], "--checkpoint-every 0"), (["--keep-checkpoints", "0"], "--keep-checkpoints 0"),
    (["--lr-g", "nan"], "--lr-g nan"), (["--lr-g", "-1"], "--lr-g -1"), (["--lr-d", "-0.5"], "--lr-d -0.5"),
    (["--lr-d", "inf"], "--lr-d inf"),
    (["--seed", "12345678901234567890"], "--seed 12345678901234567890"), (["--seed", "-1"], "--seed -1"),
    (["--device", "tpu"], "--device tpu"), (["--device", "cuda:x"], "--device cuda:x"),
]


@pytest.mark.parametrize("extra,named", BAD_NUMBERS, ids=[" ".join(e) for e, _ in BAD_NUMBERS])
def test_bad_numbers_are_one_line_errors_before_any_work(tiny_plugin, tiny_fmnist, tmp_path, capsys, extra, named):
    out = tmp_path / "run"
    args = _train_cli(tiny_fmnist, out, *(["--steps", "2"] if "--steps" not in extra else []), *extra)
    line = _one_line_error(capsys, main(args))
    assert line.startswith(f"ganzoo: error: {named}:"), line
    assert not out.exists()  # nothing created
    # fine-tune checks the same numbers before it loads anything (REF does not even exist)
    line = _one_line_error(capsys, main(["finetune", str(tmp_path / "no-such-model"), "--data",
                                         f"fashion-mnist:{tiny_fmnist}", "--out", str(out), *extra]))
    assert line.startswith(f"ganzoo: error: {named}:"), line


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    line = _one_line_error(capsys, main(_train_cli(tiny_fmnist, tmp_path / "r", "--steps", "1", "--device", "cuda")))
    assert "CUDA is not available" in line and "--device cpu" in line


# ---- 2. --resume: the effective recorded values; a run already past --steps ----------------------
def test_resume_accepts_the_values_the_run_used_and_refuses_going_back(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    run = tmp_path / "r"
    assert main(_train_cli(tiny_fmnist, run, "--steps", "4", "--checkpoint-every", "2")) == 0
    capsys.readouterr()
    # the architecture's batch size (4) and image size (16) are what the run used: not a change
    assert main(["train", "--resume", "--out", str(run), "--steps", "5", "--batch-size", "4",
                 "--image-size", "16", "--quiet"]) == 0
    assert "resuming" in capsys.readouterr().err
    line = _one_line_error(capsys, main(["train", "--resume", "--out", str(run), "--steps", "3", "--quiet"]))
    assert "already at step 5" in line and "--steps 3" in line
    # the run as it is: nothing to train, said so, exit 0, no "trained N steps"
    assert main(["train", "--resume", "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "nothing to train" in out.err and "trained" not in out.out
    assert latest_checkpoint(run).name == "step-00000005"


# ---- 3. one writer per run folder -----------------------------------------------------------------
HOLD = ("import sys, time; from ganzoo.runlock import RunLock; l = RunLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(60)")


def test_a_second_training_into_a_locked_folder_is_refused(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    run = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for args in (_train_cli(tiny_fmnist, run, "--steps", "1"), ["train", "--resume", "--out", str(run)],
                     _train_cli(tiny_fmnist, run, "--steps", "1", "--restart")):
            line = _one_line_error(capsys, main(args))
            assert f"pid {holder.pid} on host {socket.gethostname()}" in line, line
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (SIGKILL): its lock is stale, taken over with a warning
    assert json.loads((run / LOCK_NAME).read_text())["pid"] == holder.pid
    assert main(_train_cli(tiny_fmnist, run, "--steps", "1")) == 0
    err = capsys.readouterr().err
    assert f"left by pid {holder.pid}" in err and "no longer running" in err
    assert not (run / LOCK_NAME).exists()  # released at the end


def test_stale_and_foreign_lock_files(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "r"
    run.mkdir()
    # a lock file whose process is dead (no flock held: as after a crash on a file system without flock)
    (run / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": 0}))
    assert main(_train_cli(tiny_fmnist, run, "--steps", "1")) == 0
    assert f"left by pid {dead.pid}" in capsys.readouterr().err
    # another host's lock cannot be checked from here: refused, naming the file to delete
    (run / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "since": 0}))
    line = _one_line_error(capsys, main(["train", "--resume", "--out", str(run), "--steps", "2"]))
    assert "pid 1 on host elsewhere.example" in line and f"delete {run / LOCK_NAME}" in line
    # a lock in the same process is not a stale one: RunLock is per process
    (run / LOCK_NAME).unlink()
    with RunLock(run):
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (run / LOCK_NAME).exists()


# ---- 4. checkpoints: temporaries cleaned, intact fallback, finite weights ---------------------------
def test_temporaries_of_a_killed_writer_are_removed(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    run = tmp_path / "r"
    train(tiny_train_config(tiny_fmnist, steps=2, checkpoint_every=1), run, progress=False)
    tmp = run / "checkpoints" / ".tmp-step-00000003-4242"
    tmp.mkdir()
    (tmp / "generator.safetensors").write_bytes(b"\0" * 1000)
    (run / "checkpoints" / ".latest.abc123.tmp").write_text("step-00000003\n")
    (run / ".log.jsonl.xyz.tmp").write_text("{")
    (run / "notes.tmp").write_text("mine")  # not ganzoo's: kept
    capsys.readouterr()
    train(tiny_train_config(tiny_fmnist, steps=3, checkpoint_every=1), run, resume=True, progress=False)
    assert "removed 3 unfinished file(s)" in capsys.readouterr().err
    assert not tmp.exists() and not list(run.rglob(".*.tmp")) and (run / "notes.tmp").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "nan", "missing"])
def test_resume_falls_back_to_the_newest_intact_checkpoint(tiny_plugin, tiny_fmnist, tmp_path, capsys, damage):
    straight = tmp_path / "straight"
    train(tiny_train_config(tiny_fmnist, steps=6), straight, progress=False)
    run = tmp_path / "r"
    train(tiny_train_config(tiny_fmnist, steps=4, checkpoint_every=1, keep_checkpoints=3), run, progress=False)
    bad = run / "checkpoints" / "step-00000004"
    if damage == "truncate":
        data = (bad / "generator.safetensors").read_bytes()
        (bad / "generator.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        (bad / "trainer_state.pt").write_bytes(b"PK\3\4 not a zip")
    elif damage == "nan":
        from safetensors.torch import save_file

        g = load_file(bad / "generator.safetensors")
        next(v for v in g.values() if v.is_floating_point()).view(-1)[0] = float("nan")
        save_file(g, bad / "generator.safetensors")
    else:
        (bad / "discriminator.safetensors").unlink()
    assert verify_checkpoint(bad) is not None and verify_checkpoint(run / "checkpoints" / "step-00000003") is None
    capsys.readouterr()
    train(tiny_train_config(tiny_fmnist, steps=6), run, resume=True, progress=False)
    err = capsys.readouterr().err
    assert "checkpoint step-00000004 is damaged" in err and "resuming" in err and "step-00000003" in err
    assert "Traceback" not in err
    # the run recomputed steps 4-6 exactly: the same weights as a run never damaged
    assert latest_checkpoint(run).name == "step-00000006" and _same(latest_checkpoint(run), latest_checkpoint(straight))
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))


def test_divergence_keeps_finite_checkpoints_and_its_advice_works(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    run = tmp_path / "r"
    rc = main(_train_cli(tiny_fmnist, run, "--steps", "8", "--lr-d", "1e12", "--lr-g", "1e12",
                         "--checkpoint-every", "1", "--log-every", "1", "--keep-checkpoints", "10"))
    line = _one_line_error(capsys, rc)
    assert "NaN/Inf" in line
    for ck in (run / "checkpoints").glob("step-*"):  # whatever was kept holds finite weights
        assert verify_checkpoint(ck) is None, ck
    # the advice names commands that work as written
    commands = [c for c in line.split("`")[1::2] if c.startswith("ganzoo train")]
    assert commands and all("--lr-g 1e+11" in c for c in commands), line
    for command in commands:
        fixed = shlex.split(command)[1:]
        fixed[fixed.index("--lr-g") + 1] = fixed[fixed.index("--lr-d") + 1] = "1e-3"  # and a rate that trains
        assert main(fixed + ["--quiet"]) == 0, capsys.readouterr().err
    meta = json.loads((run / "run.json").read_text())
    assert meta["train"]["lr_g"] == 1e-3 and meta["train"]["steps"] == 8
    assert verify_checkpoint(latest_checkpoint(run)) is None and latest_checkpoint(run).name == "step-00000008"


def test_lr_and_bf16_may_change_at_resume_and_are_recorded(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    run = tmp_path / "r"
    # starts in fp32 on every CPU (on one with native bf16 the default would already be bf16: no change to record)
    assert main(_train_cli(tiny_fmnist, run, "--steps", "2", "--no-bf16")) == 0
    assert main(["train", "--resume", "--out", str(run), "--steps", "3", "--lr-d", "5e-4", "--bf16", "--quiet"]) == 0
    assert main(["train", "--resume", "--out", str(run), "--steps", "4", "--no-bf16", "--quiet"]) == 0
    meta = json.loads((run / "run.json").read_text())
    assert meta["train"]["lr_d"] == 5e-4 and meta["train"]["bf16"] is False
    changes = meta["resume_changes"]  # each with the command that made it (here pytest's own argv)
    assert all(c.pop("command").startswith("ganzoo ") for c in changes)
    assert changes == [{"lr_d": 5e-4, "bf16": True, "at_step": 2}, {"bf16": False, "at_step": 3}]
    state = torch.load(latest_checkpoint(run) / "trainer_state.pt", weights_only=True)
    assert state["opt_d"]["param_groups"][0]["lr"] == 5e-4 and state["opt_g"]["param_groups"][0]["lr"] == 1e-3


# ---- 5. always resumable or restartable ------------------------------------------------------------
def test_restart_keeps_nothing_and_says_so(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    run = tmp_path / "r"
    assert main(_train_cli(tiny_fmnist, run, "--steps", "3", "--checkpoint-every", "1", "--sample-every", "1",
                         "--log-every", "1")) == 0
    (run / "thesis.tex").write_text("mine")
    line = _one_line_error(capsys, main(_train_cli(tiny_fmnist, run, "--steps", "2")))
    assert "already holds a run" in line and "--resume" in line and "--restart" in line
    line = _one_line_error(capsys, main(["train", "--resume", "--restart", "--out", str(run)]))
    assert "contradict" in line
    # --restart without ARCH: the recorded settings, the options given replacing them
    assert main(["train", "--restart", "--out", str(run), "--steps", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "deleted the earlier run" in err and "nothing of it is kept" in err and "step-00000003" in err
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-00000001", "step-00000002"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000001.png", "step-00000002.png"]
    assert [json.loads(r)["step"] for r in (run / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert (run / "thesis.tex").read_text() == "mine"  # not ganzoo's: kept
    assert json.loads((run / "run.json").read_text())["train"]["steps"] == 2


def test_a_run_without_a_checkpoint_resumes_from_step_zero(tiny_plugin, tiny_fmnist, tmp_path, capsys):
    straight = tmp_path / "straight"
    train(tiny_train_config(tiny_fmnist, steps=3), straight, progress=False)
    run = tmp_path / "r"
    train(tiny_train_config(tiny_fmnist, steps=3), run, progress=False)
    import shutil

    shutil.rmtree(run / "checkpoints")  # as a run killed before its first checkpoint
    capsys.readouterr()
    train(tiny_train_config(tiny_fmnist, steps=3), run, resume=True, progress=False)
    assert "from step 0" in capsys.readouterr().err
    assert _same(latest_checkpoint(run), latest_checkpoint(straight))
    assert [json.loads(r)["step"] for r in (run / "log.jsonl").read_text().splitlines()] == [1, 2, 3]


# ---- 6./7. signals and SIGKILL, out of process ------------------------------------------------------
def test_sigint_and_sigterm_exit_130_and_143_after_saving(tiny_fmnist, tmp_path):
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        run = tmp_path / sig.name
        proc = kill_test.start(run, tiny_fmnist, steps=100_000, checkpoint_every=3)
        kill_test.wait_for(lambda: latest_checkpoint(run) is not None, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err
        assert f"{sig.name} received" in err and "Traceback" not in err
        assert verify_checkpoint(latest_checkpoint(run)) is None


def test_sigterm_in_the_checkpoint_writer_saves_once_and_keeps_a_copy(tiny_fmnist, tmp_path):
    run = tmp_path / "r"
    proc = kill_test.start(run, tiny_fmnist, steps=100_000, checkpoint_every=2, keep=1,
                           env={"GANZOO_TEST_SLOW_CHECKPOINT": "0.4"})
    # the second checkpoint, while its folder is half-written (one good copy exists: step 2)
    kill_test.wait_for(lambda: latest_checkpoint(run) is not None and list((run / "checkpoints").glob(".tmp-step-*")),
                       proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    step = int(err.split("saved a checkpoint at step ")[1].split()[0])
    assert err.count(f"checkpoint writer: step-{step:08d} started") == 1, err  # not saved twice
    kept = sorted((run / "checkpoints").glob("step-*"))
    assert [p.name for p in kept] == [f"step-{step:08d}"] and verify_checkpoint(kept[0]) is None


@pytest.mark.slow
def test_sigkill_at_random_points_resumes_or_restarts(tiny_fmnist, tmp_path):
    """A few kills here (scripts/kill_test.py runs as many as asked): before the first checkpoint,
    inside the checkpoint writer, and anywhere; each run finishes with the weights of a run never
    killed, having lost at most one checkpoint interval."""
    result = kill_test.run_kills(tiny_fmnist, tmp_path, kinds=["before-first", "in-writer", "random"],
                                 rng=random.Random(20))
    assert result["ok"] == 3, result
    assert {"before-first", "in-writer"} <= set(result["landed"]), result
