"""Model cards: a Markdown file beside each shipped model, generated from what was measured.

Everything in a card comes from the training checkpoint (recipe, seed, commands, curves),
the export report (file size, precision, parity) and a `polypview eval` result (test-split
scores, ONNX Runtime speed): nothing is typed in by hand.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from polypview.inference.training.videoeval import overlay_text, rate_interval, seeds_text, view_unit

CLASS_ROWS = (("polyp", "polyp"), ("neoplastic", "neoplastic"), ("non_neoplastic", "non-neoplastic"))


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _interval(entry: dict) -> str:
    """ "[lo-hi]" of a Dice's 95 % bootstrap interval, or n/a when the eval made none."""
    ci = entry.get("dice_ci95")
    return "n/a" if not ci or ci[0] is None else f"{_pct(ci[0])}-{_pct(ci[1])}"


def _metrics_table(evaluation: dict) -> list[str]:
    lines = ["| class | Dice (micro) | 95 % interval | IoU (micro) | Dice (macro) | IoU (macro) |",
             "|---|---|---|---|---|---|"]
    for key, label in CLASS_ROWS:
        micro, macro = evaluation["micro"][key], evaluation.get("macro", {}).get(key, {})
        lines.append(f"| {label} | {_pct(micro['dice'])} | {_interval(micro)} | {_pct(micro['iou'])} | "
                     f"{_pct(macro.get('dice'))} | {_pct(macro.get('iou'))} |")
    boot = evaluation.get("bootstrap")
    if boot:
        lines += ["", f"Intervals: {100 * boot.get('level', 0.95):.0f} % percentile bootstrap over the "
                      f"{evaluation.get('images')} images ({boot.get('resamples')} resamples, seed {boot.get('seed')})."]
    return lines


def _video_lines(evaluation: dict) -> list[str]:
    """The `eval --video` figures: the split played as a tower shows it, scored from the masks as drawn."""
    video = evaluation.get("video")
    if not video:
        return []
    own = (video.get("model_overlay") or {}).get("min_peak")
    micro = video["micro"]
    dice = ", ".join(f"{label} {_pct(micro[key]['dice'])} [{_interval(micro[key])}]" for key, label in CLASS_ROWS)
    fp = video.get("fp_regions_per_min")
    lines = [
        "## Scores on video (`polypview eval --video`)",
        f"- clip: the {video['images']} images of the split as {video['frames']} frames of "
        f"{video['size'][0]}x{video['size'][1]} at {video['fps']:g} fps ({video['seconds']:.1f} s, "
        f"{video['seconds_per_image'][0]:g}-{video['seconds_per_image'][1]:g} s per image, "
        + seeds_text(video) + "; views "
        + ", ".join(f"{k} {v}" for k, v in video.get("views", {}).items())
        + "), through the app's ROI detection, engine and overlay ("
        + (overlay_text(video["overlay"]) if "overlay" in video else "default settings") + "), scored as drawn",
        *([] if own is None else [f"- the model file carries its own region peak, {own:g} (metadata "
                                  "`polypview.overlay`): the app draws with it unless `--min-peak` is given"]),
        f"- micro Dice {dice} (95 % bootstrap over source images)",
        f"- frames with a true polyp that is missed entirely: {_pct(video.get('missed_share'))} %"
        + rate_interval(video, "missed_share", _pct) + f" ({video.get('missed_frames')} of {video.get('polyp_frames')})",
        "- false-positive regions on polyp-free frames: "
        + ("n/a" if fp is None else f"{fp:.0f}" + rate_interval(video, "fp_regions_per_min", lambda x: f"{x:.0f}")
           + f" per minute ({video.get('fp_regions')} in {video.get('polyp_free_seconds', 0):.1f} s; "
           f"{_pct(video.get('fp_frame_share'))} % of those frames)"),
        f"- class flips per polyp-second: {video.get('flips_per_polyp_second', 0):.2f}"
        + rate_interval(video, "flips_per_polyp_second", lambda x: f"{x:.2f}"),
        *(["- the rates' intervals: 95 % bootstrap over source images, the same resamples as the Dice"]
          if video.get("missed_share_ci95") else []),
    ]
    by_view = video.get("by_view") or {}
    if by_view:
        lines += ["", f"| view | {view_unit(video)} | Dice polyp | Dice neo | Dice non | missed frames % |",
                  "|---|---|---|---|---|---|"]
        for kind, v in by_view.items():
            m = v["micro"]
            lines.append(f"| {kind} | {v['images']} | {_pct(m['polyp']['dice'])} | {_pct(m['neoplastic']['dice'])} | "
                         f"{_pct(m['non_neoplastic']['dice'])} | {_pct(v.get('missed_share'))} |")
    return lines + [""]


def _quant_lines(quant) -> list[str]:
    if quant is None:
        return []
    return [f"- int8 vs fp32 on {quant.images} validation images: {100 * quant.agreement:.2f} % of pixels get the "
            f"same label, mean |diff| of probs {quant.mean_abs_diff:.2e}; calibrated on {quant.calibration_images} "
            "training images (percentile 99.99)"]


def _region_lines(evaluation: dict) -> list[str]:
    """The scores as the app shows masks by default: one class per connected polyp region."""
    region = evaluation.get("micro_region")
    if not region:
        return []
    dice = ", ".join(f"{label} {_pct(region[key]['dice'])}" for key, label in CLASS_ROWS)
    iou = ", ".join(f"{label} {_pct(region[key]['iou'])}" for key, label in CLASS_ROWS)
    lines = ["As the app colours masks by default (each connected polyp region takes its majority class): "
             f"micro Dice {dice}; micro IoU {iou}.", ""]
    ceiling = evaluation.get("micro_true_class")
    if ceiling:
        best = ", ".join(f"{label} {_pct(ceiling[key]['dice'])}" for key, label in CLASS_ROWS)
        lines += ["The same regions each given the true class under them (the ceiling of a better class decision "
                  f"with these outlines, not a score of the model): micro Dice {best}.", ""]
    return lines


def _history_table(history: list[dict]) -> list[str]:
    lines = ["| epoch | train loss | val loss | val Dice polyp | val Dice neo | val Dice non | lr | s |",
             "|---|---|---|---|---|---|---|---|"]
    for h in history:
        v = h["val"]
        lines.append(f"| {h['epoch']} | {h['train']['total']:.4f} | {v['loss']:.4f} | {_pct(v['polyp']['dice'])} | "
                     f"{_pct(v['neoplastic']['dice'])} | {_pct(v['non_neoplastic']['dice'])} | {h['lr']:.2e} | "
                     f"{h.get('seconds', 0):.0f} |")
    return lines


def card_text(name: str, ckpt: dict, info, report, evaluation: dict, curves: str | None = None) -> str:
    """The Markdown text of a model card."""
    history = ckpt.get("history", [])
    commands = ckpt.get("commands") or [ckpt.get("command", "")]
    speed = "n/a" if evaluation.get("fps") is None else (
        f"{evaluation['latency_ms']:.1f} ms per frame ({evaluation['fps']:.1f} FPS), batch 1, "
        f"model call only, ONNX Runtime {evaluation.get('provider', 'CPU')}"
        + (f", {evaluation['threads']} intra-op thread(s)" if evaluation.get("threads") else ""))
    lines = [
        f"# {name}: model card",
        "",
        f"{info.description}",
        "",
        "## File",
        f"- `{Path(report.path).name}`: {report.size_bytes / 1e6:.2f} MB, weights stored {report.precision}"
        + (" (cast to float32 at load: CPU inference runs fp32)" if report.precision == "fp16" else "")
        + (" (int8 weights per channel, uint8 activations, static QDQ)" if report.precision == "int8" else ""),
        f"- version `{info.version}`; input `image` (N, 3, {info.input_size[0]}, {info.input_size[1]}) "
        f"{info.color_order} /255, mean {list(info.mean)}, std {list(info.std)}; output `probs` "
        f"(N, {len(info.classes)}, H, W) = {', '.join(info.classes)} ({info.activation})",
        f"- parity ONNX Runtime vs PyTorch on random inputs: max |diff| of probs {report.max_abs_diff:.2e} "
        f"(limit {report.tolerance:g})" + (" for the fp32 graph before quantization" if report.quant else ""),
        *_quant_lines(report.quant),
        f"- parameters (inference graph): {evaluation.get('params') or 'n/a'}; GMACs at 352x352: "
        f"{'n/a' if evaluation.get('gmacs') is None else format(evaluation['gmacs'], '.3f')}",
        "",
        "## Training",
        f"- data: {ckpt.get('training_data', 'n/a')}",
        "- split files: `inference/splits/neopolyp_train.txt` (train), `neopolyp_val.txt` (model selection), "
        "`neopolyp_test.txt` (held out, for the scores below)",
        *_weights_lines(ckpt),
        "- commands (in order: `--resume` continues a run, `--init` fine-tunes the previous weights with a "
        "new optimizer and schedule, `blend` averages trained files"
        + ("):" if ckpt.get("blend") else "; the curve below is the last run's):"),
        *[f"  - `{c}`" for c in commands if c],
        *_recipe_lines(ckpt),
        "",
        f"## Scores on the {evaluation.get('split')} split ({evaluation.get('images')} images; micro = summed "
        "over all pixels of the split, macro = mean of per-image scores with smooth 1)",
        *_metrics_table(evaluation),
        "",
        "Label decision: argmax over (neoplastic, non-neoplastic, background) for softmax models; "
        "prediction resized to the mask with nearest neighbour (BlazeNeo's evaluation).",
        "",
        *_region_lines(evaluation),
        *_video_lines(evaluation),
        "## Speed on the development machine",
        f"- {speed}; {platform.machine()} {platform.processor() or ''}, 2 CPU cores shared with other jobs "
        "while measured (figures are indicative)",
        "",
        "## Validation curve",
        *(_history_table(history) if history else
          ["None of its own: the weights are an average of trained files (above), with no training after it."]),
        "",
    ]
    if curves:
        lines += [("The first averaged file's training, as shipped before the blend (epochs numbered across runs): "
                   if ckpt.get("blend") else "Whole training (all commands above, epochs numbered across runs): ")
                  + f"![curves]({curves})", ""]
    return "\n".join(lines)


def _weights_lines(ckpt: dict) -> list[str]:
    """Which weights these are: a training run's epoch, or a weighted average of trained files."""
    parts = ckpt.get("blend")
    if parts:
        return [f"- weights: the weighted average of {len(parts)} trained files of this network (`polypview blend`), "
                + " + ".join(f"{p['weight']:.3g} x `{p['name']}`" for p in parts)
                + "; each file's training is in the data line and the commands below"]
    return [f"- seed {ckpt.get('seed')}; weights after epoch {ckpt.get('epoch')} of a "
            f"{ckpt.get('recipe', {}).get('epochs')}-epoch schedule (best validation score so far "
            f"{ckpt.get('best_score', 0):.4f} = {ckpt.get('selection', 'mean of polyp and neoplastic Dice')}, at epoch "
            f"{ckpt.get('best_epoch')})"]


def _recipe_lines(ckpt: dict) -> list[str]:
    if ckpt.get("blend") and not ckpt.get("recipe"):
        return ["- recipes: those of the averaged files (their cards, in this file's git history)"]
    return ["- recipe:", "```json", json.dumps(ckpt.get("recipe", {}), indent=1), "```"]


RESCORED = "## Re-scored with intervals and on the tower clip"


def scores_section(evaluation: dict, command: str) -> str:
    """A card section for a shipped model scored again by a later `polypview eval` (intervals, video, speed):
    for models whose training checkpoint is not shipped, so the card cannot be made again from it."""
    speed = "n/a" if evaluation.get("fps") is None else (
        f"{evaluation['latency_ms']:.1f} ms per frame ({evaluation['fps']:.1f} FPS), ONNX Runtime "
        f"{evaluation.get('provider', 'CPU')}" + (f", {evaluation['threads']} thread(s)" if evaluation.get("threads") else ""))
    lines = [
        RESCORED, "",
        f"`{command}`", "",
        f"### Scores on the {evaluation.get('split')} split ({evaluation.get('images')} images)",
        *_metrics_table(evaluation), "",
        *_region_lines(evaluation),
        *_video_lines(evaluation),
        f"Speed in the same run: {speed}.", "",
    ]
    return "\n".join(lines)


def with_scores_section(card: str, section: str) -> str:
    """The card with its re-scored section replaced (or added at the end)."""
    head = card.split(RESCORED)[0].rstrip("\n")
    return f"{head}\n\n{section}"


def write_card(path: Path, ckpt: dict, info, report, evaluation: dict) -> Path:
    """Write the card next to the model file; returns its path."""
    path = Path(path)
    curves = path.with_name(f"{path.stem}-curves.png")  # optional figure shipped beside the card
    text = card_text(info.architecture, ckpt, info, report, evaluation, curves.name if curves.is_file() else None)
    path.write_text(text)
    return path
