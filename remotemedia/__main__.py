"""`python -m remotemedia` runs the same command line as the `remotemedia` script."""

import sys

from .cli import main

sys.exit(main())
