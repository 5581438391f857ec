"""``ganzoo demo``: the local Gradio page (:mod:`ganzoo.demo`, optional: imported only when the command runs)."""
from __future__ import annotations

from . import lazy
from .commands import HELP
from .options import add_threads_option


def cmd_demo(args) -> int:
    try:
        lazy.demo.launch_demo(args.models, host=args.host, port=args.port, share=args.share, device=args.device,
                    include_catalog=not args.no_catalog, open_browser=args.open)
    except KeyboardInterrupt:
        pass
    return 0


def add_parsers(sub) -> None:
    """Register ``ganzoo demo``."""
    p = sub.add_parser(
        "demo", help=HELP["demo"],
        description="Serves a page on http://HOST:PORT for the models named (model folders, runs, catalog names, "
                    "ORG/NAME) and the catalog's: a grid (seed, count, truncation), a slerp walk between two seeds "
                    "(GIF) and latent arithmetic. Offline, on the CPU; needs `pip install 'ganzoo[demo]'`. "
                    "Stop it with Ctrl-C.")
    p.add_argument("models", nargs="*", metavar="MODEL", help="models to offer first (default: the catalog's)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--share", action="store_true",
                   help="also open a public gradio.live link (needs the internet; off by default)")
    p.add_argument("--no-catalog", action="store_true", help="offer only the MODELs named")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.add_argument("--device", default=None, help="auto (CUDA when available), cpu, cuda (default: cpu)")
    add_threads_option(p)
    p.set_defaults(func=cmd_demo)
