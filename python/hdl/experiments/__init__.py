"""The paper's experiments, callable from Python and from the `hdl` command."""
from hdl.experiments.ten_points import run_lsq, run_netbp

__all__ = ["run_lsq", "run_netbp"]
