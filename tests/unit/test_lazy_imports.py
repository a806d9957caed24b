"""Importing chuchun stays light; names and submodules load on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_fitting_from_a_sparse_matrix_never_imports_pandas():
    code = (
        "import sys, numpy as np, scipy.sparse as sp\n"
        "from chuchun.data import Interactions\n"
        "from chuchun.models import Popularity\n"
        "m = sp.random(20, 10, density=0.3, format='csr', random_state=0, dtype=np.float32)\n"
        "Popularity().fit(Interactions.from_sparse(m)).recommend([0, 1], k=3)\n"
        "print('pandas' in sys.modules)\n"
    )
    assert _run(code) == "False"


def test_names_and_submodules_resolve_lazily():
    import chuchun

    assert chuchun.Interactions.__name__ == "Interactions"
    assert callable(chuchun.evaluate)
    assert "ImplicitALS" in chuchun.models.registered_models()
    assert "Interactions" in dir(chuchun)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        chuchun.nothing_here  # noqa: B018
    with pytest.raises(ImportError, match="Nope"):
        from chuchun.models import Nope  # noqa: F401
