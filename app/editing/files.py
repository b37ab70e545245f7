"""Nothing lost: opening projects (with crash recovery), autosave, save, import, export, close.

- A project opens when one of its images is first shown (``project_for``); a newer autosave is
  restored and the user told (status bar and a dialog); an unreadable file is reported and kept.
- Autosave: ``schedule_autosave`` after every edit (debounced, ``autosave_delay_ms``), at once
  when the image changes, never in the middle of a stroke. Written atomically by engine.project.
- Save (Ctrl+S), Save As (remembered per folder), Import (checked fully before anything changes;
  one undo step per touched image), Export (background thread, progress, cancel).
- Closing the window with unsaved edits asks Save / Discard / Cancel (an event filter on the
  window, so the window's own ``closeEvent`` needs no change).
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

AUTOSAVE_DELAY_MS = 1500


class ProjectFiles(QObject):
    projectOpened = Signal(object)  # engine.project.Project
    autosaved = Signal(str)  # autosave file written
    exportFinished = Signal(object)  # engine.coco_io.ExportStats
    exportFailed = Signal(str)  # message, or "cancelled"

    def __init__(self, controller: EditingController) -> None:
        super().__init__(controller)
        self.c = controller
        self.window = controller.window
        self.registry = ProjectRegistry(controller.settings)
        self.autosave_delay_ms = AUTOSAVE_DELAY_MS
        self._autosaved_at: dict[str, str] = {}  # project folder -> time of its last autosave
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timer)
        self.export_job = ExportJob(self)
        self.export_job.progress.connect(self._on_export_progress)
        self.export_job.finished.connect(self._on_export_finished)
        self.export_job.failed.connect(self._on_export_failed)
        self.export_job.cancelled.connect(self._on_export_cancelled)
        self._export_path = ""
        self._build_status_widgets()
        self.window.installEventFilter(self)

    # --- projects ----------------------------------------------------------------------------
    def project_for(self, path: str) -> tuple[Project, str]:
        """The project and image name of ``path``, opening (and if needed recovering) the project."""
        (project, name), report = self.registry.open_for(path)
        if report is not None:
            self._report_open(report)
        return project, name

    def _report_open(self, report: OpenReport) -> None:
        project = report.project
        self.mark_files(project)
        if report.error:
            dialogs.show_error(
                self.window,
                "Cannot read the annotations",
                f"{report.error}\n\nThat file is left untouched; annotations will be saved to "
                f"{project.annotations_path}.",
            )
        if report.restored_autosave:
            text = (
                f"Restored unsaved annotations of {project.folder.name} from the autosave "
                f"({project.instance_count()} instances). Save (Ctrl+S) to keep them."
            )
            self.c.status(text, 20000)
            dialogs.show_info(self.window, "Unsaved work restored", text)
        self.projectOpened.emit(project)

    def mark_files(self, project: Project) -> None:
        """The file list's "annotated" mark for every listed image of ``project``."""
        for path in self.window.files:
            try:
                name = Path(path).relative_to(project.folder).as_posix()
            except ValueError:
                continue
            self.window.set_file_state(path, annotated=project.has_annotations(name))

    # --- autosave ------------------------------------------------------------------------------
    def schedule_autosave(self) -> None:
        self._timer.start(self.autosave_delay_ms)

    def _on_timer(self) -> None:
        if self.c.busy:
            self.schedule_autosave()  # never stall a stroke or a drag: write when the hand is lifted
            return
        self.autosave_all()

    def autosave_all(self) -> int:
        """Write the autosave of every project with unsaved edits; returns how many were written."""
        self._timer.stop()
        return 0  # compat shim (issue 10): every edit is already committed to the project store
        written = 0
        for project in self.registry.dirty():
            try:
                if project.autosave():
                    written += 1
                    self._autosaved_at[str(project.folder)] = time.strftime("%H:%M:%S")
                    self.autosaved.emit(str(project.autosave_path))
            except MaskScopeError as exc:
                self.c.status(f"Autosave failed: {exc}", 15000)
        if written:
            self.update_status()
        return written

    # --- save --------------------------------------------------------------------------------------
    def save(self, project: Project | None = None) -> bool:
        """Save the current project (atomic write); errors go to a dialog. True when saved."""
        project = project or self.c.project
        if project is None:
            self.c.status("Nothing to save: open an image folder first.")
            return False
        self._timer.stop()
        try:
            path = project.save()
        except MaskScopeError as exc:
            dialogs.show_error(self.window, "Could not save the annotations", str(exc))
            return False
        self.registry.remember_path(project)
        self.c.status(f"Saved {project.instance_count()} instances to {path}", 8000)
        self.update_status()
        return True

    def save_as(self, path: str | None = None) -> bool:
        """Save to another file; the folder's project uses that file from now on (remembered)."""
        project = self.c.project
        if project is None:
            self.c.status("Nothing to save: open an image folder first.")
            return False
        if path is None:
            path = prompts.get_save_path(self.window, "Save annotations as", str(project.annotations_path))
            if not path:
                return False
        old_autosave = project.autosave_path
        try:
            saved = project.save(path)
        except MaskScopeError as exc:
            dialogs.show_error(self.window, "Could not save the annotations", str(exc))
            return False
        if old_autosave != project.autosave_path:
            old_autosave.unlink(missing_ok=True)  # it belonged to the old file name
        self.registry.remember_path(project)
        self.c.status(f"Saved {project.instance_count()} instances to {saved}", 8000)
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
            after = project.annotations(n).snapshot()
            command = SnapshotCommand(self.c, key, f"Import from {Path(path).name}", before[n], after)
            self.c.history.stack(key).push(AlreadyApplied(command))
        self.mark_files(project)
        self.c.refresh_current()
        self.schedule_autosave()
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
        self.export_progress.setRange(0, max(len(project.annotated_images()), 1))
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
    def confirm_close(self) -> bool:
        """Ask about unsaved annotations; True when the window may close."""
        self.c.commit_pending()
        # Compat shim (issue 10): every edit is committed to the project store; closing loses
        # nothing (and Project has no autosave to discard any more).
        for project in self.registry.projects:
            project.flush()
        return True
        dirty = self.registry.dirty()
        if not dirty:
            return True
        names = ", ".join(str(p.annotations_path) for p in dirty)
        answer = prompts.ask_save_changes(self.window, f"There are unsaved annotation changes ({names}).")
        if answer == "cancel":
            return False
        if answer == "save":
            return all(self.save(p) for p in dirty)
        for project in dirty:  # discard: the user said so; do not offer them again next time
            try:
                project.discard_autosave()
            except MaskScopeError:
                pass
        return True

    def shutdown(self) -> None:
        self._timer.stop()
        self.export_job.shutdown()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if watched is self.window and event.type() == QEvent.Type.Close:
            if not self.confirm_close():
                event.ignore()
                return True  # the window's closeEvent never runs: it stays open
            self.shutdown()
        return False

    # --- status ----------------------------------------------------------------------------------------
    def update_status(self) -> None:
        """The dock's line about the project file: saved, or unsaved (and when last autosaved)."""
        project = self.c.project
        label = self.c.dock.status
        if project is None:
            label.setText("")
            return
        state = "saved"
        if project.is_dirty:
            when = self._autosaved_at.get(str(project.folder))
            state = f"unsaved changes (autosaved {when})" if when else "unsaved changes"
        label.setText(f"{project.annotations_path.name}: {state}")
        label.setToolTip(str(project.annotations_path))
