"""The coordinator, with one request delayed on its way (for a test of M3).

While the file named by BANK_DELAY_ADD_FILE exists, the next add_replica request waits
BANK_DELAY_ADD_SECONDS before it reaches the configuration manager, as a request delayed
on the network would (a lost segment sent again, a thread not scheduled); the file is
removed, so one request only, and FILE.done is written once it was answered or
refused. Everything else is the real coordinator.py."""

import os
import pathlib
import runpy
import sys
import time

KIT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(KIT))

from bank import config_manager  # noqa: E402

_add_replica = config_manager.ConfigManager.add_replica


def delayed_add_replica(self, *args, **kwargs):
    flag = pathlib.Path(os.environ.get("BANK_DELAY_ADD_FILE", ""))
    if not (flag.name and flag.exists()):
        return _add_replica(self, *args, **kwargs)
    flag.unlink()
    time.sleep(float(os.environ.get("BANK_DELAY_ADD_SECONDS", "6")))
    try:
        return _add_replica(self, *args, **kwargs)
    finally:
        flag.with_name(flag.name + ".done").touch()


config_manager.ConfigManager.add_replica = delayed_add_replica
sys.argv[0] = str(KIT / "coordinator.py")
runpy.run_path(sys.argv[0], run_name="__main__")
