"""SIGKILL a small training at random points, then resume (or restart) it and check it.

Each kill starts ``ganzoo train mlp`` (28 px, batch 8, on a few dozen images made here) into a
fresh run folder, SIGKILLs it at a point of one of three kinds, and recovers it the way a user
would: ``ganzoo train --resume --out RUN`` when the run got as far as writing ``run.json``,
else the same command again. A recovery passes when it exits 0 and

* the run ends at its last step with the weights of a run never killed (resume is exact),
* its log has every step once, no temporary folder or lock file is left,
* it resumed from at most one checkpoint interval before the last step logged before the kill.

Kinds: ``before-first`` (before the first checkpoint is complete: during start-up, or in the
first checkpoint's writer), ``in-writer`` (inside a later checkpoint writer, slowed by the
test hook ``GANZOO_TEST_SLOW_CHECKPOINT``), ``random`` (any time while it trains).
``landed`` says where each kill actually hit, read from the run folder after the kill.

    python scripts/kill_test.py --kills 20            # prints one line per kill and the counts

tests/test_run_folder.py runs three kills (one of each kind) in the suite.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = 24
EVERY = 4  # the checkpoint interval: a kill may lose at most this many steps
SLOW = 0.25  # seconds the test hook sleeps at each of the writer's three stages


def make_data(folder: Path, n: int = 32) -> Path:
    """A few dozen Fashion-MNIST-format (IDX, gzip) images of squares: the class is where the square is."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 10
    images = (torch.rand(n, 28, 28, generator=g) * 40).to(torch.uint8)
    for i, lab in enumerate(labels.tolist()):
        r, c = divmod(lab, 4)
        images[i, 4 + 6 * r:10 + 6 * r, 2 + 6 * c:8 + 6 * c] = 230
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.numpy().tobytes())
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels.to(torch.uint8).numpy().tobytes())
    return folder


def _env(extra: dict | None = None) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(extra or {})}


def command(run: Path, data: Path, *, steps: int = STEPS, checkpoint_every: int = EVERY, keep: int = 2) -> list[str]:
    return [sys.executable, "-m", "ganzoo", "train", "mlp", "--data", f"fashion-mnist:{data}", "--batch-size", "8",
            "--steps", str(steps), "--checkpoint-every", str(checkpoint_every), "--log-every", "1",
            "--sample-every", "1000000", "--keep-checkpoints", str(keep), "--seed", "7", "--out", str(run), "--quiet"]


def start(run: Path, data: Path, *, steps: int = STEPS, checkpoint_every: int = EVERY, keep: int = 2,
          env: dict | None = None, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(command(run, data, steps=steps, checkpoint_every=checkpoint_every, keep=keep),
                            env=_env(env), stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def wait_for(cond, proc: subprocess.Popen, timeout: float = 120.0, poll: float = 0.01) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the training ended (rc {proc.returncode}) before the kill point: "
                                 f"{proc.communicate()[1] if proc.stderr else ''}")
        time.sleep(poll)
    proc.kill()
    raise AssertionError("the kill point never came")


def _steps_logged(run: Path) -> list[int]:
    steps = []
    if (run / "log.jsonl").exists():
        for line in (run / "log.jsonl").read_text().splitlines():
            try:
                steps.append(json.loads(line)["step"])
            except (ValueError, KeyError):
                pass  # a line torn by the kill
    return steps


def _folders(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("step-*")) if (run / "checkpoints").is_dir() else []


def _landed(run: Path) -> str:
    """Where the kill hit, from what the run folder holds."""
    ck = run / "checkpoints"
    pointer = (ck / "latest").read_text().strip() if (ck / "latest").exists() else None
    writing = bool(list(ck.glob(".tmp-step-*"))) if ck.is_dir() else False
    folders = _folders(run)
    if not folders or pointer is None:  # none, or the first renamed but its pointer not yet written
        return "before-first"
    if writing or folders[-1] != pointer:
        return "in-writer"
    return "training"


def weights(ck: Path) -> dict:
    from safetensors.torch import load_file

    out = {f"G.{k}": v for k, v in load_file(ck / "generator.safetensors").items()}
    out.update({f"D.{k}": v for k, v in load_file(ck / "discriminator.safetensors").items()})
    return out


def reference(data: Path, tmp: Path) -> tuple[dict, float]:
    """The weights of a run never killed, and how long it trained (from run.json to its last
    log line): ``random`` kills land uniformly in that span."""
    run = tmp / "reference"
    proc = start(run, data)
    wait_for(lambda: (run / "run.json").exists(), proc, timeout=300)
    t0 = time.time()
    wait_for(lambda: STEPS in _steps_logged(run), proc, timeout=300)
    span = time.time() - t0
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"the reference run failed: {err}")
    return weights(run / "checkpoints" / f"step-{STEPS:08d}"), span


def kill_once(kind: str, data: Path, run: Path, ref: dict, rng: random.Random, span: float = 0.6) -> dict:
    """One kill of ``kind`` and its recovery; returns what happened (``ok`` True when it passed)."""
    import torch

    err_path = run.parent / f"{run.name}.stderr"
    with open(err_path, "w") as err:
        if kind == "before-first":
            proc = start(run, data, env={"GANZOO_TEST_SLOW_CHECKPOINT": str(SLOW)}, stderr=err)
            if rng.random() < 0.4:  # during start-up (before or about when run.json is written)
                wait_for(lambda: (run / ".lock").exists(), proc)
                time.sleep(rng.uniform(0, 1.0))
            else:  # training, or in the first checkpoint's writer (its three pauses)
                wait_for(lambda: (run / "run.json").exists(), proc)
                time.sleep(rng.uniform(0, 2 * SLOW))
        elif kind == "in-writer":
            proc = start(run, data, env={"GANZOO_TEST_SLOW_CHECKPOINT": str(SLOW)}, stderr=err)
            nth = rng.randint(2, STEPS // EVERY - 1)  # a later checkpoint: one good copy exists
            wait_for(lambda: list((run / "checkpoints").glob(f".tmp-step-{nth * EVERY:08d}-*")), proc)
            time.sleep(rng.uniform(0, 3 * SLOW))
        else:
            proc = start(run, data, stderr=err)
            wait_for(lambda: (run / "run.json").exists(), proc)
            time.sleep(rng.uniform(0, 0.6 * span))  # 0.9 once landed after a faster run had ended
        if proc.poll() is not None:
            return {"kind": kind, "ok": False, "why": f"finished before the kill (rc {proc.returncode})"}
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    landed = _landed(run)
    logged = _steps_logged(run)
    last = max(logged, default=0)
    # recover as a user would
    cmd = ([sys.executable, "-m", "ganzoo", "train", "--resume", "--out", str(run), "--quiet"]
           if (run / "run.json").exists() else command(run, data))
    how = "resume" if "--resume" in cmd else "start again"
    rec = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    result = {"kind": kind, "landed": landed, "killed_after_step": last, "recovery": how, "rc": rec.returncode}
    if rec.returncode != 0:
        return {**result, "ok": False, "why": rec.stderr.strip()[-500:]}
    if "from step 0" in rec.stderr or how == "start again":
        resumed = 0
    else:
        resumed = int(rec.stderr.split(" from step-")[1][:8])
    result["resumed_from"] = resumed
    problems = []
    if last - resumed > EVERY:
        problems.append(f"lost {last - resumed} steps, more than the interval {EVERY}")
    final = run / "checkpoints" / f"step-{STEPS:08d}"
    if not final.is_dir():
        problems.append(f"no {final.name}")
    else:
        got = weights(final)
        if got.keys() != ref.keys() or not all(torch.equal(got[k], ref[k]) for k in ref):
            problems.append("final weights differ from the run never killed")
    if _steps_logged(run) != list(range(1, STEPS + 1)):
        problems.append(f"log steps {_steps_logged(run)}")
    leftovers = [p.name for p in run.rglob(".tmp*")] + [p.name for p in run.rglob("*.tmp")]
    if leftovers or (run / ".lock").exists():
        problems.append(f"left behind: {leftovers + (['.lock'] if (run / '.lock').exists() else [])}")
    if "Traceback" in rec.stderr:
        problems.append("a traceback")
    return {**result, "ok": not problems, **({"why": "; ".join(problems)} if problems else {})}


def run_kills(data: Path, tmp: Path, *, kinds: list[str], rng: random.Random, verbose: bool = False) -> dict:
    ref, span = reference(data, tmp)
    results = []
    for i, kind in enumerate(kinds):
        r = kill_once(kind, data, tmp / f"run{i:02d}", ref, rng, span)
        results.append(r)
        if verbose:
            print(json.dumps(r), flush=True)
    landed: dict[str, int] = {}
    for r in results:
        landed[r.get("landed", "none")] = landed.get(r.get("landed", "none"), 0) + 1
    return {"kills": len(results), "ok": sum(r["ok"] for r in results), "landed": landed,
            "recovery": {h: sum(r.get("recovery") == h for r in results) for h in ("resume", "start again")},
            "failures": [r for r in results if not r["ok"]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    base = ["before-first", "in-writer", "random"]
    kinds = [base[i % 3] for i in range(args.kills)]
    rng.shuffle(kinds)
    tmp = Path(tempfile.mkdtemp(prefix="ganzoo-kill-"))
    try:
        data = make_data(tmp / "data")
        summary = run_kills(data, tmp, kinds=kinds, rng=rng, verbose=True)
        print(json.dumps({k: v for k, v in summary.items() if k != "failures"}))
        for f in summary["failures"]:
            print("FAILED:", json.dumps(f))
        return 0 if summary["ok"] == summary["kills"] else 1
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
