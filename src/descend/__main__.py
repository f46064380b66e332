"""``python -m descend`` is the ``descend`` command."""

from .cli import main

raise SystemExit(main())
