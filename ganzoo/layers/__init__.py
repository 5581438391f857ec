"""Building blocks shared by architecture plugins (public API)."""

from ganzoo.layers.blocks import Blur2d

__all__ = ["Blur2d"]
