"""`python -m musketeer`: the same CLI without the console script."""

import sys

from musketeer.cli import main

sys.exit(main())
