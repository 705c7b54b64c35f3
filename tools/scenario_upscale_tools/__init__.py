"""The tools of scenario-upscale-mcp: one module per tool."""

from scenario_upscale_mcp import __version__

__all__ = ["__version__"]
