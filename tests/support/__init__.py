"""Helpers shared by several test folders (no fixtures here: plain code)."""
