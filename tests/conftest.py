import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# CI clones the repository with the read-only shared/ folder beside it.
SHARED = Path(os.environ.get("VSKD_SHARED", REPO.parent / "shared"))

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def shared_fixtures():
    path = SHARED / "fixtures"
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the real sample files live in ../shared beside the repository")
    return path
