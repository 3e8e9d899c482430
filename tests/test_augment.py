"""Augmentations keep image and label aligned, leave labels valid and are reproducible."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from polypview.errors import ConfigError
from polypview.inference.runtime.labels import BACKGROUND, NEOPLASTIC, NON_NEOPLASTIC, UNDEFINED
from polypview.inference.training import augment

# Distinct image colours per label; background is black so the constant border agrees.
PALETTE = np.array([(220, 40, 40), (40, 220, 40), (0, 0, 0), (60, 60, 230)], np.uint8)


def _pair(h: int = 64, w: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """An image painted from its label map (big asymmetric shapes)."""
    label = np.full((h, w), BACKGROUND, np.uint8)
    cv2.circle(label, (22, 20), 13, NEOPLASTIC, -1)
    cv2.rectangle(label, (45, 8), (74, 30), NON_NEOPLASTIC, -1)
    cv2.ellipse(label, (40, 48), (25, 9), 15, 0, 360, UNDEFINED, -1)
    return PALETTE[label].copy(), label


def _labels_from_colours(image: np.ndarray) -> np.ndarray:
    """Nearest palette colour of each pixel."""
    dist = ((image[:, :, None, :].astype(int) - PALETTE[None, None].astype(int)) ** 2).sum(-1)
    return dist.argmin(-1).astype(np.uint8)


GEOMETRIC = [
    augment.ShiftScaleRotate(p=1.0),
    augment.ShiftScaleRotate(shift=0.2, scale=0.3, rotate=45, p=1.0),
    augment.HorizontalFlip(p=1.0),
    augment.VerticalFlip(p=1.0),
]


@pytest.mark.parametrize("transform", GEOMETRIC, ids=lambda t: type(t).__name__)
def test_geometric_transforms_move_label_with_image(transform):
    image, label = _pair()
    for seed in range(5):
        out_image, out_label = transform(image, label, np.random.default_rng(seed))
        assert out_image.shape == image.shape and out_label.shape == label.shape
        assert out_image.dtype == np.uint8 and out_label.dtype == np.uint8
        assert set(np.unique(out_label)) <= {0, 1, 2, 3}
        # Only edge pixels may disagree (bilinear image vs nearest label).
        assert (_labels_from_colours(out_image) == out_label).mean() > 0.97


def test_shift_scale_rotate_border_is_background_and_identity_when_zero():
    image, label = _pair()
    label[:] = NEOPLASTIC
    image[:] = PALETTE[NEOPLASTIC]
    _, out = augment.ShiftScaleRotate(shift=0.3, scale=0.0, rotate=0, p=1.0)(image, label, np.random.default_rng(3))
    assert (out == BACKGROUND).any() and (out == NEOPLASTIC).any()
    still = augment.ShiftScaleRotate(shift=0, scale=0, rotate=0, p=1.0)
    same_image, same_label = still(*_pair(), np.random.default_rng(0))
    np.testing.assert_array_equal(same_label, _pair()[1])
    np.testing.assert_array_equal(same_image, _pair()[0])


def test_flips_are_exact():
    image, label = _pair()
    out_image, out_label = augment.HorizontalFlip(p=1.0)(image, label)
    np.testing.assert_array_equal(out_label, label[:, ::-1])
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    _, v_label = augment.VerticalFlip(p=1.0)(image, label)
    np.testing.assert_array_equal(v_label, label[::-1])


PHOTOMETRIC = [augment.ColorJitter(p=1.0), augment.MotionBlur(p=1.0)]


@pytest.mark.parametrize("transform", PHOTOMETRIC, ids=lambda t: type(t).__name__)
def test_photometric_transforms_change_image_not_label(transform):
    image, label = _pair()
    out_image, out_label = transform(image, label, np.random.default_rng(1))
    assert out_label is label
    assert out_image.shape == image.shape and out_image.dtype == np.uint8
    assert not np.array_equal(out_image, image)


def test_probability_zero_is_identity():
    image, label = _pair()
    for transform in [*GEOMETRIC, augment.ColorJitter(p=0.0), augment.MotionBlur(p=0.0)]:
        transform.p = 0.0
        out_image, out_label = transform(image, label, np.random.default_rng(0))
        assert out_image is image and out_label is label


def test_hue_rotation_round_trip_and_motion_kernel():
    image, _ = _pair()
    assert np.abs(augment.adjust_hue(image, 0.0).astype(int) - image).max() <= 3
    for size in (3, 5, 7):
        kernel = augment.motion_kernel(size, 30.0)
        assert kernel.shape == (size, size) and kernel.sum() == pytest.approx(1.0)


def test_compose_reproducible_from_seed():
    image, label = _pair()

    def run(seed):
        pipeline = augment.default_train_augment(seed)
        return [pipeline(image, label) for _ in range(6)]

    first, again, other = run(7), run(7), run(8)
    for (a_img, a_lab), (b_img, b_lab) in zip(first, again):
        np.testing.assert_array_equal(a_img, b_img)
        np.testing.assert_array_equal(a_lab, b_lab)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_reseed_restarts_the_stream():
    image, label = _pair()
    pipeline = augment.blazeneo_augment(seed=0)
    pipeline.reseed(5)
    a = pipeline(image, label)
    pipeline.reseed(5)
    b = pipeline(image, label)
    np.testing.assert_array_equal(a[0], b[0])


def test_registry_and_bad_parameters():
    assert augment.create_augment("none") is None
    assert isinstance(augment.create_augment("blazeneo", seed=1), augment.Compose)
    with pytest.raises(ConfigError, match="default, blazeneo, video, video_edge, none"):
        augment.create_augment("albumentations")
    with pytest.raises(ConfigError):
        augment.ColorJitter(hue=0.9)
    with pytest.raises(ConfigError):
        augment.MotionBlur(kernel=(1, 7))


# ---------------------------------------------------------------- camera-like views


def _wide_pair(h: int = 90, w: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A 4:3 image painted from its labels, one small polyp in a corner."""
    label = np.full((h, w), BACKGROUND, np.uint8)
    label[:, : w // 2] = UNDEFINED  # a coloured half, so that the image content is visible in a view
    cv2.circle(label, (100, 15), 6, NON_NEOPLASTIC, -1)
    return PALETTE[label].copy(), label


def test_video_crop_draws_views_at_the_output_size_aligned_with_labels():
    image, label = _wide_pair()
    crop = augment.VideoCrop(out=64)
    for seed in range(20):
        out_image, out_label = crop(image, label, np.random.default_rng(seed))
        assert out_image.shape == (64, 64, 3) and out_label.shape == (64, 64)
        assert set(np.unique(out_label)) <= {0, 1, 2, 3}
        assert (_labels_from_colours(out_image) == out_label).mean() > 0.95


def test_video_crop_zoom_and_aspect_map_the_window_exactly():
    """Zoom 2 and aspect 1 without rotation: the window's side is sqrt(w*h)/2 source pixels."""
    crop = augment.VideoCrop(out=50, aspect=(1, 1), zoom=(2, 2), rotate=0, on_polyp=0)
    m = crop.matrix(60, 45, 40, 40, 0)
    corner = m @ np.array([0, 0, 1.0])
    far = m @ np.array([49, 49, 1.0])
    np.testing.assert_allclose(far - corner, [39.2, 39.2])  # 49 output steps of 40/50 source pixels
    np.testing.assert_allclose((corner + far) / 2, [60, 45])
    _, _, win_w, win_h, _ = crop.window(np.zeros((90, 160), np.uint8) + BACKGROUND, np.random.default_rng(0))
    assert win_w == pytest.approx(win_h) == pytest.approx(np.sqrt(90 * 160) / 2)
    wide = augment.VideoCrop(out=50, aspect=(16 / 9, 16 / 9), zoom=(1, 1), rotate=0)
    _, _, win_w, win_h, _ = wide.window(np.zeros((90, 160), np.uint8), np.random.default_rng(0))
    assert win_w / win_h == pytest.approx(16 / 9)


def test_video_crop_shows_polyp_free_views_and_black_framed_views():
    label = np.full((90, 120), BACKGROUND, np.uint8)
    cv2.circle(label, (100, 15), 6, NON_NEOPLASTIC, -1)
    image = np.full((90, 120, 3), 128, np.uint8)  # grey mucosa: the black frame is told apart
    image[label == NON_NEOPLASTIC] = PALETTE[NON_NEOPLASTIC]
    crop = augment.VideoCrop(out=48)
    polyp_free = framed = with_polyp = 0
    for seed in range(200):
        out_image, out_label = crop(image, label, np.random.default_rng(seed))
        has_polyp = (out_label == NON_NEOPLASTIC).any()
        with_polyp += has_polyp
        polyp_free += not has_polyp
        # zoomed out below 1x: black background beyond the image on opposite sides of the view
        framed += bool((out_image[:, 0] == 0).all() and (out_image[:, -1] == 0).all())
    assert with_polyp > 80 and polyp_free > 40 and framed > 5


def test_video_crop_at_edge_cuts_the_polyp_by_the_window_edge():
    """at_edge 1: nearly every window placed on the polyp has the polyp touching its border; at_edge 0 rarely."""
    label = np.full((200, 200), BACKGROUND, np.uint8)
    cv2.circle(label, (100, 100), 12, NEOPLASTIC, -1)
    image = PALETTE[label].copy()

    def cut_share(at_edge: float) -> float:
        crop = augment.VideoCrop(out=64, zoom=(2, 2), rotate=0, on_polyp=1.0, at_edge=at_edge)
        cut = seen = 0
        for seed in range(100):
            _, out = crop(image, label, np.random.default_rng(seed))
            polyp = out == NEOPLASTIC
            seen += polyp.any()
            cut += polyp[0].any() or polyp[-1].any() or polyp[:, 0].any() or polyp[:, -1].any()
        assert seen == 100
        return cut / seen

    assert cut_share(1.0) > 0.9 and cut_share(0.0) < 0.3
    assert augment.create_augment("video_edge", seed=0, size=32).transforms[0].at_edge == augment.EDGE_SHARE


def test_video_augment_pipeline_reproducible_and_registered():
    image, label = _wide_pair()
    a = augment.create_augment("video", seed=3, size=32)
    b = augment.create_augment("video", seed=3, size=32)
    for _ in range(4):
        (ia, la), (ib, lb) = a(image, label), b(image, label)
        assert ia.shape == (32, 32, 3)
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)
    with pytest.raises(ConfigError):
        augment.VideoCrop(out=64, zoom=(0, 2))


def test_gaussian_blur_changes_image_only():
    image, label = _pair()
    out_image, out_label = augment.GaussianBlur(p=1.0)(image, label, np.random.default_rng(0))
    assert out_label is label and not np.array_equal(out_image, image)
