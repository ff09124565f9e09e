"""`python -m inspector` is the same as the `cfs-inspect` console script."""

import sys

from inspector.cli import main

sys.exit(main())
