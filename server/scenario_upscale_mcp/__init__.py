"""scenario-upscale-mcp: upscale images with Scenario's models from an MCP host."""

__version__ = "0.1.0"
