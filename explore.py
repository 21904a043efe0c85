"""The explorer: every run of Two-Phase Commit within fault budgets (bank/explorer).

    python explore.py                      # the kit, exhaustively (about a minute)
    python explore.py --variant abort-on-restart --save run.json
    python explore.py --replay run.json
    python explore.py --replay run.json --window   # step through it, forward and back
"""

import sys

from bank import console
from bank.explorer.cli import main

if __name__ == "__main__":
    console.use_utf8()
    sys.exit(main())
