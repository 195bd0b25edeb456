"""sigprop.kernels: compiled Monte-Carlo of finite-width random networks (CPU and CUDA)."""
