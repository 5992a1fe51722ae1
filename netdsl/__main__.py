"""``python -m netdsl`` is the ``netdsl`` command."""

import sys

from .cli import main

sys.exit(main())
