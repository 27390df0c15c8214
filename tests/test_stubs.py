"""hdl ships types (PEP 561: py.typed) and a stub of the compiled module, python/hdl/_C.pyi, made by
pybind11-stubgen. The stub must name every function of hdl._C with its parameters, in order: regenerated
here and compared by name (the generator's formatting may change between versions; the names may not).
To refresh it: pybind11-stubgen hdl._C -o /tmp/stubs && cp /tmp/stubs/hdl/_C.pyi python/hdl/_C.pyi"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import hdl

PACKAGE = Path(hdl.__file__).parent


def signatures(source: str) -> dict:
    return {node.name: [a.arg for a in node.args.args + node.args.kwonlyargs]
            for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}


def test_the_package_is_typed():
    assert (PACKAGE / "py.typed").exists() and (PACKAGE / "_C.pyi").exists()


def test_the_stub_matches_the_compiled_module(tmp_path):
    pytest.importorskip("pybind11_stubgen", reason="pybind11-stubgen is in the test extras")
    proc = subprocess.run([sys.executable, "-m", "pybind11_stubgen", "hdl._C", "-o", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    fresh = signatures((tmp_path / "hdl" / "_C.pyi").read_text())
    shipped = signatures((PACKAGE / "_C.pyi").read_text())
    assert shipped == fresh, "python/hdl/_C.pyi is stale: regenerate it (see this file's docstring)"
    functions = {name for name in dir(hdl._C) if callable(getattr(hdl._C, name)) and not name.startswith("_")}
    assert functions <= set(shipped)
