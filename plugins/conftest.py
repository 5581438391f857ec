"""Plugin tests run on their own (``pytest plugins/ganzoo-progan``) never write into the user's
~/.cache either: tests/conftest.py's temporary GANZOO_CACHE only applies when tests/ is collected
too (the fast sampler caches its measured choices there, the data loaders their decoded data)."""
from __future__ import annotations

import os
import tempfile

if "ganzoo-test-cache-" not in os.environ.get("GANZOO_CACHE", ""):
    os.environ["GANZOO_CACHE"] = tempfile.mkdtemp(prefix="ganzoo-test-cache-")
