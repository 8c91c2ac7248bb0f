"""The LwM2M client underneath an emulated module: registration, bootstrap, answering the server."""
