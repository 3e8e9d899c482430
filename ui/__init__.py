"""The PyQt6 window (the only package that imports Qt; never imports torch)."""
