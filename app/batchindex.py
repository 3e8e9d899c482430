"""The batch's index: DIR/index.csv and DIR/index.html (a row per video with its detection timeline),
and the table printed at the end of `polypview batch`."""

from __future__ import annotations

import csv
import html
import io
import os
from pathlib import Path

INDEX_COLUMNS = ("video", "name", "status", "attempts", "frames", "duration_s", "processing_fps", "frames_with_polyp",
                 "first_detection_s", "appearances", "neoplastic_regions", "non_neoplastic_regions", "error", "annotated_video",
                 "table", "timeline", "appearance_sheet")


def index_row(outcome) -> dict:
    """One video's row (empty fields where it has no summary)."""
    s = outcome.summary or {}
    regions = list((s.get("regions_per_class") or {}).values())
    outputs = s.get("outputs") or {}
    return {
        "video": outcome.job.path, "name": outcome.job.name, "status": outcome.status,
        "attempts": outcome.attempts or "", "frames": s.get("frames", ""), "duration_s": s.get("duration_s", ""),
        "processing_fps": s.get("processing_fps", ""), "frames_with_polyp": s.get("frames_with_polyp", ""),
        "first_detection_s": _maybe(s.get("first_detection_s")),
        "appearances": len(s["appearances_s"]) if "appearances_s" in s else "",
        "neoplastic_regions": regions[0] if regions else "",
        "non_neoplastic_regions": regions[1] if len(regions) > 1 else "",
        "error": outcome.error or "", "annotated_video": outputs.get("video") or "",
        "table": outputs.get("table", ""), "timeline": outputs.get("timeline", ""),
        "appearance_sheet": outputs.get("appearances") or "",
    }


def _maybe(value):
    return "" if value is None else value


def _atomic_write(path: Path, text: str) -> None:
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_index(out_dir: Path, outcomes, settings) -> None:
    rows = [index_row(o) for o in outcomes]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(Path(out_dir) / "index.csv", buffer.getvalue())
    _atomic_write(Path(out_dir) / "index.html", index_html(rows, settings))


def index_html(rows: list[dict], settings) -> str:
    """A self-contained page: settings, then a row per video with its timeline strip."""
    shown = ("name", "status", "frames", "duration_s", "processing_fps", "frames_with_polyp", "first_detection_s",
             "appearances", "neoplastic_regions", "non_neoplastic_regions", "error")
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in shown)
    body = []
    for row in rows:
        cells = "".join(f"<td>{html.escape(str(row[c]))}</td>" for c in shown)
        strip = f'<img src="{html.escape(row["timeline"])}" alt="detections over time">' if row["timeline"] else ""
        if row["appearance_sheet"]:
            strip += (f'<a href="{html.escape(row["appearance_sheet"])}"><img src="{html.escape(row["appearance_sheet"])}" '
                      'alt="each polyp appearance" width="600"></a>')
        video = f'<a href="{html.escape(row["annotated_video"])}">video</a>' if row["annotated_video"] else ""
        table = f'<a href="{html.escape(row["table"])}">frames</a>' if row["table"] else ""
        body.append(f'<tr class="{row["status"]}">{cells}<td>{strip}</td><td>{video} {table}</td></tr>')
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>polypview batch</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 6px}}
tr.failed{{background:#fdd}} img{{display:block}}</style></head><body>
<h1>polypview batch</h1>
<p>model {html.escape(settings.model)} (sha256 {settings.model_sha256[:16]}&hellip;); overlay
{html.escape(str(settings.overlay))}. Timeline: top half red where a neoplastic region was drawn, bottom half
green where a non-neoplastic one was; below it, the annotated frame at each polyp appearance (a polyp drawn
for 0.3 s after 2 s without one) with its time. Research software, not a medical device.</p>
<table><tr>{head}<th>timeline</th><th>files</th></tr>
{chr(10).join(body)}
</table></body></html>
"""


def print_table(outcomes, seconds: float, out_dir: Path) -> None:
    """The end-of-batch table on stdout: a line per video, then the totals."""
    rows = [index_row(o) for o in outcomes]
    width = max([len(r["name"]) for r in rows] + [5])
    print(f"{'video':<{width}}  {'status':<11} {'frames':>7} {'fps':>7} {'polyp fr':>8}  error")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['status']:<11} {r['frames']!s:>7} {r['processing_fps']!s:>7} "
              f"{r['frames_with_polyp']!s:>8}  {r['error']}")
    counts = {status: sum(r["status"] == status for r in rows) for status in ("done", "skipped", "failed", "interrupted")}
    frames = sum(o.summary["frames"] for o in outcomes if o.status == "done")
    rate = frames / seconds if seconds > 0 else 0.0
    print(f"{len(rows)} videos: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
          + f"; {frames} frames processed in {seconds:.1f} s = {rate:.1f} frames/s; index: {out_dir / 'index.html'}")
