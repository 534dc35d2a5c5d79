"""engine/deployment."""
