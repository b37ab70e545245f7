"""System / Light / Dark appearance, and text colours that stay readable on any background.

``apply_theme`` switches the application's palette (Fusion style for Light and Dark, so every
platform draws them alike; System restores the style and palette Qt started with). Widgets that
pick colours themselves (the canvas, its hint text) follow ``QEvent.PaletteChange``.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

THEMES = ("system", "light", "dark")
SETTINGS_KEY = "view/theme"

_system: tuple[str, QPalette] | None = None  # the style and palette before the first switch


def relative_luminance(colour: QColor) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""

    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio (1 to 21) of two colours."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_on(background: QColor, preferred: QColor, minimum: float = 4.5) -> QColor:
    """``preferred`` when it reaches ``minimum`` contrast on ``background``, else black or white."""
    if contrast_ratio(preferred, background) >= minimum:
        return preferred
    black, white = QColor(0, 0, 0), QColor(255, 255, 255)
    return black if contrast_ratio(black, background) >= contrast_ratio(white, background) else white


def _palette(dark: bool) -> QPalette:
    p = QPalette()
    if dark:
        window, base, text, button = QColor(45, 45, 48), QColor(30, 30, 32), QColor(230, 230, 230), QColor(58, 58, 62)
        highlight, link = QColor(64, 128, 220), QColor(120, 170, 255)
    else:
        window, base, text, button = (
            QColor(240, 240, 240),
            QColor(255, 255, 255),
            QColor(20, 20, 20),
            QColor(230, 230, 230),
        )
        highlight, link = QColor(48, 110, 200), QColor(20, 80, 190)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: window,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: button,
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.ToolTipBase: base,
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: readable_on(base, QColor(128, 128, 128), 3.0),
        QPalette.ColorRole.Highlight: highlight,
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: link,
        QPalette.ColorRole.BrightText: QColor(255, 80, 80),
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    # Disabled text: dimmed, but still readable (3:1, WCAG's figure for inactive UI).
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        mixed = QColor(
            (text.red() + window.red()) // 2, (text.green() + window.green()) // 2, (text.blue() + window.blue()) // 2
        )
        p.setColor(QPalette.ColorGroup.Disabled, role, readable_on(window, mixed, 3.0))
    return p


def apply_theme(name: str, app: QApplication | None = None) -> str:
    """Switch to ``name`` ('system', 'light' or 'dark'); returns the theme applied."""
    global _system
    if app is None:
        instance = QApplication.instance()  # typed QCoreApplication; a widget app is a QApplication
        app = instance if isinstance(instance, QApplication) else None
    if app is None:
        return "system"
    name = name if name in THEMES else "system"
    if _system is None:
        _system = (app.style().name(), QPalette(app.palette()))
    if name == "system":
        app.setStyle(QStyleFactory.create(_system[0]) or app.style())
        app.setPalette(_system[1])
    else:
        app.setStyle(QStyleFactory.create("Fusion"))
        app.setPalette(_palette(dark=name == "dark"))
    return name
