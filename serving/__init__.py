"""What serving a chat takes besides the chat, shared by every target: version guards for the patches to
private internals (versions), what a hardened launcher does to its own process (process_limits), uvicorn's
protocols with the limits against hostile clients (uvicorn_fixes: both uvicorn targets) and the /stats
counters (stats: CONTRACT.md). Neither stack imports the other; both import this. Not chat code: the code-size
comparison (bench/run/codemetrics.py) leaves it out. daphne's fixes stay in django_chat: daphne serves only
the Django stack, and they read Django's settings and raise the Channels layer's OutboundFull."""
