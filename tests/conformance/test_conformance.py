"""Every registered model honours the estimator contract."""

from __future__ import annotations

import pytest

from chuchun.models import registered_models
from chuchun.testing import CHECKS, block_interactions

MODELS = registered_models()


@pytest.fixture(scope="module")
def data():
    return block_interactions()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_conformance(name, check, data):
    cls = MODELS[name]
    model = cls(**getattr(cls, "_test_params", {}))
    check(model, data)


def test_every_model_is_covered():
    assert {"AssociationRules", "BaselineOnly", "GlobalMean", "Popularity", "Random"} <= set(MODELS)
