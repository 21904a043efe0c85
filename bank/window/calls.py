"""Calls the desktop window makes, run on worker threads: the network side of the window.

Role: fetch what the window shows (the coordinator's state, each branch's accounts and
prepared transactions, journals) and run operations, off the Tk thread.

Rules:
  * Rule 1 - nothing here touches a widget. Functions take plain values (clients,
    names) and return plain dicts and lists; the panels put them on screen.
  * Rule 2 - every call has a socket timeout (rpc.Client's), so a worker is never
    stuck for long, and a failure is a BankError with a sentence, never a hang.
  * Workers are daemon threads: closing the window never waits for a slow call.

Glossary:
  job      (fn, args, done): run fn(*args) on a worker, then done(result, error) on Tk
  results  the queue.Queue where finished jobs wait for the Tk thread to collect them
"""

import logging
import queue
import secrets
import threading
import time

from bank.errors import BankError, FaultCode, split_acct_ref

log = logging.getLogger("gui")

# Jobs that finished after their window closed. They are kept, never freed: freeing
# them here could free the window's Tk objects on a worker thread, which Tcl forbids
# (it aborts the process). Only calls slower than Workers.stop's wait end up here.
_ABANDONED = []

WORKERS = 6                # threads making calls; the Tk thread never does
TXN_LIMIT = 100            # transactions listed
ALL = "All"                # "every account" / "every branch" in the pickers


# ---- worker threads: calls run here, results go on a queue ------------------------------

class Workers:
    """A few daemon threads that run calls off the Tk thread.

    ``submit(fn, args, done)`` runs ``fn(*args)`` on a worker and puts
    ``(done, result, error)`` on ``results``; the Tk thread calls ``done`` later.
    """

    def __init__(self, count: int = WORKERS):
        self.jobs, self.results = queue.Queue(), queue.Queue()
        self.stopped = False
        self.lock = threading.Lock()          # guards stopped against a late result
        self.threads = [threading.Thread(target=self._work, name=f"gui-worker-{i}",
                                         daemon=True) for i in range(count)]
        for thread in self.threads:
            thread.start()

    def submit(self, fn, args, done) -> None:
        self.jobs.put((fn, args, done))

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            fn, args, done = job
            try:
                result, error = fn(*args), None
            except BankError as exc:
                result, error = None, exc
            except Exception as exc:          # a broken reply or a bug: say it, keep going
                log.exception("call %s failed", getattr(fn, "__name__", fn))
                result, error = None, BankError(FaultCode.INTERNAL,
                                                f"{type(exc).__name__}: {exc}")
            with self.lock:                   # never a result after stop() drained them
                if self.stopped:              # the window has closed meanwhile
                    _ABANDONED.append(job)
                else:
                    self.results.put((done, result, error))
            # Hold nothing while waiting: callbacks lead to widgets, and the last
            # reference to a Tk object must never be dropped on a worker thread.
            del job, fn, args, done, result, error

    def stop(self, wait: float = 1.0) -> None:
        """Drop queued jobs and results, end the threads; wait a little for calls
        in flight (a slow one is abandoned: the threads are daemons)."""
        with self.lock:                       # a result put after this would be freed,
            self.stopped = True               # with its widgets, on a worker thread
        for box in (self.jobs, self.results):
            while True:
                try:
                    box.get_nowait()
                except queue.Empty:
                    break
        for _ in self.threads:
            self.jobs.put(None)
        deadline = time.monotonic() + wait
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


# ---- calls made on worker threads (plain data in, plain data out) ------------------------

def fetch_coordinator(client) -> dict:
    """The coordinator's own state and its recent transactions."""
    return {"ping": client.call("ping"), "txns": client.call("transactions", TXN_LIMIT, "")}


def fetch_routes(client) -> list:
    """Where the branches are, and which ones a lab partition cuts off."""
    return client.call("branches")


def fetch_branch(name: str, client, coordinator=None) -> dict:
    """One branch's state and accounts, for the branches panel.

    If this machine cannot reach the branch but the coordinator can (branch URLs that
    only work from the coordinator's machine), its accounts come via the coordinator.
    """
    try:
        ping = client.call("ping")
    except BankError as exc:
        if coordinator is None or exc.code != FaultCode.UNAVAILABLE:
            raise
        seen = {b["name"]: b["up"] for b in coordinator.call("branches")}
        if not seen.get(name):
            raise                                         # its primary is really down
        accounts = coordinator.call("accounts", name)
        return {"ping": {"role": "seen via the coordinator"}, "accounts": accounts}
    return {"ping": ping, "accounts": client.call("accounts")}


# ---- the money gauge: a consistent snapshot of every branch ------------------------------

def fetch_money(clients: dict, tries: int = 3):
    """Every reachable branch's accounts and prepared transactions, as of one moment.

    Branches are read one after another, so a transfer could commit between two reads
    and be counted twice or not at all. So: read everything, ask about the prepared
    txids, read everything again, and keep the result only if nothing changed in
    between ("double collect": then all the first reads held at the same moment).
    Returns {branch: {"accounts", "prepared"} or None if unreachable}, or None if
    transfers kept changing the books (the window keeps its last gauge then).

    Each prepared txn gets "elsewhere": "committed" if some branch already committed
    it: the credit it waits for is money in flight, or the hold it keeps has landed.
    """
    for _ in range(tries):
        first = _collect(clients)
        waiting = {t["txid"]: name for name, snap in first.items() if snap
                   for t in snap["prepared"]}
        committed = {txid for txid, holder in waiting.items()
                     if _committed_elsewhere(clients, txid, holder)}
        if _collect(clients) == first:
            for snap in filter(None, first.values()):
                for txn in snap["prepared"]:
                    txn["elsewhere"] = "committed" if txn["txid"] in committed else ""
            return first
    return None


def _collect(clients: dict) -> dict:
    books = {}
    for name, client in clients.items():
        try:
            books[name] = {"accounts": client.call("accounts"),
                           "prepared": client.call("in_doubt")}
        except BankError:
            books[name] = None
    return books


def _committed_elsewhere(clients: dict, txid: str, holder: str) -> bool:
    for name, client in clients.items():
        if name == holder:
            continue
        try:
            if client.call("status", txid)["state"] == "committed":
                return True
        except BankError:
            continue
    return False


def fetch_journal(clients: dict, scope: str, limit: int) -> list:
    """Journal rows of one account, one branch or every branch, oldest first."""
    if "/" in scope:
        branch, number = split_acct_ref(scope)
        return _branch_client(clients, branch).call("journal", number, limit)
    if scope and scope != ALL:
        return _branch_client(clients, scope).call("journal", "", limit)
    rows = []
    for client in clients.values():
        try:
            rows += client.call("journal", "", limit)
        except BankError:
            continue                      # a down branch: the others still show
    return sorted(rows, key=lambda r: r["ts"])[-limit:]


def _branch_client(clients: dict, name: str):
    if name not in clients:
        raise BankError(FaultCode.UNKNOWN_ACCOUNT, f"There is no branch {name!r}.")
    return clients[name]


def new_request_id() -> str:
    """A fresh request id: a retried call with it applies once."""
    return "gui-" + secrets.token_hex(6)
