"""Datasets: annotation converters and loaders."""
