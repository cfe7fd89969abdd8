"""spywall: defense against zero-click mercenary spyware."""

__version__ = "0.1.0"
