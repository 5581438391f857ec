"""``ganzoo list`` and ``ganzoo plugins``: what the installed plugins provide, and the pretrained models."""
from __future__ import annotations

import json
import sys

from . import lazy
from .commands import HELP


def cmd_list(args) -> int:
    if args.pretrained:
        rows = lazy.hub.list_pretrained(detail=True)
        for entry in rows:
            print(f"{entry['name']:<24} {entry['architecture']:<12} {entry['image']:<10} "
                  f"{entry['license'] or '?':<10} {entry['where']}")
            m = entry["metrics"]
            numbers = ", ".join(f"{label} {m[key]:.4g}" for key, label in (
                ("fid", "Inception FID"), ("kid", "KID"), ("precision", "precision"), ("recall", "recall"),
                ("fid_fmnist_classifier", "classifier FID")) if isinstance(m.get(key), (int, float)))
            if entry["description"] or numbers:
                print(f"    {entry['description']}" + (f"; {numbers}" if numbers else ""))
        if not rows:
            print(f"no pretrained models in the catalog {lazy.hub.catalog_path()} yet; add one with `ganzoo catalog add`")
        return 0
    reg = lazy.plugins.get_registry()
    print("architectures:")
    for name, spec in sorted(reg.architectures.items()):
        sizes = "/".join(map(str, spec.image_sizes))
        print(f"  {name:<14} {sizes:>8} px  {spec.description or spec.reference}  [{reg.provider[('architecture', name)]}]")
    print("objectives:")
    for name, cls in sorted(reg.objectives.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"  {name:<14} {doc}")
    print("datasets:")
    for name, ds in sorted(reg.datasets.items()):
        print(f"  {name + ':PATH':<20} {ds.description}")
    _report_failures(reg)
    return 0


def _report_failures(reg) -> None:
    for f in reg.failures:
        print(f"warning: plugin {f.name!r} from {f.distribution} failed to load: {f.error}", file=sys.stderr)


def cmd_plugins(args) -> int:
    reg = lazy.plugins.get_registry()
    rows = []
    for p in reg.plugins:
        rows.append({"name": p.name, "distribution": p.distribution, "version": p.version,
                     "hooks": p.hooks, "registered": p.registered})
    for f in reg.failures:
        rows.append({"name": f.name, "distribution": f.distribution, "error": f.error})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        if "error" in r:
            print(f"{r['distribution']:<22} FAILED  {r['error']}")
            continue
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["registered"].items()) or "nothing"
        print(f"{r['distribution']:<22} {r['version']:<8} {what}")
    return 0


def add_parsers(sub) -> None:
    """Register ``ganzoo list`` and ``ganzoo plugins``."""
    p = sub.add_parser("list", help=HELP["list"])
    p.add_argument("--pretrained", action="store_true", help="list pretrained models instead")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("plugins", help=HELP["plugins"])
    p.add_argument("--json", action="store_true",
                   help="print a JSON list: name, distribution, version, hooks and what each registered (or its error)")
    p.set_defaults(func=cmd_plugins)
