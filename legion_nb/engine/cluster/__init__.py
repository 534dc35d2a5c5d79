"""engine/cluster."""
