"""Detectors: pure functions over parsed structures that yield findings."""
