"""`python -m companion …` runs the command line (see `companion.cli`)."""

from companion.cli import main

raise SystemExit(main())
