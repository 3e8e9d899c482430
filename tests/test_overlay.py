"""The overlay: untouched pixels stay identical, fill vs contour vs box, threshold, minimum area, ROI, legend."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from polypview.errors import ConfigError
from polypview.inference.runtime.engine import Prediction
from polypview.overlay import Overlay, OverlaySettings, detect_roi, find_regions, keep_regions

CLASSES = ("neoplastic", "non-neoplastic")
COLORS_RGB = ((255, 0, 0), (0, 255, 0))
FRAME_SHAPE = (360, 640)  # frame (h, w); the model resolution below is 1/4 of it
MODEL_SHAPE = (90, 160)
NO_LEGEND = OverlaySettings(legend=False)


def _frame(seed=0):
    """Textured frame: every blended pixel differs from the source."""
    return np.random.default_rng(seed).integers(30, 220, (*FRAME_SHAPE, 3), dtype=np.uint8)


def _prediction(boxes, roi=None, shape=MODEL_SHAPE):
    """Scores 0.95 in model-resolution boxes ((x, y, w, h), label, score), 0.02 elsewhere."""
    scores = np.full(shape, 0.02, np.float32)
    labels = np.zeros(shape, np.uint8)
    for (x, y, w, h), label, score in boxes:
        scores[y:y + h, x:x + w] = score
        labels[y:y + h, x:x + w] = label
    return Prediction(scores, labels, {}, roi)


def _changed(a, b):
    return (a != b).any(axis=2)


def _allowed(box, scale=4, margin=6, offset=(0, 0)):
    """Frame-resolution mask of a model box grown by `margin` frame pixels."""
    allowed = np.zeros(FRAME_SHAPE, bool)
    x, y, w, h = box
    ox, oy = offset
    allowed[max(0, oy + y * scale - margin):oy + (y + h) * scale + margin,
            max(0, ox + x * scale - margin):ox + (x + w) * scale + margin] = True
    return allowed


BOX = (40, 20, 30, 25)  # model pixels -> frame (160, 80, 120, 100)


@pytest.mark.parametrize("style", ["fill", "contour", "box"])
def test_pixels_outside_the_mask_are_identical(style):
    frame = _frame()
    overlay = Overlay(CLASSES, COLORS_RGB)
    out = overlay.draw(frame, _prediction([(BOX, 0, 0.95)]), OverlaySettings(style=style, legend=False))
    changed = _changed(out, frame)
    assert changed.any()
    assert not (changed & ~_allowed(BOX)).any()
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8


def test_legend_only_touches_its_box():
    frame = _frame(1)
    overlay = Overlay(CLASSES, COLORS_RGB)
    out = overlay.draw(frame, _prediction([(BOX, 1, 0.95)]), OverlaySettings(legend=True))
    x, y, w, h = overlay.legend_rect(frame.shape)
    allowed = _allowed(BOX)
    allowed[y:y + h, x:x + w] = True
    changed = _changed(out, frame)
    assert not (changed & ~allowed).any()
    assert changed[y:y + h, x:x + w].mean() > 0.9
    no_legend = overlay.draw(frame, _prediction([(BOX, 1, 0.95)]), NO_LEGEND)
    assert not _changed(no_legend, frame)[y:y + h, x:x + w].any()


def test_legend_is_off_by_default_and_avoids_burned_in_text():
    import cv2

    frame = np.zeros((*FRAME_SHAPE, 3), np.uint8)
    frame[60:-60, 80:-80] = 120  # the endoscope image in the middle, black borders
    for corner_y in (30, FRAME_SHAPE[0] - 12):  # patient name and date burned in, bottom-left and top-left
        cv2.putText(frame, "DOE^JANE 1970-01-01", (4, corner_y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    overlay = Overlay(CLASSES, COLORS_RGB)
    assert np.array_equal(overlay.draw(frame, None, OverlaySettings()), frame)  # no legend unless asked
    out = overlay.draw(frame, None, OverlaySettings(legend=True))
    x, y, w, h = overlay.legend_rect(frame.shape)
    assert x > FRAME_SHAPE[1] // 2  # a right-hand corner: the left ones hold text
    text = frame.max(axis=2) > 90
    assert np.array_equal(out[text], frame[text])  # not one text pixel covered
    assert _changed(out, frame)[y:y + h, x:x + w].mean() > 0.9


def test_fill_blends_class_colour_inside_the_box():
    frame = np.full((*FRAME_SHAPE, 3), 100, np.uint8)
    overlay = Overlay(CLASSES, COLORS_RGB)
    out = overlay.draw(frame, _prediction([(BOX, 0, 0.95), ((100, 50, 20, 20), 1, 0.95)]),
                       OverlaySettings(opacity=0.5, legend=False))
    red = out[100:160, 180:260].reshape(-1, 3)  # inside BOX, away from its edge
    green = out[220:260, 420:460].reshape(-1, 3)
    assert (np.abs(red.astype(int) - [50, 50, 178]) <= 1).all()  # BGR: 0.5 * 100 + 0.5 * 255 in red
    assert (np.abs(green.astype(int) - [50, 178, 50]) <= 1).all()


def test_contour_leaves_the_inside_untouched():
    frame = _frame(2)
    out = Overlay(CLASSES, COLORS_RGB).draw(frame, _prediction([(BOX, 0, 0.95)]),
                                            OverlaySettings(style="contour", legend=False))
    changed = _changed(out, frame)
    assert not changed[100:160, 180:260].any()
    assert changed[80:180, 160:280].sum() > 2 * (120 + 100)  # a closed outline around the box


def test_box_frames_each_polyp_in_its_class_colour_and_leaves_it_untouched():
    frame = _frame(2)
    small = (100, 50, 20, 20)  # model pixels -> frame (400, 200, 80, 80)
    out = Overlay(CLASSES, COLORS_RGB).draw(frame, _prediction([(BOX, 0, 0.95), (small, 1, 0.95)]),
                                            OverlaySettings(style="box", legend=False))
    changed = _changed(out, frame)
    assert not changed[80:180, 160:280].any()  # the lesion (frame box of BOX) is not covered
    assert not changed[200:280, 400:480].any()
    # A closed rectangle around each, in its class colour (BGR), within 6 frame pixels of the lesion.
    for (x0, y0, x1, y1), bgr in (((160, 80, 280, 180), (0, 0, 255)), ((400, 200, 480, 280), (0, 255, 0))):
        ring = _allowed(((x0 // 4), (y0 // 4), (x1 - x0) // 4, (y1 - y0) // 4))
        ring[y0:y1, x0:x1] = False
        drawn = changed & ring
        assert drawn.sum() > 2 * ((x1 - x0) + (y1 - y0))
        assert (out[drawn] == bgr).all()
        for side in (drawn[y0 - 6:y0, x0:x1], drawn[y1:y1 + 6, x0:x1], drawn[y0:y1, x0 - 6:x0], drawn[y0:y1, x1:x1 + 6]):
            assert side.any()  # all four sides


def test_opacity_zero_and_disabled_leave_the_frame_unchanged():
    frame = _frame(3)
    overlay = Overlay(CLASSES, COLORS_RGB)
    p = _prediction([(BOX, 0, 0.95)])
    assert np.array_equal(overlay.draw(frame, p, OverlaySettings(opacity=0.0, legend=False)), frame)
    assert np.array_equal(overlay.draw(frame, p, OverlaySettings(enabled=False)), frame)
    assert np.array_equal(overlay.draw(frame, None, NO_LEGEND), frame)
    with_legend = overlay.draw(frame, p, OverlaySettings(opacity=0.0, legend=True))
    x, y, w, h = overlay.legend_rect(frame.shape)
    outside = np.ones(FRAME_SHAPE, bool)
    outside[y:y + h, x:x + w] = False
    assert not _changed(with_legend, frame)[outside].any()


def test_threshold_hides_low_scores():
    frame = _frame(4)
    overlay = Overlay(CLASSES, COLORS_RGB)
    p = _prediction([(BOX, 0, 0.6)])
    assert _changed(overlay.draw(frame, p, OverlaySettings(threshold=0.5, min_peak=0, legend=False)), frame).any()
    assert not _changed(overlay.draw(frame, p, OverlaySettings(threshold=0.7, min_peak=0, legend=False)), frame).any()
    # by default a region must also peak at 0.9 somewhere: this faint one is not drawn at all
    assert not _changed(overlay.draw(frame, p, OverlaySettings(threshold=0.5, legend=False)), frame).any()


def test_min_area_removes_small_regions():
    frame = _frame(5)
    small = ((10, 70, 3, 3), 1, 0.95)  # 9 of 14400 model pixels: 0.06 % of the image
    p = _prediction([(BOX, 0, 0.95), small])
    overlay = Overlay(CLASSES, COLORS_RGB)
    kept = _changed(overlay.draw(frame, p, OverlaySettings(min_area=0.0, legend=False)), frame)
    pruned = _changed(overlay.draw(frame, p, OverlaySettings(min_area=0.001, legend=False)), frame)
    small_area = _allowed(small[0])
    assert kept[small_area].any() and not pruned[small_area].any()
    assert pruned[_allowed(BOX)].any()


def test_keep_regions_counts_connected_pixels():
    scores = np.zeros((10, 10), np.float32)
    scores[0:2, 0:2] = 0.9  # 4 pixels
    scores[5:10, 5:10] = 0.9  # 25 pixels
    assert keep_regions(scores, 0.5, 0.05).sum() == 25
    assert keep_regions(scores, 0.5, 0.0).sum() == 29
    assert keep_regions(scores, 0.95, 0.0).sum() == 0


def test_min_peak_drops_faint_regions_and_keeps_a_confident_one_whole():
    scores = np.zeros((10, 10), np.float32)
    scores[0:3, 0:3] = 0.6  # a faint blob: 9 pixels, highest 0.6
    scores[5:10, 5:10] = 0.6  # a confident region: 25 pixels down to 0.6 around one pixel of 0.95
    scores[7, 7] = 0.95
    assert keep_regions(scores, 0.5, 0.0).sum() == 34
    kept = keep_regions(scores, 0.5, 0.0, min_peak=0.9)
    assert kept.sum() == 25 and kept[5:10, 5:10].all()
    assert keep_regions(scores, 0.5, 0.0, min_peak=0.99).sum() == 0
    assert keep_regions(scores, 0.5, 0.0, min_peak=0.4).sum() == 34  # at or below the threshold: off


def test_min_peak_is_what_the_overlay_draws_and_lists():
    frame = _frame(7)
    faint = ((10, 70, 20, 20), 1, 0.6)
    p = _prediction([(BOX, 0, 0.95), faint])
    overlay = Overlay(CLASSES, COLORS_RGB)
    drawn = _changed(overlay.draw(frame, p, OverlaySettings(min_peak=0.9, legend=False)), frame)
    assert drawn[_allowed(BOX)].any() and not drawn[_allowed(faint[0])].any()
    assert len(find_regions(p, OverlaySettings(min_peak=0), 2, frame.shape)) == 2
    assert len(find_regions(p, OverlaySettings(min_peak=0.9), 2, frame.shape)) == 1
    assert OverlaySettings().min_peak == 0.9  # the default, chosen on the validation tower clip
    with pytest.raises(ConfigError):
        OverlaySettings(min_peak=1.5)


def test_mask_is_drawn_only_inside_the_roi():
    frame = _frame(6)
    overlay = Overlay(CLASSES, COLORS_RGB)
    roi = (200, 0, 440, 360)  # cuts BOX (frame x 160..280) in two
    out = overlay.draw(frame, _prediction([(BOX, 0, 0.95)]), NO_LEGEND, roi=roi)
    changed = _changed(out, frame)
    assert changed[:, 200:].any() and not changed[:, :200].any()


def test_prediction_on_a_roi_crop_is_mapped_into_it():
    frame = _frame(7)
    roi = (320, 180, 320, 180)  # bottom-right quarter; model 90x160 -> 2 frame px per model px
    p = _prediction([((0, 0, 80, 45), 1, 0.95)], roi=roi)  # top-left quarter of the crop
    out = Overlay(CLASSES, COLORS_RGB).draw(frame, p, NO_LEGEND)
    changed = _changed(out, frame)
    assert changed[185:265, 325:475].all()
    allowed = np.zeros(FRAME_SHAPE, bool)
    allowed[180:180 + 95, 320:320 + 165] = True
    assert not (changed & ~allowed).any()


def test_colours_are_converted_from_rgb():
    overlay = Overlay(("polyp",), ((255, 200, 0),))
    assert overlay.colors_bgr.tolist() == [[0, 200, 255]]


def test_bad_settings_raise_config_error():
    with pytest.raises(ConfigError, match="fill, contour"):
        OverlaySettings(style="glow")
    with pytest.raises(ConfigError, match="opacity"):
        OverlaySettings(opacity=1.5)


def _endoscope_frame(shape=(1080, 1920), circle=True):
    frame = np.zeros((*shape, 3), np.uint8)
    h, w = shape
    if circle:
        cv2.circle(frame, (w // 2 + 100, h // 2), int(h * 0.46), (70, 90, 170), -1)
        cv2.circle(frame, (w // 2 + 60, h // 2 + 40), int(h * 0.08), (5, 5, 10), -1)  # dark lumen
    else:
        cv2.rectangle(frame, (400, 80), (1700, 1000), (70, 90, 170), -1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(frame, "PATIENT 0042  24/11/2026", (20, 60), font, 1.4, (255, 255, 255), 3)
    cv2.putText(frame, "Zoom x1.5", (20, h - 40), font, 1.4, (255, 255, 255), 3)
    return frame


@pytest.mark.parametrize("circle", [True, False], ids=["circle", "rectangle"])
def test_detect_roi_finds_the_image_area(circle):
    roi = detect_roi(_endoscope_frame(circle=circle))
    expected = (1060 - 497, 43, 994, 994) if circle else (400, 80, 1301, 921)
    assert roi is not None
    assert all(abs(a - b) <= 8 for a, b in zip(roi, expected)), (roi, expected)


def test_detect_roi_none_when_the_whole_frame_is_image():
    frame = np.random.default_rng(0).integers(40, 255, (720, 1280, 3), dtype=np.uint8)
    assert detect_roi(frame) is None
    assert detect_roi(np.zeros((720, 1280, 3), np.uint8)) is None


def test_detect_roi_on_a_real_frame_placed_on_a_tower_screen(neopolyp_dir):
    """A NeoPolyp image pasted onto a black 1080p screen with burned-in text, as a tower outputs it."""
    path = sorted((neopolyp_dir / "train" / "images").glob("*.jp*g"))[0]
    image = cv2.imread(str(path))
    image = cv2.resize(image, (image.shape[1] * 1000 // image.shape[0], 1000))
    screen = np.zeros((1080, 1920, 3), np.uint8)
    x0, y0 = 1920 - image.shape[1] - 60, 40
    screen[y0:y0 + 1000, x0:x0 + image.shape[1]] = image
    cv2.putText(screen, "ID 0042", (20, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
    roi = detect_roi(screen)
    assert roi is not None
    # The image's own black corners may trim the box slightly; the text must stay outside.
    assert x0 - 4 <= roi[0] <= x0 + 60 and y0 - 4 <= roi[1] <= y0 + 30
    assert roi[0] + roi[2] <= x0 + image.shape[1] + 4 and roi[2] >= image.shape[1] - 120


def _naive_fill(frame, p, settings, colors_rgb):
    """Reference rendering: upscale the whole score map and blend the whole frame (slow but obvious)."""
    h, w = frame.shape[:2]
    keep = keep_regions(p.scores, settings.threshold, settings.min_area)
    scores = cv2.resize(np.where(keep, p.scores, 0).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    labels = cv2.resize(p.labels, (w, h), interpolation=cv2.INTER_NEAREST)
    colour = np.array([c[::-1] for c in colors_rgb], np.float64)[labels]
    blend = frame * (1 - settings.opacity) + colour * settings.opacity
    mask = (scores >= settings.threshold)[..., None]
    return np.where(mask, np.round(blend), frame).astype(np.uint8)


@pytest.mark.parametrize("model_shape", [MODEL_SHAPE, (256, 256)], ids=["scale-4", "scale-2.5x1.4"])
def test_fill_matches_a_whole_frame_reference_rendering(model_shape):
    """Golden-frame check: the bounding-box shortcut draws what a whole-frame blend would."""
    frame = _frame(8)
    mh, mw = model_shape
    scores = np.zeros(model_shape, np.float32)
    cv2.ellipse(scores, (mw * 3 // 8, mh * 4 // 9), (mw // 6, mh // 6), 20, 0, 360, 0.9, -1)
    cv2.circle(scores, (mw * 13 // 16, mh * 7 // 9), mh // 9, 0.7, -1)
    scores = cv2.GaussianBlur(scores, (0, 0), 2)  # soft edges, as a network gives
    labels = np.zeros(model_shape, np.uint8)
    labels[:, mw * 5 // 8:] = 1
    p = Prediction(scores, labels, {})
    settings = OverlaySettings(opacity=0.45, threshold=0.4, min_peak=0, legend=False)  # both regions drawn
    got = Overlay(CLASSES, COLORS_RGB).draw(frame, p, settings).astype(int)
    want = _naive_fill(frame, p, settings, COLORS_RGB).astype(int)
    differs = np.abs(got - want).max(axis=2) > 1
    masked = _changed(want.astype(np.uint8), frame).sum()
    assert masked > 5000
    assert differs.sum() < 0.02 * masked  # only resampling differences along the edges


def test_one_class_per_region_takes_each_regions_majority():
    from polypview.inference.runtime.labels import BACKGROUND, UNDEFINED, one_class_per_region

    labels = np.full((8, 12), BACKGROUND, np.uint8)
    labels[1:5, 1:5] = [[0, 1, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1]]  # mostly non-neoplastic
    labels[1:3, 8:11] = [[0, 0, 1], [0, 1, 1]]  # a tie: neoplastic wins (the safer call)
    labels[6, 0:2] = UNDEFINED  # no voters: kept
    voted = one_class_per_region(labels, labels != BACKGROUND)
    assert (voted[1:5, 1:5] == 1).all()
    assert (voted[1:3, 8:11] == 0).all()
    assert (voted[6, 0:2] == UNDEFINED).all()
    assert (voted[labels == BACKGROUND] == BACKGROUND).all()
    assert (labels[1:5, 1:5] != 1).any()  # the input is not modified


@pytest.mark.parametrize("per_region", [True, False])
def test_a_polyp_is_drawn_in_one_colour_unless_per_pixel_classes_are_asked(per_region):
    frame = np.full((*FRAME_SHAPE, 3), 100, np.uint8)
    # one region: 20 model columns neoplastic, 10 non-neoplastic
    p = _prediction([((40, 20, 20, 25), 0, 0.95), ((60, 20, 10, 25), 1, 0.95)])
    settings = OverlaySettings(opacity=0.5, legend=False, one_class_per_region=per_region)
    out = Overlay(CLASSES, COLORS_RGB).draw(frame, p, settings)
    right = out[100:160, 250:270].reshape(-1, 3).astype(int)  # inside the non-neoplastic columns
    want = [50, 50, 178] if per_region else [50, 178, 50]
    assert (np.abs(right - want) <= 1).all()


def test_a_dark_frame_is_not_judged_for_the_image_area():
    from polypview.roi import find_image_area, same_area

    frame = np.zeros((720, 1280, 3), np.uint8)
    assert find_image_area(frame) == (None, False)
    frame[100:400, 100:700] = 30  # a dim square, 20 % of the frame: an area, and enough to judge by
    area, seen = find_image_area(frame)
    assert seen and area is not None and abs(area[0] - 100) <= 8
    assert same_area(area, (100, 100, 600, 300), frame.shape) and not same_area(area, None, frame.shape)
    sparse = np.zeros((720, 1280, 3), np.uint8)
    sparse[::40, :] = 200  # thin bright lines: nothing a view could be
    assert find_image_area(sparse)[1] is False


def _tag_rect(changed, outside):
    """Bounding box (x0, y0, x1, y1) of the changed pixels in the `outside` part of the frame."""
    ys, xs = np.nonzero(changed & outside)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("style", ["fill", "contour", "box"])
def test_name_tags_write_each_polyps_class_beside_it_and_touch_nothing_else(style):
    frame = _frame(5)
    overlay = Overlay(CLASSES, COLORS_RGB)
    p = _prediction([(BOX, 0, 0.95)])  # frame box (160, 80, 120, 100)
    plain = overlay.draw(frame, p, OverlaySettings(style=style, legend=False))
    assert np.array_equal(overlay.draw(frame, p, OverlaySettings(style=style, legend=False, name_tags=False)), plain)
    out = overlay.draw(frame, p, OverlaySettings(style=style, legend=False, name_tags=True))
    changed = _changed(out, frame)
    lesion = np.zeros(FRAME_SHAPE, bool)
    lesion[80:180, 160:280] = True
    assert np.array_equal(out[lesion], plain[lesion])  # the tag does not cover the polyp
    x0, y0, x1, y1 = _tag_rect(changed, ~_allowed(BOX))
    assert y1 <= 80 and x0 < 220 < x1  # above the polyp, centred on it
    tag = out[y0:y1, x0:x1]
    assert not np.array_equal(out[~_allowed(BOX)], frame[~_allowed(BOX)])
    outside = ~_allowed(BOX)
    outside[y0:y1, x0:x1] = False
    assert not changed[outside].any()  # nothing else changes
    assert (tag.max(axis=2) > 200).any() and (tag.max(axis=2) < 40).mean() > 0.5  # light text on a dark tag
    assert (np.abs(tag.astype(int) - (0, 0, 255)).sum(axis=2) == 0).any()  # the class colour's swatch (BGR red)


def test_name_tags_name_the_class_go_below_a_polyp_at_the_top_and_stay_in_the_image_area():
    frame = _frame(6)
    overlay = Overlay(CLASSES, COLORS_RGB)
    on = OverlaySettings(legend=False, name_tags=True)
    top = (60, 0, 30, 20)  # model pixels -> frame (240, 0, 120, 80): no room above
    tags = []
    for label in (0, 1):
        p = _prediction([(top, label, 0.95)])
        out = overlay.draw(frame, p, on)
        x0, y0, x1, y1 = _tag_rect(_changed(out, frame), ~_allowed(top))
        assert y0 >= 80  # below the polyp
        tags.append(out[y0:y1, x0:x1])
    assert tags[0].shape != tags[1].shape or not np.array_equal(tags[0], tags[1])  # "neoplastic" vs "non-neoplastic"
    # a polyp at the image area's right edge: its tag is pulled inside the area, never onto the black border
    roi = (0, 0, 400, 360)
    edge = (85, 40, 15, 20)  # frame (340, 160, 60, 80), the area ends at x = 400
    out = overlay.draw(frame, _prediction([(edge, 1, 0.95)]), on, roi=roi)
    changed = _changed(out, frame)
    assert changed[:, 340:400].any() and not changed[:, 400:].any()


def test_name_tags_never_leave_the_image_area_whatever_the_frame_regions_and_area():
    """Random frame sizes (down to a tag wider than the image area), regions and image areas: nothing is
    written outside the area, in every style."""
    rng = np.random.default_rng(0)
    overlay = Overlay(CLASSES, COLORS_RGB)
    for trial in range(60):
        h, w = int(rng.integers(40, 400)), int(rng.integers(40, 700))
        frame = rng.integers(30, 220, (h, w, 3), dtype=np.uint8)
        boxes = []
        for _ in range(int(rng.integers(1, 4))):
            x, y = int(rng.integers(0, 38)), int(rng.integers(0, 28))
            boxes.append(((x, y, int(rng.integers(1, 40 - x)), int(rng.integers(1, 30 - y))), int(rng.integers(0, 2)), 0.97))
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        roi = (x0, y0, int(rng.integers(5, w - x0 + 1)), int(rng.integers(5, h - y0 + 1)))
        settings = OverlaySettings(style=("fill", "contour", "box")[trial % 3], legend=False, name_tags=True, min_area=0)
        out = overlay.draw(frame, _prediction(boxes, shape=(30, 40)), settings, roi=roi)
        inside = np.zeros((h, w), bool)
        inside[roi[1]:roi[1] + roi[3], roi[0]:roi[0] + roi[2]] = True
        assert not (_changed(out, frame) & ~inside).any()


def test_draw_marked_says_whether_a_polyp_is_drawn():
    frame = _frame(3)
    overlay = Overlay(CLASSES, COLORS_RGB)
    confident, faint = _prediction([(BOX, 0, 0.95)]), _prediction([(BOX, 0, 0.6)])
    image, marked = overlay.draw_marked(frame, confident, NO_LEGEND)
    assert marked and (image == overlay.draw(frame, confident, NO_LEGEND)).all()
    assert not overlay.draw_marked(frame, faint, NO_LEGEND)[1]  # under the region peak: nothing drawn
    assert not overlay.draw_marked(frame, None, NO_LEGEND)[1]
    assert not overlay.draw_marked(frame, confident, OverlaySettings(enabled=False))[1]  # masks off
    assert overlay.draw_marked(frame, confident, OverlaySettings(style="box", legend=False))[1]


def _unsure_prediction():
    """Two confident polyps, both voted neoplastic pixel by pixel: the left with 95 % of its class probability
    on neoplastic, the right with 60 % (the network is unsure of its class)."""
    left, right = (20, 20, 30, 25), (100, 30, 30, 25)
    p = _prediction([(left, 0, 0.95), (right, 0, 0.95)])
    probs = np.zeros((2, *MODEL_SHAPE), np.float32)
    for (x, y, w, h), neo in ((left, 0.95), (right, 0.6)):
        probs[0, y:y + h, x:x + w] = 0.95 * neo
        probs[1, y:y + h, x:x + w] = 0.95 * (1 - neo)
    return Prediction(p.scores, p.labels, {}, None, probs), left, right


def test_a_polyp_whose_class_is_unsure_is_drawn_yellow_and_named_so():
    from polypview.inference.runtime.temporal import TemporalSteps

    p, left, right = _unsure_prediction()
    frame = np.full((*FRAME_SHAPE, 3), 128, np.uint8)
    overlay = Overlay(CLASSES, COLORS_RGB)

    def draw(settings, **kw):
        """As the app draws a frame: its temporal steps (where the class is decided), then the overlay."""
        settings = replace(settings, **kw)
        return overlay.draw(frame, TemporalSteps(settings, 2)(p), settings)

    def colour_at(image, box):
        x, y, w, h = box
        return tuple(int(v) for v in image[(y + h // 2) * 4, (x + w // 2) * 4])

    base = OverlaySettings(opacity=1.0, legend=False)
    plain = draw(base)
    assert colour_at(plain, left) == colour_at(plain, right) == (0, 0, 255)  # off by default: both red
    unsure = replace(base, class_confidence=0.9)
    drawn = draw(unsure)
    assert colour_at(drawn, left) == (0, 0, 255) and colour_at(drawn, right) == (0, 255, 255)  # BGR yellow
    assert colour_at(draw(unsure, class_memory=0.0), right) == (0, 255, 255)  # without class memory too
    assert colour_at(draw(unsure, class_confidence=0.55), right) == (0, 0, 255)
    # per-pixel classes: no class per polyp, so none is "uncertain" either
    assert colour_at(draw(unsure, one_class_per_region=False), right) == (0, 0, 255)
    decided = TemporalSteps(unsure, 2)(p)
    x, y, w, h = right
    assert (decided.labels[y:y + h, x:x + w] == 2).all()  # the whole region, nothing else
    assert (decided.labels[decided.labels != 2] == p.labels[decided.labels != 2]).all()
    assert overlay.draw_marked(frame, decided, unsure)[1]  # still a polyp drawn
    regions = sorted(find_regions(decided, unsure, 2, FRAME_SHAPE), key=lambda r: r.box[0])
    assert [r.label for r in regions] == [0, 2]
    boxes = draw(unsure, style="box")
    x, y, w, h = regions[1].box
    assert tuple(int(v) for v in boxes[y - 4, x + w // 2]) == (0, 255, 255)  # the box around it, yellow
    # the legend gains the row, a tag names it
    assert overlay.legend_rect(FRAME_SHAPE, unsure=True)[3] > overlay.legend_rect(FRAME_SHAPE)[3]
    assert overlay._tag(2, *FRAME_SHAPE).shape[1] > overlay._tag(0, *FRAME_SHAPE).shape[1]  # "class uncertain"
    with pytest.raises(ConfigError, match="class_confidence"):
        OverlaySettings(class_confidence=1.5)
