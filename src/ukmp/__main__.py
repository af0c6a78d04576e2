"""`python -m ukmp` runs the command line (the same as the `ukmp` console script)."""

import sys

from ukmp.cli import main

sys.exit(main())
