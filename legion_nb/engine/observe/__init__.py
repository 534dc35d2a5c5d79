"""What Legion learns by watching: telemetry and log stores, collectors, and the analysts' frames."""
