"""The toolbar's choosers: which model bundle, and which input (microphone or a file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

from sertk.errors import AudioError

BROWSE = "__browse__"


def describe_source(source: Any) -> str:
    """A short human description of a live source."""
    name = getattr(source, "device_name", None)
    if name is not None:
        return f"microphone {name}"
    path = getattr(source, "path", None)
    if path is not None:
        pace = "in real time" if getattr(source, "realtime", False) else "as fast as possible"
        return f"{Path(path).name} (played {pace})"
    return type(source).__name__


def bundle_title(path: str) -> str:
    """A short name for a bundle folder: its last three parts when it is called ``bundle``
    (``run/final/bundle``), else its own name."""
    parts = Path(path).parts
    return "/".join(parts[-3:]) if parts and parts[-1] == "bundle" else Path(path).name or path


class ModelChooser(QComboBox):
    """ "Default model", bundles chosen so far, and "Browse…" (a bundle folder).

    ``chosen(name_or_path)`` fires when the user picks another model; ``set_current`` shows the
    model actually loaded (or goes back to it after a failed load).
    """

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.current_name: str | None = None
        self.setMinimumContentsLength(22)
        self.addItem("Default model", "default")
        self.addItem("Browse…", BROWSE)
        self.activated.connect(self._activated)

    def _index_of(self, name: str) -> int:
        index = self.findData(name)
        if index < 0:
            index = self.count() - 1  # just before "Browse…"
            self.insertItem(index, bundle_title(name), name)
            self.setItemData(index, name, Qt.ItemDataRole.ToolTipRole)
        return index

    def set_current(self, name: str | os.PathLike | None) -> None:
        """Select ``name`` (added when new); None goes back to the loaded model."""
        if name is not None:
            self.current_name = str(name)
        if self.current_name is not None:
            self.setCurrentIndex(self._index_of(self.current_name))

    def _activated(self, index: int) -> None:
        data = self.itemData(index)
        if data == BROWSE:
            data = QFileDialog.getExistingDirectory(self, "Choose a model bundle folder")
            if not data:
                self.set_current(None)
                return
            self.setCurrentIndex(self._index_of(data))
        if data != self.current_name:
            self.chosen.emit(str(data))


class InputChooser(QComboBox):
    """Microphones PortAudio sees (default first), plus ``file`` played as a live input.

    When no microphone can be used, one entry says why; Start then shows that message.
    """

    def __init__(
        self,
        *,
        audio_input: int | str | None = None,
        file: str | os.PathLike | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setMinimumContentsLength(26)
        if file is not None:
            self.addItem(f"File: {Path(file).name} (played live)", ("file", str(file)))
        self._add_devices()
        if audio_input is not None:
            self._select_input(audio_input)

    def _add_devices(self) -> None:
        from sertk.live import format_devices, list_devices

        try:
            inputs = [d for d in list_devices() if d["inputs"] > 0]
        except AudioError as error:
            self.addItem("No microphone available", ("error", str(error)))
            return
        if not inputs:
            self.addItem("No microphone found", ("error", format_devices([])))
            return
        self.addItem("Default microphone", ("device", None))
        for d in inputs:
            self.addItem(f"{d['index']}: {d['name']}", ("device", d["index"]))

    def _select_input(self, audio_input: int | str) -> None:
        wanted = int(audio_input) if str(audio_input).strip().isdigit() else audio_input
        for index in range(self.count()):
            kind, value = self.itemData(index)
            if kind == "device" and value is not None:
                if value == wanted or (isinstance(wanted, str) and wanted in self.itemText(index)):
                    self.setCurrentIndex(index)
                    return
        self.addItem(f"Input {audio_input}", ("device", wanted))  # Start gives the precise error
        self.setCurrentIndex(self.count() - 1)

    def open_source(self, sampling_rate: int) -> Any:
        """The chosen input as a live source at ``sampling_rate``; AudioError when it cannot
        be opened (no microphone, unreadable file)."""
        from sertk.live import FileSource, MicrophoneSource

        kind, value = self.currentData()
        if kind == "file":
            return FileSource(value, sampling_rate=sampling_rate, realtime=True)
        if kind == "device":
            return MicrophoneSource(value, sampling_rate=sampling_rate)
        raise AudioError(value)
