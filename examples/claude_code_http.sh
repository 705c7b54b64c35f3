claude mcp add --transport http --scope user scenario-upscale http://127.0.0.1:8000/mcp
