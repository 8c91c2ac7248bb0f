"""The northbound HTTP API: OneNET-compatible routes (api.heclouds.com shapes), the native
/api/v1 of the web console, live events (SSE, WebSocket) and the AT bridge to hosted modules."""
