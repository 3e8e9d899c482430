"""Shipped model files (ONNX with metadata) and their model cards."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
