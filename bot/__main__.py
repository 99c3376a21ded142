"""`python -m bot` is the `jobwatch` command."""

import sys

from bot.cli import main

sys.exit(main())
