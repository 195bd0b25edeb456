"""validation.sweeps: the networks per width, checked before any work."""
import pytest

from sigprop.theory.errors import InputError, InputTypeError
from sigprop.validation.sweeps import networks_per_width


def test_networks_per_width_spends_the_budget_with_a_floor():
    assert networks_per_width(6400, 32) == 200 and networks_per_width(6400, 512) == 50
    assert networks_per_width(6400, 32, min_networks=300) == 300


@pytest.mark.parametrize("args, error, match", [
    ((6400, 0), InputError, "n must be an integer >= 1"),
    ((-1, 8), InputError, "budget must be an integer >= 0"),
    ((6400, 8.5), InputTypeError, "n must be an integer"),
    ((6400, 8, 0), InputError, "min_networks must be an integer >= 1"),
])
def test_networks_per_width_refuses_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        networks_per_width(*args)
