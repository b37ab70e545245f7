"""Error types the engine raises for problems a user can fix (bad files, missing weights)."""

from __future__ import annotations


class MaskScopeError(Exception):
    """Base class: the message is meant to be shown to a user as it is."""


class ImageLoadError(MaskScopeError):
    """An image file cannot be read (missing, empty, corrupt, not an image, too large)."""


class WeightsError(MaskScopeError):
    """A weight file is missing, unreadable, or for another architecture."""


class AnnotationError(MaskScopeError):
    """An annotation file is malformed or does not fit the project."""


class DataError(MaskScopeError):
    """A dataset is empty or invalid for training/evaluation."""


class PromptError(MaskScopeError):
    """A box or point prompt cannot be used (degenerate, outside the image, no model loaded)."""
