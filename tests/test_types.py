"""The public API's types (issue 12): mypy, configured by pyproject.toml's [tool.mypy], checks python/hdl and
tests/typing_public_api.py (the API as a user writes it, with assert_type on what user code relies on). Skipped
when mypy is not installed; CI installs it with the test extras (pip install '.[test]'). A cold run takes 10-20 s."""
import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import hdl

ROOT = Path(__file__).resolve().parent.parent
USAGE = ROOT / "tests" / "typing_public_api.py"


def test_mypy_finds_no_errors(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (it is in the test extras: pip install '.[test]')")
    # a fresh cache in tmp_path: nothing is written into the tree, and no stale cache hides an error
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(tmp_path / "mypy_cache"), "--no-error-summary", "--hide-error-context",
                           "python/hdl", str(USAGE.relative_to(ROOT))],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert proc.returncode == 0 and not errors, (f"mypy found type errors (rc {proc.returncode}); run `python -m "
                                                 f"mypy` at the repository root:\n{proc.stdout}{proc.stderr}")


def _declared(path: Path) -> set:
    """The functions an `if TYPE_CHECKING:` block of the module declares."""
    tree = ast.parse(path.read_text())
    return {node.name for block in tree.body if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
            for node in block.body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("module", ["ops.py", "cuda/ops.py"])
def test_the_declared_activations_are_the_compiled_ones(module):
    """hdl.ops and hdl.cuda.ops make one function pair per kernel of hdl._C.activations in a loop, and declare them
    to type checkers by hand: the two lists must agree."""
    expected = {name for a in hdl._C.activations for name in (a, f"{a}_backward")}
    assert _declared(Path(hdl.__file__).parent / module) == expected


def test_the_usage_file_runs():
    """What the type checker reads also runs (assert_type checks nothing at run time; the calls and asserts do)."""
    if sys.version_info < (3, 11):
        pytest.importorskip("typing_extensions", reason="typing_public_api.py takes assert_type from it before 3.11")
    spec = importlib.util.spec_from_file_location("typing_public_api", USAGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main()
