"""Measurements of a net's health: whether its features still depend on the image."""
