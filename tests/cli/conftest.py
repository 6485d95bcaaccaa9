"""Puts tests/cli on sys.path so the table module can import its fixture builders."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
