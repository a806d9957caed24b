from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CHUCHUN_SHARED", REPO.parent / "shared")) / "datasets"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The shared reference datasets (``../shared/datasets`` beside the repository)."""
    if not (SHARED / "ml-100k" / "u.data").exists():
        raise RuntimeError(
            f"reference datasets not found at {SHARED}; set CHUCHUN_SHARED to the shared folder"
        )
    return SHARED


@pytest.fixture(scope="session")
def ml100k_dir(datasets_dir: Path) -> Path:
    return datasets_dir / "ml-100k"
