"""The project store: one SQLite database per project folder (see docs/adr/0001-project-store.md)."""
