"""The controls: a side panel (model, overlay, record, snapshot) and a transport bar (play/pause, seek)."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from polypview.defaults import OVERLAY_STYLES, UNSURE_CONFIDENCE
from polypview.session import NO_MODEL  # video only
from polypview.ui.hud import LegendWidget

OPEN_MODEL_ITEM = "Open model file…"
AREA_STEP = 0.0001  # the min-area slider moves in steps of 0.01 % of the image area...
AREA_STEPS = 100  # ...up to 1 % (further when a larger value was given on the command line)


def _slider(lo: int, hi: int, value: int) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(lo, hi)
    slider.setValue(value)
    slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keep Space/R/S for the window's shortcuts
    return slider


def action_button(action: QAction, expand: bool = True) -> QToolButton:
    """A button that shows and triggers a window action (text, shortcut tooltip, checked state)."""
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    if expand:
        button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return button


def format_time(seconds: float) -> str:
    """m:ss for the transport bar."""
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ControlPanel(QWidget):
    """Model choice, legend, overlay settings and the record/snapshot/full-screen buttons."""

    model_chosen = pyqtSignal(str)  # a model name, NO_MODEL or OPEN_MODEL_ITEM
    overlay_changed = pyqtSignal()  # read overlay_values()

    def __init__(self, actions: list[QAction], parent: QWidget | None = None):
        super().__init__(parent)
        self.setFixedWidth(250)
        layout = QVBoxLayout(self)
        layout.addWidget(self._model_box())
        layout.addWidget(self._overlay_box())
        for action in actions:
            layout.addWidget(action_button(action))
        layout.addStretch(1)

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        layout = QVBoxLayout(box)
        self.model_combo = QComboBox()
        self.model_combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.model_combo.setToolTip("the network that draws the masks; 'none' shows the video only")
        self.model_combo.activated.connect(lambda i: self.model_chosen.emit(self.model_combo.itemText(i)))
        self.legend = LegendWidget()
        layout.addWidget(self.model_combo)
        layout.addWidget(self.legend)
        return box

    def _overlay_box(self) -> QGroupBox:
        box = QGroupBox("Overlay")
        form = QFormLayout(box)
        self.overlay_check = QCheckBox("show masks")
        self.overlay_check.setChecked(True)
        self.overlay_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.overlay_check.setToolTip("draw the model's masks over the video (M)")
        self.legend_check = QCheckBox("legend in video")
        self.legend_check.setToolTip("burn the class legend into the video, in the corner with no burned-in text")
        self.legend_check.setChecked(True)
        self.legend_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tags_check = QCheckBox("class name on each polyp")
        self.tags_check.setToolTip("write each polyp's class name beside it: readable without telling red from green")
        self.tags_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.unsure_check = QCheckBox("yellow if class is unsure")
        self.unsure_check.setToolTip("a polyp the network cannot call neoplastic or not with confidence is drawn "
                                     "yellow, 'class uncertain', instead of red or green")
        self.unsure_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._class_confidence = UNSURE_CONFIDENCE  # the value the box applies when ticked
        self.sound_check = QCheckBox("sound when a polyp appears")
        self.sound_check.setToolTip("a short tone when a polyp is first drawn, again only after 2 s without one (B)")
        self.sound_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.region_check = QCheckBox("one class per polyp")
        self.region_check.setChecked(True)
        self.region_check.setToolTip("each polyp region takes the class most of its pixels have")
        self.region_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.style_combo = QComboBox()
        self.style_combo.addItems(OVERLAY_STYLES)
        self.style_combo.setToolTip("filled masks, outlines only, or a box around each polyp")
        self.style_combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.opacity_slider = _slider(0, 100, 45)
        self.opacity_slider.setToolTip("how strongly filled masks colour the image")
        self.threshold_slider = _slider(1, 99, 50)
        self.threshold_slider.setToolTip("polyp confidence from which a pixel is drawn")
        self.peak_slider = _slider(0, 99, 90)
        self.peak_slider.setToolTip("a region is drawn only if its most confident pixel reaches this: fewer faint "
                                    "false regions on normal mucosa (at or below the threshold: off)")
        self.area_slider = _slider(0, AREA_STEPS, 0)
        self._min_area = 0.0  # exact (set_overlay_values): a value between the slider's steps stays until it moves
        self.area_slider.setToolTip("smaller regions are not drawn (a share of the image area): raise it to hide "
                                    "specks, lower it for tiny polyps")
        self.opacity_label, self.threshold_label, self.peak_label = QLabel(), QLabel(), QLabel()
        self.area_label = QLabel()
        form.addRow(self.overlay_check)
        form.addRow(self.legend_check)
        form.addRow(self.region_check)
        form.addRow(self.tags_check)
        form.addRow(self.unsure_check)
        form.addRow(self.sound_check)
        form.addRow("style", self.style_combo)
        form.addRow(self.opacity_label, self.opacity_slider)
        form.addRow(self.threshold_label, self.threshold_slider)
        form.addRow(self.peak_label, self.peak_slider)
        form.addRow(self.area_label, self.area_slider)
        self.area_slider.valueChanged.connect(self._area_moved)  # before _changed, which reads the value
        for signal in (self.overlay_check.toggled, self.legend_check.toggled, self.region_check.toggled,
                       self.tags_check.toggled, self.unsure_check.toggled,
                       self.style_combo.currentIndexChanged, self.opacity_slider.valueChanged,
                       self.threshold_slider.valueChanged, self.peak_slider.valueChanged,
                       self.area_slider.valueChanged):
            signal.connect(self._changed)
        self._update_labels()
        return box

    def set_models(self, names: list[str], current: str | None) -> None:
        """Fill the model list: shipped names, the current file if not shipped, 'none', the open item."""
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        extra = [current] if current and current not in names and current != NO_MODEL else []
        self.model_combo.addItems(list(names) + extra + [NO_MODEL, OPEN_MODEL_ITEM])
        if current:
            self.model_combo.setCurrentText(current)
        self.model_combo.blockSignals(False)

    def set_overlay_values(self, enabled: bool, style: str, opacity: float, threshold: float, legend: bool,
                           one_class_per_region: bool, min_peak: float, min_area: float,
                           name_tags: bool, class_confidence: float) -> None:
        """Show these settings without emitting overlay_changed; they are kept exactly as given (a --min-area
        between the slider's steps or above its 1 % is not rounded or clamped when another control moves)."""
        widgets = (self.overlay_check, self.legend_check, self.region_check, self.tags_check, self.unsure_check,
                   self.style_combo,
                   self.opacity_slider, self.threshold_slider, self.peak_slider, self.area_slider)
        for w in widgets:
            w.blockSignals(True)
        self.overlay_check.setChecked(enabled)
        self.legend_check.setChecked(legend)
        self.region_check.setChecked(one_class_per_region)
        self.tags_check.setChecked(name_tags)
        self.unsure_check.setChecked(class_confidence > 0)
        if class_confidence > 0:
            self._class_confidence = class_confidence  # e.g. --class-confidence 0.8: kept when the box is ticked again
        self.style_combo.setCurrentText(style)
        self.opacity_slider.setValue(round(opacity * 100))
        self.threshold_slider.setValue(round(threshold * 100))
        self.peak_slider.setValue(round(min_peak * 100))
        steps = round(min_area / AREA_STEP)
        self.area_slider.setMaximum(max(AREA_STEPS, steps))
        self.area_slider.setValue(steps)
        self._min_area = min_area
        for w in widgets:
            w.blockSignals(False)
        self._update_labels()

    def overlay_values(self) -> dict:
        """The settings the widgets show, as OverlaySettings fields."""
        return {
            "enabled": self.overlay_check.isChecked(),
            "style": self.style_combo.currentText(),
            "opacity": self.opacity_slider.value() / 100,
            "threshold": self.threshold_slider.value() / 100,
            "min_peak": self.peak_slider.value() / 100,
            "min_area": self._min_area,
            "legend": self.legend_check.isChecked(),
            "one_class_per_region": self.region_check.isChecked(),
            "name_tags": self.tags_check.isChecked(),
            "class_confidence": self._class_confidence if self.unsure_check.isChecked() else 0.0,
        }

    def _area_moved(self, value: int) -> None:
        self._min_area = value * AREA_STEP

    def _changed(self) -> None:
        self._update_labels()
        self.overlay_changed.emit()

    def _update_labels(self) -> None:
        filled = self.style_combo.currentText() == "fill"
        self.unsure_check.setEnabled(self.region_check.isChecked())  # a class per polyp, or none: not per pixel
        self.opacity_slider.setEnabled(filled)  # contours and boxes are drawn solid
        self.opacity_label.setEnabled(filled)
        self.opacity_label.setText(f"opacity {self.opacity_slider.value()}%")
        self.threshold_label.setText(f"threshold {self.threshold_slider.value() / 100:.2f}")
        peak = self.peak_slider.value()
        self.peak_label.setText(f"region peak {peak / 100:.2f}" if peak > self.threshold_slider.value()
                                else "region peak off")
        self.area_label.setText(f"min area {self._min_area * 100:.{2 if self._min_area >= AREA_STEP else 3}f}%")


class TransportBar(QWidget):
    """Play/pause, a seek slider (files only) and the position."""

    seek_requested = pyqtSignal(float)  # seconds

    def __init__(self, play_action: QAction, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(action_button(play_action, expand=False))
        self.slider = _slider(0, 0, 0)
        self.slider.setTracking(False)  # seek once on release, not on every pixel of a drag
        self.slider.valueChanged.connect(lambda ms: self.seek_requested.emit(ms / 1000))
        self.time_label = QLabel("0:00")
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.time_label)
        self._duration = 0.0

    def set_duration(self, seconds: float | None) -> None:
        """Enable seeking over [0, seconds]; None (a live device) hides the slider."""
        self._duration = seconds or 0.0
        self.slider.setVisible(bool(seconds))
        self.slider.blockSignals(True)
        self.slider.setRange(0, int(self._duration * 1000))
        self.slider.blockSignals(False)

    def show_end(self) -> None:
        """The input ended: the position reads the full length (not the last frame's start)."""
        if self._duration:
            self.set_position(self._duration)

    def set_position(self, seconds: float) -> None:
        """Move the slider (unless the user holds it) and update the time label."""
        if not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(int(seconds * 1000))
            self.slider.blockSignals(False)
        total = f" / {format_time(self._duration)}" if self._duration else ""
        self.time_label.setText(format_time(seconds) + total)


BANNER_STYLE = "QWidget#banner { background-color: #5a3b00; } QLabel { color: #ffe0a0; font-weight: bold; }"


class SlowModelBanner(QWidget):
    """A plain warning above the video when the model masks too few frames, with the way out."""

    switch = pyqtSignal(str)  # the faster model's name

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(BANNER_STYLE)
        layout = QHBoxLayout(self)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton()
        self.button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.button.clicked.connect(lambda: self.switch.emit(self._faster))
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        self._faster = ""
        self.hide()

    def warn(self, model: str, share: float, inference_ms: float, faster: str | None) -> None:
        ms = f"{inference_ms:.0f} ms per frame" if inference_ms == inference_ms else "slow"
        self.label.setText(f"{model} is too slow for this computer ({ms}): only {share:.0%} of frames get a mask, "
                           "so a polyp can go unmarked. No colour does not mean no polyp.")
        self._faster = faster or ""
        self.button.setText(f"Use {faster}")
        self.button.setVisible(bool(faster))
        self.show()
