"""``python -m vgim``: the ``vgim`` command (what ``torchrun -m vgim train ...`` runs on every rank)."""

import sys

from vgim.cli import main

sys.exit(main())
