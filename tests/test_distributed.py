"""Distributed training on CPU with gloo: torch.multiprocessing ranks and real torchrun jobs."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from ganzoo import GanzooError
from ganzoo.trainer import TrainConfig, Trainer, latest_checkpoint, train

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

FIXTURE = Path(__file__).parent / "fixtures" / "ganzoo-tiny"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cfg(data: Path, steps: int, **kw) -> TrainConfig:
    # no BatchNorm: with it each rank normalises over its own half of the batch, which a single
    # process cannot reproduce (SyncBatchNorm, the fix, is CUDA-only); fp32 on every CPU: on one that
    # computes bf16 natively the default is bf16 autocast, whose rounding differs between the split and
    # the whole batch by far more than the 1e-6 compared here
    kw.setdefault("bf16", False)
    return TrainConfig(arch="tiny", data=f"fashion-mnist:{data}",
                       arch_config={"image_size": 16, "channels": 1, "num_classes": 0, "batchnorm": False},
                       batch_size=8, steps=steps, device="cpu", flip=True, log_every=2, checkpoint_every=4,
                       sample_every=1000, keep_checkpoints=4, **kw)


def _rank_main(rank: int, world: int, port: int, data: str, out: str, steps: int, dump: str) -> None:
    """One rank, started by torch.multiprocessing the way torchrun would: environment, then train()."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), GANZOO_DIST_TIMEOUT="60")
    torch.set_num_threads(1)
    sys.path.insert(0, str(FIXTURE))
    import ganzoo_tiny
    from ganzoo import plugins

    plugins.register_plugin(ganzoo_tiny, name="tiny-test-plugin")
    trainer = train(_cfg(Path(data), steps), out, progress=False)
    torch.save({"G": trainer.G.state_dict(), "D": trainer.D.state_dict(),
                "objective_world": trainer.dist.world_size}, Path(dump) / f"rank{rank}.pt")


def _spawn(world: int, data: Path, out: Path, steps: int, dump: Path) -> None:
    import torch.multiprocessing as mp

    dump.mkdir(parents=True, exist_ok=True)
    mp.spawn(_rank_main, args=(world, _free_port(), str(data), str(out), steps, str(dump)), nprocs=world)


def _ckpt(run: Path, step: int) -> dict[str, torch.Tensor]:
    folder = run / "checkpoints" / f"step-{step:08d}"
    return {**{f"G.{k}": v for k, v in load_file(folder / "generator.safetensors").items()},
            **{f"D.{k}": v for k, v in load_file(folder / "discriminator.safetensors").items()}}


def _assert_close(a: dict, b: dict, atol=1e-6) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=1e-5), \
            f"{k}: max |diff| {(a[k].float() - b[k].float()).abs().max():.3g}"


def test_two_gloo_ranks_equal_each_other_and_one_process(tiny_plugin, tiny_fmnist, tmp_path):
    # 2 ranks x 4 images == 1 process x 8 images: same data order, latents and flips (lockstep RNG)
    _spawn(2, tiny_fmnist, tmp_path / "ddp", 4, tmp_path / "dump")
    r0 = torch.load(tmp_path / "dump" / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "dump" / "rank1.pt", weights_only=True)
    for net in ("G", "D"):
        for k in r0[net]:
            assert torch.equal(r0[net][k], r1[net][k]), f"ranks differ in {net}.{k}"
    assert r0["objective_world"] == 2

    single = train(_cfg(tiny_fmnist, 8), tmp_path / "one", progress=False)
    assert single.dist.world_size == 1
    _assert_close(_ckpt(tmp_path / "ddp", 4), _ckpt(tmp_path / "one", 4))
    # the weights moved: the comparison is not between two untouched initialisations
    init = Trainer(_cfg(tiny_fmnist, 8), tmp_path / "init")
    moved = max((p - init.G.state_dict()[k]).abs().max().item() for k, p in single.G.state_dict().items())
    assert moved > 1e-3

    # resume the 2-rank run's checkpoint in ONE process (another world size): still the same run
    train(_cfg(tiny_fmnist, 8), tmp_path / "ddp", resume=True, progress=False)
    _assert_close(_ckpt(tmp_path / "ddp", 8), _ckpt(tmp_path / "one", 8))
    log = (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()
    assert [int(l.split('"step": ')[1].split(",")[0]) for l in log] == [2, 4, 6, 8]


def _collectives_main(rank: int, world: int, port: int, dump: str) -> None:
    from ganzoo import distributed
    from ganzoo.plugins import get_registry

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    info = distributed.setup(torch.device("cpu"), timeout_s=60)
    # BEGAN's k, updated from each rank's own losses, becomes the mean on every rank
    obj = get_registry().objective("began")()
    obj.load_state_dict({"k": torch.tensor(0.1 * (rank + 1))})
    distributed.sync_objective_state(obj)
    # BatchNorm running statistics: averaged at checkpoints
    bn = torch.nn.BatchNorm1d(2)
    bn.running_mean.fill_(float(rank))
    distributed.average_buffers(bn)
    # weights that drifted apart are caught
    net = torch.nn.Linear(2, 2)
    torch.nn.init.zeros_(net.bias)
    torch.nn.init.constant_(net.weight, 1.0 + rank)
    try:
        distributed.check_in_sync(net)
        drift = "not caught"
    except GanzooError as exc:
        drift = str(exc)
    torch.nn.init.constant_(net.weight, 1.0)
    distributed.check_in_sync(net)  # equal weights pass
    torch.save({"k": obj.state_dict()["k"], "bn": bn.running_mean.clone(), "drift": drift,
                "world": info.world_size}, Path(dump) / f"rank{rank}.pt")
    distributed.teardown()


def test_objective_state_buffers_and_drift_check_across_ranks(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_collectives_main, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert got["world"] == 2
        assert abs(float(got["k"]) - 0.15) < 1e-6
        assert torch.allclose(got["bn"], torch.full((2,), 0.5))
        assert "the ranks' weights differ" in got["drift"]


def test_global_batch_must_divide_by_world_size(tiny_plugin, tiny_fmnist, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr("ganzoo.distributed.setup", lambda device, **kw: __import__(
        "ganzoo.distributed", fromlist=["DistInfo"]).DistInfo(0, 3, 0))
    with pytest.raises(GanzooError, match="global batch and must divide by the 3 processes"):
        Trainer(_cfg(tiny_fmnist, 4), tmp_path / "r")


def test_sync_bn_on_cpu_is_a_clear_error():
    from ganzoo.distributed import convert_sync_batchnorm

    with pytest.raises(GanzooError, match="--sync-bn needs CUDA"):
        convert_sync_batchnorm(torch.nn.BatchNorm2d(3), torch.device("cpu"))


# ---- real torchrun jobs: a killed rank, --resume, elastic restarts -------------------------------
def _torchrun(out: Path, data: Path, steps: int, *extra: str, restarts: int = 0) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANZOO_DIST_TIMEOUT": "30", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           f"--max-restarts={restarts}", "--monitor-interval=0.5", "-m", "ganzoo", "train",
           "--out", str(out), "--steps", str(steps), "--quiet"]
    if "--resume" not in extra:
        cmd += ["mlp", "--data", f"fashion-mnist:{data}", "--batch-size", "8", "--checkpoint-every", "5",
                "--log-every", "5", "--sample-every", "1000"]
    return subprocess.Popen(cmd + list(extra), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _wait_for_checkpoint(out: Path, proc: subprocess.Popen, min_step: int = 5, timeout: float = 120) -> int:
    t0 = time.time()
    while time.time() - t0 < timeout:
        ck = latest_checkpoint(out)
        if ck is not None and int(ck.name.split("-")[1]) >= min_step:
            return int(ck.name.split("-")[1])
        if proc.poll() is not None:
            pytest.fail(f"torchrun ended early:\n{proc.stdout.read()}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no checkpoint appeared")


def _workers(proc: subprocess.Popen) -> list[int]:
    """PIDs of the ganzoo worker processes under a torchrun job."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "ganzoo" in line]


def _kill_one_worker(proc: subprocess.Popen) -> None:
    t0 = time.time()
    while len(pids := _workers(proc)) < 2 and time.time() - t0 < 30:
        time.sleep(0.2)
    assert pids, "no worker processes found"
    os.kill(pids[-1], signal.SIGKILL)


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"torchrun still running {timeout} s after a rank was killed: it hangs")
    return proc.returncode, out


@pytest.mark.skipif(shutil.which("ps") is None, reason="needs ps to find the worker processes")
def test_killed_rank_fails_cleanly_then_resumes(tiny_fmnist, tmp_path):
    out = tmp_path / "run"
    proc = _torchrun(out, tiny_fmnist, 100_000)
    _wait_for_checkpoint(out, proc)
    _kill_one_worker(proc)
    code, log = _finish(proc, timeout=120)
    assert code != 0, log
    last = latest_checkpoint(out)
    assert last is not None and (last / "trainer_state.pt").exists()
    done = int(last.name.split("-")[1])

    code, log = _finish(_torchrun(out, tiny_fmnist, done + 5, "--resume"), timeout=180)
    assert code == 0, log
    assert latest_checkpoint(out).name == f"step-{done + 5:08d}"
    assert log.count("trained ") == 1  # rank 0 alone reports


@pytest.mark.skipif(shutil.which("ps") is None, reason="needs ps to find the worker processes")
def test_elastic_restart_resumes_from_the_checkpoint(tiny_fmnist, tmp_path):
    out = tmp_path / "run"
    proc = _torchrun(out, tiny_fmnist, 400, restarts=1)
    first = _wait_for_checkpoint(out, proc)
    _kill_one_worker(proc)
    code, log = _finish(proc, timeout=300)
    assert code == 0, log
    assert latest_checkpoint(out).name == "step-00000400"
    # the restarted workers resumed (the log has no step twice, and starts at the beginning)
    steps = [int(l.split('"step": ')[1].split(",")[0]) for l in (out / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[0] == 5 and steps[-1] == 400 and first >= 5
