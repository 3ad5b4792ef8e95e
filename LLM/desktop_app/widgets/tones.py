"""Colours that say good or bad, chosen for the palette they are drawn on so they stay readable (WCAG 4.5:1)
on light and dark themes alike."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

# (for a light background, for a dark one): the one that contrasts more with the background is used. A test checks
# both against light (#cfcfcf and lighter) and dark (#3c3c3c and darker) bases.
_TONES = {
    "bad": ("#a1201a", "#ff8a80"),  # failed, an error
    "good": ("#145a2a", "#81c995"),  # ready, a tool call that worked
    "warn": ("#7a4a00", "#fdd663"),  # starting, stopped by the user, a context nearly full
    "info": ("#174ea6", "#8ab4f8"),  # an external server, a tool call under way
    "neutral": ("#4d5156", "#bdc1c6"),  # stopped
}
TONE_NAMES = tuple(_TONES)


def relative_luminance(colour: QColor) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 black .. 1 white)."""

    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio between two colours (1 .. 21)."""
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def tone(kind: str, palette: QPalette, role: QPalette.ColorRole = QPalette.ColorRole.Base) -> QColor:
    """The ``kind`` (one of :data:`TONE_NAMES`) colour for text drawn on ``palette``'s ``role`` (a view's Base, a
    dialog's Window)."""
    background = palette.color(role)
    return max((QColor(shade) for shade in _TONES[kind]), key=lambda shade: contrast_ratio(shade, background))
