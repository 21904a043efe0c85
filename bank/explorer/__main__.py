"""`python -m bank.explorer`: see bank/explorer/cli.py for the options."""

import sys

from bank.explorer.cli import main

sys.exit(main())
