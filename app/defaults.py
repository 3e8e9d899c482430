"""The defaults that more than one layer needs (kept in this import-free module so that any may import it)."""

STALENESS_MS = 150.0  # a mask older than this is not drawn
STOP_TIMEOUT_S = 5.0  # stopping the pipeline (and finalising a recording) never takes longer
OVERLAY_STYLES = ("fill", "contour", "box")  # filled masks, outlines, or a rectangle around each polyp
UNSURE_CONFIDENCE = 0.9  # the class confidence the window's "yellow if class is unsure" box applies
