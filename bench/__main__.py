"""`python -m bench`: the same as `dkw bench`."""

from bench.command import main

raise SystemExit(main())
