"""MaskScope engine: models, data and training. Never imports Qt."""
