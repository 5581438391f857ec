"""``python -m ganzoo.pack``: the command line of :mod:`ganzoo.pack` (``pack RUN OUT``, ``unpack PACKED [OUT]``)."""
from __future__ import annotations

import argparse
import sys

from ..errors import GanzooError
from ..pack import __doc__ as PACK_DOC, pack, unpack


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ganzoo.pack", description=PACK_DOC.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="copy RUN into OUT with no file over --max-mb")
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--max-mb", type=float, default=16.0, help="largest file, in MiB (default 16)")
    p.add_argument("--all-checkpoints", action="store_true", help="copy every checkpoint, not only the latest")
    u = sub.add_parser("unpack", help="join the parts of PACKED (into OUT, or in place)")
    u.add_argument("packed")
    u.add_argument("out", nargs="?")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "pack":
            files = pack(args.run, args.out, max_bytes=int(args.max_mb * 2**20), all_checkpoints=args.all_checkpoints)
            biggest = max((f.stat().st_size for f in files), default=0)
            print(f"packed {args.run} into {args.out}: {len(files)} files, the largest {biggest / 2**20:.1f} MiB")
        else:
            print(f"unpacked into {unpack(args.packed, args.out)}")
    except GanzooError as exc:
        print(f"ganzoo.pack: error: {exc}", file=sys.stderr)
        return 2
    return 0
