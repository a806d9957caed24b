from __future__ import annotations

import inspect

import pytest

from chuchun import ConfigError
from chuchun._params import HasParams, Param


class Toy(HasParams):
    n_factors = Param(int, 10, "Factors.", low=1)
    rate = Param(float, 0.1, "Rate.", low=0, low_open=True)
    kind = Param(str, "a", "Kind.", choices=("a", "b"))
    flag = Param(bool, False, "Flag.")
    seed = Param(int, None, "Seed.", nullable=True, low=0)


def test_defaults_and_signature():
    t = Toy()
    assert t.get_params() == {"n_factors": 10, "rate": 0.1, "kind": "a", "flag": False, "seed": None}
    sig = inspect.signature(Toy)
    assert list(sig.parameters) == ["n_factors", "rate", "kind", "flag", "seed"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())


def test_unknown_parameter_suggests_the_close_name():
    with pytest.raises(ConfigError, match="did you mean 'n_factors'"):
        Toy(n_factor=3)
    with pytest.raises(ConfigError, match="no parameter"):
        Toy().set_params(bogus=1)


def test_stored_unchanged_and_validated_on_demand():
    t = Toy(n_factors=-1)
    assert t.n_factors == -1
    with pytest.raises(ConfigError, match=r"n_factors must be int >= 1; got -1"):
        t._validate_params()


@pytest.mark.parametrize(
    ("name", "value"),
    [("n_factors", True), ("n_factors", 2.5), ("rate", 0), ("rate", float("nan")),
     ("kind", "c"), ("flag", 1), ("seed", -1), ("rate", "0.1")],
)
def test_bad_values_rejected(name, value):
    with pytest.raises(ConfigError, match=name):
        Toy(**{name: value})._validate_params()


def test_parse_from_text():
    specs = Toy.param_specs()
    assert specs["n_factors"].parse("12") == 12
    assert specs["rate"].parse("1e-3") == 0.001
    assert specs["flag"].parse("yes") is True
    assert specs["seed"].parse("none") is None
    with pytest.raises(ConfigError, match="n_factors must be int"):
        specs["n_factors"].parse("twelve")
    with pytest.raises(ConfigError):
        specs["rate"].parse("__import__('os')")


def test_repr_shows_changed_params():
    assert repr(Toy(n_factors=3)) == "Toy(n_factors=3)"
