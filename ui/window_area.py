"""Where the endoscope's image lies in the frame, set from the window: found automatically, the whole frame,
or a rectangle the user drags over the video (View menu; the command line's --roi for the same).

A mixin of MainWindow (it uses the window's view, status bar and session). The choice holds for the input
that plays; another input starts again from the command line's (found automatically by default).
"""

from __future__ import annotations

from polypview.errors import PolypviewError


class AreaMixin:
    """The image-area actions: find it, the whole frame, draw it."""

    def find_area(self) -> None:
        """Find the image area again (as --roi auto), and keep checking it."""
        self._set_area(True)

    def whole_frame_area(self) -> None:
        """Masks anywhere in the frame (as --roi off)."""
        self._set_area(False)

    def show_area_outline(self) -> None:
        """Outline the pipeline's current image area when View > Show the image area is ticked (called with each
        HUD refresh too: the area is found, and may change, while the video plays)."""
        on = self.actions["area_show"].isChecked() and self.pipeline is not None
        self.view.set_outline(self.pipeline.roi if on else None)

    def draw_area(self) -> None:
        """Let the user drag the image area over the video."""
        if self.pipeline is None or self.view.frame() is None:
            self.statusBar().showMessage("Open a video first: the image area is drawn over it", 5000)
            return
        self.statusBar().showMessage("Drag over the endoscope's image; right-click cancels")
        self.view.begin_area()

    def _area_drawn(self, area) -> None:
        if area is None:
            self.statusBar().showMessage("Image area unchanged (cancelled, or smaller than 16 pixels a side)", 5000)
            return
        self._set_area(area)

    def _set_area(self, area) -> None:
        if self.pipeline is None:
            self.statusBar().showMessage("Open a video first", 5000)
            return
        try:
            self.pipeline.set_roi(area)
        except PolypviewError as exc:
            self.show_error(str(exc))
            return
        if area is True:
            text = "found automatically"
        elif area is False:
            text = "the whole frame"
        else:
            x, y, w, h = area
            text = f"{w}x{h} at ({x}, {y}), as drawn (--roi {x},{y},{w},{h} on the command line)"
        self.statusBar().showMessage(f"Image area: {text}", 8000)
        self.show_area_outline()
