"""What the endpoint for other apps did, as the Endpoint tab shows it: its recent requests (a table model kept in
step with the endpoint's Activity without a rebuild) and one request's exchange, both bodies readable."""

from __future__ import annotations

import json
import time

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QSplitter, QVBoxLayout, QWidget

from LLM.core.router import RoutedRequest

from .tones import tone
from .transcript import mono_font

REQUEST_HEADERS = ("Time", "Client", "Model", "Path", "Status", "Duration", "Notes")
STATUS_COLUMN = REQUEST_HEADERS.index("Status")
ROLE_RECORD = Qt.ItemDataRole.UserRole


def clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def shown_duration(ms: float | None) -> str:
    if ms is None:
        return "…"
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def shown_status(record: RoutedRequest) -> str:
    """The status code, or "…" while in flight, with the phase when it says more (a model starting, a queue)."""
    if record.status is not None:
        return str(record.status)
    return f"… {record.phase}" if record.phase in ("starting", "queued") else "…"


def notes(record: RoutedRequest) -> str:
    return ", ".join(note for note, on in (("cold start", record.cold_start), ("streamed", record.stream)) if on)


def readable_body(body: bytes | bytearray) -> str:
    """A body for people: JSON pretty-printed, anything else (an SSE stream, a cut body) as text."""
    if not body:
        return ""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:  # not JSON (UnicodeDecodeError is one too): the text as it came, bad bytes marked
        return bytes(body).decode("utf-8", errors="replace")


def summary_line(record: RoutedRequest) -> str:
    parts = [f"{record.method} {record.path}", f"from {record.client}"]
    if record.model:
        parts.append(f"model {record.model}")
    parts.append(f"status {record.status}" if record.finished else f"in flight ({record.phase})")
    if record.first_byte_ms is not None:
        parts.append(f"first byte {shown_duration(record.first_byte_ms)}")
    if record.duration_ms is not None:
        parts.append(f"took {shown_duration(record.duration_ms)}")
    if record.cold_start:
        parts.append("cold start (its model's server had to start)")
    return "  ·  ".join(parts)


class RequestTableModel(QAbstractTableModel):
    """The recent requests, newest first. :meth:`update` inserts the new rows at the top and drops the ones the
    Activity let go at the bottom, so the selection and the scroll stay on the request they were on."""

    def __init__(self, palette: QPalette, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[RoutedRequest] = []
        self._palette = palette

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(REQUEST_HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return REQUEST_HEADERS[section]
        return None

    def record(self, row: int) -> RoutedRequest:
        return self._rows[row]

    def row_of(self, record_id: int) -> int | None:
        return next((row for row, r in enumerate(self._rows) if r.id == record_id), None)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        record = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (clock(record.started), record.client, record.model or "—", record.path, shown_status(record),
                    shown_duration(record.duration_ms), notes(record))[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return record.error or (record.user_agent if column == 1 else None)
        if role == Qt.ItemDataRole.ForegroundRole and column == STATUS_COLUMN and record.status is not None:
            return tone("good" if record.status < 400 else "bad", self._palette)
        if role == ROLE_RECORD:
            return record
        return None

    def update(self, recent: list[RoutedRequest]) -> None:
        """Adopt the Activity's ``recent()`` (oldest first). Its ids only grow and it forgets the oldest first, so
        the change is always: some rows gone at the bottom, some new ones on top, the rest possibly changed."""
        newest_first = recent[::-1]
        oldest_kept = newest_first[-1].id if newest_first else None
        gone = sum(1 for r in self._rows if oldest_kept is None or r.id < oldest_kept)
        if gone:
            first = len(self._rows) - gone
            self.beginRemoveRows(QModelIndex(), first, len(self._rows) - 1)
            del self._rows[first:]
            self.endRemoveRows()
        newest_shown = self._rows[0].id if self._rows else 0
        added = [r for r in newest_first if r.id > newest_shown]
        if added:
            self.beginInsertRows(QModelIndex(), 0, len(added) - 1)
            self._rows[:0] = added
            self.endInsertRows()
        if [r.id for r in self._rows] != [r.id for r in newest_first]:  # not the shape above: start over
            self.beginResetModel()
            self._rows = newest_first
            self.endResetModel()
        elif self._rows:  # records change in place (a status, a duration): let the view repaint what it shows
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(REQUEST_HEADERS) - 1))


class RequestInspector(QWidget):
    """One request: a summary line, the request body and the response body. Shown again only when the request
    changed since (it finished, more of its answer came), so reading it is not disturbed by other requests."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("endpointInspector")
        self.summary = QLabel("Select a request to see what was asked and answered.", objectName="endpointSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = QLabel(objectName="endpointRequestError")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        self.request_view = _body_view("endpointRequestBody", "The request body")
        self.response_view = _body_view("endpointResponseBody", "The response body")
        self.cut_note = QLabel("The answer was longer: only its beginning is kept here.", objectName="endpointCutNote")
        self.cut_note.hide()
        request_box, response_box = QWidget(), QWidget()
        for box, title, view, extra in ((request_box, "Request", self.request_view, None),
                                        (response_box, "Response", self.response_view, self.cut_note)):
            column = QVBoxLayout(box)
            column.setContentsMargins(0, 4, 0, 0)
            column.addWidget(QLabel(title, objectName="panelTitle"))
            if extra is not None:
                column.addWidget(extra)
            column.addWidget(view, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(request_box)
        split.addWidget(response_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.error)
        layout.addWidget(split, 1)
        self.record: RoutedRequest | None = None
        self._shown: tuple | None = None

    def show_record(self, record: RoutedRequest | None) -> None:
        seen = None if record is None else (record.id, record.status, record.phase, len(record.response_body),
                                            len(record.request_body))
        if seen == self._shown:
            return
        self.record, self._shown = record, seen
        if record is None:
            self.summary.setText("Select a request to see what was asked and answered.")
            self.error.hide()
            self.request_view.clear()
            self.response_view.clear()
            self.cut_note.hide()
            return
        self.summary.setText(summary_line(record))
        self.error.setText(record.error or "")
        self.error.setVisible(bool(record.error))
        palette = self.error.palette()
        palette.setColor(QPalette.ColorRole.WindowText, tone("bad", self.palette(), QPalette.ColorRole.Window))
        self.error.setPalette(palette)
        self.request_view.setPlainText(readable_body(record.request_body))
        answer = readable_body(record.response_body)
        folded = record.answer_text()
        if folded is not None:  # a stream: what it said first, the events as they came below
            answer = f"{folded}\n\n--- the stream as sent ---\n{answer}"
        self.response_view.setPlainText(answer if answer or record.finished else "(nothing answered yet)")
        self.cut_note.setVisible(record.response_cut)


def _body_view(name: str, what: str) -> QPlainTextEdit:
    view = QPlainTextEdit(objectName=name)
    view.setReadOnly(True)
    view.setFont(mono_font())
    view.setPlaceholderText(f"{what}, once a request is selected")
    return view
