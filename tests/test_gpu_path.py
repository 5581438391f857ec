"""The GPU path's CPU-testable parts: a run packed into files of at most N bytes (ganzoo.pack)
unpacks, resumes exactly and samples on the CPU; scripts/gpu_train.sh runs end to end with --cpu-test."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganzoo import pack
from ganzoo.errors import GanzooError
from ganzoo.trainer import TrainConfig, latest_checkpoint, train

REPO = Path(__file__).resolve().parents[1]


def _cfg(data, **kw):
    base = dict(arch="tiny", data=f"fashion-mnist:{data}", steps=4, log_every=1, sample_every=100,
                checkpoint_every=2, seed=3, arch_config={"num_classes": 0}, ema=0.9)
    base.update(kw)
    return TrainConfig(**base)


def test_packed_run_has_small_files_and_unpacks_to_a_run_that_resumes_exactly(tiny_plugin, tiny_fmnist, tmp_path):
    import ganzoo

    run, straight = tmp_path / "run", tmp_path / "straight"
    train(_cfg(tiny_fmnist), run, progress=False)
    train(_cfg(tiny_fmnist, steps=6), straight, progress=False)
    limit = 4096
    files = pack.pack(run, tmp_path / "packed", max_bytes=limit)
    assert files and all(f.stat().st_size <= limit for f in files)
    assert any(f.name.endswith(".part-001") for f in files)                # something was split
    assert not (tmp_path / "packed" / "checkpoints" / "step-00000002").exists()   # latest checkpoint only
    with pytest.raises(GanzooError, match="not empty"):
        pack.pack(run, tmp_path / "packed", max_bytes=limit)
    back = pack.unpack(tmp_path / "packed", tmp_path / "back")
    ck = latest_checkpoint(back)
    for name in ("generator.safetensors", "discriminator.safetensors", "trainer_state.pt"):
        assert (ck / name).read_bytes() == (latest_checkpoint(run) / name).read_bytes()
    assert not list(back.rglob("*.part-*")) and not list(back.rglob("*" + pack.MANIFEST_SUFFIX))
    train(_cfg(tiny_fmnist, steps=6, device="cpu"), back, resume=True, progress=False)
    a = load_file(latest_checkpoint(back) / "generator.safetensors")
    b = load_file(latest_checkpoint(straight) / "generator.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert ganzoo.load(str(back), device="cpu").sample(2, seed=0).shape == (2, 1, 16, 16)


def test_a_damaged_part_is_refused(tiny_plugin, tiny_fmnist, tmp_path):
    run = tmp_path / "run"
    train(_cfg(tiny_fmnist, steps=2), run, progress=False)
    pack.pack(run, tmp_path / "p", max_bytes=4096)
    part = next((tmp_path / "p").rglob("*.part-000"))
    data = bytearray(part.read_bytes())
    data[10] ^= 1
    part.write_bytes(bytes(data))
    with pytest.raises(GanzooError, match="a part is damaged"):
        pack.unpack(tmp_path / "p", tmp_path / "b")


@pytest.mark.slow
def test_gpu_script_runs_end_to_end_on_the_cpu(tiny_fmnist, tmp_path):
    pytest.importorskip("ganzoo_dcgan")
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(["bash", str(REPO / "scripts" / "gpu_train.sh"), str(out), str(tiny_fmnist), "--cpu-test"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    log = (out / "train.log").read_text()
    assert "ganzoo train: dcgan" in log and "ganzoo resume: dcgan" in log and "trained 6 steps" in log
    assert all(f.stat().st_size <= 16 * 2**20 for f in out.rglob("*") if f.is_file())
    back = pack.unpack(out / "run", tmp_path / "back")
    assert json.loads((back / "run.json").read_text())["train"]["device"] == "cpu"
    assert latest_checkpoint(back).name == "step-00000006"
    assert json.loads((out / "benchmarks" / "benchmarks.json").read_text())["architectures"]["dcgan"]["training"]
    assert "training (6 steps on cpu)" in (out / "timings.txt").read_text()
    bad = subprocess.run(["bash", str(REPO / "scripts" / "gpu_train.sh"), str(tmp_path / "o2"), str(tmp_path / "nope")],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no Fashion-MNIST folder" in bad.stderr
