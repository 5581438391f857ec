"""The generic trainer: drives any objective over any architecture, in a run directory
(its layout, file names and run.json record: :mod:`ganzoo.runfolder`).

Checkpoints are written into a temporary folder and renamed into place before
``latest`` is atomically switched, so a run killed at any instant (SIGKILL
included) resumes from its last complete checkpoint; the temporary folders of a
killed writer are removed at the next start. A checkpoint is only written with
finite weights and optimizer state, and ``--resume`` takes the newest checkpoint
that loads and is finite (a damaged newer one is named and removed). Training
state is saved as plain tensors and containers, readable with
``torch.load(weights_only=True)``.

:func:`finetune` (below :func:`train`) continues a released model or a run on new data: the
learning rates, betas and frozen parts are resolved by the same functions the trainer uses
(:func:`resolve_recipe`, :func:`freeze_parts`).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import torch
import torch.distributed
from safetensors.torch import load_file, save_file
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from . import distributed, precision, speed
from .augment import ADA_DEFAULT_POLICY, ADA_KIMG, ADA_TARGET, AdaptiveAugment, AugmentedDiscriminator, parse_policy
from .data import load_dataset
from .device import check_device, hardware_summary, resolve_device
from .errors import GanzooError, Stopped
from .hub import load_any, load_catalog
from .io import atomic_folder, atomic_path, check_memory, save_grid, version, write_json
from .models import build_from_config, load_state_strict
from .objective import Objective, StepContext
from .plots import plot_log
from .plugins import get_registry
from .precision import autocast
from .runfolder import (
    CHECKPOINTS, DISCRIMINATOR_FILE, EMA_FILE, GENERATOR_FILE, LATEST, LOG_FILE, RUN_JSON, TRAINER_STATE, TrainConfig,
    _all_finite, _tensors, checkpoint_folders, checkpoint_name, checkpoint_step, clean_temporaries, holds_run,
    latest_checkpoint, load_run, newest_intact_checkpoint, read_run, remove_run, verify_checkpoint,
)
from .runlock import RunLock

__all__ = ["TrainConfig", "Trainer", "train", "finetune", "load_run", "TrainingDiverged", "TrainingInterrupted",
           "resolve_recipe", "freeze_parts"]
# also importable from here, as before the run folder had its own module: EMA_FILE, latest_checkpoint,
# checkpoint_step, verify_checkpoint, newest_intact_checkpoint, load_run (ganzoo.runfolder), and
# check_device, resolve_device, hardware_summary (ganzoo.device)

GRID_SEED = 1234  # fixed z for the progress grids
GRID_SIZE = 64


class TrainingDiverged(GanzooError):
    pass


class TrainingInterrupted(Stopped):
    """A signal stopped training after a checkpoint was saved."""


#: ``--seed`` range: what numpy and most tools take; the epoch permutations use seed * 1_000_003
#: + epoch, which must stay within torch.Generator.manual_seed's 64-bit range
SEED_MAX = 2**32 - 1


def check_options(cfg: "TrainConfig") -> None:
    """The numbers of a training run, checked before any work: each wrong one is a one-line
    error naming the option and what it takes (not an OOM kill, a silent default or a traceback)."""
    def whole(value) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and math.isfinite(value) and value.is_integer())

    def num(value) -> str:  # as typed: 0 and -1 for --epochs 0 / --lr-g -1, not 0.0 / -1.0
        return f"{value:g}" if isinstance(value, float) else str(value)

    def count(option: str, value, example: str, what: str) -> None:
        if value is not None and not (whole(value) and value >= 1):
            raise GanzooError(f"{option} {num(value)}: {what} is a whole number of at least 1, e.g. {option} {example}")

    count("--batch-size", cfg.batch_size, "64", "the batch size (images per step)")
    count("--steps", cfg.steps, "1000", "the number of training steps")
    count("--log-every", cfg.log_every, "50", "the interval between log lines (steps)")
    count("--sample-every", cfg.sample_every, "500", "the interval between sample grids (steps)")
    count("--checkpoint-every", cfg.checkpoint_every, "500", "the interval between checkpoints (steps)")
    count("--keep-checkpoints", cfg.keep_checkpoints, "2", "the number of checkpoints kept")
    if cfg.epochs is not None and not (isinstance(cfg.epochs, (int, float)) and not isinstance(cfg.epochs, bool)
                                       and math.isfinite(cfg.epochs) and cfg.epochs > 0):
        raise GanzooError(f"--epochs {num(cfg.epochs)}: the number of epochs is a number above 0, e.g. --epochs 5")
    for option, value in (("--lr-g", cfg.lr_g), ("--lr-d", cfg.lr_d)):
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and math.isfinite(value) and value >= 0):
            # 0 is allowed: it holds that network still (fine-tuning G against a fixed D, tests)
            raise GanzooError(f"{option} {num(value)}: a learning rate is a finite number, 0 or above, e.g. {option} "
                              f"0.0002 (or leave it out for the architecture's)")
    if not (whole(cfg.seed) and 0 <= cfg.seed <= SEED_MAX):
        raise GanzooError(f"--seed {cfg.seed}: use a whole number from 0 to {SEED_MAX}")
    if cfg.bf16 not in (None, True, False):
        raise GanzooError(f"bf16 {cfg.bf16!r}: give True or False")
    check_device(cfg.device)
    if cfg.steps is not None and cfg.epochs is not None:  # each valid, but the trainer would ignore --epochs
        raise GanzooError(f"--steps {num(cfg.steps)} and --epochs {num(cfg.epochs)} both set the run's length; "
                          f"give one of them")


class Recipe(NamedTuple):
    """The numbers a run trains with: the options given, else the architecture's defaults."""
    batch_size: int
    lr_g: float
    lr_d: float
    betas: tuple[float, float]


def resolve_recipe(spec, cfg: TrainConfig) -> Recipe:
    """Batch size, learning rates and betas of ``cfg`` over the architecture's OptimizerSettings: the
    one place a training run and a fine-tune (its optimizers' loaded state) take them from."""
    opt = spec.optimizer
    return Recipe(batch_size=cfg.batch_size or opt.batch_size,
                  lr_g=cfg.lr_g if cfg.lr_g is not None else opt.lr_g,
                  lr_d=cfg.lr_d if cfg.lr_d is not None else opt.lr_d,
                  betas=tuple(cfg.betas) if cfg.betas is not None else tuple(opt.betas))


def freeze_parts(spec, parts, G=None, D=None) -> None:
    """Check ``--freeze`` parts against the architecture's freezable ones (a one-line error naming
    them), and with ``G`` and ``D`` stop those parts' gradients."""
    for part in parts:
        if part not in spec.freezable:
            raise GanzooError(f"--freeze {part}: architecture {spec.name!r} has no such part; "
                              f"freezable: {', '.join(spec.freezable) or 'none'}")
    if G is None or D is None:
        return
    for part in parts:
        for module in spec.freezable[part](G, D):
            module.requires_grad_(False)


def _adam(params, lr, betas, weight_decay=0.0):
    # fused Adam: one kernel for all parameters (CUDA, and CPU in recent torch); a loaded
    # state takes the parameters' memory layout (channels_last), which fused Adam needs
    return speed.adam(params, lr, betas, weight_decay=weight_decay)


def _build_checked(spec, arch_cfg, batch: int | None = None):
    """G and D of ``--set``/run.json values, refused in one line (exit 2) when their weights alone exceed
    free memory or a layer rejects a value (``--set dropout=1.5``), instead of a traceback (issue 20)."""
    try:
        with torch.device("meta"):
            G, D = build_from_config(spec, arch_cfg)
        n = sum(t.numel() for net in (G, D) for t in (*net.parameters(), *net.buffers()))
        act = _activations(G, D, arch_cfg, batch) if batch else None
    except GanzooError:
        raise
    except Exception:  # cannot be built on the meta device: the real build below decides
        n, act = 0, None
    # weights, gradients and Adam's two moments: 16 bytes a float32 weight
    check_memory(16 * n, f"architecture {spec.name!r}: its config ({n:,} weights)",
                 "lower the widths given with --set")
    if act:  # issue 20: a batch that fits the data but not RAM reached the allocator
        check_memory(4 * act, f"--batch-size {batch}: one training step's activations", "lower --batch-size")
    try:
        return build_from_config(spec, arch_cfg)
    except (TypeError, ValueError, RuntimeError, OverflowError, ZeroDivisionError) as exc:
        msg = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise GanzooError(f"architecture {spec.name!r}: its config does not build ({type(exc).__name__}: {msg}); "
                          f"fix the values given with --set") from None


def _activations(G, D, arch_cfg, batch: int) -> int | None:
    """A lower bound of one training step's activations, in float32 values: every leaf module's
    output for G(z) and for D on a fake and a real batch, found by a forward pass of the meta-device
    networks (shapes only, no memory); None where the meta device cannot run them."""
    sizes = {"G": 0, "D": 0}

    def counter(name):
        def count(_module, _inputs, output):
            for t in output if isinstance(output, (tuple, list)) else (output,):
                if isinstance(t, torch.Tensor):
                    sizes[name] += t.numel()
        return count

    hooks = [m.register_forward_hook(counter(name)) for name, net in (("G", G), ("D", D))
             for m in net.modules() if next(m.children(), None) is None]
    try:
        with torch.device("meta"), torch.no_grad():
            labels = (torch.zeros(batch, dtype=torch.long),) if getattr(arch_cfg, "num_classes", 0) else ()
            fake = G(torch.zeros(batch, G.latent_dim), *labels)
            D(fake[0] if isinstance(fake, (tuple, list)) else fake, *labels)
    except Exception:  # data-dependent ops, or a D that takes more than images (BiGAN): no estimate
        return None
    finally:
        for h in hooks:
            h.remove()
    return sizes["G"] + 2 * sizes["D"]


class _TrainerSetup:
    """The Trainer's setting up, one part each, called in this order by ``Trainer.__init__``."""

    def _resolve_recipe(self) -> None:
        """The architecture, its config, and the recipe: batch size, learning rates, betas, objective."""
        cfg = self.cfg
        reg = get_registry()
        self.spec = reg.architecture(cfg.arch)
        self.arch_cfg = self.spec.make_config(**cfg.arch_config)
        recipe = resolve_recipe(self.spec, cfg)
        self.batch_size, self.lr_g, self.lr_d, self.betas = recipe
        self.objective_name = cfg.objective or self.spec.objective
        obj_kwargs = dict(self.spec.objective_kwargs) if cfg.objective is None else {}
        obj_kwargs.update(cfg.objective_kwargs or {})
        try:
            self.objective: Objective = reg.objective(self.objective_name)(**obj_kwargs)
        except TypeError as exc:
            raise GanzooError(f"objective {self.objective_name!r}: bad arguments {obj_kwargs}: {exc}") from None

    def _setup_device(self) -> None:
        """The device, bf16 or not, and the processes (torchrun) sharing the global batch."""
        cfg = self.cfg
        env = distributed.env_info()
        self.device = resolve_device(cfg.device, local_rank=env.local_rank if env.enabled else None)
        # bf16 autocast by default where the device computes it natively (ganzoo.precision, the sampler's
        # detector too): resolved here once and written into cfg, so run.json records the choice
        self.bf16_native = precision.bf16_supported(self.device)
        self.bf16_source = "auto" if cfg.bf16 is None else "option"
        if cfg.bf16 is None:
            cfg.bf16 = self.bf16_native
        cfg.bf16 = bool(cfg.bf16)
        _check_ada_options(cfg)
        # torchrun: join the process group (gloo on CPU, NCCL on CUDA); one process: a no-op
        self.dist = distributed.setup(self.device)
        if self.batch_size % self.dist.world_size:
            raise GanzooError(f"--batch-size {self.batch_size} is the global batch and must divide by the "
                              f"{self.dist.world_size} processes; pass a multiple of {self.dist.world_size}")
        self.local_batch = self.batch_size // self.dist.world_size

    def _setup_data(self, dataset, build_networks: bool):
        """The data set (loaded unless given); a conditional architecture takes its classes from it."""
        cfg = self.cfg
        # the same seed on every rank: identical initial weights, and an RNG in lockstep
        torch.manual_seed(cfg.seed)
        if dataset is None:
            dataset = load_dataset(cfg.data, image_size=self.arch_cfg.image_size,
                                   channels=self.arch_cfg.channels, label=cfg.data_label)
        if (build_networks and self.spec.conditional and "num_classes" not in cfg.arch_config
                and dataset.labels is not None):
            # a conditional architecture takes its classes from the data; written into cfg so that
            # run.json and --resume rebuild the same networks (an explicit num_classes=0 stays)
            cfg.arch_config["num_classes"] = dataset.num_classes
            self.arch_cfg = self.spec.make_config(**cfg.arch_config)
        return dataset

    def _build_networks(self, G, D) -> None:
        """G and D (built unless given) on the device, sped up, partly frozen, with their optimizers
        and G's moving average."""
        cfg = self.cfg
        if G is None or D is None:
            # host memory bounds the activations on a CPU; on a GPU the allocator's own message says it
            G, D = _build_checked(self.spec, self.arch_cfg, self.local_batch if self.device.type == "cpu" else None)
        if cfg.sync_bn and self.dist.enabled:
            G = distributed.convert_sync_batchnorm(G, self.device)
            D = distributed.convert_sync_batchnorm(D, self.device)
        self.G, self.D = G.to(self.device), D.to(self.device)
        # ganzoo.speed: exact rewrites that keep the Parameters and state_dict keys, cuDNN autotuning,
        # channels_last (asked for, else the architecture's preference, else automatic for
        # convolutional networks); see its module doc
        if cfg.channels_last and cfg.nchw:
            raise GanzooError("--channels-last and --no-channels-last contradict each other; give one")
        self.speed_notes = speed.prepare_training(
            self.G, self.D, device=self.device,
            channels_last=True if cfg.channels_last else False if cfg.nchw else self.spec.channels_last)
        freeze_parts(self.spec, cfg.freeze, self.G, self.D)
        # the architecture's weight decay (OptimizerSettings; 0 for every first-party plugin)
        weight_decay = self.spec.optimizer.weight_decay
        self.opt_g = _adam(self.G.parameters(), self.lr_g, self.betas, weight_decay)
        self.opt_d = _adam(self.D.parameters(), self.lr_d, self.betas, weight_decay)
        # an exponential moving average of G's weights (Karras et al. 2018; Yazici et al. 2019),
        # what grids, exports and `ganzoo sample RUN` use when the run keeps one
        if not 0.0 <= cfg.ema < 1.0:
            raise GanzooError(f"--ema {cfg.ema}: the decay must be in [0, 1), e.g. 0.999 (0 turns it off)")
        if cfg.lr_decay not in LR_DECAYS:
            raise GanzooError(f"--lr-decay {cfg.lr_decay}: use one of {', '.join(d for d in LR_DECAYS if d)} "
                              f"(or leave it out for a constant rate)")
        if cfg.lr_decay_start < 0:
            raise GanzooError(f"--lr-decay-start {cfg.lr_decay_start}: give the step the decay starts at, >= 0")
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.ema else None
        if self.G_ema is not None:
            self._ema_params = ([p for _, p in sorted(self.G_ema.named_parameters())],
                                [p for _, p in sorted(self.G.named_parameters())])
            self._ema_buffers = ([b for _, b in sorted(self.G_ema.named_buffers())],
                                 [b for _, b in sorted(self.G.named_buffers())])

    def _wrap_networks(self) -> None:
        """What the objective drives: G and D themselves, or their DDP wrappers under torchrun, and D
        behind DiffAugment / ADA (self.G / self.D stay the plain networks: checkpoints, grids and
        exports use them)."""
        cfg = self.cfg
        self.G_step, self.D_step = self.G, self.D
        if self.dist.enabled:
            unused = self.spec.unused_parameters
            self.G_step = distributed.wrap(self.G, self.device, find_unused_parameters=unused)
            self.D_step = distributed.wrap(self.D, self.device, find_unused_parameters=unused)
        self.ada = None
        self._ada_checked = False
        if cfg.diffaugment is not None:
            policy = parse_policy(cfg.diffaugment)
            flag = "--ada" if cfg.ada else "--diffaugment"
            if not self.objective.augmentable:
                raise GanzooError(f"{flag}: objective {self.objective_name!r} does not support DiffAugment "
                                  f"({self.objective.augmentable_why or 'it uses D other than on images'}); "
                                  f"leave {flag} out")
            if cfg.ada:
                boundary = getattr(self.objective, "ada_boundary", 0.0)
                if boundary is None:
                    raise GanzooError(f"--ada: objective {self.objective_name!r} scores images without a real/fake "
                                      "decision boundary (a Wasserstein critic), so ADA's r_t = E[sign(D(real))] "
                                      "means nothing; use --diffaugment alone or another --objective")
                self.ada = AdaptiveAugment(batch_size=self.batch_size, device=self.device, target=cfg.ada_target,
                                           kimg=cfg.ada_kimg, boundary=float(boundary))
            self.D_step = AugmentedDiscriminator(self.D_step, policy, rank=self.dist.rank,
                                                 world_size=self.dist.world_size, ada=self.ada)

    def _restore_state(self, optimizer_state: dict | None, objective_state: dict | None) -> None:
        """The optimizers' and the objective's state a fine-tune starts from."""
        if optimizer_state:
            self.opt_g.load_state_dict(optimizer_state["opt_g"])
            self.opt_d.load_state_dict(optimizer_state["opt_d"])
        self.objective.to(self.device)
        if objective_state:
            self.objective.load_state_dict(objective_state)

    def _setup_schedule(self, dataset) -> None:
        """The (labelled) data on the device's terms, its epochs' permutations, and the run's length."""
        cfg = self.cfg
        if self.arch_cfg.num_classes:
            if dataset.labels is None:
                raise GanzooError(f"architecture {cfg.arch!r} is conditional but {cfg.data!r} has no labels; "
                                  f"pass a labelled dataset (e.g. --label gender for utkface)")
            dataset = dataset.labelled()  # drop images whose label is unknown (-1)
        self.dataset = dataset
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            self.dataset.pin_memory()
        n = len(dataset)
        if n < self.batch_size:
            raise GanzooError(f"dataset {cfg.data!r} has {n} images, fewer than the batch size {self.batch_size}; lower --batch-size")
        self.steps_per_epoch = n // self.batch_size
        # each epoch one permutation of the data, the same on every rank (seeded by the run's seed
        # and the epoch); rank r takes every world_size-th index, so the ranks' batches at a step
        # together are the global batch a single process would take
        self._sampler = DistributedSampler(range(n), num_replicas=self.dist.world_size, rank=self.dist.rank,
                                           shuffle=True, seed=cfg.seed * 1_000_003, drop_last=True)
        if cfg.steps is not None:
            self.total_steps = int(cfg.steps)
        elif cfg.epochs is not None:
            self.total_steps = int(math.ceil(cfg.epochs * self.steps_per_epoch))
        else:
            raise GanzooError("say how long to train: --steps N or --epochs E")


class _Checkpoints:
    """The Trainer's checkpoints: written completely or not at all, loaded to resume."""

    @property
    def ckpt_dir(self) -> Path:
        return self.out / CHECKPOINTS

    def _rng_state(self) -> dict[str, Any]:
        state = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def check_finite_state(self) -> None:
        """Raise :class:`TrainingDiverged` when a weight, buffer or optimizer moment is NaN/Inf: a
        checkpoint is only called good with finite state (a step whose loss was still finite can
        leave infinite weights, e.g. at a learning rate of 1e12)."""
        parts = {"G": self.G.state_dict().values(), "D": self.D.state_dict().values(),
                 "the optimizers' state": _tensors([self.opt_g.state_dict()["state"], self.opt_d.state_dict()["state"]])}
        if self.G_ema is not None:
            parts["G's moving average"] = self.G_ema.state_dict().values()
        bad = [name for name, tensors in parts.items() if not _all_finite(tensors)]
        if bad:
            self._diverged([f"in {', '.join(bad)}"], what="the weights became NaN/Inf")

    def save_checkpoint(self, *, check: bool = True) -> Path:
        """Write ``checkpoints/step-N`` completely (into a temporary folder, fsynced, renamed into
        place), then point ``latest`` at it, then prune; a step already saved is not written again
        (a signal arriving in a checkpoint step)."""
        name = checkpoint_name(self.step)
        final = self.ckpt_dir / name
        if self._saved_step == self.step and (final / TRAINER_STATE).exists():
            return final
        if check:
            self.check_finite_state()
        # a damaged copy of this step is moved aside and removed (resume removes them; belt and braces)
        with atomic_folder(final, tmp_name=f".tmp-{name}-{os.getpid()}", old_name=f".tmp-old-{name}-{os.getpid()}") as tmp:
            _test_pause(f"checkpoint writer: {name} started")
            save_file(_cpu_state(self.G), tmp / GENERATOR_FILE)
            _test_pause(f"checkpoint writer: {name} half-written")
            if self.G_ema is not None:
                save_file(_cpu_state(self.G_ema), tmp / EMA_FILE)
            save_file(_cpu_state(self.D), tmp / DISCRIMINATOR_FILE)
            state = {
                "step": self.step,
                "train_seconds": self.train_seconds,
                "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(),
                "objective": {k: v.detach().cpu() for k, v in self.objective.state_dict().items()},
                "rng": self._rng_state(),
                "ema_start": self.ema_start,
                **({"ada": self.ada.state_dict()} if self.ada is not None else {}),
            }
            torch.save(state, tmp / TRAINER_STATE)
        _test_pause(f"checkpoint writer: {name} renamed, latest not yet updated")
        with atomic_path(self.ckpt_dir / LATEST) as t:
            t.write_text(name + "\n")
        self._saved_step = self.step
        self._prune()
        return final

    def _prune(self) -> None:
        keep = max(1, self.cfg.keep_checkpoints)
        done = sorted(p for p in self.ckpt_dir.glob("step-*") if p.is_dir())
        for old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self, path: Path) -> None:
        _load_strict(self.G, path / GENERATOR_FILE)
        if self.G_ema is not None:  # a run that turns --ema on at --resume starts it from G
            _load_strict(self.G_ema, path / EMA_FILE if (path / EMA_FILE).exists() else path / GENERATOR_FILE)
        _load_strict(self.D, path / DISCRIMINATOR_FILE)
        state = torch.load(path / TRAINER_STATE, map_location="cpu", weights_only=True)
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.objective.load_state_dict({k: v.to(self.device) for k, v in state["objective"].items()})
        torch.set_rng_state(state["rng"]["cpu"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])
        self.step = int(state["step"])
        self._saved_step = self.step
        # the run's learning rates (the optimizers' state holds the rates at save time): the same
        # for a plain resume, the new ones when --lr-g/--lr-d changed them (the schedule re-sets
        # them every step when there is one)
        for opt, lr in ((self.opt_g, self.lr_g), (self.opt_d, self.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr
        self.train_seconds = float(state.get("train_seconds", 0.0))
        # the average starts here if this checkpoint has none (older checkpoints did not record it)
        self.ema_start = int(state.get("ema_start", 0)) if (path / EMA_FILE).exists() else self.step


class _RunReport:
    """What the Trainer writes and says besides checkpoints: the log, the grids and curves, the start
    line, the speed line, and the resolved recipe for run.json."""

    def _write_log(self, record: dict[str, Any]) -> None:
        with open(self.out / LOG_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _truncate_log(self) -> None:
        """After a resume, drop log lines from steps the last checkpoint does not include."""
        log = self.out / LOG_FILE
        if not log.exists():
            return
        keep = []
        for line in log.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= self.step:
                    keep.append(line)
            except (ValueError, KeyError):
                continue  # a torn last line from a killed run
        with atomic_path(log) as tmp:
            tmp.write_text("".join(l + "\n" for l in keep))

    def write_samples(self) -> Path:
        images = (self.G if self.G_ema is None else self.G_ema).sample(GRID_SIZE, seed=GRID_SEED, labels=self._grid_labels())
        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        path = save_grid(images, self.out / "samples" / f"step-{self.step:08d}.png")
        with atomic_path(self.out / "samples.png") as tmp:
            shutil.copyfile(path, tmp)
        return path

    def _grid_labels(self):
        k = self.G.num_classes
        if not k:
            return None
        return torch.arange(GRID_SIZE) % k

    def dtype_summary(self) -> str:
        """``bf16 autocast`` or ``fp32``, and why."""
        where = "this GPU" if self.device.type == "cuda" else "this CPU" if self.device.type == "cpu" else "this device"
        if self.cfg.bf16:
            why = {"auto": f"the default where {where} computes bf16 natively",
                   "option": "--bf16", "run.json": "as the run recorded"}[self.bf16_source]
            if not self.bf16_native:
                why += f"; EMULATED on {where}: slow"
            return f"bf16 autocast ({why}; --no-bf16 for fp32)"
        why = {"auto": f"{where} has no native bf16" + ("" if self.device.type != "cpu" else ": no AVX-512 BF16/AMX"),
               "option": "--no-bf16" if self.bf16_native else f"{where} has no native bf16",
               "run.json": "as the run recorded"}[self.bf16_source]
        return f"fp32 ({why}; --bf16 forces bf16 autocast)"

    def start_line(self, verb: str = "train") -> str:
        """One line: data (kind, path, images), image shape, batch, steps, device, dtype, threads."""
        ds = self.dataset
        c, size = self.arch_cfg.channels, self.arch_cfg.image_size
        batch = f"batch {self.batch_size}"
        if self.dist.enabled:
            batch += f" ({self.local_batch} on each of {self.dist.world_size} processes)"
        if self.device.type == "cuda":
            dev = f"{self.device} ({torch.cuda.get_device_name(self.device)})"
        else:
            dev = f"{self.device} ({speed.cpu_model()})"
        extras = []
        if self.cfg.diffaugment:
            extras.append(("ADA (target r_t " + f"{self.cfg.ada_target:g}) on " if self.ada is not None else "DiffAugment ")
                          + self.cfg.diffaugment)
        if self.cfg.compile:
            extras.append("torch.compile")
        if self.cfg.base_model:
            base = self.cfg.base_model
            at = f"@{base['revision']}" if base.get("revision") else ""
            extras.append(f"fine-tuning {base.get('base_model') or 'a model'}{at} with lr {self.lr_g:g}/{self.lr_d:g}, "
                          f"betas {self.betas[0]:g},{self.betas[1]:g} (options not given: the base's recorded recipe)")
        return (f"ganzoo {verb}: {self.spec.name} ({self.objective_name}) on {self.cfg.data} ({len(ds):,} images); "
                f"images {c}x{size}x{size}, {batch}, steps {self.step}->{self.total_steps}; device {dev}; "
                f"{self.dtype_summary()}; {_threads(torch.get_num_threads())}"
                + "".join(f"; {e}" for e in extras))

    def _announce_start(self, verb: str) -> None:
        """Print the start line, and a note when the data's shape differs from the model's."""
        print(self.start_line(verb), flush=True)
        note = self.shape_note()
        if note:
            print(note, flush=True)

    def shape_note(self) -> str | None:
        """A note when the data's own channels or size differ from what the model trains at."""
        native = getattr(self.dataset, "native_shape", None)
        c, size = self.arch_cfg.channels, self.arch_cfg.image_size
        if not native:
            return None
        nc, nh, nw = native
        given = self.cfg.arch_config
        flags = []
        if nc != c and "channels" not in given and nc in self.spec.channels:
            flags.append(f"--channels {nc}")
        if max(nh, nw) != size and "image_size" not in given:
            fits = sorted(s for s in self.spec.image_sizes if s >= max(nh, nw))
            best = fits[0] if fits else max(self.spec.image_sizes)
            if best != size:
                flags.insert(0, f"--image-size {best}")
        if not flags:
            return None
        released = ""
        with contextlib.suppress(Exception):
            want_c = nc if any(f.startswith("--channels") for f in flags) else c
            want_s = next((int(f.split()[1]) for f in flags if f.startswith("--image-size")), size)
            names = [e.name for e in load_catalog().values()
                     if e.architecture == self.spec.name and tuple(e.image_shape) == (want_c, want_s, want_s)]
            if names:
                released = f" (as the released {', '.join(sorted(names))})"
        return (f"note: the data are {nc}x{nh}x{nw}, training at {c}x{size}x{size} (the architecture's default); "
                f"pass {' '.join(flags)} to train near the data's own shape{released}")

    #: the speed line comes after this many timed steps (the first step, with its warm-up, is not
    #: timed) or this many seconds, whichever is first
    SPEED_STEPS, SPEED_SECONDS = 5, 10.0

    def _announce_speed(self, first_step: int, t_first):
        """Print the measured seconds per step and the estimated total once; returns the new timer
        state (None: not started, a time: timing from the end of the first step, False: done)."""
        ran = self.step - first_step
        if self.step >= self.total_steps and (t_first is None or ran < 2):
            return False
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        if t_first is None:
            return now
        timed = ran - 1
        if timed < self.SPEED_STEPS and now - t_first < self.SPEED_SECONDS:
            return t_first
        per = (now - t_first) / timed
        requested = self.total_steps - first_step
        left = self.total_steps - self.step
        finish = time.strftime("%H:%M", time.localtime(time.time() + per * left))
        # tqdm.write: the progress bar (on stderr) is cleared and redrawn around the line, which
        # print() appended to the bar's last state on a terminal ("...d_acc=0.75]speed: ...")
        tqdm.write(f"speed: {per:.3g} s/step ({self.batch_size / per:,.1f} images/s) over steps {first_step + 2}-{self.step}; "
                   f"the {requested:,} requested steps take about {_duration(per * requested)} "
                   f"({left:,} to go, done about {finish})", file=sys.stdout)
        sys.stdout.flush()
        return False

    def plot_losses(self) -> Path | None:
        return plot_log(self.out / LOG_FILE, self.out / "loss.png", title=f"{self.cfg.arch} on {self.cfg.data}",
                        ada_target=self.cfg.ada_target if self.cfg.ada else None)

    def describe(self) -> dict[str, Any]:
        """The resolved recipe, for run.json and model cards."""
        return {
            "architecture": self.spec.name,
            "arch_config": self.arch_cfg.to_dict(),
            "objective": self.objective_name,
            "objective_config": self.objective.config(),
            "batch_size": self.batch_size,
            "lr_g": self.lr_g,
            "lr_d": self.lr_d,
            "betas": list(self.betas),
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "dataset": self.dataset.describe(),
            "hardware": hardware_summary(self.device),
            "dtype": "bf16 autocast" if self.cfg.bf16 else "fp32",
            "torch": torch.__version__,
            **({"distributed": {"world_size": self.dist.world_size, "batch_per_process": self.local_batch,
                                "backend": _backend()}} if self.dist.enabled else {}),
            "class_names": list(self.dataset.class_names) if self.arch_cfg.num_classes else [],
        }


class Trainer(_TrainerSetup, _Checkpoints, _RunReport):
    """Train a generator/discriminator pair with an objective on an in-memory dataset.

    >>> from ganzoo.trainer import TrainConfig, train
    >>> train(TrainConfig(arch="dcgan", data="fashion-mnist:DATA",
    ...                   arch_config={"image_size": 32, "channels": 1}, steps=200), "runs/x")  # doctest: +SKIP
    """

    def __init__(self, cfg: TrainConfig, out_dir: str | os.PathLike, *, G=None, D=None, dataset=None,
                 optimizer_state: dict | None = None, objective_state: dict | None = None) -> None:
        # in this order, as each part checks its options before the next does any work
        self.cfg = cfg
        self.out = Path(out_dir)
        self._resolve_recipe()
        self._setup_device()
        dataset = self._setup_data(dataset, G is None)
        self._build_networks(G, D)
        self._wrap_networks()
        self._restore_state(optimizer_state, objective_state)
        self._setup_schedule(dataset)
        self.step = 0
        self.train_seconds = 0.0
        self.ema_start = 0  # the step G's moving average started from (see _update_ema)
        self._stop_signal: int | None = None
        self._saved_step: int | None = None  # the step of the checkpoint last written or loaded
        self.start_step = 0  # where this call's training started (the resumed checkpoint's step)
        self._step_fn = self._make_step_fn()

    # ---- the step ------------------------------------------------------------------------
    def _autocast(self):
        return autocast(self.device, self.cfg.bf16)

    def _make_step_fn(self):
        step = self.objective.step
        if self.cfg.compile:
            try:
                self.G.forward = torch.compile(self.G.forward)
                self.D.forward = torch.compile(self.D.forward)
            except Exception as exc:  # compile is an optimisation: never fatal
                print(f"ganzoo: torch.compile unavailable ({exc}); running eagerly", file=sys.stderr)
        return step

    def lr_factor(self, step: int) -> float:
        """The learning rates at ``step`` as a fraction of the recipe's (``lr_decay``)."""
        start = self.cfg.lr_decay_start
        if self.cfg.lr_decay != "linear" or step < start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / max(1, self.total_steps - start))

    def _set_lr(self) -> None:
        f = self.lr_factor(self.step)
        for opt, lr in ((self.opt_g, self.lr_g), (self.opt_d, self.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * f

    @torch.no_grad()
    def _update_ema(self) -> None:
        """G_ema <- G_ema + (1 - d)(G - G_ema); d ramps up as min(decay, (1 + t) / (10 + t)), as
        TensorFlow's ExponentialMovingAverage with num_updates, so early weights fade quickly; t
        counts from the step the average started (a run that turns --ema on at --resume ramps too).
        Buffers (BatchNorm statistics) are copied."""
        t = self.step - self.ema_start
        d = min(self.cfg.ema, (1.0 + t) / (10.0 + t))
        torch._foreach_lerp_(self._ema_params[0], self._ema_params[1], 1.0 - d)
        for b_ema, b in zip(*self._ema_buffers):
            b_ema.copy_(b)

    def _batch(self, step: int):
        epoch, offset = divmod(step, self.steps_per_epoch)
        if getattr(self, "_perm_epoch", None) != epoch:
            self._sampler.set_epoch(epoch)
            self._perm = torch.tensor(list(self._sampler), dtype=torch.long)
            self._perm_epoch = epoch
        b = self.local_batch
        return self._gather(self._perm[offset * b:(offset + 1) * b])

    def _mine(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a tensor drawn for the global batch: every world_size-th row from
        its rank on, the positions DistributedSampler gives it (so a flip drawn for global
        position i lands on the image a single process has at position i)."""
        return t[self.dist.rank::self.dist.world_size]

    def _extra_batch(self):
        """Another real batch for objectives with several D updates per step (``n_critic``).

        Drawn with the global RNG, which checkpoints save, so resume stays exact.
        """
        real, labels = self._gather(self._mine(torch.randperm(len(self.dataset))[:self.batch_size]))
        if self.ada is not None:
            self.ada.set_real(real)
        return real, labels

    def _gather(self, idx: torch.Tensor):
        real, labels = self.dataset.batch(idx, device=self.device, channels_last=self.cfg.channels_last)
        if self.cfg.flip:
            flip = self._mine(torch.rand(self.batch_size, device=real.device)) < 0.5
            real = torch.where(flip[:, None, None, None], real.flip(3), real)
        return real, labels

    # ---- the loop --------------------------------------------------------------------------
    def _install_signal_handlers(self):
        previous = {}

        def handler(signum, frame):
            self._stop_signal = signum

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not in the main thread
                pass
        return previous

    def fit(self, *, progress: bool = True, announce: bool | None = None, verb: str = "train") -> dict[str, float]:
        """Train until ``total_steps``; return the last logged scalars.

        ``announce`` (default: ``progress``): print the start line (:meth:`start_line`), a note when
        the data's shape differs from the model's, and after a few steps the measured seconds per
        step with the estimated time for the requested steps (stdout, tty or not)."""
        main = self.dist.is_main  # only rank 0 writes logs, grids and checkpoints
        announce = (progress if announce is None else announce) and main
        if announce:
            self._announce_start(verb)
        first_step, t_first = self.step, None
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
        ctx = StepContext(self.G_step, self.D_step, self.opt_g, self.opt_d, self.device, self.step,
                          autocast=self._autocast, channels_last=self.cfg.channels_last,
                          next_real=self._extra_batch, rank=self.dist.rank, world_size=self.dist.world_size)
        self.G.train()
        self.D.train()
        finite = torch.ones((), dtype=torch.bool, device=self.device)
        acc: dict[str, torch.Tensor] = {}
        n_acc = 0
        last: dict[str, float] = {}
        previous = self._install_signal_handlers()
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (progress and main), dynamic_ncols=True,
                   desc=f"{self.cfg.arch}", unit="step")
        t0 = time.perf_counter()
        try:
            while self.step < self.total_steps:
                out = self._train_step(ctx)
                for k, v in out.items():
                    v = v.detach().float()
                    finite &= torch.isfinite(v)
                    acc[k] = acc[k] + v if k in acc else v
                n_acc += 1
                self.step += 1
                bar.update(1)
                if announce and t_first is not False:
                    t_first = self._announce_speed(first_step, t_first)
                at_log = self.step % self.cfg.log_every == 0 or self.step == self.total_steps
                at_ckpt = self.step % self.cfg.checkpoint_every == 0 or self.step == self.total_steps
                at_sample = self.step % self.cfg.sample_every == 0 or self.step == self.total_steps
                if self.dist.enabled and (at_log or at_ckpt):
                    # the ranks' scalars to their mean, and NaN anywhere stops every rank (collectives
                    # only at steps all ranks reach, never on a rank-local event such as a signal)
                    acc, finite = self._reduce_scalars(acc, finite)
                if at_log or at_ckpt or self._stop_signal is not None:
                    if not bool(finite):  # the only host sync, at intervals
                        bad = [k for k, v in out.items() if not torch.isfinite(v).all()]
                        self._diverged(bad)
                    self.train_seconds += time.perf_counter() - t0
                    t0 = time.perf_counter()
                if at_log and n_acc:
                    last = self._logged(acc, n_acc)
                    if main:
                        self._write_log({"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4),
                                         "seconds": round(self.train_seconds, 2), **last})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()}, refresh=False)
                    acc, n_acc = {}, 0
                if at_sample and main:
                    self.write_samples()
                    self.plot_losses()
                if at_ckpt:
                    if self.dist.enabled:
                        distributed.average_buffers(self.G, self.D)
                        distributed.check_in_sync(self.G, self.D)
                    self.check_finite_state()  # every rank: the weights are the same everywhere
                    if main:
                        self.save_checkpoint(check=False)
                if self._stop_signal is not None:
                    if main:
                        self.save_checkpoint()  # not again when this step's checkpoint is written
                    name = signal.Signals(self._stop_signal).name
                    raise TrainingInterrupted(
                        f"{name} received: saved a checkpoint at step {self.step} in {self.ckpt_dir}; continue with "
                        f"`ganzoo train --resume --out {_q(self.out)}`", self._stop_signal)
        finally:
            bar.close()
            for sig, h in previous.items():
                signal.signal(sig, h)
        return last

    def _train_step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One step: this step's batch and learning rate, the objective's updates of D and G, ADA's
        adjustment, the objective state's sync across ranks and G's moving average."""
        real, labels = self._batch(self.step)
        ctx.step = self.step
        if self.cfg.lr_decay:
            self._set_lr()
        if self.ada is not None:
            self.ada.set_real(real)
        out = self._step_fn(ctx, real, labels)
        if self.ada is not None:
            if not self._ada_checked:  # one host sync, at the first step
                self._ada_checked = True
                if float(self.ada.count) == 0:
                    raise GanzooError(f"--ada: objective {self.objective_name!r} never scored the real batch "
                                      "in D's own update, so r_t = E[sign(D(real))] cannot be measured; "
                                      "use --diffaugment without --ada")
            self.ada.end_step(self.step + 1, all_sum=distributed.all_sum if self.dist.enabled else None)
        if self.dist.enabled:
            distributed.sync_objective_state(self.objective)
        if self.G_ema is not None:
            self._update_ema()
        return out

    def _logged(self, acc: dict[str, torch.Tensor], n_acc: int) -> dict[str, float]:
        """The means of the scalars since the last log line, with the learning rate (under a schedule)
        and ADA's p and r_t."""
        last = {k: round(float(v) / n_acc, 6) for k, v in acc.items()}
        if self.cfg.lr_decay:  # the rate of the step just taken
            last["lr_g"] = float(f"{self.lr_g * self.lr_factor(self.step - 1):.6g}")
        if self.ada is not None:  # p now, and the r_t of the last adjustment
            last["ada_p"] = round(float(self.ada.p), 6)
            last["ada_rt"] = round(float(self.ada.rt), 4)
        return last

    def _reduce_scalars(self, acc: dict[str, torch.Tensor], finite: torch.Tensor):
        """One collective: the scalars' means over the ranks, and whether every rank is finite."""
        keys = sorted(acc)
        flat = distributed.all_sum(torch.stack([acc[k] for k in keys] + [(~finite).float()]))
        return {k: flat[i] / self.dist.world_size for i, k in enumerate(keys)}, flat[-1] == 0

    def _diverged(self, bad: list[str], *, what: str = "loss became NaN/Inf") -> None:
        """Stop with advice that can be followed as written: --resume takes new learning rates
        (and --bf16/--no-bf16); --restart starts over keeping nothing."""
        latest = latest_checkpoint(self.out) if self._saved_step is not None else None
        lower = f"--lr-g {self.lr_g / 10:.3g} --lr-d {self.lr_d / 10:.3g}" + (" --no-bf16" if self.cfg.bf16 else "")
        out = _q(self.out)
        if latest is not None:
            advice = (f"the last good checkpoint is {latest.name} in {self.ckpt_dir}: continue from it with lower "
                      f"learning rates, e.g. `ganzoo train --resume --out {out} {lower}`, or start over with "
                      f"`ganzoo train --restart --out {out} {lower}`")
        else:
            advice = (f"no checkpoint was written yet: start over with lower learning rates, e.g. "
                      f"`ganzoo train --restart --out {out} {lower}`")
        raise TrainingDiverged(f"{what} ({', '.join(bad) or 'a logged scalar'}) by step {self.step}; {advice}")


def _q(path) -> str:
    return shlex.quote(str(path))


def _test_pause(what: str) -> None:
    """Test hook: GANZOO_TEST_SLOW_CHECKPOINT=SECONDS says where the checkpoint writer is and
    sleeps there, so that a test's SIGKILL/SIGTERM lands inside the writer."""
    delay = os.environ.get("GANZOO_TEST_SLOW_CHECKPOINT")
    if delay:
        print(f"ganzoo-test: {what}", file=sys.stderr, flush=True)
        time.sleep(float(delay))


def _threads(n: int) -> str:
    return f"{n} thread" + ("s" if n != 1 else "")


def _duration(seconds: float) -> str:
    """``42 s``, ``12 min 5 s``, ``3 h 12 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{max(s, 0)} s" if seconds >= 1 else f"{seconds:.2g} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _check_ada_options(cfg: TrainConfig) -> None:
    """--ada's options, checked before any work: one-line errors naming the fix."""
    if not cfg.ada:
        for name, value, default in (("--ada-target", cfg.ada_target, ADA_TARGET), ("--ada-kimg", cfg.ada_kimg, ADA_KIMG)):
            if value != default:
                raise GanzooError(f"{name} {value:g} only goes with --ada (adaptive augmentation); add --ada or drop {name}")
        return
    t = cfg.ada_target
    if not isinstance(t, (int, float)) or not math.isfinite(t) or not 0.0 < t < 1.0:
        raise GanzooError(f"--ada-target {t}: the target of r_t = E[sign(D(real))] must be in (0, 1), "
                          f"e.g. {ADA_TARGET} (Karras et al. 2020)")
    k = cfg.ada_kimg
    if not isinstance(k, (int, float)) or not math.isfinite(k) or k <= 0:
        raise GanzooError(f"--ada-kimg {k}: give the thousands of images p takes to go from 0 to 1, > 0, "
                          f"e.g. {ADA_KIMG:g} (Karras et al. 2020)")
    if cfg.diffaugment is None:
        cfg.diffaugment = ADA_DEFAULT_POLICY  # recorded in run.json


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


def _load_strict(module: torch.nn.Module, path: Path) -> None:
    # path: RUN/checkpoints/step-N/FILE; the run's architecture comes from RUN/run.json
    run_json = path.parent.parent.parent / RUN_JSON
    load_state_strict(module, load_file(path), where=str(path), config=str(run_json))


#: options that may differ at --resume (they change how the run is driven, not its result)
RESUME_OPERATIONAL = ("device", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints")
#: options --resume handles itself (length of the run; switching the moving average on; the
#: learning rates and bf16, recorded in run.json's resume_changes: the way out of a divergence)
_RESUME_ALLOWED = ("steps", "epochs", "ema", "lr_decay", "lr_decay_start", "lr_g", "lr_d", "bf16")
LR_DECAYS = (None, "linear")
_DEFAULTS = TrainConfig(arch="", data="")


def _given(cfg: TrainConfig, name: str):
    """The value of an option the caller gave, or None when it is the default (not given)."""
    value = getattr(cfg, name)
    return None if value is None or value == getattr(_DEFAULTS, name) else value


def _recorded(saved: TrainConfig, meta: dict[str, Any], name: str):
    """What the run actually uses for ``name``: run.json's train value, or for an option left
    at the architecture's default (recorded as null) the resolved value it ran with."""
    value = getattr(saved, name)
    resolved = meta.get("resolved") or {}
    if value is None and name in ("batch_size", "lr_g", "lr_d", "objective", "betas"):
        value = resolved.get(name)
        if name == "betas" and value is not None:
            value = tuple(value)
    if name == "arch_config":
        value = {**(resolved.get("arch_config") or {}), **value}
    return value


def _check_resume_options(cfg: TrainConfig, saved: TrainConfig, out: Path, meta: dict[str, Any] | None = None) -> None:
    """Refuse options given with --resume that would change the recorded run (they would be ignored)."""
    meta = meta or {}
    skip = set(RESUME_OPERATIONAL) | set(_RESUME_ALLOWED)
    clash = []
    for f in dataclasses.fields(TrainConfig):
        given = _given(cfg, f.name)
        if f.name in skip or given is None:
            continue
        recorded = _recorded(saved, meta, f.name)
        if f.name == "arch_config":
            if all(recorded.get(k) == v for k, v in given.items()):
                continue  # --image-size/--channels repeated as recorded (or as the defaults it ran with)
        elif f.name == "betas" and recorded is not None and tuple(given) == tuple(recorded):
            continue
        elif given == recorded:
            continue
        clash.append(f"{f.name} {given!r} (recorded: {recorded!r})")
    if clash:
        raise GanzooError(f"--resume continues {out} as its run.json records it; these options differ and cannot "
                          f"change mid-run: {'; '.join(clash)}. Drop them, start it over with --restart, "
                          f"or start a new run with another --out")


def _restart_config(cfg: TrainConfig, out: Path) -> TrainConfig:
    """--restart: with ARCH given, the settings given (a new run in the same folder); without,
    the run's recorded settings with the options given replacing them."""
    if cfg.arch:
        if not cfg.data:
            raise GanzooError("--restart with ARCH needs --data KIND:PATH too (or give neither to reuse the run's)")
        return cfg
    try:
        saved = load_run(out)
    except GanzooError:
        saved = None
    if saved is None:
        raise GanzooError(f"--restart: {out} has no readable run.json to take the settings from; give ARCH and "
                          f"--data KIND:PATH")
    if saved.base_model:
        raise GanzooError(f"{out} is a fine-tune of {saved.base_model.get('base_model') or 'a model'}; start it over "
                          f"with `ganzoo finetune MODEL --data ... --out {_q(out)} --restart`")
    for f in dataclasses.fields(TrainConfig):
        given = _given(cfg, f.name)
        if given is None:
            continue
        setattr(saved, f.name, {**saved.arch_config, **given} if f.name == "arch_config" else given)
    return saved


def train(cfg: TrainConfig, out_dir: str | os.PathLike, *, resume: bool = False, restart: bool = False,
          progress: bool = True, command: str | None = None, **trainer_kwargs) -> Trainer:
    """Create (or resume, or restart) a run in ``out_dir`` and train it to the end.

    ``resume`` continues the run from its newest intact checkpoint (from step 0 when it has
    none); ``restart`` starts it over, keeping nothing of it (with ``cfg.arch`` empty, its
    recorded settings with the options given replacing them). The run folder is locked
    (:class:`ganzoo.runlock.RunLock`) while this runs: a second call into it is refused.

    Under ``torchrun`` every process calls this; rank 0 alone writes into ``out_dir`` and
    holds the lock. After an elastic restart (``torchrun --max-restarts``) the run resumes
    from its last checkpoint by itself (from step 0 when it had written none).
    """
    out = Path(out_dir)
    if resume and restart:
        raise GanzooError("--resume and --restart contradict each other: --resume continues the run in --out, "
                          "--restart starts it over; give one")
    check_options(cfg)
    main = distributed.env_info().is_main
    with RunLock(out) if main else contextlib.nullcontext():
        if main:
            removed = clean_temporaries(out)
            if removed:
                print(f"ganzoo: removed {len(removed)} unfinished file(s) a killed run left in {out} "
                      f"({', '.join(sorted(p.name for p in removed)[:3])}{', ...' if len(removed) > 3 else ''})",
                      file=sys.stderr)
        return _train_locked(cfg, out, resume=resume, restart=restart, progress=progress, command=command,
                             **trainer_kwargs)


def _warn(message: str) -> None:
    if distributed.env_info().is_main:
        print(f"ganzoo: {message}", file=sys.stderr)


def _resume_config(cfg: TrainConfig, out: Path, command: str | None = None):
    """--resume: the run's recorded settings with the changes --resume allows (a longer run, new
    learning rates or bf16, a moving average or a decay switched on: recorded in run.json), the
    newest intact checkpoint and the damaged newer ones. Returns (cfg, checkpoint, damaged,
    length_given, recorded_bf16)."""
    record = read_run(out)
    meta, saved = record.meta, record.train
    recorded_bf16 = saved.bf16
    _check_resume_options(cfg, saved, out, meta)
    for name in RESUME_OPERATIONAL:  # how the run is driven, not what it computes: the caller's wins
        if getattr(cfg, name) != getattr(_DEFAULTS, name):
            setattr(saved, name, getattr(cfg, name))
    length_given = cfg.steps is not None or cfg.epochs is not None
    ckpt, damaged = newest_intact_checkpoint(out)
    at = checkpoint_step(ckpt) if ckpt else 0  # where settings switched on now take effect
    if cfg.steps is not None and int(cfg.steps) < at:
        raise GanzooError(f"--steps {cfg.steps}: {out} is already at step {at} (checkpoint {ckpt.name}), past "
                          f"{cfg.steps}; give --steps above {at} to train it further, or --restart to start over")
    if length_given and (cfg.steps, cfg.epochs) != (saved.steps, saved.epochs):
        # extend (or shorten) the run; recorded, so that a plain --resume after a kill goes on to it
        saved.steps, saved.epochs = cfg.steps, cfg.epochs
        if distributed.env_info().is_main:
            meta["train"].update(steps=cfg.steps, epochs=cfg.epochs)
            write_json(out / RUN_JSON, meta)
    if ckpt is None and saved.base_model:
        raise GanzooError(f"{out} is a fine-tune stopped before its first checkpoint; start it over with "
                          f"`ganzoo finetune MODEL --data ... --out {_q(out)} --restart`")
    changes: dict[str, Any] = {}
    for name in ("lr_g", "lr_d"):  # new learning rates from here on (e.g. after a divergence)
        given, recorded = getattr(cfg, name), _recorded(saved, meta, name)
        if given is not None and given != recorded:
            changes[name] = given
    if cfg.bf16 is not None and bool(cfg.bf16) != bool(saved.bf16):
        changes["bf16"] = bool(cfg.bf16)
    if cfg.ema and cfg.ema != saved.ema:  # switch a moving average of G on (or change its decay)
        changes["ema"] = cfg.ema
    start_given = cfg.lr_decay_start != _DEFAULTS.lr_decay_start
    if saved.lr_decay and cfg.lr_decay and (cfg.lr_decay != saved.lr_decay or
                                             (start_given and cfg.lr_decay_start != saved.lr_decay_start)):
        raise GanzooError(f"--resume: {out} already decays its learning rate ({saved.lr_decay} from step "
                          f"{saved.lr_decay_start}); drop --lr-decay/--lr-decay-start")
    if cfg.lr_decay and not saved.lr_decay:
        # switch a schedule on for the rest of the run: it starts here, or later if asked
        changes.update(lr_decay=cfg.lr_decay, lr_decay_start=max(at, cfg.lr_decay_start))
    elif start_given and not cfg.lr_decay and cfg.lr_decay_start != saved.lr_decay_start:
        raise GanzooError("--lr-decay-start only goes with --lr-decay (at --resume: to switch a decay on)")
    if changes:  # one resume_changes entry per resume, with its command
        for name, value in changes.items():
            setattr(saved, name, value)
        _record_change(out, changes, at_step=at, command=command)
    return saved, ckpt, damaged, length_given, recorded_bf16


def _train_locked(cfg: TrainConfig, out: Path, *, resume: bool, restart: bool, progress: bool,
                  command: str | None, **trainer_kwargs) -> Trainer:
    if not resume and not restart and distributed.elastic_restart() and (out / RUN_JSON).exists():
        resume = True  # a torchrun restart: continue from the last checkpoint, or from step 0
    command = command or " ".join(sys.argv)
    ckpt, damaged, length_given = None, [], False
    # the run's recorded dtype holds (on any machine) unless --bf16/--no-bf16 says otherwise
    bf16_given, recorded_bf16 = cfg.bf16 is not None, None
    if restart:
        if holds_run(out) or (out / RUN_JSON).exists():
            cfg = _restart_config(cfg, out)
        elif not cfg.arch or not cfg.data:
            raise GanzooError(f"--restart: {out} holds no run to take the settings from; give ARCH and --data KIND:PATH")
    elif resume:
        cfg, ckpt, damaged, length_given, recorded_bf16 = _resume_config(cfg, out, command)
    elif holds_run(out):
        last = checkpoint_folders(out)
        at = f" (checkpoints up to {last[0].name})" if last else " (no checkpoint yet)"
        raise GanzooError(f"{out} already holds a run{at}; continue it with --resume, start it over with --restart "
                          f"(keeps nothing of it), or choose another --out")
    owned = not distributed.initialized()
    trainer = Trainer(cfg, out, **trainer_kwargs)
    if resume and not bf16_given and recorded_bf16 is not None:
        trainer.bf16_source = "run.json"
    try:
        if resume:
            if ckpt is not None:
                trainer.load_checkpoint(ckpt)
            if trainer.dist.is_main:
                for path, why in damaged:  # newer than the one resumed: the run recomputes those steps
                    shutil.rmtree(path, ignore_errors=True)
                    _warn(f"warning: checkpoint {path.name} is damaged ({why}); removed it")
                if damaged and ckpt is not None:
                    with atomic_path(trainer.ckpt_dir / "latest") as t:
                        t.write_text(ckpt.name + "\n")
                if ckpt is None:
                    _warn(f"{out} has no intact checkpoint: training its run from step 0 with its recorded settings")
                else:
                    _warn(f"resuming {out} from {ckpt.name}")
                trainer._truncate_log()
            trainer.start_step = trainer.step
            if trainer.step > trainer.total_steps and length_given:
                raise GanzooError(f"{out} is already at step {trainer.step}, past the {trainer.total_steps} steps asked "
                                  f"for; give --steps above {trainer.step} to train it further, or --restart")
        elif trainer.dist.is_main:
            if restart and holds_run(out):
                what = remove_run(out)
                _warn(f"--restart: deleted the earlier run in {out} ({what}); nothing of it is kept, "
                      f"training from step 0")
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / RUN_JSON, {
                "ganzoo_version": version(),
                "command": command,
                "train": cfg.to_dict(),
                "resolved": trainer.describe(),
            })
        if trainer.step < trainer.total_steps:
            verb = "resume" if resume else "finetune" if cfg.base_model else "train"
            trainer.fit(progress=progress, verb=verb)
        elif trainer.dist.is_main:
            _warn(f"{out} is already at step {trainer.step} of {trainer.total_steps}: nothing to train; give a larger "
                  f"--steps to continue it")
        if trainer.dist.enabled:
            distributed.barrier()  # no rank leaves while rank 0 still writes the last checkpoint
    finally:
        if owned:  # the process group this call started (not one the caller set up)
            distributed.teardown()
    return trainer


def _record_change(out: Path, change: dict[str, Any], *, at_step: int, command: str | None = None) -> None:
    """Write settings changed at --resume into run.json (so the next --resume keeps them), and
    into its ``resume_changes`` with the step they took effect from and the command (for the model card)."""
    if not distributed.env_info().is_main:
        return
    meta = json.loads((out / RUN_JSON).read_text())
    meta["train"].update(change)
    meta.setdefault("resume_changes", []).append({**change, "at_step": at_step,
                                                  **({"command": command} if command else {})})
    write_json(out / RUN_JSON, meta)


def finetune(ref: str | os.PathLike, *, data: str, out: str | os.PathLike, steps: int | None = None,
             epochs: float | None = None, freeze: Iterable[str] = (), label: str | None = None,
             progress: bool = True, command: str | None = None, optimizer_state: bool = True, restart: bool = False,
             **train_options):
    """Continue training a released model (or a run) on new data; returns the :class:`Trainer`.

    G and D start from ``ref``'s weights; the optimizer and objective state too when the
    model has them (a run's last checkpoint, or a folder's ``training_state.safetensors``),
    except for a network with parts frozen by ``freeze`` (its parameter list changes).
    ``train_options`` are :class:`TrainConfig` fields (``lr_g``, ``batch_size``,
    ``device``, ...); batch size, learning rates, betas and objective default to the base
    model's recorded recipe (:func:`_base_recipe`), else the architecture's. The run records
    ``base_model`` (and so will its exported model folder: ``config.json`` ``lineage``).
    ``restart=True`` starts over a run already in ``out``, keeping nothing of it.

    >>> ganzoo.finetune("began_fashion", data="folder:shoes", steps=500, out="runs/shoes",
    ...                 freeze=["encoder"])             # doctest: +SKIP
    """
    out = Path(out)
    if (out / RUN_JSON).exists() and not restart:
        raise GanzooError(f"{out} already holds a run; continue it with `ganzoo train --resume --out {out}`, start the "
                          f"fine-tune over with --restart (keeps nothing of it), or choose another --out")
    model = load_any(ref, discriminator=True, training_state=optimizer_state)
    config = model.config
    arch = config["architecture"]
    spec = get_registry().architecture(arch)
    freeze = list(freeze or [])
    freeze_parts(spec, freeze)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(train_options) - fields - {"arch", "data", "arch_config"})
    if bad:
        raise GanzooError(f"finetune: unknown option(s) {', '.join(bad)}; known: {', '.join(sorted(fields))}")
    for fixed in ("arch", "arch_config"):
        if fixed in train_options:
            raise GanzooError(f"finetune: {fixed} comes from the base model; drop it")
    lineage = dict(model.lineage)
    lineage = {"base_model": lineage.get("base_model"), "repo": lineage.get("repo"), "revision": lineage.get("revision")}
    if lineage["repo"] is None:
        lineage.pop("repo")
    if hashes := model.weights_sha256():
        lineage["sha256"] = hashes
    train_options = {**train_options, **_base_recipe(config.get("training") or {}, train_options)}
    cfg = TrainConfig(arch=arch, data=data, arch_config=dict(config["arch_config"]), data_label=label,
                      steps=steps, epochs=epochs, freeze=freeze, base_model=lineage, **train_options)
    if left := _augmentation_left_out(config.get("training") or {}, cfg):
        print(f"ganzoo: note: {config.get('name') or ref} was trained with {' '.join(left)}, which a fine-tune does "
              f"not take from the base's recipe (they depend on the data); give them to keep them", file=sys.stderr)
    G, D = model.G, model.D
    G.train()
    D.train()
    arch_cfg = spec.make_config(**cfg.arch_config)
    dataset = load_dataset(data, image_size=arch_cfg.image_size, channels=arch_cfg.channels, label=label)
    if arch_cfg.num_classes:
        if dataset.labels is None or dataset.num_classes != arch_cfg.num_classes:
            got = dataset.num_classes if dataset.labels is not None else "no"
            raise GanzooError(f"--data {data}: has {got} classes but {model.config.get('name') or ref} is conditional on "
                              f"{arch_cfg.num_classes}; use a data set with the same classes")
    kwargs: dict[str, Any] = {"G": G, "D": D, "dataset": dataset}
    if model.training_state is not None:
        kwargs.update(_base_state(model.training_state, spec, cfg, G, D, same_objective=train_options.get(
            "objective") in (None, config.get("training", {}).get("objective"))))
    return train(cfg, out, progress=progress, command=command or f"ganzoo.finetune({str(ref)!r}, data={data!r})",
                 restart=restart, **kwargs)


def _base_recipe(training: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The base model's recorded recipe (config.json ``training``) for what the fine-tune leaves unset:
    batch size, learning rates, betas and the objective with its hyper-parameters (those given with
    ``objective_kwargs`` replace single ones). A model trained at batch 64 or with the hinge loss is
    fine-tuned the same way unless told otherwise, not with the architecture's defaults; a model without a
    recorded recipe (built in memory) keeps the architecture's."""
    out: dict[str, Any] = {}
    for key in ("batch_size", "lr_g", "lr_d", "betas"):
        if options.get(key) is None and training.get(key) is not None:
            out[key] = tuple(training[key]) if key == "betas" else training[key]
    objective = training.get("objective")
    if objective and options.get("objective") in (None, objective):
        out["objective"] = objective
        out["objective_kwargs"] = {**(training.get("objective_config") or {}),
                                   **(options.get("objective_kwargs") or {})}
    return out


def _augmentation_left_out(training: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """The base's augmentation and moving average that ``cfg`` does not use, as the options that give them:
    a FastGAN trained with DiffAugment on 900 images and fine-tuned on 100 without it overfits."""
    left = []
    if training.get("diffaugment") and not cfg.diffaugment:
        left += (["--ada"] if training.get("ada") else []) + [f"--diffaugment {training['diffaugment']}"]
    if training.get("flip") and not cfg.flip:
        left.append("--flip")
    ema = training.get("ema")
    weights = str(training.get("generator_weights") or "")
    if ema is None and "moving average" in weights:
        # folders exported before config.json recorded it name the decay in their weights' text
        decay = weights.rpartition("decay ")[2]
        ema = decay if decay.replace(".", "", 1).isdigit() else 0.999
    if ema and not cfg.ema:
        left.append(f"--ema {ema}")
    return left


def _base_state(state: dict[str, Any], spec, cfg: TrainConfig, G, D, *, same_objective: bool) -> dict[str, Any]:
    """The base model's optimizer and objective state for a fine-tune's Trainer: the optimizers' at the
    fine-tune's learning rates and betas (:func:`resolve_recipe`), with its parts frozen first
    (:func:`freeze_parts`); fresh optimizers when a network's trainable parameters differ."""
    kwargs: dict[str, Any] = {}
    freeze_parts(spec, cfg.freeze, G, D)
    recipe = resolve_recipe(spec, cfg)
    lr = {"opt_g": recipe.lr_g, "opt_d": recipe.lr_d}
    opt_state = {}
    for key, net in (("opt_g", G), ("opt_d", D)):
        sd = state.get(key)
        n = sum(1 for p in net.parameters() if p.requires_grad)
        if not sd or sum(len(g["params"]) for g in sd["param_groups"]) != n:
            print(f"ganzoo: the optimizers start fresh ({key[-1].upper()}'s trainable parameters differ from "
                  f"the base model's)", file=sys.stderr)
            opt_state = None
            break
        sd = copy.deepcopy(sd)
        for g in sd["param_groups"]:  # the fine-tune's learning rate, not the base run's
            g["lr"], g["betas"] = lr[key], recipe.betas
        opt_state[key] = sd
    if opt_state:
        kwargs["optimizer_state"] = opt_state
    if state.get("objective") and same_objective:
        kwargs["objective_state"] = state["objective"]
    return kwargs


def _backend() -> str | None:
    dist = torch.distributed
    return dist.get_backend() if dist.is_available() and dist.is_initialized() else None
