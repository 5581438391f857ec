"""The model card: the README.md of a model folder, from its config.json (``ganzoo eval
--update-card``'s numbers included: :func:`apply_evaluations`)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..io import json_number
from .folder import KNOWN_DATA, PROJECT_URL, SAMPLES_SEED, install_line

CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ description }}

![64 samples at seed {{ seed }}](samples.png)

A **{{ architecture }}** generative adversarial network from the `{{ distribution }}` plugin of
[ganzoo]({{ repo_url }}): {{ image }} images{% if classes %}, conditional on {{ num_classes }} classes
({{ classes }}){% endif %}, latent size {{ latent_dim }}, output range {{ pixel_range }}.

## How to load

```bash
{{ install }}
ganzoo sample {{ ref }} -n 64 --seed {{ seed }}{{ label_arg }} -o grid.png    # the grid above
```

```python
import ganzoo{% if label_kw %}
import torch{% endif %}

G = ganzoo.load("{{ ref }}")              # the generator, in eval mode
images = G.sample(64, seed={{ seed }}{{ label_kw }})   # the grid above: float32 in [-1, 1], shape (64, {{ image_shape }})
G, D = ganzoo.load("{{ ref }}", discriminator=True)
```

The weights are safetensors (`generator.safetensors` in {{ g_dtype }}, `discriminator.safetensors`);
`config.json` holds every constructor argument, the training recipe and the lineage.

## Training

| | |
|---|---|
{% for k, v in recipe %}| {{ k }} | {{ v }} |
{% endfor %}
{% if curves %}
![learning curves]({{ curves.plot }})

The logged scalars (means over each logging interval) are in `{{ curves.log }}`.
{% endif %}
{% if lineage %}
## Lineage

Fine-tuned from `{{ lineage.base_model }}`{% if lineage.revision %} at revision `{{ lineage.revision }}`{% endif %}{% if lineage.sha256 %}: its weights {% for f, h in lineage.sha256.items() %}`{{ f }}` sha256 `{{ h[:16] }}…`{{ ", " if not loop.last }}{% endfor %}{% endif %}.
{% endif %}
{% if metrics %}
## Metrics

| metric | value |
|---|---|
{% for k, v in metrics %}| {{ k }} | {{ v }} |
{% endfor %}
{% endif %}
## Data

{{ data_attribution }}

Data license: {{ data_license }}. These weights were trained on that data; their use is subject to its terms.
"""


def portable_paths(text: str, start: str | os.PathLike | None = None) -> str:
    """``text`` with every absolute path (``/a/b``, ``KIND:/a/b``, ``--opt=/a/b``) made relative to
    ``start`` (default: the working directory), so that a card shows no machine's directories."""
    base = os.path.abspath(start or os.getcwd())

    def rel(path: str) -> str:
        try:
            return Path(os.path.relpath(path, base)).as_posix()
        except ValueError:  # another drive (Windows)
            return Path(path).name

    def fix(token: str) -> str:
        m = re.match(r"^((?:--[\w-]+=)?(?:[A-Za-z][\w-]*:(?!//))?)(/.*)$", token)
        return m.group(1) + rel(m.group(2)) if m else token

    return " ".join(fix(t) for t in text.split(" "))


def model_card(config: dict[str, Any], ref: str | None = None) -> ModelCard:
    """The README.md of a model folder, from its config.json (huggingface_hub ModelCard).

    ``ref``: how the card's commands name the model (default: ``hub_id``, else the name)."""
    data = config.get("data") or {}
    lineage = config.get("lineage") or None
    training = config.get("training") or {}
    metrics = config.get("metrics") or {}
    tags = ["ganzoo", "gan", "pytorch", "unconditional-image-generation" if not config.get("num_classes")
            else "class-conditional-image-generation", str(config.get("architecture", ""))]
    base = None
    if lineage and lineage.get("repo"):
        base = lineage["repo"]
        if base == config.get("hub_id") or lineage.get("base_model") == config.get("name"):
            base = None  # a release continued from an earlier one of itself: the Hub's model tree has no self-loops
    license = config.get("license") or "other"
    license_info = {}
    if license == "other":  # the Hub asks for a name and a link with an "other" license
        known = KNOWN_DATA.get(data.get("kind") or "", {})
        link = config.get("license_link") or known.get("license_link")
        license_info = {"license_name": config.get("license_name") or known.get("license_name") or "other",
                        **({"license_link": link} if link else {})}
    card_data = ModelCardData(
        license=license,
        **license_info,
        library_name="ganzoo",
        tags=[t for t in tags if t],
        datasets=list(config.get("datasets") or []) or None,
        pipeline_tag="unconditional-image-generation",
        metrics=sorted(metrics) or None,
        base_model=base,
    )
    plugin = config.get("plugin") or {}
    names = config.get("class_names") or []
    recipe_keys = [("command", "command"), ("steps", "steps"), ("epochs", "epochs"), ("wall time (s)", "wall_time_s"),
                   ("hardware", "hardware"), ("precision", "bf16"), ("data", "data"), ("dataset", "dataset"),
                   ("objective", "objective"),
                   ("batch size", "batch_size"), ("lr G / D", None), ("lr schedule", "lr_schedule"),
                   ("betas", "betas"), ("seed", "seed"),
                   ("augmentation", "augmentation"),
                   ("generator weights", "generator_weights"), ("changed at --resume", "changed_at_resume"),
                   ("torch", "torch"), ("ganzoo", "ganzoo_version")]
    recipe = []
    for label, key in recipe_keys:
        if key is None:
            if "lr_g" in training:
                recipe.append((label, f"{training.get('lr_g')} / {training.get('lr_d')}"))
            continue
        if training.get(key) not in (None, ""):
            v = training[key]
            if key == "bf16":
                v = "bf16 autocast" if v else "fp32"
            if key in ("command", "data", "dataset", "changed_at_resume"):  # no machine paths in a published card
                v = portable_paths(str(v))
            recipe.append((label, f"`{v}`" if key == "command" else str(v).replace("|", "\\|")))
    shape = config.get("image_shape") or []
    name = config.get("name") or config.get("architecture", "model")
    card = ModelCard.from_template(
        card_data,
        template_str=CARD_TEMPLATE,
        title=name,
        description=config.get("description") or f"A {config.get('architecture')} GAN trained with ganzoo.",
        seed=SAMPLES_SEED,
        label_arg=(" --label " + ",".join(str(i) for i in range(int(config.get("num_classes") or 0)))
                   if config.get("num_classes") else ""),
        label_kw=(f", labels=torch.arange(64) % {config.get('num_classes')}" if config.get("num_classes") else ""),
        architecture=config.get("architecture"),
        distribution=plugin.get("distribution", "ganzoo"),
        install=install_line(plugin.get("distribution")),
        repo_url=PROJECT_URL,
        image="x".join(map(str, shape)),
        image_shape=", ".join(map(str, shape)),
        classes=", ".join(map(str, names)),
        num_classes=config.get("num_classes", 0),
        latent_dim=config.get("latent_dim"),
        pixel_range=str(list(config.get("pixel_range") or [-1, 1])),
        ref=config.get("hub_id") or ref or name,
        g_dtype=((config.get("weights") or {}).get("generator") or {}).get("dtype", "float32"),
        recipe=recipe,
        curves=config.get("curves"),
        lineage=lineage,
        metrics=sorted(metrics.items()),
        data_attribution=data.get("attribution") or "The data's source and attribution were not recorded.",
        data_license=data.get("license") or "not recorded",
    )
    evals = [e for e in (config.get("evaluations") or []) if isinstance(e, dict)]
    if evals:  # `ganzoo eval --update-card`'s results: the card is a function of config.json alone
        # applied to the card as read back, as `ganzoo eval --update-card` does to the exported
        # README.md, so a rebuilt card is byte for byte the one an export and an evaluation write
        card = apply_evaluations(ModelCard(str(card)), config, evals)
    return card


# --------------------------------------------------------------------------- evaluations

CARD_MARK = "<!-- ganzoo eval: this section is rewritten by `ganzoo eval --update-card` -->"


def _dataset_ids(e: dict, config: dict | None = None) -> tuple[str, str]:
    """(type, name) of the card's model-index dataset: the Hub dataset id the model folder
    records (config.json ``datasets``), else the dataset kind."""
    kind = (e.get("data") or "").split(":", 1)[0]
    if kind == "fashion-mnist":
        return "zalando-datasets/fashion_mnist", "Fashion-MNIST"
    hub_ids = list((config or {}).get("datasets") or [])
    if hub_ids:
        return hub_ids[0], {"utkface": "UTKFace"}.get(kind, hub_ids[0])
    return kind or "unknown", kind or "unknown"


def _card_rows(evals: Sequence[dict]) -> list[tuple[str, float, dict]]:
    rows = []
    for e in evals:
        if e.get("name") == "d_confusion":
            for k in ("accuracy", "sensitivity", "specificity"):
                rows.append((f"d_{k}", e[k], e))
        else:
            rows.append((e["name"], e["value"], e))
    return rows


def apply_evaluations(card, config: dict, evals: Sequence[dict]):
    """Write evaluation entries into a ``huggingface_hub.ModelCard`` (in place, returned): its
    ``model-index`` results, its ``metrics`` list and the "Metrics" section's table. Results that
    ``ganzoo eval`` did not write (another tool's ``metric_config``) are kept. ``card`` may be the card's path."""
    if not isinstance(card, ModelCard):
        card = ModelCard.load(card)

    results = []
    for name, value, e in _card_rows(evals):
        dtype, dname = _dataset_ids(e, config)
        what = "Inception" if e.get("extractor") == "inception" else (
            "NOT Inception: ganzoo Fashion-MNIST classifier" if e.get("extractor") == "fmnist" else "discriminator")
        results.append(EvalResult(
            task_type="unconditional-image-generation", dataset_type=dtype, dataset_name=dname,
            dataset_split=e.get("split") or None, metric_type=name, metric_value=json_number(value),
            metric_name=f"{name} ({what}; {e.get('n_generated')} generated vs {e.get('n_real')} real)",
            metric_config=e.get("extractor") or "discriminator",
        ))
    ours = {"inception", "fmnist", "discriminator"}
    foreign = [r for r in (card.data.eval_results or []) if getattr(r, "metric_config", None) not in ours]
    card.data.eval_results = foreign + results  # results not written by ganzoo eval are kept
    card.data.model_name = card.data.model_name or config.get("name") or "model"
    card.data.metrics = sorted(config.get("metrics") or {}) or None
    card.text = _metrics_section(card.text, evals)
    return card


#: FID's features have 2048 dimensions; with fewer real images the covariance is singular
FID_MIN_REAL = 2048


_FEATURES = {"inception": "Inception (TF 2015-12-05)", "fmnist": "Fashion-MNIST classifier (not Inception)"}


def _feature_label(e: dict) -> str:
    """The card's name for the features an evaluation entry used (no extractor: the discriminator's dconf)."""
    return _FEATURES.get(e.get("extractor"), "discriminator")


def _metrics_section(text: str, evals: Sequence[dict]) -> str:
    lines = ["## Metrics", "", CARD_MARK, "",
             "| metric | value | features | generated | real data | date | ganzoo |",
             "|---|---|---|---|---|---|---|"]
    for name, value, e in _card_rows(evals):
        val = f"{value:.4g}" + (f" ± {e['std']:.2g}" if "std" in e and name == e.get("name") else "")
        if name.startswith("class_coverage"):
            val = f"{e['covered']}/{e['num_classes']} classes (KL to uniform {e['kl_to_uniform']:.3g} nats)"
        feat = _feature_label(e)
        real = f"{e.get('n_real')} {e.get('split') or ''}".strip()
        lines.append(f"| {name} | {val} | {feat} | {e.get('n_generated')} | {real} | {e.get('date')} | "
                     f"{e.get('ganzoo_version')} |")
    few = sorted({int(e["n_real"]) for e in evals if e.get("name") == "fid" and e.get("extractor") == "inception"
                  and isinstance(e.get("n_real"), int) and e["n_real"] < FID_MIN_REAL})
    if few:
        lines += ["", f"FID here rests on {' / '.join(map(str, few))} real images, fewer than the {FID_MIN_REAL} "
                      "feature dimensions: the real covariance is rank-deficient and FID is biased upward by an "
                      "amount that depends on the count, so compare models on KID, which is unbiased at any size."]
    # one line per feature extractor: two pipelines joined on one line read as one
    resizes = sorted({(_feature_label(e), e["resize"]) for e in evals if e.get("resize")})
    for feat, resize in resizes:
        lines += ["", f"Preprocessing for {feat}: " + resize.replace("|", "\\|") + "."]
    section = "\n".join(lines) + "\n"
    # replace the section written before (ours, or the export's "## Metrics"), else put it before "## Data"
    start = text.find("## Metrics")
    if start >= 0:
        nxt = text.find("\n## ", start + 1)
        end = len(text) if nxt < 0 else nxt + 1
        return text[:start] + section + ("\n" + text[end:] if end < len(text) else "")
    data = text.find("\n## Data")
    if data >= 0:
        return text[:data + 1] + section + "\n" + text[data + 1:]
    return text.rstrip("\n") + "\n\n" + section
