"""Serving MCP: over stdio (`stdio.py`) or streamable HTTP (`http.py`), both stopped by SIGINT/SIGTERM
with everything cleaned up and the exit status a shell expects (`stopping.py`)."""
