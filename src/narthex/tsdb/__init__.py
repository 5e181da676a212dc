"""tsdb package."""
