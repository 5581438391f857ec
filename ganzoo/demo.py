"""``ganzoo demo``: a local web page (Gradio, as the Hub's demos are) for trying models.

Pick a released model (the catalog) or a model folder / run given on the command line;
draw a grid (seed, count, truncation, class for a conditional model), walk a slerp
between two seeds as an animated GIF, and do latent arithmetic on groups of seeds. The
image work is :mod:`ganzoo.latent`'s (``seed_latents``, ``interpolate``, ``save_gif``,
``parse_group``, ``arithmetic``, ``save_arithmetic_grid``) and ``G.sample``; this module
only lays out the page.

It runs offline on a CPU: Gradio's analytics and version check are off
(``GRADIO_ANALYTICS_ENABLED=False``), the theme uses the system's fonts (no Google
Fonts), ``share`` (a public gradio.live tunnel) is off unless asked for, and the server
listens on 127.0.0.1. A model is loaded when it is first chosen; one that fails to load
is reported on the page (the server stays up).

Gradio is an optional extra (``pip install 'ganzoo[demo]'``) and is imported only here,
so ``import ganzoo`` and ``ganzoo --help`` do not pay for it.

>>> from ganzoo.demo import build_demo                  # doctest: +SKIP
>>> build_demo(["runs/dcgan"]).launch()                 # doctest: +SKIP
"""
from __future__ import annotations

import atexit
import errno
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image

from . import hub
from .errors import GanzooError
from .latent import (arithmetic, class_index, interpolate, parse_expression, parse_group, save_arithmetic_grid,
                     save_gif, save_strip)
from .space import SPACE_APP, space_files  # noqa: F401 (re-exported: `ganzoo export --space` writes them)

__all__ = ["DemoApp", "build_demo", "launch_demo", "MAX_IMAGES", "MAX_STEPS"]

#: the most images a grid draws, and the most frames of a walk (CPU time on a shared machine)
MAX_IMAGES = 64
MAX_STEPS = 60
RANDOM_LABEL = "(the seed's own)"


def _import_gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network: no analytics, no version check
    try:
        import gradio as gr  # optional dependency (the demo extra), and seconds of start-up time
    except ImportError:
        raise GanzooError("`ganzoo demo` needs Gradio: pip install 'ganzoo[demo]' (or pip install gradio)") from None
    return gr


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DemoApp:
    """The page's logic without the page: loads models (cached) and renders images.

    Every method returns ``(result or None, status text)``; a failure is a status line
    starting with ``Error:``, never an exception, so the server stays up.
    """

    def __init__(self, models: Sequence[str] | None = None, *, device: str | None = None,
                 include_catalog: bool = True) -> None:
        self.local = [str(m) for m in (models or [])]
        self.catalog: list[str] = []
        if include_catalog:
            try:
                self.catalog = [n for n in hub.list_pretrained() if n not in self.local]
            except GanzooError:
                self.catalog = []
        self.device = device
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.workdir = Path(tempfile.mkdtemp(prefix="ganzoo-demo-"))  # the walks' GIFs, removed at exit
        atexit.register(shutil.rmtree, self.workdir, True)

    @property
    def choices(self) -> list[str]:
        return self.local + self.catalog

    # ---- models -----------------------------------------------------------------------------
    def model(self, ref: str):
        """The generator of ``ref`` (loaded once); raises GanzooError with one line on failure."""
        if not ref:
            raise GanzooError("choose a model first")
        with self._lock:
            if ref not in self._models:
                try:
                    self._models[ref] = hub.load(ref, device=self.device)
                except GanzooError:
                    raise
                except Exception as exc:  # a broken file, a plugin's bug: one line on the page
                    raise GanzooError(f"{ref}: could not load ({type(exc).__name__}: {_one_line(exc)})") from None
            return self._models[ref]

    def describe(self, ref: str) -> tuple[str, list[str]]:
        """A one-line description of the model and its class names (empty when unconditional)."""
        try:
            G = self.model(ref)
        except GanzooError as exc:
            return f"Error: could not load {ref}: {exc}", []
        c, h, w = G.image_shape
        names = list(getattr(G, "class_names", None) or [str(i) for i in range(G.num_classes or 0)])
        what = f"{getattr(G, 'arch_name', type(G).__name__)}: {c}x{h}x{w} images, latent size {G.latent_dim}"
        if names:
            what += f", {len(names)} classes"
        return f"Loaded {ref} ({what}).", names

    def _labels(self, G, label: str | None, n: int):
        if not G.num_classes or not label or label == RANDOM_LABEL:
            return None
        return torch.full((n,), class_index(G, label), dtype=torch.long)

    @staticmethod
    def _truncation(value) -> float | None:
        t = float(value or 0)
        return t if t > 0 else None

    # ---- the three tools ---------------------------------------------------------------------
    def grid(self, ref: str, seed, count, truncation=0.0, label: str | None = None):
        """A PIL grid of ``count`` samples at ``seed`` (``ganzoo sample``'s images)."""
        try:
            G = self.model(ref)
            n = int(count)
            if not 1 <= n <= MAX_IMAGES:
                raise GanzooError(f"count {n}: choose 1 to {MAX_IMAGES} images")
            seed = int(seed)
            trunc = self._truncation(truncation)
            images = G.sample(n, seed=seed, labels=self._labels(G, label, n), truncation=trunc)
            nrow = max(1, min(8, n))
            path = self.workdir / f"grid-{os.getpid()}-{threading.get_ident()}.png"
            save_strip(images, path, nrow=nrow, scale=_scale(G))
            with Image.open(path) as im:
                img = im.copy()
            path.unlink(missing_ok=True)
            what = f"{n} samples of {ref}, seed {seed}" + (f", truncation {trunc:g}" if trunc else "")
            return img, what
        except GanzooError as exc:
            return None, f"Error: {exc}"

    def walk(self, ref: str, seed_a, seed_b, steps=16, slerp: bool = True, truncation=0.0,
             label: str | None = None, duration: int = 120):
        """An animated GIF (its path) of the path between two seeds (``ganzoo interpolate``)."""
        try:
            G = self.model(ref)
            steps = int(steps)
            if not 2 <= steps <= MAX_STEPS:
                raise GanzooError(f"steps {steps}: choose 2 to {MAX_STEPS} frames")
            a, b = int(seed_a), int(seed_b)
            lab = None if (not label or label == RANDOM_LABEL) else label
            res = interpolate(G, [a, b], steps=steps, method="slerp" if slerp else "lerp", label=lab,
                              truncation=self._truncation(truncation))
            fd, name = tempfile.mkstemp(prefix=f"walk-{a}-{b}-", suffix=".gif", dir=self.workdir)
            os.close(fd)
            save_gif(res.images, name, duration=int(duration), scale=_scale(G), boomerang=True)
            return name, f"{res.method} walk of {ref} from seed {a} to seed {b}, {steps} frames (and back)"
        except GanzooError as exc:
            return None, f"Error: {exc}"

    def arithmetic(self, ref: str, groups_text: str, expression: str, truncation=0.0, label: str | None = None):
        """The latent-arithmetic grid (``ganzoo arithmetic``): one group ``NAME=SEEDS`` per line."""
        try:
            lines = [x.strip() for x in (groups_text or "").replace(";", "\n").splitlines() if x.strip()]
            if not lines:
                raise GanzooError("give the groups, one per line: NAME=SEEDS (e.g. smile=15,21,33)")
            if not (expression or "").strip():
                raise GanzooError("give an expression such as a - b + c")
            names = [x.split("=", 1)[0].strip() for x in lines]
            parse_expression(expression, names)  # a typo fails before anything is drawn
            G = self.model(ref)
            trunc = self._truncation(truncation)
            groups = {}
            for text in lines:
                if text.split("=", 1)[-1].strip().startswith(("file:", "pred:")):
                    raise GanzooError(f"{text}: the page takes seeds or class:NAME groups; use `ganzoo arithmetic` "
                                      f"for latent files and classifiers")
                g = parse_group(G, text, truncation=trunc)
                groups[g.name] = g
            lab = None if (not label or label == RANDOM_LABEL) else label
            res = arithmetic(G, expression, groups, label=lab)
            path = self.workdir / f"arith-{os.getpid()}-{threading.get_ident()}.png"
            save_arithmetic_grid(res, path, scale=_scale(G))
            with Image.open(path) as im:
                img = im.copy()
            path.unlink(missing_ok=True)
            return img, f"{expression.strip()}: |z| = {float(res.z.norm()):.2f}"
        except GanzooError as exc:
            return None, f"Error: {exc}"


def _scale(G) -> int:
    """Enlarge small images (nearest) so that a 28-32 px model is visible on the page."""
    side = max(G.image_shape[1:])
    return max(1, 128 // side) if side < 128 else 1


def build_demo(models: Sequence[str] | None = None, *, device: str | None = None, include_catalog: bool = True,
               title: str = "ganzoo demo"):
    """The page as a ``gradio.Blocks`` (not launched). ``models``: refs to offer first (folders,
    runs, catalog names, Hub ids); ``include_catalog``: offer the catalog's models too.
    The :class:`DemoApp` behind it is ``blocks.ganzoo_app``."""
    gr = _import_gradio()
    app = DemoApp(models, device=device, include_catalog=include_catalog)
    if not app.choices:
        raise GanzooError("no models to show: name a model folder or run (ganzoo demo runs/my_run), "
                          "or add one to the catalog")
    first = app.choices[0]

    def on_model(ref):
        status, names = app.describe(ref)
        choices = [RANDOM_LABEL] + names if names else [RANDOM_LABEL]
        return status, gr.update(choices=choices, value=RANDOM_LABEL, visible=bool(names))

    with gr.Blocks(title=title, analytics_enabled=False) as blocks:
        gr.Markdown(f"# {title}\nGenerative adversarial networks from "
                    "[ganzoo](https://github.com/ganzoo/ganzoo), on this machine's CPU.")
        with gr.Row():
            model = gr.Dropdown(app.choices, value=first, label="model", elem_id="model")
            label = gr.Dropdown([RANDOM_LABEL], value=RANDOM_LABEL, label="class (conditional models)",
                                visible=False, elem_id="label")
            truncation = gr.Slider(0.0, 3.0, value=0.0, step=0.05, elem_id="truncation",
                                   label="truncation (0 = off; redraw |z| > T, as BigGAN)")
        status = gr.Markdown("Choose a model, then generate.", elem_id="status")
        with gr.Tab("Samples"):
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
                count = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="count", elem_id="count")
            generate = gr.Button("Generate", variant="primary", elem_id="generate")
            grid = gr.Image(label="samples", type="pil", format="png", elem_id="grid", interactive=False)
        with gr.Tab("Slerp walk"):
            with gr.Row():
                seed_a = gr.Number(value=3, precision=0, label="from seed", elem_id="seed_a")
                seed_b = gr.Number(value=17, precision=0, label="to seed", elem_id="seed_b")
                steps = gr.Slider(2, MAX_STEPS, value=16, step=1, label="frames", elem_id="steps")
                spherical = gr.Checkbox(value=True, label="slerp (spherical; off: linear)", elem_id="slerp")
            walk_btn = gr.Button("Walk", variant="primary", elem_id="walk")
            walk = gr.Image(label="animation (GIF)", type="filepath", elem_id="walk_gif", interactive=False)
        with gr.Tab("Latent arithmetic"):
            with gr.Row():
                groups = gr.Textbox("a=1,2,3\nb=4,5,6\nc=7,8,9", lines=4, elem_id="groups",
                                    label="groups, one per line: NAME=SEEDS (or NAME=class:CLASS)")
                expression = gr.Textbox("a - b + c", label="expression", elem_id="expression")
            arith_btn = gr.Button("Compute", variant="primary", elem_id="compute")
            arith = gr.Image(label="operands (samples, mean) and result", type="pil", format="png",
                             elem_id="arith", interactive=False)

        model.change(on_model, [model], [status, label])
        blocks.load(on_model, [model], [status, label])
        generate.click(app.grid, [model, seed, count, truncation, label], [grid, status])
        walk_btn.click(app.walk, [model, seed_a, seed_b, steps, spherical, truncation, label], [walk, status])
        arith_btn.click(app.arithmetic, [model, groups, expression, truncation, label], [arith, status])
    blocks.ganzoo_app = app
    return blocks


def _theme(gr):
    """Gradio's default theme with the system's fonts: the default fetches Google Fonts."""
    fonts = [gr.themes.Font("system-ui"), gr.themes.Font("sans-serif")]
    mono = [gr.themes.Font("ui-monospace"), gr.themes.Font("monospace")]
    return gr.themes.Default(font=fonts, font_mono=mono)


def check_port(host: str, port: int) -> None:
    """A one-line error when ``host:port`` cannot be listened on (in use, or not allowed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, int(port)))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise GanzooError(f"--port {port}: {host}:{port} is in use; choose another port "
                                  f"(e.g. --port {int(port) + 1}) or stop the server holding it") from None
            raise GanzooError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); "
                              f"choose another --port or --host") from None


def launch_demo(models: Sequence[str] | None = None, *, host: str = "127.0.0.1", port: int = 7860,
                share: bool = False, device: str | None = None, include_catalog: bool = True,
                open_browser: bool = False) -> None:
    """Build the page and serve it until interrupted (Ctrl-C)."""
    if not 1 <= int(port) <= 65535:
        raise GanzooError(f"--port {port}: choose a port from 1 to 65535")
    check_port(host, port)
    blocks = build_demo(models, device=device, include_catalog=include_catalog)
    gr = _import_gradio()
    app: DemoApp = blocks.ganzoo_app
    print(f"ganzoo demo: {len(app.choices)} models ({', '.join(app.choices[:4])}"
          f"{', ...' if len(app.choices) > 4 else ''}) on http://{host}:{port}", flush=True)
    try:
        blocks.queue(default_concurrency_limit=1).launch(
            server_name=host, server_port=int(port), share=share, inbrowser=open_browser,
            theme=_theme(gr), allowed_paths=[str(app.workdir)], show_error=True, quiet=True,
            prevent_thread_lock=False)
    except OSError as exc:  # lost the race for the port between the check and the bind
        raise GanzooError(f"--port {port}: could not serve on {host}:{port} ({_one_line(exc, 120)}); "
                          f"choose another --port") from None


# ---- Hugging Face Spaces ------------------------------------------------------------------------
def space_launch_kwargs() -> dict:
    """``launch()`` arguments for a Space (its server listens on 0.0.0.0:7860)."""
    gr = _import_gradio()
    return {"server_name": "0.0.0.0", "server_port": int(os.environ.get("PORT", 7860)), "theme": _theme(gr)}
