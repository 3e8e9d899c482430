"""Per-stage costs at 1080p with pytest-benchmark (the `polypview bench` table measures the same in one run)."""

import itertools

import numpy as np
import pytest

from polypview.benchruns import disc_prediction
from polypview.overlay import Overlay, OverlaySettings, detect_roi
from polypview.recorder import VideoWriter, to_i420


def _cycle(frames):
    return itertools.cycle(frames).__next__


def test_decode_1080p(benchmark, hd_clip):
    from polypview.sources import open_source

    source = open_source(str(hd_clip))

    def read():
        frame = source.read()
        if frame is None:  # loop the clip
            source.seek(0)
            frame = source.read()
        return frame

    benchmark(read)
    source.close()


def test_bgr_to_i420_1080p(benchmark, hd_frames):
    out = benchmark(to_i420, hd_frames[0])
    assert out.shape == (1620, 1920)


def test_encode_1080p(benchmark, hd_frames, tmp_path):
    frames = [to_i420(f) for f in hd_frames]
    with VideoWriter(tmp_path / "out.mp4", fps=30, size=(1920, 1080)) as writer:
        benchmark(lambda next_frame=_cycle(frames): writer.write_i420(next_frame()))


def test_predict_1080p(benchmark, hd_frames, engine):
    roi = detect_roi(hd_frames[0])
    prediction = benchmark(lambda next_frame=_cycle(hd_frames): engine.predict(next_frame(), roi))
    benchmark.extra_info.update(model=engine.name, provider=engine.provider,
                                **{f"{k}_ms": v * 1000 for k, v in prediction.timings.items()})


@pytest.mark.parametrize("style", ["fill", "contour", "box"])
def test_overlay_polyp_mask_1080p(benchmark, hd_frames, engine, style):
    roi = detect_roi(hd_frames[0])
    overlay = Overlay(engine.info.classes, engine.info.colors)
    out = benchmark(overlay.draw, hd_frames[0], disc_prediction(engine, roi), OverlaySettings(style=style), roi)
    assert out.shape == hd_frames[0].shape and not np.array_equal(out, hd_frames[0])


def test_overlay_polyp_mask_with_name_tags_1080p(benchmark, hd_frames, engine):
    """The fill style with each polyp's class name written beside it (`--name-tags`): compare with the
    fill row of the test above, same run."""
    roi = detect_roi(hd_frames[0])
    overlay = Overlay(engine.info.classes, engine.info.colors)
    settings = OverlaySettings(name_tags=True)
    out = benchmark(overlay.draw, hd_frames[0], disc_prediction(engine, roi), settings, roi)
    plain = overlay.draw(hd_frames[0], disc_prediction(engine, roi), OverlaySettings(), roi)
    assert not np.array_equal(out, plain)  # the tag is drawn


@pytest.fixture(scope="module")
def nanonet_graphs(tmp_path_factory):
    """The shipped nanonet-a-neo weights exported twice: as trained (training graph) and as shipped
    (NanoNet.for_inference: folded BNs, 1x1 convs before the upsampling, element-wise softmax)."""
    torch = pytest.importorskip("torch")
    import onnx

    from polypview.assets import ASSETS_DIR
    from polypview.inference.models import create_model
    from polypview.inference.training import export

    weights = torch.load(ASSETS_DIR / "nanonet-a-neo.pt", weights_only=True)
    model = create_model("nanonet-a-neo", aux=False)
    model.load_state_dict({k: v.float() for k, v in weights["state_dict"].items()})
    model.eval()
    folder = tmp_path_factory.mktemp("graphs")
    paths = {}
    for name, module in (("training", model), ("inference", model.for_inference())):
        path = folder / f"{name}.onnx"
        proto = export._to_onnx(export.ProbsGraph(module, "trinary"), (192, 192), 17)
        onnx.save(proto, str(path))
        paths[name] = path
    return paths


@pytest.mark.parametrize("graph", ["training", "inference"])
def test_nanonet_a_neo_graph_192(benchmark, nanonet_graphs, graph):
    """Model call alone, 1 intra-op thread (as the live worker): compare the two rows of this group."""
    from polypview.inference.runtime.backend_ort import open_backend

    benchmark.group = "nanonet-a-neo ONNX graph at 192x192"
    backend = open_backend(nanonet_graphs[graph], threads=1, provider="cpu")
    blob = np.random.default_rng(0).standard_normal((1, 3, 192, 192)).astype(np.float32)
    probs = benchmark(backend.run, blob)
    assert probs.shape == (1, 2, 192, 192)
