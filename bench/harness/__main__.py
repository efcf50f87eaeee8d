"""`python -m bench.harness`: the load generator's own capacity."""

from bench.harness import main

main()
