"""sigprop.kernels.learning: finite networks that learn, beside the Monte-Carlo engines of :mod:`sigprop.kernels`.

* :mod:`~sigprop.kernels.learning.training`: the NumPy trainer of MLPs (``train``, ``init_mlp``, ``mlp_from_arrays``,
  measures as hooks, the per-layer tangent kernels of a network);
* :mod:`~sigprop.kernels.learning.rfm`: recursive feature machines;
* :mod:`~sigprop.kernels.learning.datasets`: the shipped data sets (MNIST-5k, sklearn digits), teachers, inputs with a
  given Gram matrix;
* ``bench_training``, ``bench_rfm``: their benchmarks (``sigprop bench``).

The main names are also attributes of :mod:`sigprop.kernels`.
"""
