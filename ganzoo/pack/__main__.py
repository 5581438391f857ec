"""``python -m ganzoo.pack``: see :mod:`ganzoo.cli.pack`."""
import sys

from ..cli.pack import main

sys.exit(main())
