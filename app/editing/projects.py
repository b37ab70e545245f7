"""Which project an image belongs to, and opening a folder's project store.

An image belongs to the open project whose folder contains it; otherwise its folder's project is
opened: ``<folder>/.maskscope/project.db``, created on first open (then importing the folder's
``annotations.json``, a 0.1 autosave or labelme files once; ``Project.opened_from`` says what).
Projects are opened with ``background=True``: every edit is committed by the store's writer
thread, so nothing waits for a save and nothing is lost when the app dies.

A folder whose ``annotations.json`` cannot be read is still opened, with an empty store: the
unreadable file is never overwritten (Save writes ``annotations.recovered.json`` next to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import MaskScopeError
from engine.project import ANNOTATIONS_NAME, Project, store_path_for
from engine.store.store import ProjectStore


@dataclass
class OpenReport:
    """What happened when a project was opened, for the user."""

    project: Project
    imported: str | None = None  # Project.opened_from: what was imported into the new store
    error: str | None = None  # the folder's annotations file could not be read


class ProjectRegistry:
    def __init__(self) -> None:
        self.projects: list[Project] = []

    # --- lookup ------------------------------------------------------------------------------
    def find(self, image_path: str) -> tuple[Project, str] | None:
        """The open project holding ``image_path`` and the image's name in it (deepest folder wins)."""
        path = Path(image_path)
        best: tuple[Project, str] | None = None
        for project in self.projects:
            try:
                name = path.relative_to(project.folder).as_posix()
            except ValueError:
                continue
            if best is None or len(project.folder.parts) > len(best[0].folder.parts):
                best = (project, name)
        return best

    def open_for(self, image_path: str) -> tuple[tuple[Project, str], OpenReport | None]:
        """The project of ``image_path``, opening its folder's project when none holds it yet."""
        found = self.find(image_path)
        if found is not None:
            return found, None
        folder = Path(image_path).parent
        report = self.open_folder(folder)
        return (report.project, Path(image_path).name), report

    def open_folder(self, folder: Path) -> OpenReport:
        """Open (creating when new) the store of ``folder``; raises MaskScopeError when even an
        empty store cannot be made there (read-only folder, corrupt database)."""
        folder = folder.resolve()
        try:
            project = Project.open(folder, background=True)
            report = OpenReport(project, imported=project.opened_from)
        except MaskScopeError as exc:
            if store_path_for(folder).exists():
                raise  # a damaged database: never replace it silently
            # The legacy annotations file is unreadable: start an empty store that saves elsewhere.
            broken = folder / ANNOTATIONS_NAME
            if not broken.is_file():
                raise  # not an unreadable legacy file (e.g. a folder where no store can be made)
            try:
                store = ProjectStore(store_path_for(folder))
                try:
                    store.set_meta("save_path", str(broken.with_name(broken.stem + ".recovered.json")))
                finally:
                    store.close()
                project = Project.open(folder, background=True)
            except (OSError, MaskScopeError) as again:
                raise MaskScopeError(f"{exc}\nNo project store could be made either: {again}") from again
            report = OpenReport(project, error=str(exc))
        self.projects.append(project)
        return report

    # --- state ---------------------------------------------------------------------------------
    def errors(self) -> list[tuple[Project, list[str]]]:
        """Write failures the projects' writer threads reported (taken: each is reported once)."""
        out = []
        for project in self.projects:
            if project.errors:
                taken, project.errors[:] = list(project.errors), []
                out.append((project, taken))
        return out

    def close_all(self) -> None:
        """Commit what is queued and close every store (closing the window)."""
        projects, self.projects = self.projects, []
        for project in projects:
            try:
                project.close()
            except MaskScopeError:
                pass
