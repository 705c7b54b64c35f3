"""Scenario's API: the one adapter over the official SDK, the answers it parses, and the typed errors."""
