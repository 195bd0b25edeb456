"""Residual and normalisation variants are kernel maps with the same interface."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.theory import KernelMap, kernel_map
from sigprop.theory.variants import LayerNormPostKernelMap, ResidualKernelMap

RHO = np.linspace(-1, 1, 41)


def test_plain_returns_kernel_map_and_mean_field_neutral_norms():
    assert type(kernel_map("relu")) is KernelMap
    base = KernelMap("gelu")
    for norm in (None, "rms_pre", "ln_pre", "rms_post"):
        km = kernel_map("gelu", norm=norm)
        assert type(km) is KernelMap
        np.testing.assert_array_equal(km(RHO), base(RHO))


@settings(max_examples=examples(20), deadline=None)
@given(st.sampled_from(["relu", "tanh", "gelu", "sigmoid", "step"]), st.floats(0.0, 0.99))
def test_residual_formula_and_attributes(name, r):
    base = KernelMap(name)
    km = kernel_map(name, residual=r)
    np.testing.assert_allclose(km(RHO), (1 - r * r) * base(RHO) + r * r * RHO, atol=1e-15)
    assert km(1.0) == 1.0
    assert km.kappa0 == pytest.approx((1 - r * r) * base.kappa0)
    assert km.kappa_prime0 == pytest.approx((1 - r * r) * base.kappa_prime0 + r * r)
    assert km.kappa_prime1 == pytest.approx((1 - r * r) * base.kappa_prime1 + r * r)
    inner = RHO[1:-1]
    np.testing.assert_allclose(km.derivative(inner), (1 - r * r) * base.derivative(inner) + r * r, atol=1e-14)
    np.testing.assert_allclose(km.derivative(inner, 2), (1 - r * r) * base.derivative(inner, 2), atol=1e-12)
    if r > 0:
        # same fixed point as the base map, slower (or equal) convergence
        cb, cr = base.convergence(), km.convergence()
        assert cr.case == cb.case and cr.rho_star == pytest.approx(cb.rho_star, abs=1e-12)


@pytest.mark.parametrize("name", ["relu", "gelu", "sigmoid", "exp", "elu"])
def test_ln_post_is_centred(name):
    base = KernelMap(name)
    km = kernel_map(name, norm="ln_post")
    assert isinstance(km, LayerNormPostKernelMap)
    k0 = base.kappa0
    np.testing.assert_allclose(km(RHO), (base(RHO) - k0) / (1 - k0), atol=1e-14)
    assert km(0.0) == pytest.approx(0.0, abs=1e-14) and km(1.0) == 1.0
    c = km.convergence()
    assert c.case == 1 and c.rho_star == 0.0
    seq = km.sequence(0.8, 30)
    assert np.all(np.abs(seq) <= c.bound(np.arange(31), 0.8) + 1e-12)


def test_composition_and_bad_input():
    km = kernel_map("relu", residual=0.3, norm="ln_post")
    assert isinstance(km, ResidualKernelMap) and isinstance(km.base, LayerNormPostKernelMap)
    assert km.kappa0 == 0.0
    with pytest.raises(ValueError, match="norm"):
        kernel_map("relu", norm="batchnorm")
    with pytest.raises(ValueError, match="residual"):
        kernel_map("relu", residual=1.0)
    with pytest.raises(ValueError, match="residual"):
        kernel_map("relu", residual=-0.1)
    with pytest.raises(ValueError, match="rho"):
        kernel_map("relu", residual=0.5)(1.5)
    with pytest.raises(ValueError, match="linear"):
        kernel_map("identity", residual=0.5).convergence()
