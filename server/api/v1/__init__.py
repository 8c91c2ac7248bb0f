"""The native API of the web console (/api/v1)."""
