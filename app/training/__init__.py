"""Fine-tune from the app: the Train menu and the Training dock, with training in its own process.

``install_training(window)`` adds both to a ``MainWindow`` and returns the ``TrainingController``
(also stored as ``window.training``); calling it again returns the same controller. Training data
is the current project of the editing controller (``window.editing.project``) when there is one,
or a COCO file the user picks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from app.training.controller import TrainingController

if TYPE_CHECKING:
    from app.main_window import MainWindow

__all__ = ["TrainingController", "install_training"]


class _TrainingHost(Protocol):
    training: TrainingController  # the attribute install_training adds to the window


def install_training(window: MainWindow) -> TrainingController:
    existing = getattr(window, "training", None)
    if isinstance(existing, TrainingController):
        return existing
    controller = TrainingController(window)
    cast(_TrainingHost, window).training = controller
    return controller
