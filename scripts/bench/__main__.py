"""``python -m scripts.bench`` (from the repository root): the benchmark command."""

import sys

from scripts.bench.run import main

sys.exit(main())
