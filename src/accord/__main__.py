"""Allow ``python -m accord``."""

from accord.cli import main

raise SystemExit(main())
