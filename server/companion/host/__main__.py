"""`python -m companion.host`: the engine host (started by the language server)."""

from companion.host.main import main

raise SystemExit(main())
