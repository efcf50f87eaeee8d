"""What runs inside Locust (every worker process): the chat user, the fast WebSocket client and its
framing, the receiver that books each delivery, the tally shipped to the master, the live view.

Nothing here imports the orchestrator (bench.run) or the report (tests/test_layout.py checks it)."""
