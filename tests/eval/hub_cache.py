"""A Hugging Face hub cache laid out as huggingface_hub lays it out, for tests that fetch benchmark data by name
offline (HF_HUB_OFFLINE=1, HF_HUB_CACHE in a tmp dir). The layout is written by longkit.testing.hub_file."""

from __future__ import annotations

from longkit.testing import HUB_REV as REV
from longkit.testing import hub_file

__all__ = ["REV", "hub_file"]
