"""What orchestrates a run (the `python -m bench` process): server processes, Redis, the CPU plan,
the sampler, faults, the Locust subprocess and the results file."""
