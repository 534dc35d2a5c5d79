"""engine/resources."""
