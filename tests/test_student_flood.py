"""A student's flood of the student replay cache never refuses a server's own calls.

Rule checked (bank/keys.py K5, bank/rpc_signatures.py, README "Running on a LAN
safely"): each role has its own replay cache; a student who sends more signed requests
than the cache holds, stamped ahead, raises the student role's floor, and the server
then refuses student-signed requests for a while. A branch and the coordinator sign
their upkeep (pings, replication and configuration reads) with the server key, so
during such a flood the coordinator still sees the branch up, 2PC still runs there,
and the teacher still reaches it; the students' banking the coordinator relays is
student traffic, refused like the rest. (Before, servers signed their pings with the
student key, the weakest they held, and the coordinator saw the branch down.)

The branch runs with its replay cache cut to 2,000 nonces per role (a wrapper around
branch.py), so that the flood is 2,200 requests, not 100,000. Real processes on
127.0.0.1, ports from the OS.
"""

import pathlib
import socket
import sys
import time
import urllib.parse

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import keys, rpc                                  # noqa: E402
from bank.errors import BankError, FaultCode                # noqa: E402
from bank.local_cluster import LocalCluster                 # noqa: E402

NONCES = 2_000
WRAPPER = f"""\
import runpy, sys
sys.path.insert(0, {str(KIT)!r})
from bank import rpc_signatures
rpc_signatures.MAX_NONCES = {NONCES}
sys.argv[0] = {str(KIT / "branch.py")!r}
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def flood_students(url: str, key: str, count: int) -> int:
    """Up to `count` student-signed pings on one kept-alive connection, all stamped 110 s
    ahead (inside the signature window), 100 at a time; stops at the first refusal (the
    floor rose past the stamp). Returns how many were served."""
    server_id = rpc.server_id_at(url)
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    body = b"<?xml version='1.0'?><methodCall><methodName>ping</methodName></methodCall>"
    stamp = str(int((time.time() + 110) * 1000))
    served = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        answers = sock.makefile("rb")
        for start in range(0, count, 100):
            batch = []
            for n in range(start, min(start + 100, count)):
                nonce = f"flood{n}"
                mac = keys.mac(key, keys.signed_text(stamp, nonce, "student", server_id, body))
                batch.append(f"POST / HTTP/1.1\r\nContent-Length: {len(body)}\r\n"
                             f"X-Bank-Time: {stamp}\r\nX-Bank-Nonce: {nonce}\r\n"
                             f"X-Bank-Key: student\r\nX-Bank-Signature: {mac}\r\n\r\n"
                             .encode() + body)
            sock.sendall(b"".join(batch))
            for _ in batch:
                if not _served(answers):
                    return served
                served += 1
    return served


def _served(answers) -> bool:
    """Read one answer: True for a 200, False for a refusal (which closes the line)."""
    status = answers.readline()
    length = 0
    while (line := answers.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    answers.read(length)
    return status.startswith(b"HTTP/1.1 200")


def test_a_student_flood_refuses_students_only(tmp_path):
    wrapper = tmp_path / "small_cache_branch.py"
    wrapper.write_text(WRAPPER, encoding="utf-8")
    cluster = LocalCluster(home=tmp_path / "home", branches=("Mumbai", "Delhi"))
    cluster.members["Mumbai"].script = str(wrapper)          # an absolute path
    with cluster:
        mumbai = cluster.members["Mumbai"].url
        student = cluster.secret.only("student")
        teacher = cluster.secret.only("teacher")
        assert flood_students(mumbai, student.keys["student"], NONCES + 200) > NONCES
        try:
            rpc.Client(mumbai, student, timeout=5).call("account", "1001")
            raise AssertionError("the flood did not raise the student floor")
        except BankError as exc:
            assert exc.code == FaultCode.UNAUTHORIZED          # students: refused a while

        assert rpc.Client(mumbai, teacher, timeout=5).call("ping")["name"] == "Mumbai"
        coord = rpc.Client(cluster.coordinator_url, student, timeout=15)
        rows = {row["name"]: row for row in
                rpc.Client(cluster.coordinator_url, teacher, timeout=15).call("branches")}
        assert rows["Mumbai"]["up"], rows["Mumbai"]["error"]
        moved = coord.call("transfer", "Delhi/1001", "Mumbai/1002", "1")   # 2PC: server key
        assert moved["outcome"] == "committed", moved
