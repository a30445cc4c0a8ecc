"""Array kernels: reference (numpy oracle), cpu (Numba), gpu (CuPy). Never imports embfmt."""
