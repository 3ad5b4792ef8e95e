"""The window's stylesheet: palette-relative colours, so light and dark system themes both read well."""

from string import Template

from PySide6.QtGui import QPalette

from .widgets.tones import TONE_NAMES, tone

# State colours are written $bad, $warn, ... (a Template: CSS braces need no escaping); :func:`stylesheet` fills
# them with the tones readable on the palette in use.

STYLESHEET = """
#header { border-bottom: 1px solid palette(mid); }
#serverStatusText { font-weight: 600; }
#serverStatusDetail { color: palette(placeholder-text); }
#serverErrorView { font-family: monospace; font-size: 11px; }

#transcript, #transcriptBody { background: palette(base); }
QTextBrowser#markdownView { background: transparent; }
#transcriptPlaceholder { color: palette(placeholder-text); padding: 40px; }

QFrame#message { border-radius: 8px; border: 1px solid transparent; }
QFrame#message[role="user"] { background: palette(alternate-base); border-color: palette(midlight); }
QFrame#message[role="assistant"] { background: palette(base); }
QFrame#message[status="failed"] { border-color: $bad; }
QFrame#message[status="stopped"] { border-color: $warn; }
#messageAuthor { font-weight: 600; }
#messageStatus { color: palette(placeholder-text); font-style: italic; }
QFrame#message[status="failed"] #messageStatus { color: $bad; font-style: normal; font-weight: 600; }
QFrame#message[status="stopped"] #messageStatus { color: $warn; font-style: normal; }
#messageWaiting { color: palette(placeholder-text); font-style: italic; }
#messageError { color: $bad; background: rgba(217, 48, 37, 0.06); padding: 6px; border-radius: 4px; }
#messageMetrics { color: palette(placeholder-text); font-size: 11px; }

QFrame#toolCard { border: 1px solid palette(mid); border-left: 3px solid $info; border-radius: 6px;
                  background: palette(alternate-base); }
QFrame#toolCard[outcome="ok"] { border-left-color: $good; }
QFrame#toolCard[outcome="error"] { border-left-color: $bad; }
#toolCardTitle { font-weight: 600; }
#editedTag { color: $warn; font-style: italic; }
#cutNote { color: $warn; }
#reasoningBox { border-left: 2px solid palette(mid); }
#reasoningView QTextBrowser { color: palette(placeholder-text); }
#reasoningLabel { color: palette(placeholder-text); font-size: 11px; font-weight: 600; }
/* A card's actions and step links read as links: link colour, a frame on hover, a focus ring for the keyboard. */
QToolButton[link="true"] { color: palette(link); background: transparent; border: 1px solid transparent;
                           border-radius: 4px; padding: 1px 4px; }
QToolButton[link="true"]:hover { border-color: palette(mid); text-decoration: underline; }
QToolButton[link="true"]:focus { border: 1px solid palette(highlight); }
#loopNotice { color: $warn; background: rgba(232, 160, 0, 0.12); padding: 6px 8px; border-radius: 4px; }

#panelTitle { font-weight: 600; }
#sidePanel { border-left: 1px solid palette(mid); }
#promptEdit { border: 1px solid palette(mid); border-radius: 6px; padding: 4px; }
#promptEdit:focus { border: 2px solid palette(highlight); padding: 3px; }
#activityLabel { color: palette(placeholder-text); }
#activityLabel[error="true"] { color: $bad; }
#attachmentChips, #attachmentChipsBody { background: transparent; }
QFrame#attachmentChip, QFrame#fileChip { border: 1px solid palette(mid); border-radius: 6px;
                                         background: palette(alternate-base); }
QFrame#attachmentChip[state="loading"] { border-style: dashed; }
QFrame#attachmentChip[state="loading"] #chipDetail { font-style: italic; }
#chipIcon { border-radius: 4px; background: palette(mid); color: palette(base); font-size: 10px; font-weight: 700; }
#chipDetail { color: palette(placeholder-text); font-size: 11px; }
#fileThumbnail { border: 1px solid palette(mid); border-radius: 4px; padding: 2px; background: palette(base); }
#contextMeter { color: palette(placeholder-text); }
#contextMeter[full="true"] { color: $warn; font-weight: 600; }
#toolLoadProblem { color: $bad; }

/* Focus rings: keyboard users must see where the keys go, and the styles' own rings are faint. A focused control
   gets a 2 px highlight border in the room of a 1 px border and a 1 px margin, so focusing moves nothing. */
QPushButton { border: 1px solid palette(mid); border-radius: 5px; margin: 1px; padding: 2px 10px;
              background: palette(button); }
QPushButton:hover { background: palette(midlight); }
QPushButton:pressed { background: palette(mid); }
QPushButton:disabled { color: palette(placeholder-text); }
QPushButton:focus { border: 2px solid palette(highlight); margin: 0px; }
QComboBox:focus, QLineEdit:focus { border: 2px solid palette(highlight); border-radius: 4px; }
"""


def stylesheet(palette: QPalette) -> str:
    """:data:`STYLESHEET` with its state colours picked for ``palette`` (the window's)."""
    return Template(STYLESHEET).substitute({name: tone(name, palette).name() for name in TONE_NAMES})

