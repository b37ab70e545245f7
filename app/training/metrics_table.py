"""Before/after table of COCO AP on the held-out images (engine.training.evaluate's metrics)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from app.training.options import format_ap

# (row label, metrics kind, stat) of the overall rows
OVERALL_ROWS: tuple[tuple[str, str, str], ...] = (
    ("Mask AP", "mask", "AP"),
    ("Mask AP50", "mask", "AP50"),
    ("Mask AP75", "mask", "AP75"),
    ("Box AP", "box", "AP"),
    ("Box AP50", "box", "AP50"),
    ("Box AP75", "box", "AP75"),
)
COLUMNS = ("Before", "After", "Change")
BETTER = QColor(20, 130, 40)
WORSE = QColor(190, 30, 30)


def metric_rows(before: dict | None, after: dict | None) -> list[tuple[str, float | None, float | None]]:
    """(label, before, after) per row: the overall APs, then mask and box AP per class."""
    rows = []
    for label, kind, stat in OVERALL_ROWS:
        rows.append((label, _get(before, kind, stat), _get(after, kind, stat)))
    classes: list[str] = []
    for m in (before, after):
        for name in (m or {}).get("per_class", {}):
            if name not in classes:
                classes.append(name)
    for name in classes:
        for key, what in (("mask_AP", "mask AP"), ("box_AP", "box AP")):
            rows.append((f"{name}: {what}", _get_class(before, name, key), _get_class(after, name, key)))
    return rows


def _get(metrics: dict | None, kind: str, stat: str) -> float | None:
    value = ((metrics or {}).get(kind) or {}).get(stat)
    return None if value is None else float(value)


def _get_class(metrics: dict | None, name: str, key: str) -> float | None:
    value = ((metrics or {}).get("per_class") or {}).get(name, {}).get(key)
    return None if value is None else float(value)


class MetricsTable(QTableWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setToolTip(
            "COCO AP (%) on the held-out validation images: the starting weights before training, "
            "the trained weights after. \u2013: no ground truth of that class among the held-out images."
        )
        self.before: dict | None = None
        self.after: dict | None = None
        self._rebuild()

    def clear_metrics(self) -> None:
        self.before = self.after = None
        self._rebuild()

    def set_before(self, metrics: dict | None) -> None:
        self.before = metrics
        self._rebuild()

    def set_after(self, metrics: dict | None) -> None:
        self.after = metrics
        self._rebuild()

    def value(self, row_label: str, column: str) -> str:
        """Shown text of a cell (tests and accessibility)."""
        col = COLUMNS.index(column)
        for r in range(self.rowCount()):
            if self.verticalHeaderItem(r).text() == row_label:
                item = self.item(r, col)
                return item.text() if item is not None else ""  # a cell never filled shows nothing
        raise KeyError(row_label)

    def row_labels(self) -> list[str]:
        return [self.verticalHeaderItem(r).text() for r in range(self.rowCount())]

    def _rebuild(self) -> None:
        rows = metric_rows(self.before, self.after)
        self.setRowCount(len(rows))
        bold = QFont(self.font())
        bold.setBold(True)
        for r, (label, b, a) in enumerate(rows):
            header = QTableWidgetItem(label)
            if r < len(OVERALL_ROWS) and label.endswith(" AP"):
                header.setFont(bold)
            self.setVerticalHeaderItem(r, header)
            change = QTableWidgetItem("")
            if b is not None and a is not None and b >= 0 and a >= 0:
                delta = 100 * (a - b)
                change.setText(f"{delta:+.1f}")
                if abs(delta) >= 0.05:
                    change.setForeground(QBrush(BETTER if delta > 0 else WORSE))
            for c, item in enumerate((QTableWidgetItem(_cell(b, self.before)), QTableWidgetItem(_cell(a, self.after)))):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(r, c, item)
            change.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.setItem(r, 2, change)


def _cell(value: float | None, metrics: dict | None) -> str:
    if metrics is None:
        return ""  # not measured (yet)
    return format_ap(value)
