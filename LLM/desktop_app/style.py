"""The window's stylesheet: palette-relative colours, so light and dark system themes both read well."""

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
QFrame#message[status="failed"] { border-color: #d93025; }
QFrame#message[status="stopped"] { border-color: #e8a000; }
#messageAuthor { font-weight: 600; }
#messageStatus { color: palette(placeholder-text); font-style: italic; }
QFrame#message[status="failed"] #messageStatus { color: #d93025; font-style: normal; font-weight: 600; }
QFrame#message[status="stopped"] #messageStatus { color: #b06f00; font-style: normal; }
#messageWaiting { color: palette(placeholder-text); font-style: italic; }
#messageError { color: #b3261e; background: rgba(217, 48, 37, 0.06); padding: 6px; border-radius: 4px; }
#messageMetrics { color: palette(placeholder-text); font-size: 11px; }

QFrame#toolCard { border: 1px solid palette(mid); border-left: 3px solid #1a73e8; border-radius: 6px;
                  background: palette(alternate-base); }
QFrame#toolCard[outcome="ok"] { border-left-color: #1e8e3e; }
QFrame#toolCard[outcome="error"] { border-left-color: #d93025; }
#toolCardTitle { font-weight: 600; }
#loopNotice { color: #8a5300; background: rgba(232, 160, 0, 0.12); padding: 6px 8px; border-radius: 4px; }

#panelTitle { font-weight: 600; }
#sidePanel { border-left: 1px solid palette(mid); }
#promptEdit { border: 1px solid palette(mid); border-radius: 6px; padding: 4px; }
#activityLabel { color: palette(placeholder-text); }
#contextMeter { color: palette(placeholder-text); }
#contextMeter[full="true"] { color: #b06f00; font-weight: 600; }
#toolLoadProblem { color: #b3261e; }
"""
