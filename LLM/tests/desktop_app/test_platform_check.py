"""The check that runs before Qt: a missing display or missing xcb libraries is one clear line, not Qt's abort."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from LLM.desktop_app.app import EXIT_NO_WINDOW
from LLM.desktop_app.platform_check import install_hint, missing_xcb_libraries, not_found_in_ldd
from LLM.tests.fakes.handle import REPO_ROOT

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /x/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
"""


@pytest.mark.parametrize(
    "output, expected",
    [
        pytest.param(LDD_OUTPUT, ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"], id="two-missing-once-each"),
        pytest.param("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n", [], id="nothing-missing"),
        pytest.param("", [], id="empty"),
    ],
)
def test_platform_check_reads_ldd_not_found_lines(output, expected):
    assert not_found_in_ldd(output) == expected


@pytest.mark.parametrize(
    "missing, expected",
    [
        pytest.param(["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"],
                     "Debian/Ubuntu: sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1; "
                     "Fedora: sudo dnf install xcb-util-cursor xcb-util-keysyms xcb-util-wm; "
                     "Arch: sudo pacman -S xcb-util-cursor xcb-util-keysyms xcb-util-wm", id="fresh-debian-12"),
        pytest.param(["libunknown.so.9"], "install the packages that provide them", id="unknown-library"),
    ],
)
def test_platform_check_names_the_install_command(missing, expected):
    assert install_hint(missing).startswith(expected)


def test_platform_check_finds_what_the_real_plugin_lacks():
    """Runs ldd on PySide6's real xcb plugin; whatever it reports must be real library names."""
    missing = missing_xcb_libraries()
    assert all(name.startswith("lib") and ".so" in name for name in missing)


def test_platform_check_window_without_display_exits_with_one_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "LLM.desktop_app"], capture_output=True, text=True, env=env,
                         cwd=REPO_ROOT, timeout=60)
    assert out.returncode == EXIT_NO_WINDOW
    assert out.stderr.strip().count("\n") == 0 and "no display found" in out.stderr
