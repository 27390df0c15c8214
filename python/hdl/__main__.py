"""`python -m hdl`: the `hdl` command (hdl.cli)."""
import sys

from hdl.cli import main

sys.exit(main())
