"""The run folder: its layout, file names and records, owned here and read by the trainer, the hub
and the evaluator alike.

A run directory holds everything a run needs to be inspected and resumed::

    RUN/run.json                 what was asked (architecture, config, data, recipe)
    RUN/log.jsonl                one line per logged step
    RUN/loss.png                 the learning curves (BEGAN: k and M too)
    RUN/samples/step-NNNNNNNN.png  a fixed-z grid at intervals; RUN/samples.png the latest
    RUN/checkpoints/step-NNNNNNNN/{generator,discriminator}.safetensors + trainer_state.pt
    RUN/checkpoints/latest       the name of the last complete checkpoint
    RUN/.lock                    while a process writes the run: its pid and host (ganzoo.runlock)

``run.json`` is read into a :class:`RunRecord` (:func:`read_run`): its ``train`` section is the
:class:`TrainConfig` that defines the run (:func:`load_run`), ``resolved`` what the trainer made
of it. This module imports nothing else of ganzoo but its errors and io.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from .errors import GanzooError
from .io import fsync_dir

__all__ = [
    "TrainConfig", "RunRecord", "read_run", "load_run", "latest_checkpoint", "checkpoint_step", "checkpoint_name",
    "checkpoint_folders", "verify_checkpoint", "newest_intact_checkpoint", "clean_temporaries", "holds_run",
    "remove_run", "is_run", "run_ref", "run_logged", "run_seconds", "RUN_JSON", "LOG_FILE", "CHECKPOINTS", "LATEST",
    "GENERATOR_FILE", "DISCRIMINATOR_FILE", "EMA_FILE", "TRAINER_STATE", "RUN_FILES",
]

RUN_JSON = "run.json"
LOG_FILE = "log.jsonl"
CHECKPOINTS = "checkpoints"
LATEST = "latest"  # checkpoints/latest: the name of the last complete checkpoint
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
EMA_FILE = "generator_ema.safetensors"
TRAINER_STATE = "trainer_state.pt"


# ---- run.json ---------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``run.json``)."""

    arch: str
    data: str
    arch_config: dict[str, Any] = field(default_factory=dict)
    data_label: str | None = None
    objective: str | None = None            # None: the architecture's default
    objective_kwargs: dict[str, Any] | None = None
    batch_size: int | None = None           # None: the architecture's default
    steps: int | None = None
    epochs: float | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    betas: tuple[float, float] | None = None
    seed: int = 0
    device: str = "auto"
    #: bfloat16 autocast: None (default) turns it on where the device computes bf16 natively (a CPU
    #: with AVX-512 BF16 or AMX, a CUDA GPU with bf16), see ganzoo.speed.bf16_supported; the run
    #: records the resolved True/False in run.json, which --resume keeps unless told otherwise
    bf16: bool | None = None
    channels_last: bool = False             # force channels_last (default: automatic, see ganzoo.speed)
    nchw: bool = False                      # force NCHW where channels_last would be automatic
    compile: bool = False
    flip: bool = False                      # random horizontal flips of real images
    #: DiffAugment policy for every image D sees, real and generated (ganzoo.augment), e.g.
    #: "color,translation,cutout"; None: none
    diffaugment: str | None = None
    #: adaptive augmentation (Karras et al. 2020, section 3): the DiffAugment policy applied with a
    #: probability p that follows D's overfitting signal r_t = E[sign(D(real))] towards ada_target;
    #: ada_kimg: thousands of images for p to go from 0 to 1 (the paper's 500)
    ada: bool = False
    ada_target: float = 0.6
    ada_kimg: float = 500.0
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    base_model: dict[str, Any] | None = None  # lineage when fine-tuning
    freeze: list[str] = field(default_factory=list)
    sync_bn: bool = False                   # distributed: BatchNorm statistics over the global batch (CUDA)
    ema: float = 0.0                        # decay of an exponential moving average of G's weights (0: none)
    #: learning-rate schedule: None (constant) or "linear": both players' rates fall linearly from
    #: step ``lr_decay_start`` to 0 at the last step (the SNGAN reference code's schedule)
    lr_decay: str | None = None
    lr_decay_start: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: (tuple(v) if k == "betas" and v is not None else v) for k, v in d.items() if k in names}
        return cls(**d)


# ---- checkpoints ------------------------------------------------------------------------------
def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint at ``step``: ``step-NNNNNNNN``."""
    return f"step-{step:08d}"


def checkpoint_step(path: Path) -> int:
    """The step of a checkpoint folder ``step-NNNNNNNN``."""
    return int(Path(path).name.split("-")[-1])


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    run_dir = Path(run_dir)
    pointer = run_dir / CHECKPOINTS / LATEST
    if pointer.exists():
        cand = run_dir / CHECKPOINTS / pointer.read_text().strip()
        if (cand / TRAINER_STATE).exists():
            return cand
    # a pointer lost with the rest intact: fall back to the newest complete folder
    done = sorted(p for p in (run_dir / CHECKPOINTS).glob("step-*") if (p / TRAINER_STATE).exists())
    return done[-1] if done else None


def checkpoint_folders(run_dir: Path) -> list[Path]:
    """``checkpoints/step-N`` folders, newest first."""
    found = []
    for p in (Path(run_dir) / CHECKPOINTS).glob("step-*"):
        try:
            found.append((checkpoint_step(p), p))
        except ValueError:
            continue  # not one of ours (step-foo)
    return [p for _, p in sorted(found, reverse=True) if p.is_dir()]


def verify_checkpoint(path: str | os.PathLike) -> str | None:
    """None when the checkpoint folder is complete, every file loads and all its weights and
    optimizer state are finite; otherwise why it is not (one line)."""
    path = Path(path)
    try:
        files = [GENERATOR_FILE, DISCRIMINATOR_FILE] + ([EMA_FILE] if (path / EMA_FILE).exists() else [])
        for name in files:
            if not (path / name).is_file():
                return f"{name} is missing"
            tensors = load_file(path / name)
            bad = [k for k, v in tensors.items() if not _all_finite([v])]
            if bad:
                return f"{name} holds non-finite weights ({bad[0]})"
        if not (path / TRAINER_STATE).is_file():
            return "trainer_state.pt is missing"
        state = torch.load(path / TRAINER_STATE, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or any(k not in state for k in ("step", "opt_g", "opt_d", "rng")):
            return "trainer_state.pt lacks the training state"
        if int(state["step"]) != checkpoint_step(path):
            return f"trainer_state.pt is for step {int(state['step'])}"
        if not _all_finite(_tensors([state["opt_g"], state["opt_d"]])):
            return "trainer_state.pt holds non-finite optimizer state"
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt file fails in many ways (safetensors, zip, pickle)
        return f"unreadable: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
    return None


def newest_intact_checkpoint(run_dir: str | os.PathLike) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint that :func:`verify_checkpoint` accepts, and the newer ones it
    rejected with the reason (a kill can truncate files on some file systems; a disk can fail)."""
    damaged = []
    for p in checkpoint_folders(Path(run_dir)):
        why = verify_checkpoint(p)
        if why is None:
            return p, damaged
        damaged.append((p, why))
    return None, damaged


#: what ``ganzoo train`` writes into a run directory (``--restart`` removes these and nothing else)
RUN_FILES = ("checkpoints", "samples", "log.jsonl", "loss.png", "samples.png", "run.json")


def clean_temporaries(run_dir: str | os.PathLike) -> list[Path]:
    """Remove what a killed writer left half-done: ``checkpoints/.tmp-step-*`` folders and the
    temporary files of atomic writes. Only the lock holder calls this (nobody else writes)."""
    run = Path(run_dir)
    removed = []
    patterns = [(run / "checkpoints", ".tmp-step-*"), (run / "checkpoints", ".tmp-old-step-*"),
                (run / "checkpoints", ".latest.*.tmp"), (run / "samples", ".step-*.png.*.tmp"),
                (run, ".samples.png.tmp")] + [(run, f".{name}.*.tmp") for name in RUN_FILES]
    for folder, pattern in patterns:
        for p in folder.glob(pattern) if folder.is_dir() else ():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def holds_run(run_dir: str | os.PathLike) -> bool:
    """Whether a folder holds (part of) a run: a run.json or a checkpoint."""
    run = Path(run_dir)
    return (run / RUN_JSON).exists() or bool(checkpoint_folders(run))


def remove_run(run: Path) -> str:
    """--restart: remove what ganzoo train wrote (never other files); return what, in words."""
    folders = checkpoint_folders(run)
    what = [name for name in RUN_FILES if (run / name).exists()]
    for name in RUN_FILES:  # run.json last: a kill midway leaves a run --restart can take again
        p = run / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    fsync_dir(run)
    ck = f" ({len(folders)} checkpoint(s), the newest {folders[0].name})" if folders else ""
    return ", ".join(what).replace("checkpoints", f"checkpoints{ck}") or "nothing"


def run_meta(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_JSON
    if not path.exists():
        raise GanzooError(f"{run_dir} is not a ganzoo run directory (no run.json); pass the --out folder of `ganzoo train`")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise GanzooError(f"{path} is not valid JSON ({exc}); restore it, or start over with --restart") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("train"), dict):
        raise GanzooError(f"{path} has no 'train' section; restore it, or start over with --restart")
    return meta


def _tensors(obj):
    """Every tensor in nested dicts/lists/tuples (an optimizer's state)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def _all_finite(tensors) -> bool:
    checks = [torch.isfinite(t).all() for t in tensors if t.is_floating_point() or t.is_complex()]
    return bool(torch.stack(checks).all()) if checks else True


@dataclass
class RunRecord:
    """``run.json`` read: ``train`` (the :class:`TrainConfig`), ``resolved`` (what the trainer made of
    it: batch size, learning rates, dataset, class names, ...), and what else the trainer recorded."""

    path: Path
    train: TrainConfig
    resolved: dict[str, Any]
    command: str | None
    ganzoo_version: str | None
    metrics: dict[str, Any]
    resume_changes: list[dict[str, Any]]
    meta: dict[str, Any]  # the whole file, as read

    @property
    def class_names(self) -> list[str] | None:
        return self.meta.get("class_names") or self.resolved.get("class_names")


def read_run(run_dir: str | os.PathLike) -> RunRecord:
    """``RUN/run.json`` as a :class:`RunRecord`; a missing or malformed file is a one-line error."""
    run_dir = Path(run_dir)
    meta = run_meta(run_dir)
    try:
        cfg = TrainConfig.from_dict(meta["train"])
    except TypeError as exc:
        raise GanzooError(f"{run_dir / RUN_JSON}: its 'train' section does not fit ({exc}); restore it, "
                          f"or start over with --restart") from None
    return RunRecord(path=run_dir / RUN_JSON, train=cfg, resolved=dict(meta.get("resolved") or {}),
                     command=meta.get("command"), ganzoo_version=meta.get("ganzoo_version"),
                     metrics=dict(meta.get("metrics") or {}), resume_changes=list(meta.get("resume_changes") or []),
                     meta=meta)


def load_run(run_dir: str | os.PathLike) -> TrainConfig:
    """The :class:`TrainConfig` a run was trained with (run.json's ``train`` section)."""
    return read_run(run_dir).train


# ---- what a path names ------------------------------------------------------------------------
def is_run(path: Path) -> bool:
    return path.is_dir() and (path / RUN_JSON).exists()


def run_ref(path: Path, *, model_config: str = "config.json") -> tuple[Path, Path | None] | None:
    """``(run, checkpoint)`` when ``path`` is a run directory (checkpoint None: its latest) or one
    of its checkpoints (``RUN/checkpoints/step-N``); None for anything else (a folder holding a
    model folder's ``model_config`` is a model folder, not a run)."""
    if is_run(path) and not (path / model_config).exists():
        return path, None
    if (path / TRAINER_STATE).is_file() and path.parent.name == CHECKPOINTS and is_run(path.parent.parent):
        return path.parent.parent, path
    return None


def run_logged(run: Path, step: int, key: str) -> Any:
    """The last value of ``key`` the run's log records up to ``step`` (None without a log or the key)."""
    log = run / LOG_FILE
    if not log.exists():
        return None
    value = None
    for line in log.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("step", 0) <= step and key in rec:
            value = rec[key]
    return value


def run_seconds(run: Path, step: int) -> float | None:
    """The training seconds the run's log records up to ``step`` (None without a log)."""
    return run_logged(run, step, "seconds")
