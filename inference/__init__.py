"""Models, training, export and runtime backends (never imports Qt; torch only lazily)."""
