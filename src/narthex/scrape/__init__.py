"""scrape package."""
