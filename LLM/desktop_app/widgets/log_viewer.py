"""A log file's tail shown in the window: works where the desktop has no handler for ``.log`` files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .transcript import mono_font

TAIL_LINES = 400
TAIL_BYTES = 256 * 1024  # enough for 400 engine log lines; a huge log is never read whole
FOLLOW_MS = 500


def read_tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str:
    """The last ``lines`` lines of ``path`` (undecodable bytes replaced); raises OSError when unreadable."""
    with path.open("rb") as file:
        size = file.seek(0, 2)
        file.seek(max(0, size - max_bytes))
        data = file.read()
    text = data.decode("utf-8", errors="replace")
    kept = text.splitlines()
    if size > max_bytes and kept:
        kept = kept[1:]  # the first line read is probably cut
    return "\n".join(kept[-lines:])


class LogViewer(QDialog):
    """The tail of a log, its path (selectable), Copy, and Follow: while checked, the file is re-read and the
    view stays at its end. "Open in editor" hands the file to the desktop, where it has a handler."""

    def __init__(self, path: Path, title: str, open_externally: Callable[[Path], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="logViewer")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(title)
        self.path = Path(path)
        self.resize(820, 520)
        self.path_label = QLabel(str(self.path), objectName="logPath")
        self.path_label.setTextFormat(Qt.TextFormat.PlainText)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.path_label.setWordWrap(True)
        self.path_label.setToolTip("Where the full log is; select to copy")
        self.view = QPlainTextEdit(objectName="logText")
        self.view.setReadOnly(True)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.view.setFont(mono_font())
        self.follow = QCheckBox("Follow", objectName="logFollow")
        self.follow.setToolTip("Re-read the file as it grows and keep to its end")
        self.follow.setChecked(True)
        self.follow.toggled.connect(self._follow_toggled)
        copy = QPushButton("Copy", objectName="logCopy")
        copy.setToolTip(f"Copy the lines shown (the last {TAIL_LINES})")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.view.toPlainText()))
        self.open_button = QPushButton("Open in editor", objectName="logOpenExternally")
        self.open_button.setToolTip("Open the whole file with the desktop's program for it")
        self.open_button.setVisible(open_externally is not None)
        if open_externally is not None:
            self.open_button.clicked.connect(lambda: open_externally(self.path))
        close = QPushButton("Close", objectName="logClose")
        close.clicked.connect(self.close)

        row = QHBoxLayout()
        row.addWidget(self.follow)
        row.addStretch(1)
        row.addWidget(copy)
        row.addWidget(self.open_button)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.path_label)
        layout.addWidget(self.view, 1)
        layout.addLayout(row)

        self._timer = QTimer(self, interval=FOLLOW_MS)
        self._timer.timeout.connect(self.reload)
        self.reload()
        self._follow_toggled(True)

    def reload(self) -> None:
        """Show the file's tail again; the view is only touched when the text changed, so a selection or a
        scrolled-back view survives an idle file."""
        try:
            text = read_tail(self.path)
        except FileNotFoundError:
            text = f"No log yet: {self.path} does not exist (the server has not been started)."
        except OSError as exc:
            text = f"Cannot read {self.path}: {exc.strerror or exc}"
        if text == self.view.toPlainText():
            return
        self.view.setPlainText(text)
        if self.follow.isChecked():
            bar = self.view.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _follow_toggled(self, on: bool) -> None:
        if on:
            self.reload()
            self._timer.start()
        else:
            self._timer.stop()


def show_log(parent: QWidget, path: Path, title: str,
             open_externally: Callable[[Path], None] | None = None) -> LogViewer:
    """The viewer of ``path`` over ``parent``: the one already open is raised rather than a second opened."""
    for viewer in parent.findChildren(LogViewer):
        if viewer.path == Path(path) and viewer.isVisible():
            viewer.reload()
            viewer.raise_()
            viewer.activateWindow()
            return viewer
    viewer = LogViewer(path, title, open_externally, parent)
    viewer.show()
    return viewer
