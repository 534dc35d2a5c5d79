"""engine/state."""
