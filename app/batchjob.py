"""One video of a `polypview batch`: every frame through the model, and its four outputs.

Per video NAME, in the output folder:
    NAME.mp4            the annotated video (unless the batch says --no-video)
    NAME.frames.csv     one row per frame: time, polyp regions with class, area, score and box
    NAME.timeline.png   a strip of the video's length: red/green where regions of each class were seen
    NAME.appearances.jpg  a contact sheet: the annotated frame at each polyp appearance, with its time (when
                        any polyp appeared)
    NAME.json           the summary, written last: its presence means the video is complete

Each file is written under a `.partial.` name and renamed when whole, so an interrupted or crashed
run never leaves a file that looks finished. Nothing here imports Ray: a batch worker calls
`process_video`, and so can a plain loop or a test.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from polypview.alerts import AlertGate, clock
from polypview.errors import InputError, OutputError, PolypviewError
from polypview.overlay import UNSURE_NAME, OverlaySettings, Region, find_regions

KINDS = {"video": ".mp4", "table": ".frames.csv", "timeline": ".timeline.png", "appearances": ".appearances.jpg",
         "summary": ".json"}
PARTIAL = ".partial"
TIMELINE_WIDTH, TIMELINE_HEIGHT = 600, 24
SHEET_MAX, SHEET_COLUMNS, THUMB_WIDTH = 24, 6, 240  # the contact sheet: at most 24 appearances, 6 a row
TABLE_COLUMNS = ("frame", "time_s", "masked", "regions", "neoplastic", "non_neoplastic", "max_score", "details")


@dataclass(frozen=True)
class BatchSettings:
    """What decides a video's outputs: a summary made with other settings is redone."""

    model: str  # the model's name (file stem)
    model_sha256: str
    overlay: dict = field(default_factory=lambda: asdict(OverlaySettings()))
    video: bool = True  # write the annotated MP4

    def key(self) -> dict:
        return {"model_sha256": self.model_sha256, "overlay": self.overlay, "video": self.video}


@dataclass(frozen=True)
class VideoJob:
    """One input video and where its outputs go."""

    path: str
    name: str  # output file stem, unique within the batch
    out_dir: str

    def output(self, kind: str, partial: bool = False) -> Path:
        stem, ext = KINDS[kind].rsplit(".", 1)
        return Path(self.out_dir) / f"{self.name}{stem}{PARTIAL if partial else ''}.{ext}"

    def remove_partials(self) -> None:
        """Delete this video's half-written outputs."""
        for kind in KINDS:
            self.output(kind, partial=True).unlink(missing_ok=True)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_summary(job: VideoJob) -> dict | None:
    """The video's finished summary, or None when there is none (or it is unreadable)."""
    try:
        return json.loads(job.output("summary").read_text())
    except (OSError, ValueError):
        return None


def is_done(job: VideoJob, settings: BatchSettings) -> bool:
    """True when the video's summary exists and was made with this model file and these settings (an overlay
    setting added since it was made counts at its default, which draws as before it existed)."""
    summary = read_summary(job)
    if summary is None or summary.get("input") != job.path:
        return False
    saved = summary.get("settings")
    if isinstance(saved, dict) and isinstance(saved.get("overlay"), dict):
        saved = {**saved, "overlay": {**asdict(OverlaySettings()), **saved["overlay"]}}
    return saved == settings.key()


class TableSink:
    """Pipeline sink: one row per presented frame, from the prediction whose mask was drawn."""

    def __init__(self, settings: OverlaySettings, class_names):
        self.settings = settings
        self.class_names = tuple(class_names)
        self.rows: list[tuple] = []
        self.marks: list[tuple[bool, bool]] = []  # (neoplastic seen, non-neoplastic seen) per frame
        self.region_counts = [0] * len(self.class_names)
        self.first_detection: float | None = None
        self.appearances: list[float] = []  # when a polyp appearance began (the window's alert moments), s
        self.thumbnails: list[np.ndarray] = []  # the annotated frame of the first SHEET_MAX appearances, shrunk
        self._gate = AlertGate()
        self.errors: list[PolypviewError] = []

    def on_frame(self, p) -> None:
        if p.reshown:
            return
        regions = find_regions(p.prediction, self.settings, len(self.class_names), p.raw.shape) \
            if p.prediction is not None else []
        appeared = len(self.appearances)
        self._add(len(self.rows), p.pts, p.prediction is not None, regions)
        if len(self.appearances) > appeared and len(self.thumbnails) < SHEET_MAX:
            self.thumbnails.append(thumbnail(p.image, self.appearances[-1]))

    def _add(self, frame: int, pts: float, masked: bool, regions: list[Region]) -> None:
        counts = [sum(r.label == k for r in regions) for k in range(len(self.class_names))]
        for k, n in enumerate(counts):
            self.region_counts[k] += n
        if regions and self.first_detection is None:
            self.first_detection = pts
        if self._gate.update(pts, bool(regions)):
            self.appearances.append(round(pts, 4))
        details = json.dumps([{"class": self._name(r.label), "area": round(r.area, 5), "score": round(r.score, 4),
                               "box": list(r.box)} for r in regions], separators=(",", ":"))
        self.rows.append((frame, round(pts, 4), int(masked), len(regions), counts[0],
                          counts[1] if len(counts) > 1 else 0, round(max((r.score for r in regions), default=0.0), 4),
                          details))
        self.marks.append((counts[0] > 0, len(counts) > 1 and counts[1] > 0))

    def _name(self, label: int) -> str:
        if label == len(self.class_names) and label >= 2:
            return UNSURE_NAME  # drawn yellow: --class-confidence
        return self.class_names[label] if label < len(self.class_names) else str(label)

    def on_error(self, e: PolypviewError) -> None:
        self.errors.append(e)

    def on_finished(self, summary) -> None:
        pass

    def table_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TABLE_COLUMNS)
        writer.writerows(self.rows)
        return out.getvalue()


def timeline_image(marks: list[tuple[bool, bool]], colors_bgr, width: int = TIMELINE_WIDTH,
                   height: int = TIMELINE_HEIGHT) -> np.ndarray:
    """A strip of the video's length: each column covers its share of the frames; top half red where a
    neoplastic region was seen, bottom half green where a non-neoplastic one was, dark grey elsewhere."""
    image = np.full((height, width, 3), 48, np.uint8)
    if not marks:
        return image
    seen = np.array(marks, dtype=bool).reshape(len(marks), 2)
    columns = np.minimum((np.arange(len(marks)) * width) // len(marks), width - 1)
    for k, (top, bottom) in enumerate(((0, height // 2), (height // 2, height))):
        hit = np.zeros(width, bool)
        np.logical_or.at(hit, columns[seen[:, k]], True)
        image[top:bottom, hit] = colors_bgr[min(k, len(colors_bgr) - 1)]
    return image


def thumbnail(image: np.ndarray, seconds: float, width: int = THUMB_WIDTH) -> np.ndarray:
    """`image` shrunk to `width`, its video time written in its top-left corner on a dark label."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    text = clock(seconds)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    small[:th + base + 6, :tw + 8] = (24, 24, 24)
    cv2.putText(small, text, (4, th + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
    return small


def contact_sheet(thumbnails: list[np.ndarray], columns: int = SHEET_COLUMNS, gap: int = 4) -> np.ndarray:
    """The thumbnails in rows of `columns` on a dark ground (each cell as large as the largest thumbnail)."""
    cell_h, cell_w = max(t.shape[0] for t in thumbnails), max(t.shape[1] for t in thumbnails)
    cols = min(columns, len(thumbnails))
    rows = -(-len(thumbnails) // cols)
    sheet = np.full((rows * (cell_h + gap) + gap, cols * (cell_w + gap) + gap, 3), 32, np.uint8)
    for k, t in enumerate(thumbnails):
        y, x = gap + (k // cols) * (cell_h + gap), gap + (k % cols) * (cell_w + gap)
        sheet[y:y + t.shape[0], x:x + t.shape[1]] = t
    return sheet


def _publish(partial: Path, final: Path) -> None:
    try:
        os.replace(partial, final)
    except OSError as exc:
        raise OutputError(f"cannot write {final}: {exc.strerror or exc}") from None


def _write_text(job: VideoJob, kind: str, text: str) -> None:
    partial = job.output(kind, partial=True)
    try:
        partial.write_text(text)
    except OSError as exc:
        raise OutputError(f"cannot write {partial}: {exc.strerror or exc}") from None
    _publish(partial, job.output(kind))


def _write_image(job: VideoJob, kind: str, image: np.ndarray) -> None:
    partial = job.output(kind, partial=True)
    if not cv2.imwrite(str(partial), image):
        raise OutputError(f"cannot write {partial}")
    _publish(partial, job.output(kind))


def process_video(job: VideoJob, engine, settings: BatchSettings, attempt: int = 1) -> dict:
    """Run every frame of the job's video through `engine`; write its outputs; return its summary.

    Raises the first PolypviewError (unreadable video, failing model, unwritable folder): a video
    that does not finish cleanly leaves no outputs, only removed partial files."""
    from polypview.pipeline import Pipeline, PipelineConfig
    from polypview.sources import open_source

    if Path(job.path).resolve().parent == Path(job.out_dir).resolve() and Path(job.path).name == job.output("video").name:
        raise OutputError(f"the annotated video would overwrite the input {job.path}: choose another --out folder")
    job.remove_partials()
    overlay = OverlaySettings(**settings.overlay)
    started = time.time()
    try:
        source = open_source(job.path, kind="file")
    except PolypviewError:
        raise
    except Exception as exc:  # anything the decoder library throws for a bad file
        raise InputError(f"cannot read {job.path}: {exc}") from None
    try:
        sink = TableSink(overlay, engine.info.classes)
        record = job.output("video", partial=True) if settings.video else None
        config = PipelineConfig(mode="sync", sync_workers=1, realtime=False, record_path=record)
        pipeline = Pipeline(source, engine, config, sink)
        pipeline.set_overlay(overlay)
        pipeline.start()
        pipeline.wait()
        summary = pipeline.stop()
        fps, frame_count = source.fps, len(sink.rows)
    finally:
        source.close()
    errors = list(summary.errors) + sink.errors
    if errors:
        job.remove_partials()
        raise errors[0]
    if frame_count == 0:
        job.remove_partials()
        raise InputError(f"{job.path} has no decodable frame")
    if record is not None:
        _publish(record, job.output("video"))
    _write_text(job, "table", sink.table_text())
    _write_image(job, "timeline", timeline_image(sink.marks, _bgr(engine.info.colors)))
    if sink.thumbnails:
        _write_image(job, "appearances", contact_sheet(sink.thumbnails))
    else:
        job.output("appearances").unlink(missing_ok=True)  # a sheet left by an earlier run with other settings
    result = _summary(job, settings, sink, summary, fps, frame_count, time.time() - started, attempt)
    _write_text(job, "summary", json.dumps(result, indent=2))
    return result


def _bgr(colors_rgb) -> list[tuple[int, int, int]]:
    return [tuple(int(c) for c in reversed(rgb)) for rgb in colors_rgb]


def _summary(job: VideoJob, settings: BatchSettings, sink: TableSink, summary, fps: float, frames: int,
             seconds: float, attempt: int) -> dict:
    from polypview import __version__

    names = sink.class_names
    return {
        "input": job.path, "name": job.name, "frames": frames,
        "duration_s": round(frames / fps, 3) if fps > 0 else None, "video_fps": round(fps, 3),
        "processing_s": round(seconds, 3), "processing_fps": round(frames / seconds, 2) if seconds > 0 else None,
        "frames_with_polyp": sum(row[3] > 0 for row in sink.rows),
        "first_detection_s": sink.first_detection,
        "appearances_s": sink.appearances,
        "regions_per_class": dict(zip(names, sink.region_counts)),
        "frames_per_class": {name: sum(m[k] for m in sink.marks) for k, name in enumerate(names[:2])},
        "model": settings.model, "model_sha256": settings.model_sha256, "settings": settings.key(),
        "decode_errors": summary.decode_errors, "errors": [],
        "outputs": {"video": job.output("video").name if settings.video else None,
                    "table": job.output("table").name, "timeline": job.output("timeline").name,
                    "appearances": job.output("appearances").name if sink.thumbnails else None},
        "attempt": attempt, "worker": f"{socket.gethostname()}:{os.getpid()}",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "polypview": __version__,
    }


def output_names(videos: list[Path]) -> list[str]:
    """A file stem per video: its own stem, plus a short hash of its path where two stems collide."""
    stems = [v.stem for v in videos]
    return [stem if stems.count(stem) == 1 else f"{stem}-{hashlib.sha1(str(v).encode()).hexdigest()[:8]}"
            for stem, v in zip(stems, videos)]
