"""`polypview blend`: weighted averages of trained files of one network, exported and trained like a run's."""

import numpy as np
import pytest
import torch

from polypview.cli import main
from polypview.errors import ConfigError
from polypview.inference.models import create_model
from polypview.inference.training.blend import blend, parse_weights
from polypview.inference.training.checkpoints import load_checkpoint, model_file_weights
from polypview.inference.training.export import export_model, write_torch_weights

SIZE = 64


def _checkpoint(path, seed, name="nanonet-c-neo", **extra):
    torch.manual_seed(seed)
    model = create_model(name)
    for module in model.modules():  # real BatchNorm statistics, so averaging them is exercised
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    torch.save({"model": name, "state_dict": model.state_dict(), "input_size": SIZE,
                "training_data": f"run {seed}", "commands": [f"polypview train --seed {seed}"], **extra}, path)
    return path


def _model_file(path, seed):
    torch.manual_seed(seed)
    net = create_model("blazeneo-lite2-neo", aux=False)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    export_model(net, "blazeneo-lite2-neo", path, size=SIZE)
    return path


def test_checkpoints_blend_to_their_weighted_mean_and_export(tmp_path, capsys):
    a, b = _checkpoint(tmp_path / "a.pt", 0), _checkpoint(tmp_path / "b.pt", 1)
    assert main(["export", str(b), "-o", str(tmp_path / "s.onnx"), "--pt"]) == 0  # s.pt: fp16, no aux head
    shipped = tmp_path / "s.pt"
    out = tmp_path / "blend" / "ab.pt"
    assert main(["blend", str(a), str(shipped), "--weights", "3,1", "-o", str(out)]) == 0
    assert "0.75 x" in capsys.readouterr().out
    ckpt = load_checkpoint(out)
    sa, sb = load_checkpoint(a)["state_dict"], load_checkpoint(b)["state_dict"]
    key = next(k for k in ckpt["state_dict"] if k.endswith("running_var"))
    conv = next(k for k in ckpt["state_dict"] if k.endswith("conv.weight") or k.endswith(".weight"))
    for k in (key, conv):
        expected = 0.75 * sa[k] + 0.25 * sb[k].half().float()
        assert torch.allclose(ckpt["state_dict"][k], expected, atol=1e-6)
    assert not any(k.startswith("aux.") for k in ckpt["state_dict"])
    assert [b["weight"] for b in ckpt["blend"]] == [0.75, 0.25] and not ckpt["frozen_bn"]
    assert ckpt["commands"][0] == "polypview train --seed 0" and ckpt["commands"][-1].startswith("polypview blend ")
    assert "[a.pt] run 0" in ckpt["training_data"] and "0.75 x a.pt + 0.25 x s.pt" in ckpt["training_data"]
    assert "[s.pt] run 1" in ckpt["training_data"]  # from the model file written beside it
    lone = write_torch_weights(tmp_path / "lone.pt", load_checkpoint(b))
    assert "[lone.pt] see the model card of lone.pt" in blend([a, lone], [0.5, 0.5])["training_data"]

    model_file = tmp_path / "ab.onnx"
    assert main(["export", str(out), "-o", str(model_file), "--fp16"]) == 0
    from polypview.inference.runtime.backend_torch import read_onnx_header
    from polypview.inference.runtime.modelfile import ModelInfo

    info = ModelInfo.from_metadata(read_onnx_header(model_file)[0], source="test")
    assert info.version.endswith("+nanonet-c-neo.blend2") and info.training_data == ckpt["training_data"]

    # a blend can be fine-tuned further; its commands then lead the new run's
    from polypview.inference.training.train import _init_weights

    commands, frozen = _init_weights(out, "nanonet-c-neo", create_model("nanonet-c-neo"))
    assert commands[-1].startswith("polypview blend ") and not frozen


def test_model_files_blend_exactly_and_all_weight_on_one_gives_it_back(tmp_path):
    import onnxruntime as ort

    a, b = _model_file(tmp_path / "a.onnx", 0), _model_file(tmp_path / "b.onnx", 1)
    half = blend([a, b], [0.5, 0.5])
    (_, wa), (_, wb) = model_file_weights(a, "a"), model_file_weights(b, "b")
    for key in wa:
        if wa[key].is_floating_point():
            assert torch.allclose(half["state_dict"][key], (wa[key] + wb[key]) / 2, atol=1e-6), key
    assert half["frozen_bn"] and half["input_size"] == SIZE  # folded BatchNorms: a fine-tune keeps them frozen
    info, _ = model_file_weights(a, "a")
    assert info.description and half["description"] == info.description  # what the files say they were trained on

    first = tmp_path / "first.pt"
    torch.save(blend([a, b], [1.0, 0.0]), first)
    again = tmp_path / "again.onnx"
    assert main(["export", str(first), "-o", str(again)]) == 0
    x = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    run = lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]  # noqa: E731
    assert np.abs(run(again) - run(a)).max() < 1e-4
    assert np.abs(run(again) - run(b)).max() > 1e-3  # the other file's weights really are different


def test_blend_card_names_the_average_instead_of_an_epoch(tmp_path):
    from types import SimpleNamespace

    from polypview.inference.training.modelcard import card_text

    ckpt = blend([_checkpoint(tmp_path / "a.pt", 0), _checkpoint(tmp_path / "b.pt", 1)], [0.5, 0.5],
                 "polypview blend a.pt b.pt")
    micro = {c: {"dice": 0.8, "iou": 0.67} for c in ("polyp", "neoplastic", "non_neoplastic")}
    info = SimpleNamespace(description="d", version="v", input_size=(64, 64), color_order="RGB", mean=(0, 0, 0),
                           std=(1, 1, 1), classes=("neoplastic", "non-neoplastic"), activation="softmax")
    report = SimpleNamespace(path="m.onnx", size_bytes=10, precision="fp32", max_abs_diff=0.0, tolerance=1e-3,
                             quant=None)
    text = card_text("m", ckpt, info, report, {"split": "test", "images": 4, "micro": micro})
    assert "weighted average of 2 trained files" in text and "0.5 x `a.pt` + 0.5 x `b.pt`" in text
    assert "`polypview blend a.pt b.pt`" in text and "None of its own" in text
    assert "weights after epoch" not in text and '"recipe"' not in text


@pytest.mark.parametrize("text,count,message", [("1,2,3", 2, "3 weights for 2"), ("a,b", 2, "numbers"),
                                                ("0,0", 2, "not all 0"), ("-1,2", 2, "non-negative"),
                                                ("inf,1", 2, "finite"), ("nan,1", 2, "finite")])
def test_bad_weights_are_refused(text, count, message):
    with pytest.raises(ConfigError, match=message):
        parse_weights(text, count)
    assert parse_weights(None, 4) == [0.25] * 4 and parse_weights("1,3", 2) == [0.25, 0.75]


def test_files_that_cannot_be_averaged_are_one_line_errors(tmp_path, capsys):
    a = _checkpoint(tmp_path / "a.pt", 0)
    other = _checkpoint(tmp_path / "o.pt", 1, name="nanonet-a-neo")
    folded = _model_file(tmp_path / "f.onnx", 0)
    lite2 = _checkpoint(tmp_path / "l.pt", 2, name="blazeneo-lite2-neo")
    out = str(tmp_path / "x.pt")
    cases = [([str(a)], "at least two"),
             ([str(a), str(other)], "nanonet-a-neo weights"),
             ([str(lite2), str(folded)], "folded"),
             ([str(a), str(tmp_path / "missing.pt")], "not found"),
             ([str(a), str(a), "--weights", "1"], "1 weights for 2")]
    for args, message in cases:
        assert main(["blend", *args, "-o", out]) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert main(["blend", str(a), str(a), "-o", str(blocked / "x.pt")]) != 0
    err = capsys.readouterr().err
    assert err.startswith("polypview: error: cannot write") and err.count("\n") == 1


def test_files_of_one_name_are_told_apart_by_their_folders(tmp_path):
    (tmp_path / "s7").mkdir(), (tmp_path / "s8").mkdir()
    a, b = _checkpoint(tmp_path / "s7" / "last.pt", 0), _checkpoint(tmp_path / "s8" / "last.pt", 1)
    ckpt = blend([a, b], [0.5, 0.5])
    assert [p["name"] for p in ckpt["blend"]] == ["s7/last.pt", "s8/last.pt"]
    assert "0.5 x s7/last.pt + 0.5 x s8/last.pt of: [s7/last.pt] run 0; [s8/last.pt] run 1" in ckpt["training_data"]
