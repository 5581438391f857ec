"""``python -m ganzoo.cli``: the ``ganzoo`` command."""
import sys

from . import main

sys.exit(main())
