"""`python -m bench`: the whole comparison (bench/run/cli.py)."""

import sys

from bench.run.cli import main

sys.exit(main())
