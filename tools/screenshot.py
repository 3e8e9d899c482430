"""Make the README screenshots: the window playing the generated demo clip, grabbed as the user sees it.

    xvfb-run -s "-screen 0 1920x1080x24" python tools/screenshot.py docs/screenshot.png
    xvfb-run -s "-screen 0 1920x1080x24" python tools/screenshot.py docs/screenshot-fullscreen.png --fullscreen

Under an X server (Xvfb above) the window has a real screen to fill; without a display it is drawn
offscreen. The window starts with default settings (none of the user's remembered ones).

The model is the shipped default when assets/ has one, else the colour test model of
tests/onnx_models.py (written to a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_model(tmp: Path) -> str:
    """The shipped default model, or a colour test model when none is shipped."""
    from polypview.inference.runtime.engine import find_models

    if find_models():
        return ""  # let the runtime pick its default
    sys.path.insert(0, str(REPO / "tests"))
    from onnx_models import make_color_model

    return str(make_color_model(tmp / "test-color.onnx", input_size=(128, 128)))


def main(argv: list[str] | None = None) -> int:
    """Play the demo clip in an offscreen window and save one grab as PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--model", default=None, help="shipped model name or .onnx file (default: see above)")
    parser.add_argument("--frames", type=int, default=45, help="frames to play before the grab")
    parser.add_argument("--size", default="1280x720", help="demo clip size WxH")
    parser.add_argument("--fullscreen", action="store_true", help="grab the window in full screen")
    opts = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from polypview.settings import Settings
    from polypview.ui.app import run_gui

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["POLYPVIEW_SETTINGS"] = str(Path(tmp) / "settings.ini")  # defaults, and the user's stay untouched
        model = opts.model if opts.model is not None else default_model(Path(tmp))
        w, h = (int(v) for v in opts.size.lower().split("x"))
        settings = Settings(source="demo", size=(w, h), model=model or None, screenshot=opts.output,
                            frames=opts.frames, fullscreen=opts.fullscreen)
        code = run_gui(settings)
    if not opts.output.exists():
        print(f"screenshot: no image was written to {opts.output}", file=sys.stderr)
        return 1
    print(f"wrote {opts.output} ({opts.output.stat().st_size // 1024} KiB)")
    return code


if __name__ == "__main__":
    sys.exit(main())
