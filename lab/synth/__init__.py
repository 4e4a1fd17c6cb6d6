"""Simulated defects and test content for training and evaluation (not shipped)."""
