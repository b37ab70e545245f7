"""Nothing lost: opening project stores, save (COCO), import, export, closing.

- A project opens when one of its images is first shown (``project_for``): its store
  ``<folder>/.maskscope/project.db``, created on first open; what was imported into a new store
  (a 0.1 ``annotations.json`` or autosave, labelme files) is told once (status bar and a dialog).
  An unreadable ``annotations.json`` is reported and kept; Save then writes next to it.
- Every edit is committed to the store by its writer thread as it happens: there is no autosave
  and no "unsaved changes" question. Closing commits what is queued and closes the stores.
  A failed write (disk full, ...) is shown in a dialog as soon as the writer reports it.
- Save (Ctrl+S) writes the COCO interchange file (``annotations.json``, or the file chosen with
  Save As, which the project remembers); the dock's footer says whether it is up to date.
- Import (checked fully before anything changes; one undo step per touched image; identical
  instances skipped with a count), Export (background thread, progress, cancel).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QProgressBar, QToolButton

from app import dialogs
from app.editing import prompts
from app.editing.export_job import ExportJob
from app.editing.history import AlreadyApplied, Snapshot, SnapshotCommand
from app.editing.projects import OpenReport, ProjectRegistry
from app.image_loader import normalise_path
from engine.errors import MaskScopeError
from engine.project import Project

if TYPE_CHECKING:
    from app.editing.controller import EditingController

ERROR_POLL_MS = 500  # how often the writer threads' failures are looked for


class ProjectFiles(QObject):
    projectOpened = Signal(object)  # engine.project.Project
    exportFinished = Signal(object)  # engine.coco_io.ExportStats
    exportFailed = Signal(str)  # message, or "cancelled"
    writeFailed = Signal(str)  # a store write failed (message)

    def __init__(self, controller: EditingController) -> None:
        super().__init__(controller)
        self.c = controller
        self.window = controller.window
        self.registry = ProjectRegistry()
        self._saved_at: dict[str, str] = {}  # project folder -> time annotations.json was written
        self._error_timer = QTimer(self)
        self._error_timer.timeout.connect(self.check_errors)
        self._error_timer.start(ERROR_POLL_MS)
        self.export_job = ExportJob(self)
        self.export_job.progress.connect(self._on_export_progress)
        self.export_job.finished.connect(self._on_export_finished)
        self.export_job.failed.connect(self._on_export_failed)
        self.export_job.cancelled.connect(self._on_export_cancelled)
        self._export_path = ""
        self._closed = False
        self._build_status_widgets()
        self.window.installEventFilter(self)

    # --- projects ----------------------------------------------------------------------------
    def project_for(self, path: str) -> tuple[Project, str]:
        """The project and image name of ``path``, opening its folder's store when needed."""
        if self._closed:
            raise MaskScopeError("the window is closed; its projects are closed")
        (project, name), report = self.registry.open_for(path)
        if report is not None:
            self._report_open(report)
        return project, name

    def _report_open(self, report: OpenReport) -> None:
        project = report.project
        if report.error:
            dialogs.show_error(
                self.window,
                "Cannot read the annotations",
                f"{report.error}\n\nThat file is left untouched; the project starts empty and Save writes "
                f"{project.annotations_path}.",
            )
        if report.imported:
            self.c.status(report.imported, 20000)
            if not _is_bundled_samples(project.folder):  # the demo's first start: no dialog to dismiss
                dialogs.show_info(self.window, "Project store created", report.imported)
        self.projectOpened.emit(project)

    def check_errors(self) -> bool:
        """Show write failures the store writers reported; True when there were some."""
        failed = self.registry.errors()
        for project, messages in failed:
            shown = "\n".join(messages[:5]) + (f"\n... and {len(messages) - 5} more" if len(messages) > 5 else "")
            text = (
                f"{len(messages)} edit(s) could not be written to {project.db_path}:\n{shown}\n\n"
                "What is on screen may differ from what is stored; Save (Ctrl+S) writes a COCO copy."
            )
            self.c.status(f"Could not store edits: {messages[0]}", 15000)
            self.writeFailed.emit(text)
            dialogs.show_error(self.window, "Edits not stored", text)
        return bool(failed)

    # --- save --------------------------------------------------------------------------------------
    def save(self, project: Project | None = None) -> bool:
        """Write the project's COCO file (atomic); errors go to a dialog. True when written."""
        project = project or self.c.project
        if project is None:
            self.c.status("Nothing to save: open an image folder first.")
            return False
        try:
            path = project.save()
        except MaskScopeError as exc:
            dialogs.show_error(self.window, "Could not save the annotations", str(exc))
            return False
        self._saved_at[str(project.folder)] = time.strftime("%H:%M")
        self.c.status(f"Wrote {project.instance_count()} instances to {path}", 8000)
        self.update_status()
        return True

    def save_as(self, path: str | None = None) -> bool:
        """Write the COCO file elsewhere; the project writes that file from now on (remembered)."""
        project = self.c.project
        if project is None:
            self.c.status("Nothing to save: open an image folder first.")
            return False
        if path is None:
            path = prompts.get_save_path(self.window, "Save annotations as", str(project.annotations_path))
            if not path:
                return False
        try:
            saved = project.save(path)
        except MaskScopeError as exc:
            dialogs.show_error(self.window, "Could not save the annotations", str(exc))
            return False
        self._saved_at[str(project.folder)] = time.strftime("%H:%M")
        self.c.status(f"Wrote {project.instance_count()} instances to {saved}", 8000)
        self.update_status()
        return True

    # --- import ------------------------------------------------------------------------------------
    def import_annotations(self, path: str | None = None, folder: bool = False) -> bool:
        """Import a COCO or labelme file (or a labelme folder) into the current project.

        The file is fully read and checked first (nothing is changed when it has a problem); each
        touched image gets an undo step, so an import can be undone image by image.
        """
        project = self.c.project
        if project is None:
            dialogs.show_error(self.window, "Nothing to import into", "Open the image folder first, then import.")
            return False
        if path is None:
            ask = prompts.get_import_folder if folder else prompts.get_import_path
            path = ask(self.window, str(project.folder))
            if not path:
                return False
        try:
            plan = project.plan_import(path)
        except (MaskScopeError, ValueError, OSError) as exc:
            dialogs.show_error(self.window, "Import failed", f"{exc}")
            return False
        names = [img.file_name for img in plan.images]
        before: dict[str, Snapshot] = {}
        for n in names:
            entry = project.annotations(n, create=False)
            before[n] = entry.snapshot() if entry is not None else ()
        replace = False
        if any(before[n] for n in names):
            replace = prompts.confirm(
                self.window,
                "Import annotations",
                f"{sum(1 for n in names if before[n])} of these images already have annotations.\n"
                "Replace them? (No adds the imported ones.)",
            )
        try:
            summary = project.apply_import(plan, replace=replace)
        except MaskScopeError as exc:
            dialogs.show_error(self.window, "Import failed", str(exc))
            return False
        for n in names:
            key = normalise_path(project.folder / n)
            imported = project.annotations(n)  # create=True: never None
            assert imported is not None
            after = imported.snapshot()
            command = SnapshotCommand(self.c, key, f"Import from {Path(path).name}", before[n], after)
            self.c.history.stack(key).push(AlreadyApplied(command))
        self.c.review.refresh_all_files(project)
        self.c.refresh_current()
        self.update_status()
        dialogs.show_info(self.window, "Import finished", summary.summary())
        return True

    # --- export ------------------------------------------------------------------------------------
    def export(self, path: str | None = None, segmentation: str | None = None) -> bool:
        """Export the current project as COCO in the background (progress in the status bar)."""
        project = self.c.project
        if project is None:
            self.c.status("Nothing to export: open an image folder first.")
            return False
        if self.export_job.running:
            self.c.status("An export is already running.")
            return False
        if path is None or segmentation is None:
            target = prompts.get_export_target(self.window, str(project.folder / "export_coco.json"))
            if target is None:
                return False
            path, segmentation = target
        self.export_progress.setRange(0, 0)  # busy until the first progress report
        self.export_progress.setValue(0)
        self.export_progress.show()
        self.export_cancel.show()
        self.c.status(f"Exporting to {path}\u2026", 0)
        self._export_path = path
        self.export_job.start(project, path, segmentation)
        return True

    def _build_status_widgets(self) -> None:
        bar = self.window.statusBar()
        self.export_progress = QProgressBar()
        self.export_progress.setMaximumWidth(160)
        self.export_progress.setMaximumHeight(14)
        self.export_progress.setFormat("export %v / %m")
        self.export_progress.hide()
        self.export_cancel = QToolButton()
        self.export_cancel.setText("Cancel export")
        self.export_cancel.clicked.connect(lambda: self.export_job.cancel())
        self.export_cancel.hide()
        bar.addPermanentWidget(self.export_progress)
        bar.addPermanentWidget(self.export_cancel)

    def _on_export_progress(self, done: int, total: int) -> None:
        self.export_progress.setRange(0, max(total, 1))
        self.export_progress.setValue(done)

    def _export_done(self) -> None:
        self.export_progress.hide()
        self.export_cancel.hide()

    def _on_export_finished(self, stats) -> None:
        self._export_done()
        self.c.status(f"Exported {stats.summary()} to {self._export_path} in {stats.seconds:.1f} s", 15000)
        self.exportFinished.emit(stats)

    def _on_export_failed(self, message: str) -> None:
        self._export_done()
        self.c.status("Export failed.", 8000)
        dialogs.show_error(self.window, "Export failed", message)
        self.exportFailed.emit(message)

    def _on_export_cancelled(self) -> None:
        self._export_done()
        self.c.status("Export cancelled; nothing was written.", 8000)
        self.exportFailed.emit("cancelled")

    # --- closing -------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Finish what the mouse is doing, commit what is queued, close the stores (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._error_timer.stop()
        self.c.commit_pending()
        self.export_job.shutdown()
        for project in self.registry.projects:
            try:
                project.flush()
            except Exception:  # noqa: BLE001 - a failed job was reported to project.errors already
                pass
        self.check_errors()
        self.c.detach_project()
        self.registry.close_all()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.shutdown()  # everything is stored already: nothing to ask
        return False

    # --- status ----------------------------------------------------------------------------------------
    def update_status(self) -> None:
        """The instance list's line about the project: where it is stored, and whether the COCO file is current."""
        project = self.c.project
        label = self.c.status_label
        if project is None or project.closed:
            label.setText("")
            return
        coco = project.annotations_path.name
        if project.is_dirty:
            n = project.store.revision - int(project.store.get_meta("saved_revision", 0))
            state = f"{n} edit{'s' if n != 1 else ''} not yet in {coco} (Ctrl+S writes it)"
        elif project.store.revision == 0:
            state = "no edits yet"  # nothing to write: never claim a file is current that we did not write
        else:
            when = self._saved_at.get(str(project.folder))
            state = f"{coco} written {when}" if when else f"{coco} up to date"
        inside = project.db_path.is_relative_to(project.folder)
        where = project.db_path.relative_to(project.folder).as_posix() if inside else "your data folder"
        label.setText(f"Stored in {where}; {state}")
        label.setToolTip(
            f"Stored in {where}; {state}\n"
            f"Every edit is committed to {project.db_path} as it is made.\n"
            f"Save (Ctrl+S) writes the COCO interchange file {project.annotations_path}."
        )


def _is_bundled_samples(folder: str | Path) -> bool:
    """The sample images MaskScope ships (what ``python main.py`` opens on first start)."""
    from resources import SAMPLES, resource_path

    return Path(folder).resolve() == Path(str(resource_path(SAMPLES))).resolve()
