"""engine/observe."""
