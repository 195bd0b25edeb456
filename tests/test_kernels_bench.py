"""The CPU benchmark's plain NumPy baseline computes the statistics it claims to (sigprop.kernels.bench)."""
import numpy as np

from sigprop.kernels.bench import plain_numpy_loop, workload_inputs


def test_plain_numpy_loop_statistics():
    # ReLU, C_W = 2, no bias: E[preact_gram at layer 1] = C_W X X^T / n0 exactly; judged at |z| < 4 (fixed seed)
    X = workload_inputs(P=2, n0=16, seed=3)
    out = plain_numpy_loop(X, depth=2, width=32, C_W=2.0, n_networks=400, seed=7)
    assert out["preact_gram"].shape == (400, 2, 2, 2) and out["preact_m4"].shape == (400, 2, 2)
    g = out["preact_gram"][:, 0]
    want = 2.0 * X @ X.T / X.shape[1]
    z = (g.mean(axis=0) - want) / (g.std(axis=0, ddof=1) / np.sqrt(g.shape[0]))
    assert np.all(np.abs(z) < 4), z
    np.testing.assert_allclose(out["preact_m2"], np.diagonal(out["preact_gram"], axis1=2, axis2=3), rtol=1e-12)
    # a wrong C_W is detected by the same statistic
    z_wrong = (g.mean(axis=0) - 1.5 * want) / (g.std(axis=0, ddof=1) / np.sqrt(g.shape[0]))
    assert np.max(np.abs(z_wrong)) > 8
    # post-activation Gram of ReLU: positive semi-definite, and at most the pre-activation Gram on the diagonal
    post = out["postact_gram"]
    assert np.all(np.diagonal(post, axis1=2, axis2=3) <= np.diagonal(out["preact_gram"], axis1=2, axis2=3) + 1e-12)
    assert np.all(np.linalg.eigvalsh(post) > -1e-12)
