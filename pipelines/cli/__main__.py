"""`python -m pipelines.cli`: the same as `rul` (how detached services are started)."""

from pipelines.cli import main

raise SystemExit(main())
