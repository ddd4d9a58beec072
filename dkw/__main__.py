from dkw.cli import main

raise SystemExit(main())
