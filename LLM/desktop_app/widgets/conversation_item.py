"""How one saved chat is drawn in the sidebar: its title cut with "…" to the list's width, the matched words of a
search highlighted, and its title edited in place (F2, double-click, "Rename")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QModelIndex, QObject, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemDelegate,
    QApplication,
    QLineEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1
PAD = 6  # around an entry's lines
EMPTY_TITLE = "A chat needs a title: type one, or Esc keeps the old one."

# Core's search snippets mark each match as FTS5 does: [match].
_MATCH = re.compile(r"\[([^\[\]]*)\]")


def count_text(messages: int) -> str:
    return f"{messages} message" if messages == 1 else f"{messages} messages"


def match_segments(snippet: str) -> list[tuple[str, bool]]:
    """A search snippet as (text, matched) pieces, the brackets gone; whitespace runs become one space."""
    text = " ".join(snippet.split())
    pieces: list[tuple[str, bool]] = []
    end = 0
    for found in _MATCH.finditer(text):
        if found.start() > end:
            pieces.append((text[end:found.start()], False))
        if found.group(1):
            pieces.append((found.group(1), True))
        end = found.end()
    if end < len(text):
        pieces.append((text[end:], False))
    return pieces


@dataclass(frozen=True)
class Entry:
    """What a row shows: the title, a line of facts, and a search's matching text in pieces."""

    title: str
    facts: str
    segments: tuple[tuple[str, bool], ...] = ()

    @property
    def snippet(self) -> str:
        return "".join(text for text, _matched in self.segments)


def elide_segments(segments: tuple[tuple[str, bool], ...], metrics: QFontMetrics,
                   width: int) -> list[tuple[str, bool]]:
    """``segments`` cut to ``width`` with a trailing "…" (matches keep their mark); all of them when they fit."""
    plain = "".join(text for text, _ in segments)
    elided = metrics.elidedText(plain, Qt.TextElideMode.ElideRight, width)
    if elided == plain:
        return list(segments)
    keep = max(len(elided) - 1, 0)  # Qt's ellipsis is one character
    out: list[tuple[str, bool]] = []
    for text, matched in segments:
        if keep <= 0:
            break
        out.append((text[:keep], matched))
        keep -= len(text)
    return [*out, ("…", False)]


class TitleEditor(QLineEdit):
    """The in-place title field (the delegate refuses an empty title: the field stays open and says why)."""


class ConversationDelegate(QStyledItemDelegate):
    """Draws :class:`Entry` rows no wider than the list (no sideways scrolling) and edits titles in place."""

    renamed = Signal(str, str)  # id, new title (stripped, non-empty)
    refused = Signal(str)  # why an edit was not taken

    def title_font(self, option: QStyleOptionViewItem) -> QFont:
        font = QFont(option.font)
        font.setBold(True)
        return font

    def text_width(self, option: QStyleOptionViewItem) -> int:
        return max(option.rect.width() - 2 * PAD, 0)

    def shown_title(self, entry: Entry, option: QStyleOptionViewItem) -> str:
        return QFontMetrics(self.title_font(option)).elidedText(entry.title, Qt.TextElideMode.ElideRight,
                                                                 self.text_width(option))

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        entry = index.data(ENTRY_ROLE)
        lines = 3 if entry is not None and entry.segments else 2
        return QSize(0, lines * option.fontMetrics.lineSpacing() + 2 * PAD)  # width 0: the list decides it

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        entry: Entry | None = index.data(ENTRY_ROLE)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""  # the style draws the background, selection and focus; the lines are drawn here
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        if entry is None:
            return
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        palette = option.palette
        text_colour = palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        line = option.fontMetrics.lineSpacing()
        x, y, width = option.rect.x() + PAD, option.rect.y() + PAD, self.text_width(option)
        painter.save()
        painter.setPen(text_colour)
        painter.setFont(self.title_font(option))
        painter.drawText(QRect(x, y, width, line), Qt.AlignmentFlag.AlignVCenter, self.shown_title(entry, option))
        painter.setFont(option.font)
        facts = option.fontMetrics.elidedText(entry.facts, Qt.TextElideMode.ElideRight, width)
        painter.drawText(QRect(x, y + line, width, line), Qt.AlignmentFlag.AlignVCenter, facts)
        left = x
        for text, matched in elide_segments(entry.segments, option.fontMetrics, width):
            advance = option.fontMetrics.horizontalAdvance(text)
            box = QRect(left, y + 2 * line, advance, line)
            font = QFont(option.font)
            if matched and selected:  # the selection is drawn in the highlight colour already
                font.setUnderline(True)
            elif matched:
                painter.fillRect(box, palette.color(QPalette.ColorRole.Highlight))
            painter.setFont(font)
            painter.setPen(palette.color(QPalette.ColorRole.HighlightedText) if matched or selected else text_colour)
            painter.drawText(box, Qt.AlignmentFlag.AlignVCenter, text)
            left += advance
        painter.restore()

    # ----- editing the title in place -----
    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: QModelIndex) -> QWidget:
        editor = TitleEditor(parent, objectName="titleEditor")
        editor.setFont(self.title_font(option))
        return editor

    def setEditorData(self, editor: QWidget, index: QModelIndex) -> None:
        entry: Entry | None = index.data(ENTRY_ROLE)
        editor.setText(entry.title if entry is not None else "")
        editor.selectAll()

    def updateEditorGeometry(self, editor: QWidget, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        line = option.fontMetrics.lineSpacing()
        editor.setGeometry(QRect(option.rect.x() + 2, option.rect.y() + 2, option.rect.width() - 4, line + 2 * PAD))

    def setModelData(self, editor: QWidget, model, index: QModelIndex) -> None:
        # The list is redrawn from the store after a rename: nothing is written into the row here.
        title = editor.text().strip()
        entry: Entry | None = index.data(ENTRY_ROLE)
        if title and entry is not None and title != entry.title:
            self.renamed.emit(index.data(Qt.ItemDataRole.UserRole), title)

    def eventFilter(self, editor: QObject, event: QEvent) -> bool:
        # Enter on an empty title: refused, the field stays open (Esc still leaves the old title).
        if (isinstance(editor, TitleEditor) and event.type() == QEvent.Type.KeyPress
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not editor.text().strip()):
            self.refused.emit(EMPTY_TITLE)
            return True
        if isinstance(editor, TitleEditor) and event.type() == QEvent.Type.FocusOut and not editor.text().strip():
            # Leaving an emptied field keeps the old title, as Esc does.
            self.closeEditor.emit(editor, QAbstractItemDelegate.EndEditHint.RevertModelCache)
            return True
        return super().eventFilter(editor, event)
