"""Numba oracles: the paper's formulas as plain loops, to be read and to test against.

Each function has the signature of its twin in hdl.ops (or hdl._C for whole runs)
and computes the same thing the slow, obvious way. Needs numba (the test extra).
"""
from hdl.reference.dense import dense_backward, dense_forward, quadratic_cost
from hdl.reference.rng import rng_below, rng_shuffle
from hdl.reference.training import sgd_continue, sgd_state, sgd_train

__all__ = ["dense_backward", "dense_forward", "quadratic_cost", "rng_below", "rng_shuffle", "sgd_continue", "sgd_state",
           "sgd_train"]
