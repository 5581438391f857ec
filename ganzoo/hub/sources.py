"""Where a model's files come from: a local folder, the catalog (its embedded copy or a verified
download) or a Hub repository; and how a name (path, catalog name, Hub id) is read."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import HFValidationError, validate_repo_id

from ..errors import GanzooError
from ..io import expand, refuse_pickle, version
from .catalog import _unknown_name, load_catalog
from .folder import (
    CONFIG_NAME, DISCRIMINATOR_FILE, GENERATOR_FILE, HUB_ID, _is_lfs_pointer, _one_line, _warn, file_sha256,
)

# ---- names: local paths, catalog names, Hub ids ------------------------------------------------
#: an explicit Hub reference (huggingface_hub's HfFileSystem writes ``hf://``, timm ``hf-hub:``)
HUB_PREFIXES = ("hf://", "hf-hub:")
_REVISION_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def _check_repo_id(repo: str, label: str) -> None:
    """The Hub's own rules for a repository id (``huggingface_hub.utils.validate_repo_id``), as ORG/NAME."""
    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise GanzooError(f"{label}: {_one_line(exc, 200)}; write a Hub id as ORG/NAME[@REVISION]") from None
    if repo.count("/") != 1:
        raise GanzooError(f"{label}: Hub id {repo!r} needs an organisation or user: write ORG/NAME[@REVISION]")


def _check_revision(revision: str, label: str) -> None:
    """A revision is a branch, a tag or a commit: git's ref-name rules (``git check-ref-format``), so no
    ``..``, no component starting with ``.`` or ending with ``.lock``, no absolute or empty part, no
    ``@{``, no control characters, spaces or ``~^:?*[\\``. ``refs/pr/N`` and 40-hex commits pass. The
    revision becomes part of a path in the Hugging Face cache: this is what keeps it inside."""
    fix = "use a branch, tag or commit of the repository, e.g. main or a 40-hex commit"
    if not isinstance(revision, str) or not revision:
        raise GanzooError(f"{label}: revision {revision!r} is empty; {fix}")
    if len(revision) > 255:
        raise GanzooError(f"{label}: revision of {len(revision)} characters is too long; {fix}")
    parts = revision.split("/")
    if (_REVISION_BAD.search(revision) or "@{" in revision or revision == "@" or revision.endswith(".")
            or any(not part or part.startswith(".") or part.endswith(".lock") for part in parts)
            or ".." in revision):
        raise GanzooError(f"{label}: revision {revision!r} is not a valid git ref name (no '..', empty or "
                          f"hidden parts, absolute paths, spaces or ~^:?*[\\); {fix}")


def _local_path(ref, *, warn: bool = True) -> Path | None:
    """The local folder ``ref`` names, or None when it is a catalog name or a Hub id.

    As with ``huggingface_hub``'s hf:// and timm's ``hf-hub:``, a name is a local path when it looks like
    one: a ``Path`` object, or text starting with ``./ ../ / ~`` (or absolute). A bare name or ORG/NAME
    is local only when it exists, and then: a catalog name always means the catalog's verified model
    (a warning says so and how to load the folder: ``./NAME``), and an existing model folder shaped like
    a Hub id is loaded with a warning saying how to load the Hub repository instead (``hf://ORG/NAME``).
    ``hf://`` / ``hf-hub:`` always mean the Hub."""
    if isinstance(ref, os.PathLike):
        return expand(ref, "model")
    text = str(ref)
    if text.startswith(HUB_PREFIXES):
        return None
    p = expand(text, "model")
    if text.startswith((".", "~")) or os.path.isabs(text):
        return p
    if not p.exists():
        return None
    if text in load_catalog():
        if warn:
            _warn(f"{text!r} is both a catalog model and a local path ./{text}: loading the catalog's verified "
                  f"model (write ./{text} to load the local one)")
        return None
    if warn and HUB_ID.match(text) and (p / CONFIG_NAME).is_file():
        _warn(f"{text!r} is a local folder and also names a Hub repository: loading the local folder ./{text} "
              f"(write hf://{text} to load the Hub's)")
    return p


def _explicit(ref) -> str:
    """``ref`` as text that keeps its meaning: a ``Path`` object stays a local path (``./name``)."""
    if isinstance(ref, os.PathLike):
        text = os.fspath(ref)
        return text if os.path.isabs(text) or text.startswith((".", "~")) else os.path.join(".", text)
    return str(ref)


# ---- where files come from -------------------------------------------------------------------
class _Source:
    """Files of one model, by name: from a folder, the catalog (embedded or downloaded) or the Hub."""

    label: str
    lineage: dict[str, Any]

    def path(self, filename: str, *, required: bool = True) -> Path | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def discard(self, path: Path) -> str:
        """Forget a bad file; returns how the user gets a good one ("" = the default advice)."""
        return ""


class _FolderSource(_Source):
    def __init__(self, folder: Path):
        self.folder = folder
        self.label = str(folder)
        self.lineage = {"base_model": str(folder), "revision": None}

    def path(self, filename: str, *, required: bool = True) -> Path | None:
        p = self.folder / filename
        if p.is_file():
            return p
        if required:
            if filename.endswith(".safetensors"):
                stem = filename[: -len(".safetensors")]
                for q in sorted(self.folder.glob(f"{stem}*")):
                    refuse_pickle(q, str(self.folder))
            raise GanzooError(
                f"{self.folder}: missing {filename}; a model folder holds {CONFIG_NAME}, {GENERATOR_FILE} and "
                f"{DISCRIMINATOR_FILE}: export it again with `ganzoo export RUN {self.folder}`"
            )
        return None


class _HubSource(_Source):
    """A Hub repository at a revision; with ``sha256`` (a catalog entry) every file is verified,
    and files in ``embedded`` are used before any download."""

    def __init__(self, repo: str, revision: str | None, *, name: str | None = None,
                 sha256: dict[str, str] | None = None, embedded: Path | None = None,
                 cache_dir=None, force_download: bool = False, local_files_only: bool = False, token=None):
        where = name or repo
        _check_repo_id(repo, where)
        if revision is not None:
            _check_revision(revision, where)
        self.repo, self.revision = repo, revision
        self.name = name
        self.sha256 = sha256
        self.embedded = embedded
        self.kw = dict(cache_dir=cache_dir, force_download=force_download,
                       local_files_only=local_files_only, token=token)
        self.label = name or (f"{repo}@{revision}" if revision else repo)
        self.commit: str | None = None
        self.lineage = {"base_model": name or repo, "repo": repo, "revision": revision}

    def discard(self, path: Path) -> str:
        """Remove a corrupt downloaded file from the HF cache (its blob and snapshot link), so a retry downloads it."""
        path = Path(path)
        if self.embedded is not None and path.parent == self.embedded:
            return ""
        try:
            blob = path.resolve()
            if blob != path and blob.is_file():
                blob.unlink()
            path.unlink(missing_ok=True)
        except OSError:
            return f"delete {path} from the Hugging Face cache and load again"
        return "the bad copy was removed from the Hugging Face cache: load again to download it afresh"

    def _verify(self, path: Path, filename: str, where: str) -> None:
        if self.sha256 is None:
            return
        got = file_sha256(path)
        want = self.sha256[filename]
        if got != want:
            hint = ""
            if _is_lfs_pointer(path):
                hint = " (it is a git LFS pointer: run `git lfs pull`)"
            fix = (f"restore the embedded folder from git{hint}, or delete it to download from {self.repo}"
                   if where == "embedded" else
                   f"{self.discard(path)}; if it persists the Hub copy differs from the catalog: "
                   f"fix the entry with `ganzoo catalog add`")
            raise GanzooError(
                f"{self.label}: {filename} ({where}) has sha256 {got[:16]}… but the catalog pins {want[:16]}…; "
                f"the file is corrupt, truncated or changed: {fix}"
            )

    def path(self, filename: str, *, required: bool = True) -> Path | None:
        if self.sha256 is not None and filename not in self.sha256:
            if required:
                raise GanzooError(f"{self.label}: the catalog lists no sha256 for {filename}; rewrite the entry with "
                                  f"`ganzoo catalog add {self.name} FOLDER --repo {self.repo} --revision REV`")
            return None
        if self.embedded is not None and (self.embedded / filename).is_file():
            p = self.embedded / filename
            self._verify(p, filename, "embedded")
            if self.lineage.get("revision") is None:
                self.lineage["revision"] = self.revision
            return p
        try:
            local = hf_hub_download(self.repo, filename, revision=self.revision, library_name="ganzoo",
                                    library_version=version(), **self.kw)
        except Exception as exc:
            if isinstance(exc, EntryNotFoundError) and not isinstance(exc, LocalEntryNotFoundError) and not required:
                return None
            raise _hub_error(exc, label=self.label, repo=self.repo, revision=self.revision, filename=filename) from None
        p = Path(local)
        self._verify(p, filename, "downloaded")
        commit = p.parent.name
        if re.fullmatch(r"[0-9a-f]{40}", commit):
            self.commit = commit
            self.lineage["revision"] = commit
        return p


def _hub_error(exc: Exception, *, label: str, repo: str, revision: str | None, filename: str) -> GanzooError:
    where = f"{repo}@{revision or 'main'}"
    endpoint = hf_constants.ENDPOINT
    if isinstance(exc, RepositoryNotFoundError):
        return GanzooError(f"{label}: repository {repo!r} not found on the Hub ({endpoint}); check the name, "
                           f"or log in (`hf auth login`) if it is private")
    if isinstance(exc, RevisionNotFoundError):
        return GanzooError(f"{label}: revision {revision!r} not found in {repo}; use an existing branch, tag or commit")
    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled)) or (
        isinstance(exc, ValueError) and "offline" in str(exc).lower()
    ):
        if hf_constants.is_offline_mode():
            return GanzooError(
                f"{label}: {filename} of {where} is not in the Hugging Face cache ({hf_constants.HF_HUB_CACHE}) and "
                f"HF_HUB_OFFLINE=1 forbids downloading it; unset HF_HUB_OFFLINE once to download it"
            )
        return GanzooError(f"{label}: cannot download {filename} of {where} from {endpoint} and it is not cached; "
                           f"check the connection (or HF_ENDPOINT) and retry")
    if isinstance(exc, EntryNotFoundError):
        return GanzooError(f"{label}: {where} has no {filename}; it is not a ganzoo model folder "
                           f"(one holds {CONFIG_NAME}, {GENERATOR_FILE}, {DISCRIMINATOR_FILE})")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return GanzooError(f"{label}: the Hub ({endpoint}) answered HTTP {status} for {filename} of {where}: "
                           f"{_one_line(str(exc).splitlines()[0], 120)}; retry later or check HF_ENDPOINT")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return GanzooError(f"{label}: the download of {filename} from {where} was incomplete (fewer bytes than the "
                           f"Hub announced); the partial file was discarded: retry")
    if isinstance(exc, ValueError):
        return GanzooError(f"{label}: {_one_line(exc, 160)}; write a Hub id as ORG/NAME[@REVISION]")
    return GanzooError(f"{label}: downloading {filename} of {where} failed ({type(exc).__name__}: "
                       f"{_one_line(exc, 160)}); retry, or check HF_ENDPOINT / HF_HUB_OFFLINE")


def _source_for(ref: str, *, revision: str | None = None, **download_kw) -> _Source:
    """A model folder, a catalog name, or a Hub id ``org/name[@revision]``."""
    local = _local_path(ref)
    ref = str(ref)
    refuse_pickle(ref)
    if local is not None:
        p = local
        if p.is_dir():
            if (p / "run.json").exists() and not (p / CONFIG_NAME).exists():
                raise GanzooError(f"{p} is a run directory, not a model folder; export it first with `ganzoo export {p} FOLDER`")
            if not (p / CONFIG_NAME).exists():
                raise GanzooError(f"{p} is neither a model folder (no {CONFIG_NAME}) nor a run directory (no run.json) "
                                  f"or one of its checkpoints; point at a folder written by `ganzoo export` or "
                                  f"`ganzoo train --out`")
            if revision is not None:
                raise GanzooError(f"{p}: revision={revision!r} is for the Hub, but this is a local folder; drop the "
                                  f"revision, or write hf://ORG/NAME to load from the Hub")
            return _FolderSource(p)
        if p.is_file():
            raise GanzooError(f"{p} is a file; pass the model folder that holds it (with {CONFIG_NAME})")
        raise GanzooError(f"{ref}: no such folder; pass a model folder, a run directory, a catalog name or ORG/NAME")
    if revision is not None:
        _check_revision(revision, ref)
    hub_ref = ref
    for prefix in HUB_PREFIXES:
        if hub_ref.startswith(prefix):
            hub_ref = hub_ref[len(prefix):]
            break
    catalog = load_catalog()
    if hub_ref == ref and ref in catalog:
        e = catalog[ref]
        if revision is not None and revision != e.revision:
            # the pins and the embedded copy are the pinned revision's: another revision comes from the Hub,
            # unverified (HF_HUB_OFFLINE=1: from the cache, or an error saying so)
            _warn(f"{ref}: revision {revision!r} is not the catalog's pinned {e.revision[:12]}, so it is loaded "
                  f"from {e.repo} on the Hub without the catalog's sha256 pins")
            return _HubSource(e.repo, revision, name=f"{ref}@{revision}", **download_kw)
        return _HubSource(e.repo, e.revision, name=ref, sha256=e.files, embedded=e.embedded, **download_kw)
    m = HUB_ID.match(hub_ref)
    if m:
        rev = m.group("rev") and m.group("rev").replace("%2F", "/")
        if rev is not None:
            _check_revision(rev, ref)
        return _HubSource(m.group("repo"), revision or rev, **download_kw)
    if hub_ref != ref or "/" in ref or "@" in ref:
        raise GanzooError(f"{ref}: not a Hub id: write ORG/NAME[@REVISION] (letters, digits, '-', '_', '.'), "
                          f"or ./PATH for a local folder")
    if os.sep in ref:
        raise GanzooError(f"{ref}: no such folder; pass a model folder, a run directory, a catalog name or ORG/NAME")
    raise _unknown_name(ref)
