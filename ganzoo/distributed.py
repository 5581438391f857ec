"""Multi-process training on PyTorch's own engine: ``torchrun`` + ``DistributedDataParallel``.

``torchrun --nproc_per_node=N -m ganzoo train ...`` starts N copies of ``ganzoo train``;
each reads its place from the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and :func:`setup` joins the process
group: NCCL when the run's device is CUDA, gloo on CPU.

How a run is split (see docs/distributed.md):

* ``--batch-size`` is the GLOBAL batch (as in StyleGAN2-ADA's ``--batch``): each of the
  N ranks takes ``batch/N`` images, so changing N changes neither the recipe nor the
  learning rates, and a run resumes exactly onto another world size.
* Every rank draws the same global permutation each epoch
  (:class:`torch.utils.data.DistributedSampler` with the run's seed and ``set_epoch``),
  and the global RNG stays in lockstep on every rank: latents, flips and extra batches
  are drawn for the global batch and each rank keeps its slice. A run on N ranks thus
  sees the same images and latents as a one-process run with the same global batch.
* G and D are wrapped in DDP (gradients averaged across ranks in backward);
  :meth:`ganzoo.objective.StepContext.frozen` also enters ``no_sync`` so a frozen D in
  G's step asks for no gradient reduction. Objective state (BEGAN's k) is averaged
  across ranks after every step, so it is identical everywhere.
* Only rank 0 writes logs, grids and checkpoints; at every checkpoint the ranks compare
  a fingerprint of their weights and stop with an error if they drifted apart.
"""
from __future__ import annotations

import contextlib
import datetime
import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .errors import GanzooError
from .nn import WrapperAttributes

__all__ = ["DistInfo", "env_info", "setup", "teardown", "GanDDP", "wrap", "is_ddp",
           "all_sum", "all_mean", "sync_objective_state", "average_buffers", "check_in_sync", "barrier",
           "elastic_restart"]

#: seconds a collective may wait for a missing rank before the job fails (no hang)
DEFAULT_TIMEOUT_S = 600


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """This process's place, from torchrun's environment (one process when it is not set)."""
    try:
        return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                        int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as exc:
        raise GanzooError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers ({exc}); start with torchrun") from None


def elastic_restart() -> int:
    """How many times torchrun restarted the workers (``--max-restarts``); 0 on the first start."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))
    except ValueError:
        return 0


def setup(device: torch.device, *, timeout_s: float | None = None) -> DistInfo:
    """Join the process group torchrun describes; a no-op in a single process.

    The backend follows the device: NCCL for CUDA, gloo for the CPU. ``timeout_s``
    (default ``GANZOO_DIST_TIMEOUT`` or 600) bounds every collective, so a rank that dies
    or hangs makes the others fail instead of waiting for ever.
    """
    info = env_info()
    if not info.enabled:
        return info
    if not dist.is_available():
        raise GanzooError("this PyTorch build has no torch.distributed; train in one process")
    if initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), info.local_rank)
    if timeout_s is None:
        timeout_s = float(os.environ.get("GANZOO_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and not dist.is_nccl_available():
        backend = "gloo"
    kwargs = {}
    if device.type == "cuda":
        torch.cuda.set_device(device)
        kwargs["device_id"] = device  # eager NCCL init, and barrier() knows its device
    timeout = datetime.timedelta(seconds=timeout_s)
    restart = elastic_restart()
    if restart:
        # after an elastic restart the agent's store may still hold the previous attempt's keys
        # (gloo's peer addresses, seen stale here with torch 2.14 --standalone): keep this
        # attempt's keys apart
        kwargs.update(store=dist.PrefixStore(f"ganzoo/restart-{restart}", _env_store(info, timeout)),
                      rank=info.rank, world_size=info.world_size)
    try:
        dist.init_process_group(backend, timeout=timeout, **kwargs)
    except TypeError:  # an older torch without device_id
        kwargs.pop("device_id", None)
        dist.init_process_group(backend, timeout=timeout, **kwargs)
    return DistInfo(dist.get_rank(), dist.get_world_size(), info.local_rank)


def _env_store(info: DistInfo, timeout: datetime.timedelta):
    """The TCPStore that ``init_method='env://'`` would connect to (torchrun's MASTER_ADDR/PORT)."""
    try:
        addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    except (KeyError, ValueError):
        raise GanzooError("MASTER_ADDR/MASTER_PORT are not set; start the job with torchrun") from None
    from torch.distributed.rendezvous import _create_c10d_store  # only for torchrun jobs; torch builds without distributed lack it

    return _create_c10d_store(addr, port, info.rank, info.world_size, timeout)


def teardown() -> None:
    if initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if initialized():
        dist.barrier()


class GanDDP(WrapperAttributes, DistributedDataParallel):
    """DistributedDataParallel that lets objectives reach the wrapped network's attributes.

    Objectives use ``ctx.G.sample_latent``, ``ctx.G.num_classes`` and methods other than
    ``forward`` (BiGAN's ``G.encoder``, InfoGAN's ``D.heads``); unknown attributes are
    looked up on ``.module``. Parameters used outside ``forward`` are reduced like the
    others because DDP waits for a gradient of every parameter after a forward with
    gradients on (``find_unused_parameters=False``), however the loss reached them.
    """


def is_ddp(module) -> bool:
    return isinstance(module, DistributedDataParallel)


def wrap(module: nn.Module, device: torch.device, *, find_unused_parameters: bool = False) -> nn.Module:
    """``module`` in :class:`GanDDP` (no wrapper when it has nothing to train)."""
    if not any(p.requires_grad for p in module.parameters()):
        return module
    # buffers are not broadcast at every forward: a GAN step runs D several times before one
    # backward, and the broadcast would overwrite BatchNorm statistics in place between them;
    # average_buffers() reconciles them at checkpoints (torch >= 2.14 names the switch
    # forward_sync_buffers, older releases broadcast_buffers)
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    no_fwd_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    return GanDDP(module, device_ids=[device.index] if device.type == "cuda" else None,
                  find_unused_parameters=find_unused_parameters, **no_fwd_sync)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers to SyncBatchNorm (statistics over the global batch); CUDA only."""
    if device.type != "cuda":
        raise GanzooError("--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm has no CPU kernel); "
                          "leave it off on CPU: each rank then normalises over its own batch/N images")
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over the ranks (a new tensor; ``t`` itself without a process group)."""
    if not initialized():
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over the ranks (gloo has no AVG: SUM, then divide)."""
    return all_sum(t) / dist.get_world_size() if initialized() else t


def sync_objective_state(objective) -> None:
    """Make an objective's learned state (BEGAN's k) the mean over ranks, identical everywhere.

    Each rank updates the state from its slice of the global batch; BEGAN's k moves by
    lambda_k times the balance of its losses, and the mean of the ranks' losses is the
    global batch's loss, so the mean state is the one-process update (up to k's clamp).
    Integer state (counters) is the same on every rank by construction and is left alone.
    """
    state = objective.state_dict()
    floats = [k for k, v in state.items() if torch.is_floating_point(v)]
    if not floats or not initialized():
        return
    for k in floats:  # one small collective per tensor: objective state is a scalar or two
        state[k] = all_mean(state[k].detach().float()).to(state[k].dtype)
    objective.load_state_dict(state)


def average_buffers(*modules: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over the ranks."""
    if not initialized():
        return
    with torch.no_grad():
        for m in modules:
            for b in m.buffers():
                if torch.is_floating_point(b):
                    b.copy_(all_mean(b))


def check_in_sync(*modules: nn.Module) -> None:
    """Stop with an error when the ranks' weights differ (DDP did not reduce some gradient)."""
    if not initialized():
        return
    with torch.no_grad():
        fp = torch.stack([torch.stack([p.detach().double().sum(), p.detach().double().abs().sum()])
                          for m in modules for p in m.parameters()]).reshape(-1)
        lo, hi = fp.clone(), fp.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise GanzooError(
            "the ranks' weights differ: a parameter was used outside DDP's view (e.g. only through a "
            "method other than forward, with no forward call in the same step); call the network "
            "itself at least once in every step that trains it"
        )


@contextlib.contextmanager
def no_sync(module):
    """DDP's ``no_sync`` for a wrapped module, also reached through another wrapper's attribute
    look-up (ganzoo.augment's); nothing for a plain one."""
    sync = getattr(module, "no_sync", None)
    if sync is None:
        yield
    else:
        with sync():
            yield


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()
