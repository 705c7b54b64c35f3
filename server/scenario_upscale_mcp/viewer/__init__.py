"""The before/after viewer hosts render beside an upscale's answer (MCP Apps): its HTML, served as a `ui://`
resource, and the regions of images it shows, cut to size by the app-only tool `view_region`."""
