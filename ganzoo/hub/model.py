"""The model container :class:`GANModel` (a ``huggingface_hub.ModelHubMixin``) and loading: a model
folder, a catalog name, a Hub id, or a ganzoo run directory read as a model."""
from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard, ModelHubMixin
from safetensors import safe_open
from safetensors.torch import save_file

from ..data import load_dataset
from ..device import load_device
from ..errors import GanzooError
from ..io import atomic_path, check_memory, expand, refuse_pickle, save_grid, version, write_json
from ..models import build_from_config, load_state_strict
from ..plugins import get_registry
from ..runfolder import (EMA_FILE, TRAINER_STATE, checkpoint_step, latest_checkpoint, read_run, run_logged, run_ref,
                         run_seconds)
from .card import model_card
from .catalog import load_catalog
from .folder import (
    CARD_NAME, CONFIG_NAME, DISCRIMINATOR_FILE, FORMAT, GENERATOR_FILE, PROJECT_URL, SAMPLES_N, SAMPLES_NAME,
    SAMPLES_SEED, TRAINING_STATE_FILE, _DTYPES, _cast_state, _one_line, _read_config,
    _read_safetensors, _short, file_sha256, install_spec,
)
from .sources import _HubSource, _explicit, _local_path, _source_for

def _plugin_of(arch: str) -> dict[str, str]:
    reg = get_registry()
    dist = reg.provider.get(("architecture", arch), "unknown")
    version = next((p.version for p in reg.plugins if p.distribution == dist), "unknown")
    return {"distribution": dist, "version": version}


_PIP_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")  # PEP 508 names
_PIP_VERSION = re.compile(r"[0-9][0-9A-Za-z.+!-]{0,40}")


def _check_build_memory(spec, cfg, label: str) -> None:
    """Build the networks on the meta device (no memory) to count their parameters and buffers, and refuse
    a config whose widths would need more memory than is free (a width of 10**6 asks for terabytes)."""
    try:
        with torch.device("meta"):
            G, D = build_from_config(spec, cfg)
    except GanzooError:
        raise
    except Exception:  # an architecture that cannot be built on the meta device: built for real below
        return
    n = sum(t.numel() for net in (G, D) for t in (*net.parameters(), *net.buffers()))
    check_memory(8 * n, f"{label}: the arch_config of {CONFIG_NAME} ({n:,} weights)",
                 "the config.json was edited or is not this model's: export the folder again")


def _build(config: dict[str, Any], label: str, *, trusted: bool = True):
    reg = get_registry()
    arch = config["architecture"]
    if arch not in reg.architectures:
        installed = ", ".join(sorted(reg.architectures)) or "none"
        plugin = config.get("plugin") or {}
        dist, ver = plugin.get("distribution"), plugin.get("version")
        if trusted and isinstance(dist, str) and _PIP_NAME.fullmatch(dist) and isinstance(ver, (str, type(None))):
            want = install_spec(dist) if install_spec(dist) != dist else (
                f"{dist}=={ver}" if ver and ver not in ("unknown", "local") and _PIP_VERSION.fullmatch(ver) else dist)
            raise GanzooError(
                f"{label}: architecture {_short(arch)} is not provided by any installed plugin; it comes from {dist}: "
                f"pip install {want} (installed: {installed})"
            )
        # a downloaded config.json is not vouched for by the catalog: never turn its text into a command
        raise GanzooError(
            f"{label}: architecture {_short(arch)} is not installed (installed: {installed}); find the plugin "
            f"that provides it from a source you trust (the model's card, `ganzoo list`, ganzoo's "
            f"docs/writing-a-plugin.md) before installing anything"
        )
    spec = reg.architectures[arch]
    cfg = spec.make_config(**config["arch_config"])
    _check_build_memory(spec, cfg, label)
    try:
        G, D = build_from_config(spec, cfg)
    except GanzooError:
        raise
    except (TypeError, ValueError, RuntimeError, OverflowError, ZeroDivisionError) as exc:
        raise GanzooError(f"{label}: the arch_config of {CONFIG_NAME} does not build a {arch} network "
                          f"({type(exc).__name__}: {_one_line(str(exc).splitlines()[0] if str(exc) else exc, 120)}); "
                          f"the file was edited or is corrupt: export the folder again") from None
    want_shape = config.get("image_shape")
    if want_shape is not None and tuple(want_shape) != tuple(G.image_shape):
        raise GanzooError(f"{label}: {CONFIG_NAME} says image_shape {tuple(want_shape)} but its arch_config builds "
                          f"{tuple(G.image_shape)}; the config.json was edited: restore it")
    return spec, cfg, G, D


def _attach(config: dict[str, Any], *nets, device=None) -> None:
    """Loaded networks ready for use: on ``device`` (:func:`~ganzoo.device.load_device`), in eval mode,
    with their class names and config.json (``model_info``); None entries are skipped."""
    dev = load_device(device)
    k = int(config.get("num_classes", 0) or 0)
    names = list(config.get("class_names") or [str(i) for i in range(k)])
    for net in nets:
        if net is None:
            continue
        net.to(dev).eval()
        net.class_names = list(names)
        net.model_info = config


class GANModel(ModelHubMixin, library_name="ganzoo", tags=["ganzoo", "gan"],
               pipeline_tag="unconditional-image-generation", repo_url=PROJECT_URL):
    """A generator and discriminator with their ``config.json``, saved and loaded as a model folder.

    huggingface_hub's mixin, used as designed: ``save_pretrained(folder)`` writes the folder (config,
    safetensors weights, model card, samples) through :meth:`_save_pretrained`;
    ``from_pretrained(folder or "org/name", revision=...)`` loads one through :meth:`_from_pretrained`;
    ``push_to_hub(repo_id)`` uploads it. A catalog name or Hub id (``org/name[@revision]``, which the
    mixin's own config lookup would fetch first) goes to :meth:`_from_pretrained` directly.

    >>> model = GANModel.from_pretrained("models/began_fashion", discriminator=True)   # doctest: +SKIP
    >>> model = load_model("began_fashion", discriminator=True)                        # doctest: +SKIP
    >>> model.save_pretrained("my-model")                                              # doctest: +SKIP
    """

    def __init__(self, G, D=None, config: dict | None = None, training_state: dict | None = None,
                 generator_dtype: str | None = None) -> None:
        self.G, self.D = G, D
        self.config: dict[str, Any] = dict(config or {})
        self.training_state = training_state
        self.generator_dtype = generator_dtype or self.config.get("weights", {}).get("generator", {}).get("dtype", "float32")
        if self.generator_dtype not in _DTYPES:
            raise GanzooError(f"generator dtype {self.generator_dtype!r}: use one of {', '.join(_DTYPES)}")

    # -- saving -------------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        save_directory = Path(save_directory)
        config = dict(self.config)
        config["weights"] = {
            "generator": {"file": GENERATOR_FILE, "dtype": self.generator_dtype},
            "discriminator": {"file": DISCRIMINATOR_FILE, "dtype": "float32"} if self.D is not None else None,
        }
        g_state = _cast_state(self.G.state_dict(), _DTYPES[self.generator_dtype])
        meta = {"format": "pt", "ganzoo_architecture": str(config.get("architecture", ""))}
        with atomic_path(save_directory / GENERATOR_FILE) as tmp:
            save_file(g_state, str(tmp), metadata=meta)
        if self.D is not None:
            with atomic_path(save_directory / DISCRIMINATOR_FILE) as tmp:
                save_file(_cast_state(self.D.state_dict(), torch.float32), str(tmp), metadata=meta)
        if self.training_state is not None:
            tensors, tmeta = encode_training_state(self.training_state)
            with atomic_path(save_directory / TRAINING_STATE_FILE) as tmp:
                save_file(tensors, str(tmp), metadata=tmeta)
            config["training_state"] = TRAINING_STATE_FILE
        # the samples come from the weights as stored (bf16-rounded when so saved)
        G = self.G
        if self.generator_dtype != "float32":
            G = copy.deepcopy(self.G).cpu()
            G.load_state_dict({k: v.to(G.state_dict()[k].dtype) for k, v in g_state.items()})
        labels = torch.arange(SAMPLES_N) % G.num_classes if G.num_classes else None
        save_grid(G.sample(SAMPLES_N, seed=SAMPLES_SEED, labels=labels).cpu(), save_directory / SAMPLES_NAME)
        self.config = config
        self.generate_model_card().save(save_directory / CARD_NAME)
        write_json(save_directory / CONFIG_NAME, config)

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        return model_card(self.config, ref=getattr(self, "card_ref", None))

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "GANModel":
        """The mixin's ``from_pretrained`` for what it can read (a folder, a Hub id), the loading hook
        directly for a catalog name or ``org/name@revision`` (the mixin would ask the Hub for their
        config.json, and offline fail with a traceback): every ref that :func:`load_model` takes works."""
        ref = str(pretrained_model_name_or_path)
        if os.path.isdir(ref):
            return super().from_pretrained(ref, **kwargs)
        return load_model(ref, **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download, local_files_only, token,
                         config: dict | None = None, device=None, discriminator: bool = True,
                         training_state: bool = False, **unused) -> "GANModel":
        """huggingface_hub's loading hook, behind the mixin's ``from_pretrained``: ``model_id`` is a model
        folder, a catalog name (verified against the catalog) or a Hub id ``org/name[@revision]``.

        Keyword arguments: ``device`` (default CPU; ``"auto"``: CUDA when available),
        ``discriminator`` (default True: also load D), ``training_state`` (default False). The
        ``config`` the mixin read is not used: config.json is read again from the verified source and
        checked (:func:`~ganzoo.hub.folder._read_config`).
        """
        source = _source_for(model_id, revision=revision, cache_dir=cache_dir, force_download=force_download,
                             local_files_only=local_files_only, token=token)
        # the mixin passes config.json's own fields on too, among them "training_state" (a file name)
        training_state = training_state is True
        label = source.label
        cfg_path = source.path(CONFIG_NAME)
        config = _read_config(Path(cfg_path), label)
        weights = config.get("weights") or {}
        for part in ("generator", "discriminator"):
            fname = ((weights.get(part) or {}).get("file")) or ""
            if fname:
                refuse_pickle(fname, label)
        # a local folder or a catalog model (sha256-pinned) is trusted; a plain Hub download is not
        trusted = not (isinstance(source, _HubSource) and source.sha256 is None)
        spec, arch_cfg, G, D = _build(config, label, trusted=trusted)
        g_path = source.path(GENERATOR_FILE)
        load_state_strict(G, _read_safetensors(g_path, label, source), where=f"{label}: {GENERATOR_FILE}")
        if discriminator:
            d_path = source.path(DISCRIMINATOR_FILE)
            load_state_strict(D, _read_safetensors(d_path, label, source), where=f"{label}: {DISCRIMINATOR_FILE}")
        else:
            D = None
        state = None
        if training_state:
            ts = source.path(TRAINING_STATE_FILE, required=False)
            if ts is not None:
                state = decode_training_state(ts, label)
        _attach(config, G, D, device=device)
        model = cls(G, D, config=config, training_state=state)
        model.source = source
        model.lineage = dict(source.lineage)
        return model

    @property
    def arch_name(self) -> str:
        return self.config.get("architecture", "")

    def weights_sha256(self) -> dict[str, str]:
        """sha256 of the weight files this model was loaded from (a folder, the catalog or the Hub), by file
        name; the catalog's pins where it has them. Empty for a run's checkpoint or a model built in memory:
        a fine-tune records them in its lineage, so that a base re-released under the same name (or a
        folder overwritten) still says which weights the fine-tune started from."""
        source = getattr(self, "source", None)
        if source is None:
            return {}
        pins = getattr(source, "sha256", None) or {}
        out: dict[str, str] = {}
        for fname in (GENERATOR_FILE, DISCRIMINATOR_FILE) if self.D is not None else (GENERATOR_FILE,):
            if fname in pins:
                out[fname] = pins[fname]
            elif (path := source.path(fname, required=False)) is not None:
                out[fname] = file_sha256(path)
        return out

    def to(self, device) -> "GANModel":
        for net in (self.G, self.D):
            if net is not None:
                net.to(device)
        return self


# ---- training state (optimizer + objective) without pickle -------------------------------------
def encode_training_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``{"opt_g": ..., "opt_d": ..., "objective": {...}}`` → (tensors, metadata) for safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {"format": "ganzoo-training-state-1"}
    for opt in ("opt_g", "opt_d"):
        sd = state.get(opt)
        if not sd:
            continue
        scalars: dict[str, dict[str, Any]] = {}
        for idx, pstate in sd["state"].items():
            for key, val in pstate.items():
                if isinstance(val, torch.Tensor):
                    tensors[f"{opt}/{idx}/{key}"] = val.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(idx), {})[key] = val
        meta[f"{opt}.param_groups"] = json.dumps(sd["param_groups"])
        meta[f"{opt}.scalars"] = json.dumps(scalars)
    for key, val in (state.get("objective") or {}).items():
        tensors[f"objective/{key}"] = torch.as_tensor(val).detach().cpu().contiguous()
    if "step" in state:
        meta["step"] = str(int(state["step"]))
    return tensors, meta


def decode_training_state(path: Path, label: str = "") -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise GanzooError(f"{label}: {path.name} is not a readable safetensors file ({_one_line(exc, 100)}); "
                          f"delete it to fine-tune without optimizer state") from None
    out: dict[str, Any] = {"objective": {}}
    for opt in ("opt_g", "opt_d"):
        if f"{opt}.param_groups" not in meta:
            continue
        groups = json.loads(meta[f"{opt}.param_groups"])
        for g in groups:
            if "betas" in g:
                g["betas"] = tuple(g["betas"])
        pstate: dict[int, dict[str, Any]] = {}
        for idx, scal in json.loads(meta.get(f"{opt}.scalars", "{}")).items():
            pstate.setdefault(int(idx), {}).update(scal)
        out[opt] = {"state": pstate, "param_groups": groups}
    for key, val in tensors.items():
        head, _, rest = key.partition("/")
        if head == "objective":
            out["objective"][rest] = val
        elif head in out:
            idx, _, name = rest.partition("/")
            out[head]["state"].setdefault(int(idx), {})[name] = val
    for opt in ("opt_g", "opt_d"):
        if opt in out:
            out[opt]["state"] = dict(sorted(out[opt]["state"].items()))
    if "step" in meta:
        out["step"] = int(meta["step"])
    return out


# ---- runs read as models -------------------------------------------------------------------------
def _run_class_names(meta: dict, cfg, arch_cfg) -> list[str]:
    k = int(getattr(arch_cfg, "num_classes", 0) or 0)
    if not k:
        return []
    names = meta.get("class_names") or (meta.get("resolved") or {}).get("class_names")
    if names and len(names) == k:
        return list(map(str, names))
    try:  # the dataset loader caches decoded images, so this is cheap after training
        ds = load_dataset(cfg.data, image_size=arch_cfg.image_size, channels=arch_cfg.channels, label=cfg.data_label)
        if len(ds.class_names) == k:
            return list(map(str, ds.class_names))
    except Exception:
        pass
    return [str(i) for i in range(k)]


def _augmentation(cfg, ada_p: float | None) -> str:
    """The card's words for the DiffAugment policy: on every image D sees, or under ADA with the
    probability p the run had reached at the exported checkpoint (``ada_p``, from its log)."""
    if not cfg.diffaugment:
        return ""
    if not cfg.ada:
        return f"DiffAugment {cfg.diffaugment} on every image D sees (Zhao et al. 2020)"
    at = f", p {ada_p:.2f} at this checkpoint" if isinstance(ada_p, (int, float)) else ""
    return (f"DiffAugment {cfg.diffaugment} on the images D sees with an adaptive probability p (ADA, Karras et al. "
            f"2020: target r_t {cfg.ada_target}, p moves 0 to 1 in {cfg.ada_kimg:g} kimg{at})")


def _run_model_config(run: Path, record, spec, arch_cfg, G, ckpt: Path, g_file: Path,
                      class_names: list[str]) -> dict[str, Any]:
    """The config.json of a model folder exported from a run's checkpoint: the architecture, the
    recipe as run.json records it, the lineage and metrics."""
    cfg, meta, resolved = record.train, record.meta, record.resolved
    step = checkpoint_step(ckpt)
    spe = resolved.get("steps_per_epoch") or 0
    ada_p = run_logged(run, step, "ada_p") if cfg.ada else None
    return {
        "ganzoo_format": FORMAT,
        "library_name": "ganzoo",
        "ganzoo_version": version(),
        "name": run.name,
        "description": "",
        "architecture": spec.name,
        "plugin": _plugin_of(spec.name),
        "arch_config": arch_cfg.to_dict(),
        "image_shape": list(G.image_shape),
        "latent_dim": G.latent_dim,
        "num_classes": G.num_classes,
        "class_names": list(class_names),
        "pixel_range": list(G.pixel_range),
        "training": {
            "command": meta.get("command"),
            "ganzoo_version": meta.get("ganzoo_version"),
            "data": cfg.data,
            "data_label": cfg.data_label,
            "dataset": resolved.get("dataset"),
            "steps": step,
            "epochs": round(step / spe, 3) if spe else None,
            "wall_time_s": run_seconds(run, step),
            "hardware": resolved.get("hardware"),
            "torch": resolved.get("torch"),
            "objective": resolved.get("objective"),
            "objective_config": resolved.get("objective_config"),
            "batch_size": resolved.get("batch_size"),
            "lr_g": resolved.get("lr_g"),
            "lr_d": resolved.get("lr_d"),
            "betas": resolved.get("betas"),
            "seed": cfg.seed,
            "bf16": cfg.bf16,
            "flip": cfg.flip,
            "diffaugment": cfg.diffaugment,
            "ada": {"target": cfg.ada_target, "kimg": cfg.ada_kimg, "p": ada_p} if cfg.ada else None,
            "augmentation": "; ".join(a for a in (
                "random horizontal flips of real images" if cfg.flip else "",
                _augmentation(cfg, ada_p),
            ) if a) or None,
            "freeze": list(cfg.freeze),
            "ema": cfg.ema or None,
            "lr_schedule": f"{cfg.lr_decay} decay to 0 at the last step, from step {cfg.lr_decay_start}"
            if cfg.lr_decay else None,
            "checkpoint": ckpt.name,
            "generator_weights": f"exponential moving average, decay {cfg.ema}" if g_file.name == EMA_FILE
            else "the trained weights",
            "changed_at_resume": "; ".join(
                f"from step {c.get('at_step', '?')}: " + ", ".join(
                    f"{k} {v}" for k, v in c.items() if k not in ("at_step", "command"))
                + (f" (`{c['command']}`)" if c.get("command") else "")
                for c in meta.get("resume_changes") or []) or None,
        },
        "lineage": cfg.base_model or None,
        "metrics": dict(meta.get("metrics") or {}),
    }


def _run_training_state(ckpt: Path, step: int) -> dict[str, Any]:
    """A checkpoint's optimizer and objective state, read as plain tensors (never unpickling code)."""
    try:
        raw = torch.load(ckpt / TRAINER_STATE, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses anything but tensors and plain containers
        raise GanzooError(f"{ckpt / TRAINER_STATE}: not loadable as plain tensors "
                          f"({type(exc).__name__}: {_one_line(str(exc).splitlines()[0] if str(exc) else exc, 100)}); "
                          f"ganzoo never unpickles code: export without --training-state, or use an earlier "
                          f"checkpoint") from None
    if not isinstance(raw, dict) or not all(k in raw for k in ("opt_g", "opt_d")):
        raise GanzooError(f"{ckpt / TRAINER_STATE}: not a ganzoo training state (no optimizer states); "
                          f"export without --training-state, or use an earlier checkpoint")
    return {"opt_g": raw["opt_g"], "opt_d": raw["opt_d"], "objective": raw.get("objective", {}),
            "step": raw.get("step", step)}


def _load_run(run: Path, *, device=None, discriminator: bool = False, class_names: list[str] | None = None,
              load_class_names: bool = False, training_state: bool = False, weights: str = "auto",
              checkpoint: Path | None = None) -> GANModel:
    """A run's checkpoint (default: its latest) as a model. ``weights``: "auto" (the moving
    average of G when the run keeps one, else the trained weights), "ema" or "trained"."""
    record = read_run(run)
    cfg, meta = record.train, record.meta
    reg = get_registry()
    if cfg.arch not in reg.architectures:
        reg.architecture(cfg.arch)  # raises the registry's one-line error naming the known ones
    spec = reg.architectures[cfg.arch]
    arch_cfg = spec.make_config(**cfg.arch_config)
    G, D = build_from_config(spec, arch_cfg)
    ckpt = checkpoint or latest_checkpoint(run)
    if ckpt is None:
        raise GanzooError(f"{run} has no complete checkpoint yet; let `ganzoo train` reach its first checkpoint "
                          f"(--checkpoint-every) or finish")
    # a run that keeps a moving average of G (--ema) is sampled and exported through it, unless asked not to
    if weights not in ("auto", "ema", "trained"):
        raise GanzooError(f"generator weights {weights!r}: use auto, ema or trained")
    has_ema = bool(cfg.ema) and (ckpt / EMA_FILE).exists()
    if weights == "ema" and not has_ema:
        raise GanzooError(f"{ckpt} has no moving average of G (the run was not trained with --ema); "
                          f"export the trained weights (drop --generator-weights ema)")
    g_file = ckpt / EMA_FILE if has_ema and weights != "trained" else ckpt / GENERATOR_FILE
    run_json = str(record.path)  # the file that chose the architecture, for a mismatch's fix
    load_state_strict(G, _read_safetensors(g_file, str(run)), where=str(g_file), config=run_json)
    if discriminator:
        load_state_strict(D, _read_safetensors(ckpt / DISCRIMINATOR_FILE, str(run)), where=f"{ckpt / DISCRIMINATOR_FILE}",
                          config=run_json)
    else:
        D = None
    step = checkpoint_step(ckpt)
    if class_names is None:
        if load_class_names:
            class_names = _run_class_names(meta, cfg, arch_cfg)
        else:
            k = arch_cfg.num_classes
            names = record.class_names
            class_names = list(names) if names and len(names) == k else [str(i) for i in range(k)]
    config = _run_model_config(run, record, spec, arch_cfg, G, ckpt, g_file, class_names)
    state = _run_training_state(ckpt, step) if training_state else None
    _attach(config, G, D, device=device)
    model = GANModel(G, D, config=config, training_state=state)
    model.source = None
    model.lineage = {"base_model": str(run), "revision": ckpt.name}
    return model


def load_model(ref: str | os.PathLike, *, revision: str | None = None, cache_dir=None, force_download: bool = False,
               local_files_only: bool = False, token=None, **kwargs) -> GANModel:
    """A model folder, a catalog name or a Hub id as a :class:`GANModel`, through the mixin's loading
    hook (``kwargs``: ``device``, ``discriminator``, ``training_state``) without the mixin's own reading
    of config.json first (it would ask the Hub for a catalog name's config)."""
    return GANModel._from_pretrained(model_id=_explicit(ref), revision=revision, cache_dir=cache_dir,
                                     force_download=force_download, local_files_only=local_files_only, token=token,
                                     **kwargs)


# ---- the public API -----------------------------------------------------------------------------
def load(ref: str | os.PathLike, *, device=None, discriminator: bool = False, revision: str | None = None,
         generator_weights: str = "auto"):
    """Load a released model: the Generator in eval mode, or ``(G, D)`` with ``discriminator=True``.

    ``ref`` is a catalog name (``ganzoo list --pretrained``), a model folder, a ganzoo run
    directory (its latest checkpoint) or one of its checkpoints (``RUN/checkpoints/step-00013000``),
    or a Hub id ``org/name[@revision]``. ``generator_weights`` (runs trained with ``--ema``):
    "auto" (the moving average), "ema" or "trained". ``device``: None
    (CPU), ``"auto"`` (CUDA when available) or any torch device. The modules carry
    ``.class_names``, ``.arch_name``, ``.gan_config`` and ``.model_info`` (the config.json).

    >>> G = ganzoo.load("began_fashion")                 # doctest: +SKIP
    >>> grid = G.sample(64, seed=0)                       # doctest: +SKIP
    """
    local = _local_path(ref, warn=False)
    run = run_ref(local) if local is not None else None
    if run:
        if revision is not None:
            raise GanzooError(f"{ref}: revision={revision!r} is for the Hub, but this is a local run directory; "
                              f"drop the revision")
        model = _load_run(run[0], checkpoint=run[1], device=device, discriminator=discriminator,
                          weights=generator_weights)
    else:
        _one_generator(ref, generator_weights)
        model = load_model(ref, revision=revision, device=device, discriminator=discriminator)
    return (model.G, model.D) if discriminator else model.G


def module_config(G, D=None, *, name: str | None = None, description: str | None = None) -> dict[str, Any]:
    """The config.json of a model folder holding ``G`` (and ``D``): a loaded model's own config
    (its recipe, lineage and data), or, for one built by :func:`ganzoo.create`, its architecture,
    plugin and config."""
    info = getattr(G, "model_info", None)
    cfg = getattr(G, "gan_config", None)
    arch = getattr(G, "arch_name", None)
    if info:
        config = copy.deepcopy(dict(info))
    elif cfg is not None and arch:
        k = int(G.num_classes)
        config = {
            "ganzoo_format": FORMAT, "library_name": "ganzoo", "ganzoo_version": version(),
            "name": "", "description": "", "architecture": arch, "plugin": _plugin_of(arch),
            "arch_config": cfg.to_dict(), "image_shape": list(G.image_shape), "latent_dim": G.latent_dim,
            "num_classes": k, "class_names": list(getattr(G, "class_names", None) or [str(i) for i in range(k)]),
            "pixel_range": list(G.pixel_range), "training": {}, "lineage": None, "metrics": {},
        }
    else:
        raise GanzooError(f"save_pretrained: this {type(G).__name__} does not know its architecture (build it with "
                          f"ganzoo.create / ganzoo.create_model or load it with ganzoo.load)")
    if D is not None and getattr(D, "arch_name", arch) != config["architecture"]:
        raise GanzooError(f"save_pretrained: the discriminator is a {D.arch_name!r}, the generator a "
                          f"{config['architecture']!r}; pass the discriminator built with this generator")
    if name is not None:
        config["name"] = name
    if description is not None:
        config["description"] = description
    config.pop("weights", None)
    config.pop("training_state", None)
    config.pop("curves", None)  # the loss curves stay with the run they came from
    return config


def save_modules(G, folder: str | os.PathLike, *, discriminator=None, name: str | None = None,
                 description: str | None = None) -> Path:
    """``G.save_pretrained(folder)``: write ``G`` (and ``discriminator``) as a model folder."""
    folder = Path(folder)
    config = module_config(G, discriminator, name=name, description=description)
    config["name"] = config.get("name") or folder.name
    model = GANModel(G, discriminator, config=config)
    model.save_pretrained(folder)
    return folder


def _one_generator(ref, weights: str) -> None:
    if weights != "auto":
        if not expand(str(ref), "model").exists() and (Path(str(ref)).is_absolute() or str(ref).startswith(".")):
            raise GanzooError(f"{ref}: no such run directory or checkpoint; check the path (`ls RUN/checkpoints`)")
        raise GanzooError(f"{ref}: choosing the generator weights (--generator-weights) needs a run directory "
                          f"or one of its checkpoints (a model folder holds one generator)")


def load_any(ref, *, discriminator=True, training_state=False, class_names=None, weights="auto") -> GANModel:
    local = _local_path(ref, warn=False)
    run = run_ref(local) if local is not None else None
    if run:
        return _load_run(run[0], checkpoint=run[1], discriminator=discriminator, training_state=training_state,
                         class_names=class_names, load_class_names=True, weights=weights)
    _one_generator(ref, weights)
    model = load_model(ref, discriminator=discriminator, training_state=training_state)
    if class_names is not None:
        model.config["class_names"] = list(class_names)
    return model


def hub_entrypoint(name: str, *, pretrained: bool = True, device=None, discriminator: bool = False):
    """What each ``hubconf.py`` entrypoint does: load catalog model ``name``, or (``pretrained=False``)
    an untrained model of the same config."""
    if pretrained:
        return load(name, device=device, discriminator=discriminator)
    source = _source_for(name)
    config = _read_config(Path(source.path(CONFIG_NAME)), source.label)
    _, _, G, D = _build(config, source.label)
    _attach(config, G, D, device=device)
    return (G, D) if discriminator else G


def _make_entrypoint(name: str, entry, module: str):
    def entrypoint(pretrained=True, device=None, discriminator=False):
        return hub_entrypoint(name, pretrained=pretrained, device=device, discriminator=discriminator)

    image = "x".join(map(str, entry.image_shape)) or "?"
    where = f"; an embedded copy ({entry.embedded}) is used before any download" if entry.embedded else ""
    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = module
    entrypoint.__doc__ = f"""{entry.description or f'The released ganzoo model {name!r}.'}

    Architecture {entry.architecture or '?'}, images {image} (C x H x W), from the Hugging Face
    repository {entry.repo} at revision {entry.revision}; every file is checked against the
    catalog's sha256{where}.

    Args:
        pretrained (bool): True (default) loads the released weights; False returns an
            untrained model of the same config.
        device: None (CPU, the default), "auto" (CUDA when available) or a torch device.
        discriminator (bool): also return the discriminator, as ``(G, D)``.

    Returns:
        The ganzoo.Generator in eval mode (``G.sample(n, seed=0)`` draws images in [-1, 1],
        NCHW; ``G.class_names`` names the classes of a conditional model), or ``(G, D)``.
    """
    return entrypoint


def hub_entrypoints(module: str = "hubconf", taken=()) -> dict[str, Any]:
    """One torch.hub entrypoint per catalog model (a real function with a docstring, so that
    ``torch.hub.list`` and ``torch.hub.help`` show it), by name: what ``hubconf.py`` defines. Names
    starting with ``_`` or in ``taken`` (the module's own names) are left out."""
    return {name: _make_entrypoint(name, entry, module) for name, entry in sorted(load_catalog().items())
            if not name.startswith("_") and name not in taken}
