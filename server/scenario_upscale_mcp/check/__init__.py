"""`scenario-upscale-mcp check` (`command.py`): asks the API (`probing.py`), compares each model's live
input schema with its tool's (`drift.py`), words one ✓/✗ line per check (`verdicts.py`) and prints them
(`report.py`)."""
