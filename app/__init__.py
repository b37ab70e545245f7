"""MaskScope Qt front end (PySide6). Only display and interaction; the engine does the work."""
