"""`python -m router.cli`: the command line."""

from router.cli.main import main

raise SystemExit(main())
