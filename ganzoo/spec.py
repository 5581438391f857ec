"""What a plugin registers: architectures, objectives and datasets."""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import GanzooError

__all__ = ["GANConfig", "OptimizerSettings", "Architecture", "DatasetSpec"]


@dataclass
class GANConfig:
    """Constructor arguments shared by every architecture.

    Plugins subclass it (as a dataclass) to add their own fields with the
    defaults of their source; every field ends up in a model folder's
    ``config.json``.
    """

    image_size: int = 64
    channels: int = 3
    latent_dim: int = 100
    num_classes: int = 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, where: str = "config") -> "GANConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise GanzooError(
                f"{where}: unknown argument(s) {', '.join(unknown)} for {cls.__name__}; "
                f"known: {', '.join(sorted(names))}"
            )
        cleaned = {}
        for k, v in values.items():
            if isinstance(v, list):  # JSON has no tuples
                v = tuple(v)
            cleaned[k] = _checked_value(cls, k, v, where)
        return cls(**cleaned)


#: the largest whole number a config field takes (a C int: torch's sizes beyond it overflow or exhaust memory)
INT_MAX = 2 ** 31 - 1


def _field_types(cls) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation this Python cannot resolve: leave those fields unchecked
        return {}


def _checked_value(cls, name: str, value: Any, where: str) -> Any:
    """``value`` for field ``name`` of the config dataclass ``cls``, checked against the field's type
    and a range: whole numbers for ``int`` (at least 1 where the default is positive, as widths are,
    else at least 0), finite numbers for ``float`` (not negative where the default is not), ``true`` or
    ``false`` for ``bool``, text for ``str``, and ``tuple[int, ...]`` of positive whole numbers. A value
    from an edited or hostile config.json (or ``--set``) fails here in one line, not in a layer."""
    hint = _field_types(cls).get(name)
    default = next((f.default for f in dataclasses.fields(cls) if f.name == name), dataclasses.MISSING)
    got = f"{value!r}" if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."

    def bad(want: str) -> GanzooError:
        return GanzooError(f"{where}: {name} = {got}: must be {want}; fix config.json (or --set {name}=...)")

    if hint is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
        low = 1 if isinstance(default, int) and default > 0 else 0
        if not low <= value <= INT_MAX:
            raise bad(f"a whole number from {low} to {INT_MAX}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        if not math.isfinite(value):
            raise bad("a finite number")
        if isinstance(default, (int, float)) and default >= 0 and value < 0:
            raise bad("a number >= 0")
        # a plugin's own bounds, as field metadata: gt/ge/lt/le (bn_eps: gt 0; dropout: ge 0, le 1)
        meta = next((f.metadata for f in dataclasses.fields(cls) if f.name == name), {})
        for key, ok, word in (("gt", float.__gt__, ">"), ("ge", float.__ge__, ">="), ("lt", float.__lt__, "<"),
                              ("le", float.__le__, "<=")):
            if key in meta and not ok(float(value), float(meta[key])):
                raise bad(f"a number {word} {meta[key]}")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise bad("text")
    elif typing.get_origin(hint) is tuple and typing.get_args(hint) == (int, ...):
        if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= INT_MAX
                                                   for v in value):
            raise bad(f"a list of whole numbers from 1 to {INT_MAX}")
    return value


@dataclass(frozen=True)
class OptimizerSettings:
    """Adam settings for G and D, and the batch size, as the source gives them."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    batch_size: int = 64
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Architecture:
    """An architecture as a plugin registers it.

    ``build_generator`` and ``build_discriminator`` take a ``config_cls``
    instance. ``freezable`` maps part names to a function ``(G, D) -> list of
    modules`` that fine-tuning can freeze (e.g. BEGAN's encoder).
    """

    name: str
    config_cls: type[GANConfig]
    build_generator: Callable[[Any], Any]
    build_discriminator: Callable[[Any], Any]
    objective: str = "nonsaturating"
    objective_kwargs: dict[str, Any] = field(default_factory=dict)
    optimizer: OptimizerSettings = OptimizerSettings()
    image_sizes: tuple[int, ...] = (64,)
    channels: tuple[int, ...] = (1, 3)
    conditional: bool = False
    reference: str = ""
    description: str = ""
    freezable: dict[str, Callable[[Any, Any], list]] = field(default_factory=dict)
    #: some parameters take no part in some steps (ProGAN's inactive resolutions): distributed
    #: training then asks DDP to look for them (``find_unused_parameters=True``)
    unused_parameters: bool = False
    #: the memory layout training uses when ``--channels-last`` is not given: ``None`` means
    #: channels_last for convolutional networks (ganzoo.speed); ``False`` keeps NCHW for an
    #: architecture where channels_last measured slower
    channels_last: bool | None = None

    def make_config(self, **overrides: Any) -> GANConfig:
        cfg = self.config_cls.from_dict(overrides, where=f"architecture {self.name!r}")
        self.check_config(cfg)
        return cfg

    def check_config(self, cfg: GANConfig) -> None:
        if cfg.image_size not in self.image_sizes:
            raise GanzooError(
                f"architecture {self.name!r} does not support image size {cfg.image_size}; "
                f"use one of {', '.join(map(str, self.image_sizes))}"
            )
        if cfg.channels not in self.channels:
            raise GanzooError(
                f"architecture {self.name!r} does not support {cfg.channels} channel(s); "
                f"use one of {', '.join(map(str, self.channels))}"
            )
        if cfg.num_classes and not self.conditional:
            raise GanzooError(f"architecture {self.name!r} is unconditional: set num_classes=0")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset kind, named on the command line as ``name:PATH``.

    ``build(path, image_size=..., channels=...)`` returns a
    :class:`ganzoo.data.ImageDataset`.
    """

    name: str
    build: Callable[..., Any]
    description: str = ""
