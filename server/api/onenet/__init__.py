"""OneNET-compatible northbound API (api.heclouds.com shapes)."""
