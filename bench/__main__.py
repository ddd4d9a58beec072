"""`python -m dkw.bench`: the same as `dkw bench`."""

from dkw.bench.command import main

raise SystemExit(main())
