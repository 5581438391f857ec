"""ganzoo's version: a leaf, so that any module can read it without importing the package (or torch)."""
from importlib import metadata

__version__ = "0.1.0"


def version(dist: str | None = None) -> str:
    """ganzoo's version (``ganzoo.__version__``), or with ``dist`` that installed distribution's
    ("unknown" when it is not installed)."""
    if dist is None:
        return __version__
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"
