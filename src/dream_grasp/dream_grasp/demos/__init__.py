"""Grasp demonstrations: the file format and their sources (synthetic, retargeted)."""
