"""Can a window open here? Checked before Qt starts, because Qt's own failure is an abort with a cryptic message.

No Qt import: it only reads the environment and asks the dynamic linker about the xcb plugin's libraries.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Loaded by Qt at run time (dlopen), so ldd on the plugin does not list it.
DLOPENED = ("libxcb-cursor.so.0",)

# Library -> package, per family of distributions.
PACKAGES: dict[str, tuple[str, str, str]] = {
    # library                 Debian / Ubuntu           Fedora                Arch
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil", "xcb-util-renderutil"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11", "libxkbcommon-x11"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb", "libxcb"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl", "libglvnd"),
    "libGL.so.1": ("libgl1", "libglvnd-glx", "libglvnd"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig", "fontconfig"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs", "dbus"),
}

_NOT_FOUND_RE = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def not_found_in_ldd(output: str) -> list[str]:
    """The libraries ``ldd`` reports as not found, in order, without repeats (pure)."""
    return list(dict.fromkeys(_NOT_FOUND_RE.findall(output)))


def install_hint(missing: list[str]) -> str:
    """One line with the install command for the common distributions (pure)."""
    debian = sorted({PACKAGES[lib][0] for lib in missing if lib in PACKAGES})
    fedora = sorted({PACKAGES[lib][1] for lib in missing if lib in PACKAGES})
    arch = sorted({PACKAGES[lib][2] for lib in missing if lib in PACKAGES})
    if not debian:
        return "install the packages that provide them with your distribution's package manager"
    return (f"Debian/Ubuntu: sudo apt-get install {' '.join(debian)}; Fedora: sudo dnf install {' '.join(fedora)}; "
            f"Arch: sudo pacman -S {' '.join(arch)}")


def _xcb_plugin_files() -> list[Path]:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or spec.origin is None:
        return []
    qt = Path(spec.origin).parent / "Qt"
    files = [qt / "plugins" / "platforms" / "libqxcb.so", *sorted((qt / "lib").glob("libQt6XcbQpa.so*"))]
    return [f for f in files if f.is_file()]


def missing_xcb_libraries() -> list[str]:
    """What Qt's xcb platform plugin needs and this machine lacks; [] when unknown (no ldd, no plugin)."""
    ldd = shutil.which("ldd")
    plugin_files = _xcb_plugin_files()
    if ldd is None or not plugin_files:
        return []
    missing: list[str] = []
    for file in plugin_files:
        try:
            out = subprocess.run([ldd, str(file)], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        missing += not_found_in_ldd(out)
    for lib in DLOPENED:
        try:
            ctypes.CDLL(lib)
        except OSError:
            missing.append(lib)
    return list(dict.fromkeys(missing))


def window_problem() -> str | None:
    """Why no window can open here (one line to print), or None when nothing stands in the way."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None  # macOS, Windows, or a platform the user chose (offscreen, wayland, vnc)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return ("no display found (DISPLAY / WAYLAND_DISPLAY unset); run it in a desktop session, "
                "or use `llmctl chat` in a terminal")
    if os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        missing = missing_xcb_libraries()
        if missing:
            return (f"Qt's X11 (xcb) platform plugin needs libraries this machine lacks: {', '.join(missing)}. "
                    f"{install_hint(missing)}")
    return None
