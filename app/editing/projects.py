"""Which project an image belongs to, opening projects with crash recovery, remembered file paths.

An image belongs to the open project whose folder contains it; otherwise its folder's project is
opened: ``annotations.json`` next to the images, or the file chosen earlier with "Save
annotations as..." for that folder (remembered in the settings). A newer autosave than the
project file means the last session ended without saving: it is restored and reported.
An unreadable project file is never overwritten: edits then go to ``<stem>.recovered.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from app.settings import AppSettings
from engine.project import Project

PATHS_KEY = "editing/annotation_files"  # JSON {folder: annotations file}


@dataclass
class OpenReport:
    """What happened when a project was opened, for the user."""

    project: Project
    restored_autosave: bool = False
    error: str | None = None  # the annotations file could not be read


class ProjectRegistry:
    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
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
        # Compat shim for the project store (issue 10), until the persistence branch lands:
        # the store is the project; there is no autosave to restore.
        project = Project.open(folder.resolve(), background=True)
        self.projects.append(project)
        return OpenReport(project)

    # --- remembered "save as" paths -------------------------------------------------------------------
    def _paths(self) -> dict[str, str]:
        raw = self.settings.get_str(PATHS_KEY, "")
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def remembered_path(self, folder: Path) -> Path | None:
        path = self._paths().get(str(folder))
        return Path(path) if path else None

    def remember_path(self, project: Project) -> None:
        paths = self._paths()
        default = project.folder / "annotations.json"
        if project.annotations_path == default:
            paths.pop(str(project.folder), None)
        else:
            paths[str(project.folder)] = str(project.annotations_path)
        self.settings.set(PATHS_KEY, json.dumps(paths))

    # --- state ---------------------------------------------------------------------------------
    def dirty(self) -> list[Project]:
        return [p for p in self.projects if p.is_dirty]
