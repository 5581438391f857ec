"""Publishing: a run or model exported as a model folder, made a Space, and pushed to the Hub."""
from __future__ import annotations

import math
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from huggingface_hub import HfApi, get_token
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import HfHubHTTPError

from ..errors import GanzooError
from ..io import atomic_path, check_output_folder, refuse_pickle, staging_folder, version
from ..plots import plot_log, read_log
from ..runfolder import LOG_FILE, run_ref
from .card import model_card, portable_paths
from .catalog import load_catalog
from .folder import (
    CARD_NAME, CONFIG_NAME, CURVES_NAME, DISCRIMINATOR_FILE, GENERATOR_FILE, HUB_ID, KNOWN_DATA,
    SAMPLES_NAME, TRAINING_LOG_NAME, TRAINING_STATE_FILE, _DTYPES, _one_line,
)
from .model import load_any, load_model
from .sources import _local_path

def _data_info(data_spec: str, *, license: str | None = None, datasets: Iterable[str] | None = None,
               data_license: str | None = None, data_attribution: str | None = None) -> dict[str, Any]:
    kind = data_spec.split(":", 1)[0] if ":" in (data_spec or "") else ""
    known = KNOWN_DATA.get(kind, {})
    data_license = data_license or known.get("license")
    return {
        "kind": kind,
        "datasets": list(datasets) if datasets else list(known.get("datasets", [])),
        "license": data_license,
        "attribution": data_attribution or known.get("attribution")
        or f"Trained on {data_spec!r}; its source and license were not recorded (pass --data-license and --data-attribution).",
        "weights_license": license or data_license or "other",  # default: the data's, as the help says
    }


def export_model(ref: str | os.PathLike, out: str | os.PathLike, *, name: str | None = None,
                 description: str | None = None, license: str | None = None, datasets: Iterable[str] | None = None,
                 data_license: str | None = None, data_attribution: str | None = None,
                 metrics: dict[str, float] | None = None, class_names: list[str] | None = None,
                 generator_dtype: str = "float32", training_state: bool = False, hub_id: str | None = None,
                 overwrite: bool = False, generator_weights: str = "auto") -> Path:
    """Write a model folder (config.json, weights, README.md, samples.png) from a run directory
    (its latest checkpoint) or any loadable model. ``generator_dtype="bfloat16"`` halves the
    generator file; ``training_state=True`` adds the optimizer/objective state for fine-tuning;
    ``generator_weights`` ("auto", "ema", "trained") picks a run's moving average of G or its
    trained weights (auto: the average when the run keeps one)."""
    out = Path(out)
    _check_export_target(ref, out, overwrite)
    check_output_folder(out, what="output folder")
    for key, value in (metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise GanzooError(f"--metric {key}={value!r}: a metric in the card must be a finite number "
                              f"(JSON has no NaN/inf); give the measured value, e.g. {key}=23.1")
    if generator_dtype not in _DTYPES:
        raise GanzooError(f"generator dtype {generator_dtype!r}: use one of {', '.join(_DTYPES)}")
    model = load_any(ref, discriminator=True, training_state=training_state, class_names=class_names,
                      weights=generator_weights)
    if training_state and model.training_state is None:
        raise GanzooError(f"{ref}: has no training state to export; drop --training-state")
    config = model.config
    training = config.get("training") or {}
    data_spec = training.get("data") or ""
    prev = config.get("data") or {}
    info = _data_info(data_spec, license=license or config.get("license"),
                      datasets=datasets or config.get("datasets"),
                      data_license=data_license or prev.get("license"),
                      data_attribution=data_attribution or prev.get("attribution"))
    local = _local_path(ref, warn=False)
    run = run_ref(local) if local is not None else None
    # a run's export is named after its folder (the run's own name is a working title)
    config["name"] = name or (out.name if run else config.get("name") or out.name)
    if description is not None:
        config["description"] = description
    config["license"] = info.pop("weights_license")
    config["datasets"] = info.pop("datasets")
    config["data"] = info
    if metrics:
        config["metrics"] = {**(config.get("metrics") or {}), **metrics}
    if hub_id:
        config["hub_id"] = hub_id
    config.pop("weights", None)
    config.pop("training_state", None)
    run_log = run[0] / LOG_FILE if run else None
    curves = bool(run_log and run_log.is_file())
    if curves:
        config["curves"] = {"plot": CURVES_NAME, "log": TRAINING_LOG_NAME}
    else:
        config.pop("curves", None)
    model.config = config
    model.card_ref = _card_ref(config, out)
    model.generator_dtype = generator_dtype
    out.parent.mkdir(parents=True, exist_ok=True)
    with staging_folder(out) as tmp:  # write beside, then move in: a crash never leaves a half-written model folder
        if curves:  # the run's curves up to the exported checkpoint (a run may have gone on)
            _export_curves(run_log, tmp, int(training.get("steps") or 0), title=f"{config['name']}: "
                           f"{config.get('architecture')} on {data_spec}")
        model.save_pretrained(tmp)
        out.mkdir(parents=True, exist_ok=True)
        # --overwrite replaces the files an export writes and nothing else: a file of the folder that
        # the export did not write is kept, except one of the export's own names left by an earlier
        # export of this model folder (e.g. training_state.safetensors, now dropped), which would
        # otherwise be read with the new weights
        stale = [out / n for n in EXPORT_FILES if not (tmp / n).exists() and (out / n).is_file()] \
            if _is_model_folder(out) else []
        for f in sorted(tmp.iterdir(), key=lambda f: f.name == CONFIG_NAME):  # config.json last
            os.replace(f, out / f.name)
        for old in stale:
            old.unlink(missing_ok=True)
    return out


def _card_ref(config: dict[str, Any], out: Path) -> str:
    """How the card's commands name an exported model: its Hub id, its catalog name, else the
    folder's path as typed (relative; `ganzoo sample NAME` only finds catalog names)."""
    if config.get("hub_id"):
        return config["hub_id"]
    try:
        if config.get("name") in load_catalog():
            return config["name"]
    except GanzooError:
        pass
    path = portable_paths(str(out))
    return path if ("/" in path or path.startswith(".")) else f"./{path}"


#: every file ``export_model`` may write into a model folder
EXPORT_FILES = (CONFIG_NAME, GENERATOR_FILE, DISCRIMINATOR_FILE, TRAINING_STATE_FILE, CARD_NAME, SAMPLES_NAME,
                CURVES_NAME, TRAINING_LOG_NAME)


def _is_model_folder(folder: Path) -> bool:
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(config, dict) and isinstance(config.get("architecture"), str) \
        and isinstance(config.get("arch_config"), dict)


def _check_export_target(ref, out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that would destroy its own source or that cannot be a folder."""
    if out.exists() and not out.is_dir():
        raise GanzooError(f"{out} is a file, not a folder; choose a folder name for the model folder")
    src = _local_path(ref, warn=False)
    if src is not None and src.is_dir():
        run = run_ref(src)
        source = run[0] if run else src
        o, s = out.expanduser().resolve(), source.resolve()
        if o == s or s in o.parents:
            what = "run directory" if run else "model folder"
            raise GanzooError(f"{out} is inside the {what} {source} being exported (writing there would replace "
                              f"its own files); choose a folder outside it, e.g. models/{source.name}")
    if out.is_dir() and not overwrite:
        try:
            empty = not any(out.iterdir())
        except OSError as exc:
            raise GanzooError(f"{out}: cannot read the folder ({exc.strerror}); choose another folder") from None
        if not empty:
            raise GanzooError(f"{out} already exists and is not empty; choose another folder or pass --overwrite "
                              f"(which replaces only the files an export writes)")


def _export_curves(log: Path, folder: Path, last_step: int, *, title: str) -> None:
    rows = [r for r in read_log(log) if not last_step or int(r.get("step", 0)) <= last_step]
    with atomic_path(folder / TRAINING_LOG_NAME) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plot_log(folder / TRAINING_LOG_NAME, folder / CURVES_NAME, title=title)


def _is_connection_error(exc: BaseException) -> bool:
    """A failure to reach the server: OSError (sockets, DNS) or the HTTP client's transport errors
    (httpx's ``ConnectError``/``TimeoutException``, requests' ``ConnectionError``), which are not OSErrors."""
    if isinstance(exc, OSError):
        return True
    module = type(exc).__module__.split(".")[0]
    return module.startswith(("httpx", "httpcore", "requests", "urllib3")) and not isinstance(exc, HfHubHTTPError)


def push(ref: str | os.PathLike, repo: str, *, private: bool | None = None, branch: str | None = None,
         token: str | None = None, commit_message: str | None = None, **export_kwargs) -> dict[str, str]:
    """Publish a run or a model folder to the Hub repository ``repo`` (``create_repo`` + ``upload_folder``).

    A run is exported first (``export_kwargs`` as for :func:`export_model`); a model folder is
    checked (it must load) and uploaded as it is. Returns ``{"repo", "revision", "url"}``.
    """
    if not HUB_ID.match(repo) or "@" in repo:
        raise GanzooError(f"--repo {repo!r}: write the Hub repository as ORG/NAME")
    if hf_constants.is_offline_mode():
        raise GanzooError("HF_HUB_OFFLINE=1 is set, so nothing can be pushed; unset HF_HUB_OFFLINE and retry")
    if token is None:  # before exporting anything: without a token the upload cannot succeed
        if get_token() is None:
            raise GanzooError(f"push to {repo}: no Hub token; log in with `hf auth login` (a write token), "
                              f"set HF_TOKEN, or pass --token")
    p = Path(str(ref)).expanduser()
    with tempfile.TemporaryDirectory(prefix="ganzoo-push-") as tmp:
        if p.is_dir() and (p / CONFIG_NAME).exists() and not export_kwargs:
            # refuse to publish a folder that does not load (G.save_pretrained may leave out D)
            load_model(str(p), discriminator=(p / DISCRIMINATOR_FILE).is_file())
            folder = p
        else:
            # exported under the repository's name, as a run's export is named after its folder
            folder = export_model(ref, Path(tmp) / repo.split("/")[-1], hub_id=repo, **export_kwargs)
        for f in folder.iterdir():
            refuse_pickle(f, str(folder))
        api = HfApi(token=token)
        try:
            api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
            if branch:
                api.create_branch(repo, branch=branch, exist_ok=True, repo_type="model")
            info = api.upload_folder(repo_id=repo, folder_path=str(folder), repo_type="model", revision=branch,
                                     commit_message=commit_message or f"ganzoo {version()}: upload {folder.name}",
                                     ignore_patterns=[".*", "**/.*"])
        except HfHubHTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", "?")
            raise GanzooError(f"push to {repo} failed: HTTP {status}: {_one_line(str(exc).splitlines()[0], 120)}; "
                              f"log in with `hf auth login` (a write token) or pass --token") from None
        except ValueError as exc:
            raise GanzooError(f"push to {repo} failed ({type(exc).__name__}: {_one_line(exc, 160)}); "
                              f"check the repository name and HF_ENDPOINT") from None
        except Exception as exc:
            if not _is_connection_error(exc):
                raise
            raise GanzooError(f"push to {repo} failed: cannot reach the Hub at {hf_constants.ENDPOINT} "
                              f"({type(exc).__name__}: {_one_line(exc, 120)}); check the network, or point "
                              f"HF_ENDPOINT at a Hub you can reach") from None
    return {"repo": repo, "revision": info.oid, "url": str(info.commit_url)}


def write_card(folder: str | os.PathLike, *, ref: str | None = None) -> Path:
    """Rewrite ``folder/README.md`` from ``folder/config.json`` (its recipe, lineage, data and
    ``ganzoo eval --update-card`` results), atomically: after the card's template changes, or after
    config.json was edited, without re-exporting (which would rewrite the weights) or evaluating again.
    ``ref``: how the card's commands name the model (default: its Hub id, its catalog name, else the
    folder's path). Returns the card's path; a catalog entry pinning the old card needs
    ``ganzoo catalog add`` again (which rebuilds the card of the folder it embeds)."""
    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except FileNotFoundError:
        raise GanzooError(f"{folder} is not a model folder (no {CONFIG_NAME}); export one with "
                          f"`ganzoo export RUN FOLDER`") from None
    except ValueError as exc:
        raise GanzooError(f"{folder / CONFIG_NAME} is not valid JSON ({exc}); restore it first") from None
    card = model_card(config, ref=ref or _card_ref(config, folder))
    with atomic_path(folder / CARD_NAME) as tmp:
        card.save(tmp)
    return folder / CARD_NAME
