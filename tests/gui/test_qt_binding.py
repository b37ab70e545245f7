"""Guards the Qt binding pin: PySide6 6.12.0 under Python 3.11 drops a reference to None on every
void call, which kills the app with 'none_dealloc' after a few thousand repaints."""

from __future__ import annotations

import sys

from PySide6.QtCore import QRectF
from PySide6.QtGui import QPen


def test_void_calls_keep_none_alive():
    pen, rect = QPen(), QRectF()
    before = sys.getrefcount(None)
    for _ in range(2000):
        pen.setCosmetic(True)
        rect.setWidth(3.0)
    assert sys.getrefcount(None) - before > -100
