"""Roles on a classroom LAN (issue 16): servers, the teacher and students hold different
keys, and each can do only its part.

Rules checked (bank/keys.py K1-K4, bank/branch_service.py BR4), against real processes on
127.0.0.1 (ports from the OS):
  * every public method of a branch and of the coordinator belongs to exactly one role;
  * a request signed with the student key may call only the student's methods: any other
    gets HTTP 403 with one sentence naming the role and the method, and changes nothing
    (balances, journals, in-doubt transactions, roles, epochs, armed faults), in
    particular the two attacks of the issue (fencing a branch with `replicate`, minting
    money with a lone `prepare` + `commit`);
  * the teacher key runs the lab controls and is refused the servers' protocol;
  * the server key banks (the coordinator relays students' banking with it) but cannot
    run the lab;
  * system.listMethods shows a caller only what its role may call;
  * a branch configured with its coordinator refuses a prepare for another one (403);
  * a client in another language signs with only its role's key, as the README says;
  * `python cluster.py secret` writes three role keys, and `--role` one of them, mode 0600;
    it never overwrites a file.
"""

import hashlib
import hmac
import http.client
import os
import pathlib
import secrets
import stat
import subprocess
import sys
import time
import urllib.parse
import xmlrpc.client

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import keys, rpc                                  # noqa: E402
from bank.branch_service import Branch                      # noqa: E402
from bank.coordinator_service import Coordinator            # noqa: E402
from bank.errors import BankError, FaultCode                # noqa: E402
from bank.local_cluster import LocalCluster, Member         # noqa: E402


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """Mumbai and Delhi (preloaded, --allow-faults) and a coordinator, holding all keys."""
    cluster = LocalCluster(home=tmp_path_factory.mktemp("roles"),
                           branches=("Mumbai", "Delhi")).start()
    yield cluster
    cluster.stop()


# ---- helpers ---------------------------------------------------------------------------

def post(url: str, method: str, args, keyring, role: str):
    """One raw signed call: (HTTP status, refusal sentence or the decoded answer)."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"                 # tests talk to loopback only
    body = xmlrpc.client.dumps(tuple(args), method, encoding="utf-8").encode()
    headers = {"Content-Type": "text/xml", "Content-Length": str(len(body)),
               **rpc.sign(keyring, body, rpc.server_id_at(url), role=role)}
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.request("POST", "/", body, headers)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        return resp.status, data.decode("utf-8", "replace").strip()
    try:
        return 200, xmlrpc.client.loads(data)[0][0]
    except xmlrpc.client.Fault as fault:
        return 200, fault


def snapshot(bank) -> dict:
    """Everything a refused call must leave as it was, read with the teacher's key."""
    teacher = bank.secret.only("teacher")
    out = {}
    for name in bank.branch_names:
        client = rpc.Client(bank.members[name].url, teacher)
        ping = client.call("ping")
        out[name] = {"accounts": client.call("accounts"),
                     "journal": client.call("journal", "", 10000),
                     "in_doubt": client.call("in_doubt"),
                     "role": (ping["role"], ping["epoch"], ping["primary"]),
                     "faults": ping["faults"]}
    coord = rpc.Client(bank.coordinator_url, teacher)
    out["coordinator"] = {"transactions": coord.call("transactions", 1000),
                          "faults": coord.call("ping").get("faults")}
    return out


def attempts(bank) -> dict:
    """(server, method) -> arguments that would do harm if the call were carried out."""
    coord = bank.coordinator_url
    mint = [{"account": "1001", "delta": "+1000000.00"}]
    return {
        ("Mumbai", "prepare"): ("T-mint-1", coord, mint),
        ("Mumbai", "commit"): ("T-mint-1",),
        ("Mumbai", "abort"): ("T-mint-1",),
        ("Mumbai", "replicate"): (99, [], 0, []),
        ("Mumbai", "follow"): ("http://127.0.0.1:1",),
        ("Mumbai", "promote"): (),
        ("Mumbai", "attach_replica"): ("http://127.0.0.1:1", 0),
        ("Mumbai", "caught_up"): ("http://127.0.0.1:1", 0),
        ("Mumbai", "changes_since"): (0,),
        ("Mumbai", "fault"): ("crash-before-vote",),
        ("coordinator", "decision"): ("T-mint-1", "Mumbai"),
        ("coordinator", "fault"): ("crash-after-decision",),
        ("coordinator", "partition"): ("Mumbai",),
        ("coordinator", "heal"): ("Mumbai",),
        ("coordinator", "failover"): ("Mumbai",),
        ("coordinator", "recover"): (),
    }


def refused_attempts(bank, role: str) -> list:
    return [(server, method, args) for (server, method), args in attempts(bank).items()
            if not keys.may_call(role, method)]


# ---- the table ---------------------------------------------------------------------------

def test_every_public_method_belongs_to_exactly_one_role():
    """K2: every method a branch or the coordinator serves (lab methods and system.*
    included) has one role in METHOD_ROLES, and that role is one of the three."""
    served = {*Branch.PUBLIC_METHODS, "fault", *Coordinator.PUBLIC_METHODS,
              *Coordinator.LAB_METHODS, "system.listMethods", "system.methodHelp",
              "system.methodSignature"}
    missing = served - set(keys.METHOD_ROLES)
    assert not missing, f"methods with no role: {sorted(missing)}"
    assert set(keys.METHOD_ROLES.values()) == set(keys.ROLES)
    for method, role in keys.METHOD_ROLES.items():
        holders = [r for r in keys.ROLES if keys.may_call(r, method)]
        assert role in holders and (role == "student" or holders == [role]), (method, holders)


# ---- the student key ---------------------------------------------------------------------

def test_student_key_is_refused_every_method_outside_its_role(bank):
    """With the student key, each server method outside the student role (the protocol,
    replication, fencing, the lab controls) gets HTTP 403 and one sentence naming the role
    and the method, and nothing changes: balances, journals, in-doubt transactions, roles,
    epochs, armed faults."""
    before = snapshot(bank)
    tried = refused_attempts(bank, "student")
    assert len(tried) >= 15
    for server, method, args in tried:
        status, sentence = post(bank.members[server].url, method, args, bank.secret,
                                "student")
        assert status == 403, (server, method, status, sentence)
        assert "student" in sentence and method in sentence, sentence
        assert "Traceback" not in sentence and sentence.count("\n") == 0
    assert snapshot(bank) == before


def test_student_cannot_fence_a_branch_with_replicate(bank):
    """The issue's first attack: `replicate` with a high epoch and no changes, signed
    with the student key, is refused (403); the branch keeps its epoch and role, and a
    transfer touching it still commits."""
    before = snapshot(bank)["Mumbai"]["role"]
    status, sentence = post(bank.members["Mumbai"].url, "replicate", (10**6, [], 0, []),
                            bank.secret, "student")
    assert status == 403 and "replicate" in sentence
    assert snapshot(bank)["Mumbai"]["role"] == before
    student = rpc.Client(bank.coordinator_url, bank.secret.only("student"))
    outcome = student.call("transfer", "Mumbai/1001", "Delhi/1002", "1.00")
    assert outcome["outcome"] == "committed", outcome


def test_student_cannot_mint_money_with_prepare_and_commit(bank):
    """The issue's second attack: a lone `prepare` of a 1,000,000.00 credit, then
    `commit`, sent straight to a branch with the student key: both refused with 403,
    the balance and the journal unchanged, no transaction recorded."""
    url = bank.members["Mumbai"].url
    before = snapshot(bank)["Mumbai"]
    txid = "T-mint-" + secrets.token_hex(4)
    ops = [{"account": "1001", "delta": "+1000000.00"}]
    assert post(url, "prepare", (txid, bank.coordinator_url, ops), bank.secret,
                "student")[0] == 403
    assert post(url, "commit", (txid,), bank.secret, "student")[0] == 403
    after = snapshot(bank)["Mumbai"]
    assert after["accounts"] == before["accounts"] and after["journal"] == before["journal"]
    status = rpc.Client(url, bank.secret.only("student")).call("status", txid)
    assert status["state"] == "unknown", status


def test_the_kit_client_reports_a_refusal_in_one_sentence(bank):
    """A student's shell (rpc.Client with the student key) gets BankError NOT_ALLOWED
    whose sentence names the role and the method; banking with it still works."""
    student = rpc.Client(bank.coordinator_url, bank.secret.only("student"))
    with pytest.raises(BankError) as err:
        student.call("partition", "Delhi")
    assert err.value.code == FaultCode.NOT_ALLOWED
    assert "student key may not call partition" in err.value.message, err.value.message
    assert student.call("deposit", "Mumbai/1002", "5")["balance"]


# ---- the teacher key and the server key ---------------------------------------------------

def test_teacher_key_runs_the_lab_and_is_refused_the_protocol(bank):
    """The teacher key arms and disarms fault points, partitions and heals; the servers'
    protocol (prepare, commit, replicate, promote, decision...) is refused with 403 and
    changes nothing."""
    teacher = bank.secret.only("teacher")
    mumbai = rpc.Client(bank.members["Mumbai"].url, teacher)
    coord = rpc.Client(bank.coordinator_url, teacher)
    assert mumbai.call("fault", "vote-no") and mumbai.call("ping")["faults"]
    mumbai.call("fault", "")
    coord.call("partition", "Delhi")
    coord.call("heal", "Delhi")
    before = snapshot(bank)
    for server, method, args in refused_attempts(bank, "teacher"):
        status, sentence = post(bank.members[server].url, method, args, bank.secret,
                                "teacher")
        assert status == 403 and "teacher" in sentence and method in sentence, sentence
    assert snapshot(bank) == before


def test_server_key_banks_but_cannot_run_the_lab(bank):
    """Decided and documented: the server key may bank (the coordinator relays students'
    banking to the branches with it), so a student's shell given it would bank; but it
    cannot run the lab: fault, partition, failover are refused with 403."""
    server = bank.secret.only("server")
    assert rpc.Client(bank.coordinator_url, server).call("deposit", "Delhi/1001", "1")
    before = snapshot(bank)
    for where, method, args in refused_attempts(bank, "server"):
        status, sentence = post(bank.members[where].url, method, args, bank.secret, "server")
        assert status == 403 and "server" in sentence, sentence
    assert snapshot(bank) == before


@pytest.mark.parametrize("role", keys.ROLES)
@pytest.mark.parametrize("server", ["Mumbai", "coordinator"])
def test_list_methods_shows_only_what_the_role_may_call(bank, role, server):
    """system.listMethods answers a caller exactly the served methods its role may call."""
    listed = rpc.Client(bank.members[server].url, bank.secret.only(role)).call(
        "system.listMethods")
    everything = rpc.Client(bank.members[server].url, bank.secret.only("teacher")).call(
        "system.listMethods") + rpc.Client(bank.members[server].url,
                                           bank.secret.only("server")).call(
        "system.listMethods")
    assert listed and set(listed) == {m for m in everything if keys.may_call(role, m)}
    assert all(keys.may_call(role, m) for m in listed)


# ---- a branch works only for its coordinator (item 3) --------------------------------------

@pytest.fixture
def pune(bank, tmp_path):
    """A branch "Pune" configured with the cluster's coordinator (--coordinator URL),
    ended by pid afterwards."""
    for sub in ("data", "logs"):
        (tmp_path / sub).mkdir()
    member = Member("Pune", "branch.py",
                    ["--name", "Pune", "--db", str(tmp_path / "data" / "Pune.db"), "--preload",
                     "--secret-file", str(bank.secret_file),
                     "--coordinator", bank.coordinator_url], tmp_path)
    try:
        member.start()
        yield member
    finally:
        member.kill()


def test_branch_takes_part_only_for_its_configured_coordinator(bank, pune):
    """BR4: a prepare signed with the server key but naming another coordinator is refused
    with 403 (naming the configured one) and records nothing; the same prepare naming the
    configured coordinator is carried out."""
    ops = [{"account": "1001", "delta": "+1000000.00"}]
    status, sentence = post(pune.url, "prepare", ("T-other-1", "http://127.0.0.1:1", ops),
                            bank.secret, "server")
    assert status == 403 and bank.coordinator_url in sentence, sentence
    reader = rpc.Client(pune.url, bank.secret.only("student"))
    assert reader.call("status", "T-other-1")["state"] == "unknown"
    ops = [{"account": "1001", "delta": "-1.00"}]
    status, vote = post(pune.url, "prepare", ("T-ours-1", bank.coordinator_url, ops),
                        bank.secret, "server")
    assert status == 200 and vote["vote"] == "yes", vote
    assert post(pune.url, "abort", ("T-ours-1",), bank.secret, "server")[0] == 200
    assert reader.call("account", "1001")["held"] == "0.00"


def test_a_prepare_in_a_batch_is_for_the_configured_coordinator_too(bank, pune):
    """BR4 through the batch: a batch holding a prepare that names another coordinator
    is refused whole with 403, as that prepare alone would be, and records nothing; a
    batch whose prepare names the configured coordinator is carried out."""
    ops = [{"account": "1001", "delta": "+1000000.00"}]
    calls = [["abort", ["T-batch-0"]], ["prepare", ["T-batch-1", "http://127.0.0.1:1", ops]]]
    status, sentence = post(pune.url, "batch", (calls,), bank.secret, "server")
    assert status == 403 and bank.coordinator_url in sentence, sentence
    reader = rpc.Client(pune.url, bank.secret.only("student"))
    assert reader.call("status", "T-batch-1")["state"] == "unknown"
    assert reader.call("status", "T-batch-0")["state"] == "unknown"
    ours = [["prepare", ["T-batch-2", bank.coordinator_url, [{"account": "1001",
                                                              "delta": "-1.00"}]]]]
    status, slots = post(pune.url, "batch", (ours,), bank.secret, "server")
    assert status == 200 and slots[0]["result"]["vote"] == "yes", slots
    assert post(pune.url, "abort", ("T-batch-2",), bank.secret, "server")[0] == 200


# ---- keys files and a client in another language ------------------------------------------

def test_cluster_secret_writes_role_keys_private(tmp_path):
    """`python cluster.py secret FILE` writes the three role keys and `--role student
    --from FILE` only the student's, both mode 0600; an old single-secret file still
    loads as a master key holding all three roles."""
    run = [sys.executable, str(KIT / "cluster.py"), "secret"]
    full, student = tmp_path / "classroom.keys", tmp_path / "student.keys"
    subprocess.run([*run, str(full)], check=True, capture_output=True, timeout=60)
    subprocess.run([*run, str(student), "--role", "student", "--from", str(full)],
                   check=True, capture_output=True, timeout=60)
    assert keys.load_keys(full).roles == keys.ROLES
    assert keys.load_keys(student).keys == {"student": keys.load_keys(full).keys["student"]}
    if os.name == "posix":
        for path in (full, student):
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    old = tmp_path / "secret.txt"
    old.write_text("a" * 64 + "\n")
    assert keys.load_keys(old).roles == keys.ROLES
    bad = subprocess.run([*run, str(tmp_path / "x"), "--role", "teacher", "--from",
                          str(student)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "no teacher key" in bad.stderr and "Traceback" not in bad.stderr


def test_cluster_secret_never_overwrites_a_file(tmp_path):
    """`python cluster.py secret FILE` refuses a FILE that exists, in one sentence, and
    leaves it as it was: a classroom's keys file replaced would lock out every laptop
    holding its keys (and a mistyped name could be a database)."""
    run = [sys.executable, str(KIT / "cluster.py"), "secret"]
    full = tmp_path / "classroom.keys"
    subprocess.run([*run, str(full)], check=True, capture_output=True, timeout=60)
    before = full.read_bytes()
    again = subprocess.run([*run, str(full)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already exists and is left as it is" in again.stderr
    assert "Traceback" not in again.stderr and full.read_bytes() == before


def test_cluster_secret_from_without_a_role_is_refused(tmp_path):
    """`python cluster.py secret FILE --from classroom.keys` without --role is refused in
    one sentence naming --role, and writes nothing: it used to ignore --from and write
    three new keys, which no laptop of the class holds."""
    run = [sys.executable, str(KIT / "cluster.py"), "secret"]
    full, copy = tmp_path / "classroom.keys", tmp_path / "copy.keys"
    subprocess.run([*run, str(full)], check=True, capture_output=True, timeout=60)
    done = subprocess.run([*run, str(copy), "--from", str(full)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "--role" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not copy.exists()


@pytest.mark.parametrize("program", ["branch.py", "coordinator.py"])
@pytest.mark.parametrize("role", ["student", "teacher"])
def test_a_server_refuses_a_keys_file_without_all_three_roles(tmp_path, program, role):
    """A server checks the signatures of every role, so a branch or coordinator started
    with student.keys or teacher.keys (one role's key) exits non-zero before serving or
    creating anything, in one sentence naming the missing keys and classroom.keys; it
    used to start and then answer every server and teacher call with 401."""
    full, one = tmp_path / "classroom.keys", tmp_path / f"{role}.keys"
    keys.write_keys(one, keys.write_keys(full, keys.new_keyring()).only(role))
    work = tmp_path / "work"
    work.mkdir()
    args = ["--name", "Pune"] if program == "branch.py" else \
        ["--branch", "Pune=http://127.0.0.1:1", "--log", str(work / "recovery.log")]
    done = subprocess.run([sys.executable, str(KIT / program), *args, "--port", "0",
                           "--secret-file", str(one), "--log-dir", str(work / "logs")],
                          cwd=work, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode != 0 and "serving at" not in done.stdout
    assert f"holds only the {role} key" in done.stderr, done.stderr
    assert "classroom.keys" in done.stderr and "Traceback" not in done.stderr
    assert list(work.iterdir()) == [], "it created files before refusing"


def test_a_client_in_another_language_signs_with_only_its_role_key(bank, tmp_path):
    """The README's recipe, done by hand: from a student keys file, HMAC-SHA256 of
    TIME, NONCE, ROLE, SERVER-ID (each then a newline) and the body, with X-Bank-Key
    naming the role. A deposit is served; a lab control is refused with 403."""
    line = [ln for ln in bank.secret.only("student").text().splitlines()
            if not ln.startswith("#")][0]
    role, key = line.split()
    url = bank.members["Mumbai"].url
    server_id = rpc.server_id_at(url)
    parts = urllib.parse.urlsplit(url)

    def call(method, *args):
        body = xmlrpc.client.dumps(args, method).encode()
        stamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
        text = f"{stamp}\n{nonce}\n{role}\n{server_id}\n".encode() + body
        headers = {"Content-Type": "text/xml", "X-Bank-Time": stamp, "X-Bank-Nonce": nonce,
                   "X-Bank-Key": role,
                   "X-Bank-Signature": hmac.new(key.encode(), text, hashlib.sha256).hexdigest()}
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request("POST", "/", body, headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    status, data = call("deposit", "1002", "2.50")
    assert status == 200 and xmlrpc.client.loads(data)[0][0]["number"] == "1002"
    status, data = call("fault", "vote-no")
    assert status == 403 and b"student key may not call fault" in data


def test_readme_lists_every_method_with_its_role():
    """Docs that cannot rot: the LAN guide's table of methods by role names every method
    in the row of its one role, and shows the three key files."""
    readme = (KIT / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in readme.splitlines()
            if line.startswith("| `") and line.split("|")[1].strip(" `") in keys.ROLES
            and line.count("|") == 4 and "`," in line}
    assert set(rows) == set(keys.ROLES), sorted(rows)
    for method, role in keys.METHOD_ROLES.items():
        owners = [r for r, line in rows.items() if f"`{method}`" in line]
        assert owners == [role], (method, owners)
    for name in ("classroom.keys", "teacher.keys", "student.keys"):
        assert f"`{name}`" in readme


@pytest.mark.skipif(os.name == "nt", reason="file modes are POSIX")
def test_a_keys_file_others_can_read_is_said_at_load(tmp_path, capsys):
    """K4: a keys file copied or created readable by other users (mode 644) still loads,
    with one sentence saying so and how to fix it; a private one (0600) loads silently."""
    path = tmp_path / "classroom.keys"
    keys.write_keys(path, keys.new_keyring())
    keys.load_keys(path)
    assert capsys.readouterr().err == ""
    path.chmod(0o644)
    assert keys.load_keys(path).roles == keys.ROLES
    keys.load_keys(path)                    # loaded again (a window, every second): said once
    said = capsys.readouterr().err
    assert "can be read by other users" in said and "chmod 600" in said and said.count("\n") == 1
