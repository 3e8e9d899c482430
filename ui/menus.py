"""The window's actions, menu bar, the list of shortcuts (F1) and About.

Every action is added to the window itself too, so its shortcuts work in full screen, where the
menu bar, the panel and the transport bar are hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QMainWindow, QMenu


@dataclass(frozen=True)
class ActionSpec:
    """One command: menu text, shortcuts (the first is shown in menus), the window method it calls."""

    name: str
    text: str
    keys: tuple[str, ...]
    slot: str
    checkable: bool = False
    tip: str = ""


ACTIONS = (
    ActionSpec("open", "&Open file…", ("Ctrl+O", "O"), "open_file_dialog", tip="play a video file"),
    ActionSpec("open_device", "Open &device…", ("Ctrl+D",), "open_device_dialog", tip="a capture card or webcam"),
    ActionSpec("recordings_folder", "Recordings &folder…", (), "choose_recordings_folder",
               tip="where recordings and snapshots go"),
    ActionSpec("quit", "&Quit", ("Ctrl+Q",), "close"),
    ActionSpec("play", "Pause", ("Space",), "toggle_play", tip="pause or play; after the end, play again"),
    ActionSpec("seek_back", "Back 5 s", ("Left",), "seek_back"),
    ActionSpec("seek_forward", "Forward 5 s", ("Right",), "seek_forward"),
    ActionSpec("step_back", "Previous frame", (",",), "step_back", tip="when paused"),
    ActionSpec("step_forward", "Next frame", (".",), "step_forward", tip="when paused"),
    ActionSpec("record", "Record", ("R",), "toggle_recording", checkable=True,
               tip="record the annotated video to the recordings folder"),
    ActionSpec("snapshot", "Snapshot", ("S",), "snapshot", tip="save the frame on screen as PNG"),
    ActionSpec("fullscreen", "&Full screen", ("F11", "F"), "toggle_fullscreen", checkable=True,
               tip="video and readouts only; Esc leaves"),
    ActionSpec("escape", "Leave full screen", ("Esc",), "leave_fullscreen"),
    ActionSpec("hud", "&Readouts (HUD)", ("H",), "toggle_hud", checkable=True,
               tip="frame rates, inference time and delays, below the video"),
    ActionSpec("masks", "Show &masks", ("M",), "toggle_masks", checkable=True, tip="the overlay on or off"),
    ActionSpec("names", "Class &names on polyps", ("N",), "toggle_names", checkable=True,
               tip="each polyp's class written beside it"),
    ActionSpec("sound", "&Sound when a polyp appears", ("B",), "toggle_sound", checkable=True,
               tip="a short tone when a polyp is first drawn (again after 2 s without one)"),
    ActionSpec("area_draw", "Draw the image &area…", ("A",), "draw_area",
               tip="drag over the endoscope's image: masks are drawn only there"),
    ActionSpec("area_find", "Find the image area", (), "find_area", tip="as at start (--roi auto)"),
    ActionSpec("area_whole", "Whole frame as image area", (), "whole_frame_area", tip="masks anywhere (--roi off)"),
    ActionSpec("area_show", "Show the image area", (), "show_area_outline", checkable=True,
               tip="a dotted outline where masks may be drawn (on screen only)"),
    ActionSpec("shortcuts", "&Keyboard shortcuts", ("F1",), "show_shortcuts"),
    ActionSpec("check", "System &check…", (), "system_check",
               tip="is this machine ready? packages, models, speed, recording, sound, GPU (as polypview check)"),
    ActionSpec("about", "&About polypview", (), "show_about"),
)

MENUS = {
    "&File": ("open", "open_device", "recent", "-", "recordings_folder", "-", "quit"),
    "&Playback": ("play", "seek_back", "seek_forward", "step_back", "step_forward", "-", "record", "snapshot"),
    "&View": ("fullscreen", "hud", "masks", "names", "sound", "-", "area_draw", "area_find", "area_whole", "area_show"),
    "&Help": ("shortcuts", "check", "about"),
}


def build_actions(window: QMainWindow) -> dict[str, QAction]:
    """Create every action, connected to its window method and added to the window."""
    actions = {}
    for spec in ACTIONS:
        action = QAction(spec.text, window)
        action.setShortcuts([QKeySequence(k) for k in spec.keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        key = f" ({spec.keys[0]})" if spec.keys else ""
        action.setToolTip(f"{spec.tip or spec.text.replace('&', '').rstrip('…')}{key}")
        action.setCheckable(spec.checkable)
        action.triggered.connect(getattr(window, spec.slot))
        window.addAction(action)
        actions[spec.name] = action
    return actions


def build_menus(window: QMainWindow, actions: dict[str, QAction]) -> QMenu:
    """The menu bar; returns the (empty) Recent files menu for the window to fill."""
    recent = QMenu("Open &recent", window)
    for title, names in MENUS.items():
        menu = window.menuBar().addMenu(title)
        for name in names:
            if name == "-":
                menu.addSeparator()
            elif name == "recent":
                menu.addMenu(recent)
            else:
                menu.addAction(actions[name])
    return recent


def shortcuts_text() -> str:
    """The F1 list: every shortcut with what it does."""
    rows = [f"{' / '.join(spec.keys):<14} {spec.text.replace('&', '').rstrip('…')}"
            + (f" ({spec.tip})" if spec.tip == "when paused" else "")
            for spec in ACTIONS if spec.keys]
    return "\n".join(rows)


def about_text(version: str, model: str | None, provider: str | None, log_file=None) -> str:
    running = f"{model} on {provider}" if model else "none (video only)"
    logged = f"\n\nLog file: {log_file}" if log_file else ""
    return (f"polypview {version}\n\nReal-time polyp segmentation overlay for colonoscopy video: red = neoplastic, "
            f"green = non-neoplastic.\n\nModel in use: {running}{logged}\n\nResearch use only. Not a medical "
            "device: it is not cleared or approved for diagnosis or treatment decisions.")
