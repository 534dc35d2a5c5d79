"""engine/daemon."""
