claude mcp add --transport stdio --scope user \
  --env SCENARIO_SDK_API_KEY=your-api-key --env SCENARIO_SDK_API_SECRET=your-api-secret \
  scenario-upscale -- /path/to/scenario-upscale-mcp/.venv/bin/scenario-upscale-mcp
