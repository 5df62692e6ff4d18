"""Placeholder; public names are listed as modules land."""
