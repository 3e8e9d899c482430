"""polypview: real-time colonoscopy video overlay (core package: no Qt, no torch)."""

__version__ = "0.1.0"
