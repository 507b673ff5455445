"""edge: offline face verification for Raspberry Pi and Jetson."""

__version__ = "0.1.0"
