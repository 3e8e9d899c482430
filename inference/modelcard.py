"""Model cards: a Markdown file beside each shipped model, generated from what was measured.

Everything in a card comes from the training checkpoint (recipe, seed, commands, curves),
the export report (file size, precision, parity) and a `polypview eval` result (test-split
scores, ONNX Runtime speed): nothing is typed in by hand.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

CLASS_ROWS = (("polyp", "polyp"), ("neoplastic", "neoplastic"), ("non_neoplastic", "non-neoplastic"))


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _metrics_table(evaluation: dict) -> list[str]:
    lines = ["| class | Dice (micro) | IoU (micro) | Dice (macro) | IoU (macro) |", "|---|---|---|---|---|"]
    for key, label in CLASS_ROWS:
        micro, macro = evaluation["micro"][key], evaluation.get("macro", {}).get(key, {})
        lines.append(f"| {label} | {_pct(micro['dice'])} | {_pct(micro['iou'])} | "
                     f"{_pct(macro.get('dice'))} | {_pct(macro.get('iou'))} |")
    return lines


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
    return ["As the app colours masks by default (each connected polyp region takes its majority class): "
            f"micro Dice {dice}; micro IoU {iou}.", ""]


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
        f"- seed {ckpt.get('seed')}; weights after epoch {ckpt.get('epoch')} of a "
        f"{ckpt.get('recipe', {}).get('epochs')}-epoch schedule (best validation score so far "
        f"{ckpt.get('best_score', 0):.4f} = mean of polyp and neoplastic Dice, at epoch {ckpt.get('best_epoch')})",
        "- commands (in order: `--resume` continues a run, `--init` fine-tunes the previous weights with a "
        "new optimizer and schedule; the curve below is the last run's):",
        *[f"  - `{c}`" for c in commands if c],
        "- recipe:",
        "```json",
        json.dumps(ckpt.get("recipe", {}), indent=1),
        "```",
        "",
        f"## Scores on the {evaluation.get('split')} split ({evaluation.get('images')} images; micro = summed "
        "over all pixels of the split, macro = mean of per-image scores with smooth 1)",
        *_metrics_table(evaluation),
        "",
        "Label decision: argmax over (neoplastic, non-neoplastic, background) for softmax models; "
        "prediction resized to the mask with nearest neighbour (BlazeNeo's evaluation).",
        "",
        *_region_lines(evaluation),
        "## Speed on the development machine",
        f"- {speed}; {platform.machine()} {platform.processor() or ''}, 2 CPU cores shared with other jobs "
        "while measured (figures are indicative)",
        "",
        "## Validation curve",
        *_history_table(history),
        "",
    ]
    if curves:
        lines += [f"Whole training (all commands above, epochs numbered across runs): ![curves]({curves})", ""]
    return "\n".join(lines)


def write_card(path: Path, ckpt: dict, info, report, evaluation: dict) -> Path:
    """Write the card next to the model file; returns its path."""
    path = Path(path)
    curves = path.with_name(f"{path.stem}-curves.png")  # optional figure shipped beside the card
    text = card_text(info.architecture, ckpt, info, report, evaluation, curves.name if curves.is_file() else None)
    path.write_text(text)
    return path
