"""The model zoo: registry, published parameter counts, output shapes, heads, export."""

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")

from polypview.errors import ConfigError  # noqa: E402
from polypview.inference import models  # noqa: E402
from polypview.inference.models import (  # noqa: E402
    HEAD_CHANNELS,
    count_params,
    create_model,
    foreground_probs,
    get_spec,
    inference_params,
    list_models,
    model_info,
    published_count,
)

ALL = list_models()
PUBLISHED = [n for n in ALL if get_spec(n).published_params is not None]
SMALL = 64  # every model accepts 64x64 (HarDNet's s32 is then 2x2)

# Spec §10.1, copied here so that a registry edit cannot move the target with the model.
SPEC_COUNTS = {
    "nanonet-a": 235_425, "nanonet-b": 132_049, "nanonet-c": 36_561, "resunetpp": 4_070_385,
    "hardnet-mseg": 17_423_837, "hardnet-mseg3": 17_424_031, "blazeneo-dha": 17_143_324,
    "blazeneo-lsc": 17_050_780, "blazeneo-ida": 17_078_556, "blazeneo-dia": 17_087_772,
    "neounet": 38_288_397,
}


def test_registry_holds_the_spec_counts():
    assert {n: get_spec(n).published_params for n in SPEC_COUNTS} == SPEC_COUNTS


@pytest.fixture
def built():
    """Builds a model in eval mode, seeded (not cached: the HarDNet models are large)."""

    def get(name):
        torch.manual_seed(0)
        return create_model(name).eval()

    return get


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_parameter_count(name, built):
    spec = get_spec(name)
    assert published_count(built(name), spec) == spec.published_params


@pytest.mark.parametrize("name", ALL)
def test_forward_shapes(name, built):
    model, head = built(name), get_spec(name).head
    x = torch.randn(2, 3, SMALL, SMALL)
    with torch.no_grad():
        main = model(x)
        train = model.forward_train(x)
    assert main.shape == (2, HEAD_CHANNELS[head], SMALL, SMALL)
    assert torch.equal(train["main"], main)
    if "aux" in train:
        assert train["aux"].shape == (2, 1, SMALL, SMALL)
    for deep in train.get("deep", []):
        assert deep.shape == main.shape


def test_expected_names_registered():
    expected = {
        "nanonet-a", "nanonet-b", "nanonet-c", "nanonet-a-neo", "nanonet-b-neo", "nanonet-c-neo",
        "blazeneo-lsc", "blazeneo-ida", "blazeneo-dia", "blazeneo-dha",
        "hardnet-mseg", "hardnet-mseg3", "resunetpp", "neounet",
    }
    assert expected <= set(ALL)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        create_model("nanonet-z")
    assert "nanonet-z" in str(err.value)
    for name in ALL:
        assert name in str(err.value)


def test_bad_builder_option_is_config_error():
    with pytest.raises(ConfigError, match="nanonet-a"):
        create_model("nanonet-a", colour="blue")


def test_nanonet_projection_shortcut_counts():
    # Spec §10.1: the paper's projection shortcut (PR #3) gives these Keras totals.
    expected = {"a": 310_593, "b": 179_473, "c": 45_833}
    for letter, total in expected.items():
        model = create_model(f"nanonet-{letter}", shortcut="projection")
        assert count_params(model, bn_stats=True) == total


def test_nanonet_pytorch_only_counts():
    expected = {"a": 230_737, "b": 128_321, "c": 34_073}
    for letter, total in expected.items():
        assert count_params(create_model(f"nanonet-{letter}")) == total


def test_aux_is_training_only():
    with_aux = create_model("nanonet-c-neo")
    without = create_model("nanonet-c-neo", aux=False)
    assert inference_params(with_aux) == count_params(without) < count_params(with_aux)
    assert "aux" not in without.forward_train(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("head,k", [("trinary", 2), ("binary", 1), ("multilabel", 2)])
def test_foreground_probs(head, k):
    logits = torch.randn(2, HEAD_CHANNELS[head], 5, 7) * 4
    probs = foreground_probs(head, logits)
    assert probs.shape == (2, k, 5, 7)
    assert probs.min() >= 0 and probs.max() <= 1
    if head == "trinary":  # neo + non + background = 1, so the foreground sum stays <= 1
        background = torch.softmax(logits, 1)[:, 2:]
        torch.testing.assert_close(probs.sum(1, keepdim=True) + background, torch.ones_like(background))
        assert torch.equal(probs.argmax(1), logits[:, :2].argmax(1))
    else:
        torch.testing.assert_close(probs, torch.sigmoid(logits))


def test_trinary_probs_equal_softmax_even_for_extreme_logits():
    logits = torch.randn(2, 3, 6, 6) * 4
    logits[0, :, 0, 0] = torch.tensor([1000.0, 990.0, -1000.0])  # exp would overflow without the max shift
    logits[1, :, 0, 0] = torch.tensor([-1000.0, -1000.0, -1000.0])
    probs = foreground_probs("trinary", logits)
    assert torch.isfinite(probs).all()
    torch.testing.assert_close(probs, torch.softmax(logits, 1)[:, :2])


def _random_bn_statistics(model: torch.nn.Module) -> None:
    """Trained-looking BatchNorm statistics (fresh ones are the identity, which would hide folding bugs)."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.6 - 0.3)


@pytest.mark.parametrize("shortcut", ["released", "projection"])
@pytest.mark.parametrize("name", ["nanonet-a-neo", "nanonet-b", "nanonet-c-neo"])
def test_nanonet_inference_graph_computes_the_same_logits(name, shortcut):
    torch.manual_seed(0)
    model = create_model(name, shortcut=shortcut)
    _random_bn_statistics(model)
    model.eval()
    fast = model.for_inference()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for n, m in fast.named_modules() if "encoder" not in n)
    x = torch.randn(2, 3, 96, 128)  # not square, not the training size: the resizes must still line up
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=2e-5, rtol=1e-4)
    if shortcut == "released":  # the deep tensor is reduced to q = filters/4 channels before upsampling
        assert fast.stage3.block.low.out_channels == model.stage3.block.main[0][0].out_channels


def test_inference_graph_of_other_models_is_the_model():
    model = create_model("resunetpp")
    assert model.for_inference() is model and not model.training


def test_foreground_probs_unknown_head():
    with pytest.raises(ConfigError, match="trinary"):
        foreground_probs("quaternary", torch.zeros(1, 4, 2, 2))


def test_model_info_from_spec():
    info = model_info("nanonet-a-neo", version="3")
    assert info.classes == ("neoplastic", "non-neoplastic")
    assert info.colors == ((255, 0, 0), (0, 255, 0))
    assert info.activation == "softmax" and info.input_size == (256, 256)
    assert info.version == "3" and info.color_order == "RGB"
    binary = model_info("nanonet-c")
    assert binary.classes == ("polyp",) and binary.activation == "sigmoid"
    assert binary.colors == ((255, 255, 0),)


def test_register_rejects_bad_head():
    with pytest.raises(ConfigError, match="head"):
        models.register_model("x", head="quad", input_size=64)


def test_onnx_export_matches_torch(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = create_model("nanonet-c-neo").eval()

    class Probs(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return foreground_probs("trinary", self.net(x))

    wrapped, x = Probs(model).eval(), torch.randn(1, 3, SMALL, SMALL)
    path = tmp_path / "m.onnx"
    torch.onnx.export(wrapped, (x,), str(path), input_names=["image"], output_names=["probs"],
                      opset_version=17, dynamo=False)
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        want = wrapped(x).numpy()
    assert abs(got - want).max() < 1e-4


# Spec §1.2 table: block -> (input width, growth, layer outputs, layer input widths, concat).
HARDBLOCKS = {
    0: (64, 14, [14, 24, 14, 40, 14, 24, 14, 68], [64, 78, 24, 102, 40, 54, 24, 142], 124),
    4: (640, 160, [160, 272, 160, 462], [640, 800, 272, 1072], 782),
    3: (320, 40, [40, 68, 40, 116, 40, 68, 40, 196, 40, 68, 40, 116, 40, 68, 40, 334],
        [320, 360, 68, 428, 116, 156, 68, 544, 196, 236, 68, 304, 116, 156, 68, 740], 654),
}


@pytest.mark.parametrize("block", sorted(HARDBLOCKS))
def test_hardblock_widths(block):
    from polypview.inference.models.hardnet import HarDBlock

    cin, growth, outs, ins, concat = HARDBLOCKS[block]
    hb = HarDBlock(cin, growth, len(outs))
    assert [layer.conv.in_channels for layer in hb.layers] == ins
    assert [layer.conv.out_channels for layer in hb.layers] == outs
    assert hb.out_channels == concat
    y = hb(torch.randn(1, cin, 4, 4))
    assert y.shape == (1, concat, 4, 4)


def test_harmonic_links_order():
    from polypview.inference.models.hardnet import harmonic_links

    assert harmonic_links(8) == [7, 6, 4, 0]
    assert harmonic_links(6) == [5, 4]
    assert harmonic_links(1) == [0]


def test_hardnet68_backbone():
    from polypview.inference.models.hardnet import HarDNet68

    net = HarDNet68()
    assert count_params(net) == 16_540_348
    taps = net(torch.randn(1, 3, 64, 64))
    assert [t.shape[1] for t in taps] == [64, 128, 320, 640, 1024]
    assert [t.shape[-1] for t in taps] == [32, 16, 8, 4, 2]
    # The ImageNet weights' naming, so that they would load as is.
    assert "base.3.layers.7.conv.weight" in net.state_dict()


def test_blazeneo_aux_branch_is_dha_and_training_only():
    net = create_model("blazeneo-lsc")
    assert count_params(net) == 17_199_164  # spec §10.1: LSC + DHA aux
    assert inference_params(net) == count_params(create_model("blazeneo-lsc", aux=False))


def test_neounet_deep_supervision(built):
    out = built("neounet").forward_train(torch.randn(1, 3, SMALL, SMALL))
    assert len(out["deep"]) == 3
    assert get_spec("neounet").head == "multilabel"


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.dw = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
        self.up = torch.nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False)
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x):
        y = self.up(self.dw(self.conv(x)))
        return self.fc(y.mean(dim=(2, 3)))


def test_count_macs_by_hand():
    from polypview.inference.models.flops import count_macs

    h, w = 10, 12
    conv = 8 * h * w * 3 * 9  # every output: cin * 3 * 3
    dw = 8 * (h // 2) * (w // 2) * 9  # depthwise: one input channel per output
    up_true = (h // 2) * (w // 2) * 8 * 4 * 16  # every input element scattered to 4 * 16 outputs
    up_per_output = h * w * 8 * 4 * 16
    fc = 4 * 5
    model = _Tiny()
    assert count_macs(model, (h, w)) == conv + dw + up_true + fc
    assert count_macs(model, (h, w), transposed_per_output=True) == conv + dw + up_per_output + fc
    assert model.training  # the mode is restored


# Spec §10.2: GMACs at 352 measured for the published models (NeoUNet with ptflops' old
# per-output transposed-conv convention, which is what the BlazeNeo paper's table used).
MACS_352 = [("blazeneo-dha", False, 11.03e9), ("hardnet-mseg3", False, 11.35e9),
            ("neounet", False, 24.41e9), ("neounet", True, 39.82e9)]


@pytest.mark.slow
@pytest.mark.parametrize("name,per_output,expected", MACS_352)
def test_macs_at_352(name, per_output, expected, built):
    from polypview.inference.models.flops import count_macs

    macs = count_macs(built(name), 352, transposed_per_output=per_output)
    assert abs(macs - expected) / expected < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_every_model_exports_to_onnx(name, built):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import io

    model, x = built(name), torch.randn(1, 3, SMALL, SMALL)
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, input_names=["image"], output_names=["logits"],
                      opset_version=17, dynamo=False,
                      dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}})
    proto = onnx.load_from_string(buffer.getvalue())
    # Training-only modules (the aux branch) must not reach the exported graph.
    exported = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    assert exported <= inference_params(model, bn_stats=True)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x2 = torch.randn(2, 3, 96, 128)  # another batch and size than traced
    got = session.run(None, {"image": x2.numpy()})[0]
    with torch.no_grad():
        want = model(x2).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-3 * max(1.0, np.abs(want).max())


def test_bad_shortcut_is_config_error():
    with pytest.raises(ConfigError, match="projection"):
        create_model("nanonet-a", shortcut="identity")


def test_summary_table(capsys):
    from polypview.inference.models.__main__ import main

    assert main(["nanonet-c", "nanonet-c-neo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and "36,561" in lines[2] and "nanonet-c-neo" in lines[3]


def test_package_import_is_torch_free():
    import subprocess
    import sys

    code = "import sys, polypview.inference.models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
