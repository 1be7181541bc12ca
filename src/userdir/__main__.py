"""``python -m userdir``: the command line."""

from .cli import main

raise SystemExit(main())
