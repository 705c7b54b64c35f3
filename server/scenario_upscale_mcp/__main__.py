"""`python -m scenario_upscale_mcp`: the same as the `scenario-upscale-mcp` command."""

from scenario_upscale_mcp.cli import main

main()
