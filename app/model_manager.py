"""Model > Manage models...: every known model, its size, licence, source and status; download
(progress, rate, time left, Cancel, resume) or install a file the user got by hand (the official
YOLACT files are on Google Drive: the dialog links to them and takes the file, picked or dropped,
checking it by loading it first).

The work is engine.model_registry's; this module only shows it. Downloads and checks run in a
daemon thread (app.jobs.BackgroundTask), so neither a slow network nor a 200 MB file ever blocks the
window, and quitting never waits for them (a part file stays and the next download resumes it).
Closing the dialog hides it: a download goes on and the chooser gets the model when it is done.
One small class per control.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import dialogs
from app.jobs import BackgroundTask
from app.model_catalog import menu_advice
from engine.download import DownloadCancelled, Progress, format_eta
from engine.model_registry import BUILTIN, MANUAL, MB, ModelEntry, download_model, entries, locate, size_bytes, status

WEIGHT_FILTER = "Model weights (*.pth *.pt);;All files (*)"


def _size_text(entry: ModelEntry) -> str:
    size = size_bytes(entry)
    if not size:
        return "?"
    approx = "\u2248 " if entry.kind == MANUAL and not status(entry).installed else ""  # an estimate
    return f"{approx}{size / MB:.0f} MB" if size >= 10 * MB else f"{approx}{size / MB:.1f} MB"


def _status_text(entry: ModelEntry) -> str:
    state = status(entry)
    if state.installed:
        return "Built in" if entry.kind == BUILTIN else "Installed"
    if state.partial_bytes:
        return f"Partly downloaded ({state.partial_bytes / MB:.1f} MB)"
    return "Missing"


class ModelTable(QTableWidget):
    """One row per model: name, size, licence / source, status (the status cell's tooltip: where)."""

    entryChanged = Signal(object)  # the selected ModelEntry

    COLUMNS = ("Model", "Size", "Licence / source", "Status")

    def __init__(self, models: tuple[ModelEntry, ...], parent: QWidget | None = None) -> None:
        super().__init__(len(models), len(self.COLUMNS), parent)
        self.models = models
        self.setHorizontalHeaderLabels(self.COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.itemSelectionChanged.connect(lambda: self.entryChanged.emit(self.selected_entry()))
        self.refresh()

    def refresh(self) -> None:
        for row, entry in enumerate(self.models):
            state = status(entry)
            cells = (entry.label, _size_text(entry), entry.licence, _status_text(entry))
            tips = (entry.note or entry.name, "", entry.source, str(state.path))
            for col, (text, tip) in enumerate(zip(cells, tips, strict=True)):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if col == 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(row, col, item)

    def set_status(self, name: str, text: str) -> None:
        """Show a transient status (a download under way) until the next refresh."""
        for row, entry in enumerate(self.models):
            item = self.item(row, 3)
            if entry.name == name and item is not None:  # refresh() fills every cell
                item.setText(text)

    def selected_entry(self) -> ModelEntry | None:
        rows = self.selectionModel().selectedRows()
        return self.models[rows[0].row()] if rows else None

    def select(self, name: str) -> None:
        for row, entry in enumerate(self.models):
            if entry.name == name:
                self.selectRow(row)


class TransferProgress(QWidget):
    """Progress bar, 'done / total MB, rate, time left', and Cancel."""

    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.label = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancelRequested)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.label)
        row.addWidget(self.cancel_button)
        self.setVisible(False)

    def begin(self, busy_text: str) -> None:
        """Show an indeterminate bar until the first progress report (or for a check by loading)."""
        self.bar.setRange(0, 0)
        self.label.setText(busy_text)
        self.setVisible(True)

    def show_progress(self, p: Progress) -> None:
        if p.total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(round(1000 * p.done / p.total))
            self.bar.setFormat(f"{100 * p.done / p.total:.0f} %")
        text = f"{p.done / MB:.1f}" + (f" / {p.total / MB:.1f} MB" if p.total else " MB")
        text += f"  \u00b7  {p.rate / MB:.1f} MB/s"
        if p.eta is not None:
            text += f"  \u00b7  {format_eta(p.eta)} left"
        self.label.setText(text)

    def end(self) -> None:
        self.setVisible(False)


class FileDropArea(QFrame):
    """'Drop FILE here' with a Choose file... button: both give a local file path."""

    fileChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFrameShadow(QFrame.Shadow.Sunken)
        self.setAcceptDrops(True)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton("Choose file\u2026")
        self.button.clicked.connect(self._choose)
        row = QHBoxLayout(self)
        row.addWidget(self.label, 1)
        row.addWidget(self.button)
        self._folder = str(Path.home() / "Downloads")

    def set_expected(self, file_name: str) -> None:
        self.label.setText(f"Drop <b>{file_name}</b> here, or choose it. It is checked by loading it, then installed.")

    def _choose(self) -> None:
        path = dialogs.get_open_file(self, "Install model weights", self._folder, WEIGHT_FILTER)
        if path:
            self._folder = str(Path(path).parent)
            self.fileChosen.emit(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt naming
        if _local_file(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt naming
        path = _local_file(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.fileChosen.emit(path)


def _local_file(mime) -> str | None:
    urls = [u for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
    return urls[0].toLocalFile() if len(urls) == 1 and Path(urls[0].toLocalFile()).is_file() else None


class ModelDetails(QWidget):
    """The selected model: what it is, where its file comes from, and where it goes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setOpenExternalLinks(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)

    def show_entry(self, entry: ModelEntry | None) -> None:
        if entry is None:
            self.text.setText("Select a model.")
            return
        state = status(entry)
        link = f'<a href="{entry.source}">{entry.source}</a>' if entry.source.startswith("http") else entry.source
        if entry.kind == BUILTIN:
            how = "Ships with MaskScope."
        elif entry.downloadable and entry.url is not None:  # downloadable means it has a URL
            checked = f"; its SHA-256 ({entry.sha256_prefix}\u2026) is checked" if entry.sha256_prefix else ""
            how = f"Downloaded from {entry.url.split('/')[2]}{checked}. Or drop a copy you already have below."
        else:
            how = (
                "Its authors publish it on Google Drive, which does not allow automatic downloads: "
                f"open the link in a browser, save <b>{entry.file_name}</b>, then drop it below."
            )
        where = "Installed in" if state.installed else "Goes to"
        note = f" ({entry.note})" if entry.note else ""
        self.text.setText(
            f"<b>{entry.label}</b>{note}<br>Licence: {entry.licence}<br>Source: {link}<br>{how}<br>"
            f"{where}: <code>{state.path}</code>"
        )


class ModelManagerDialog(QDialog):
    """Model > Manage models...: table above, the selected model's details and actions below."""

    installed = Signal(str)  # a model's file was installed (its key)
    useRequested = Signal(str)  # the user wants this model in the chooser now

    def __init__(self, parent: QWidget | None = None, models: tuple[ModelEntry, ...] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Manage models")
        self.setAcceptDrops(True)
        self.models = tuple(models if models is not None else entries())
        self.table = ModelTable(self.models)
        self.details = ModelDetails()
        self.drop_area = FileDropArea()
        self.progress = TransferProgress()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.download_button = QPushButton("Download")
        self.use_button = QPushButton("Use this model")
        self.task = BackgroundTask(self, name="model-manager", cancelled_by=(DownloadCancelled,))
        self._task_entry: ModelEntry | None = None  # the model being downloaded or installed

        actions = QHBoxLayout()
        actions.addWidget(self.download_button)
        actions.addStretch(1)
        actions.addWidget(self.use_button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.drop_area)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(close)

        self.table.entryChanged.connect(self._on_selected)
        self.download_button.clicked.connect(self.start_download)
        self.drop_area.fileChosen.connect(self.install_file)
        self.use_button.clicked.connect(self._use)
        self.progress.cancelRequested.connect(self.cancel)
        self.task.progress.connect(self.progress.show_progress)
        self.task.progress.connect(self._on_progress)
        self.task.succeeded.connect(self._on_done)
        self.task.failed.connect(self._on_failed)
        self.task.cancelled.connect(self._on_cancelled)
        self.resize(900, 520)
        self.table.selectRow(0)

    # --- state ----------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._task_entry is not None

    @property
    def entry(self) -> ModelEntry | None:
        return self.table.selected_entry()

    def refresh(self) -> None:
        self.table.refresh()
        self._on_selected(self.entry)

    def select(self, name: str) -> None:
        self.table.select(name)

    def _on_selected(self, entry: ModelEntry | None) -> None:
        self.details.show_entry(entry)
        busy = self.busy
        can_install = entry is not None and entry.kind != BUILTIN
        self.drop_area.setVisible(can_install)
        if entry is not None and can_install:
            self.drop_area.set_expected(entry.file_name)
        self.drop_area.setEnabled(can_install and not busy)
        state = status(entry) if entry is not None else None
        self.download_button.setVisible(entry is not None and entry.downloadable)
        self.download_button.setEnabled(
            bool(entry is not None and state is not None and entry.downloadable and not state.installed and not busy)
        )
        resume = state is not None and state.partial_bytes and not state.installed
        downloading = busy and self._task_entry is entry
        self.download_button.setText(
            "Downloading\u2026" if downloading else "Resume download" if resume else "Download"
        )
        self.use_button.setEnabled(state is not None and state.installed)

    # --- download ---------------------------------------------------------------------------------
    def start_download(self) -> None:
        entry = self.entry
        if entry is None or not entry.downloadable or entry.url is None or self.busy:
            return
        self._begin(entry, f"Connecting to {entry.url.split('/')[2]}\u2026")
        self.task.start(lambda report, cancel: download_model(entry, progress=report, cancel=cancel))

    def cancel(self) -> None:
        self.task.cancel()

    # --- install a file the user has ----------------------------------------------------------------
    def install_file(self, path: str) -> None:
        entry = self.entry
        if entry is None or entry.kind == BUILTIN or self.busy:
            return
        self._begin(entry, f"Checking {Path(path).name} by loading it\u2026")
        self.progress.cancel_button.setEnabled(False)  # a load cannot be stopped halfway
        self.task.start(lambda _report, _cancel: locate(entry, path))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt naming
        self.drop_area.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt naming
        """A file dropped anywhere on the dialog: pick the model by its file name when it is one."""
        path = _local_file(event.mimeData())
        if path is None:
            return
        event.acceptProposedAction()
        match = next((e for e in self.models if e.file_name == Path(path).name and e.kind != BUILTIN), None)
        if match is not None:
            self.select(match.name)
        self.install_file(path)

    # --- outcome ----------------------------------------------------------------------------------
    def _begin(self, entry: ModelEntry, text: str) -> None:
        self._task_entry = entry
        self.message.setText("")
        self.progress.begin(text)
        self.progress.cancel_button.setEnabled(True)
        self._on_selected(self.entry)

    def _finish(self, text: str, ok: bool) -> None:
        self._task_entry = None
        self.progress.end()
        colour = "#1b7f3b" if ok else "#b3261e"
        self.message.setText(f'<span style="color:{colour}">{_html(text)}</span>')
        self.table.refresh()
        self._on_selected(self.entry)

    def _on_progress(self, p: Progress) -> None:
        if self._task_entry is not None and p.total:
            self.table.set_status(self._task_entry.name, f"Downloading\u2026 {100 * p.done / p.total:.0f} %")

    def _on_done(self, path: object) -> None:
        entry = self._task_entry
        assert entry is not None, "a task finishes only after _begin set its entry"
        self._finish(f"{entry.label}: installed in {path}.", ok=True)
        self.installed.emit(entry.name)

    def _on_failed(self, message: str) -> None:
        self._finish(menu_advice(message), ok=False)

    def _on_cancelled(self, message: str) -> None:
        self._finish(message, ok=False)

    def _use(self) -> None:
        entry = self.entry
        if entry is not None and status(entry).installed:
            self.useRequested.emit(entry.name)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
