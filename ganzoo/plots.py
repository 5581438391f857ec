"""Learning curves from a run's log.jsonl (matplotlib, headless)."""
from __future__ import annotations

import json
from pathlib import Path

from .io import atomic_path


def read_log(path: Path) -> list[dict]:
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def plot_log(log_path: Path, out_path: Path, *, title: str = "", ada_target: float | None = None) -> Path | None:
    """Losses in the first panel; every other scalar (k, M, D's outputs) in its own panel below;
    ADA's p and r_t (``ada_p``, ``ada_rt``) share one panel, with r_t's target dashed."""
    rows = read_log(Path(log_path))
    if len(rows) < 1:
        return None
    from matplotlib.figure import Figure  # start-up time: matplotlib (~0.3 s) only when a curve is drawn

    keys = [k for k in rows[-1] if k not in ("step", "epoch", "seconds")]
    losses = [k for k in keys if k.startswith("loss")]
    ada = [k for k in ("ada_p", "ada_rt") if k in keys]
    others = [k for k in keys if not k.startswith("loss") and k not in ada]
    panels = 1 + len(others) + bool(ada)
    fig = Figure(figsize=(7, 2.4 * panels + 0.6))  # no pyplot: no global figure state, no backend to choose
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)
    steps = [r["step"] for r in rows]
    for k in losses:
        axes[0, 0].plot(steps, [r.get(k) for r in rows], label=k)
    axes[0, 0].set_ylabel("loss")
    axes[0, 0].legend(loc="upper right")
    axes[0, 0].set_title(title)
    for ax, k in zip(axes[1:, 0], others):
        ax.plot(steps, [r.get(k) for r in rows], color="tab:green")
        ax.set_ylabel(k)
    if ada:
        ax = axes[-1, 0]
        for k, colour, label in (("ada_p", "tab:purple", "p (augmentation probability)"),
                                 ("ada_rt", "tab:orange", "r_t = E[sign(D(real))]")):
            if k in ada:
                ax.plot(steps, [r.get(k) for r in rows], color=colour, label=label)
        if ada_target is not None:
            ax.axhline(ada_target, color="tab:orange", linestyle="--", linewidth=1, label=f"target {ada_target:g}")
        ax.set_ylabel("ADA")
        ax.legend(loc="upper left", fontsize="small")
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return Path(out_path)
