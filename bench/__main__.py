"""`python -m bench` (what `make bench` runs): Strongroom against OpenBao on this machine."""

from bench.run import main

raise SystemExit(main())
