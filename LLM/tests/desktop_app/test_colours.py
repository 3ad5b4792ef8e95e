"""State colours (server states, failed and stopped answers, tool cards, warnings) stay readable, WCAG 4.5:1, on a
light and on a dark palette: they come from widgets/tones.py, picked for the palette, never hard-coded."""

from __future__ import annotations

import re

import pytest
from PySide6.QtGui import QColor, QPalette

from LLM.desktop_app.style import STYLESHEET, stylesheet
from LLM.desktop_app.widgets.server_status import STATE_TONES, state_colour
from LLM.desktop_app.widgets.tones import TONE_NAMES, contrast_ratio, tone

Role = QPalette.ColorRole


def palette(window: str, base: str) -> QPalette:
    colours = QPalette()
    colours.setColor(Role.Window, QColor(window))
    colours.setColor(Role.Base, QColor(base))
    return colours


PALETTES = {
    "light-fusion": palette("#efefef", "#ffffff"),
    "light-grey": palette("#cfcfcf", "#f7f7f7"),
    "dark-fusion": palette("#353535", "#2a2a2a"),
    "dark-black": palette("#1e1e1e", "#000000"),
}


@pytest.mark.parametrize("theme", PALETTES)
@pytest.mark.parametrize("state", sorted(STATE_TONES))
def test_colours_server_state_readable_on_light_and_dark(qapp, theme, state):
    """Regression (#22): the state dots and texts used fixed reds and ambers, about 2.5:1 on a dark palette."""
    colours = PALETTES[theme]
    shade = state_colour(state, colours)
    for role in (Role.Window, Role.Base):
        assert contrast_ratio(shade, colours.color(role)) >= 4.5, (state, theme, role, shade.name())


@pytest.mark.parametrize("theme", PALETTES)
@pytest.mark.parametrize("kind", TONE_NAMES)
def test_colours_stylesheet_tones_readable_on_light_and_dark(qapp, theme, kind):
    """Every colour the stylesheet fills in (failed/stopped answers, tool cards, the loop notice, a full context
    meter) reads on the palette's window and base alike."""
    colours = PALETTES[theme]
    shade = QColor(tone(kind, colours))
    assert shade.name() in stylesheet(colours) or kind not in STYLESHEET
    for role in (Role.Window, Role.Base):
        assert contrast_ratio(shade, colours.color(role)) >= 4.5, (kind, theme, role, shade.name())


def test_colours_stylesheet_has_no_fixed_state_colours(qapp):
    """Only the template's placeholders name state colours; the filled sheet differs between light and dark."""
    assert not re.findall(r"#[0-9a-fA-F]{6}\b", STYLESHEET.replace("#header", ""))
    light, dark = stylesheet(PALETTES["light-fusion"]), stylesheet(PALETTES["dark-fusion"])
    assert "$" not in light and light != dark
    assert tone("bad", PALETTES["dark-fusion"]).name() in dark
