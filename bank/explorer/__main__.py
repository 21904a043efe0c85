"""`python -m bank.explorer`: see bank/explorer/cli.py for the options."""

import sys

from bank import console
from bank.explorer.cli import main

console.use_utf8()
sys.exit(main())
