"""`python -m bench.harness`: the load generator's own capacity."""

import sys

from bench.harness import main

sys.exit(main())
