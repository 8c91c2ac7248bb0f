"""The LwM2M server's services: registration, device management, reporting, queue mode."""
