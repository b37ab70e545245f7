"""Suite-wide settings: tests run torch on one thread (the CI machine has 2 cores and Qt's
GUI thread needs one; oversubscribed OpenMP threads made tests several times slower)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402

torch.set_num_threads(1)
