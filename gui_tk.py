"""The desktop window: watch the bank and the Two-Phase Commit protocol, live.

Role: show a classroom what a dashboard shows (branches, balances, operations, logs)
and what no banking demo shows: the protocol itself, message by message, and where
money is while a transaction is in doubt. It is a client like any lab script: it only
calls the coordinator's and the branches' public XML-RPC methods.

Run it:
    python gui_tk.py                      # attach to the local cluster, or start one
    python gui_tk.py --home DIR           # ... whose data/ and logs/ live in DIR
    python gui_tk.py --coordinator http://192.168.1.30:9000 --secret-file secret.txt
    python gui_tk.py --config cluster.ini

Files (one role each):
  gui_tk.py       this file: the App's behaviour, gluing the other three together
  gui_layout.py   the widgets and their look, no logic and no network
  gui_calls.py    what runs on worker threads: the network side, never a widget
  gui_diagram.py  the drawings: the sequence diagram and the money gauge

Rules:
  * Rule 1 - only the Tk thread touches widgets. Every network call runs on a few
    worker threads (``Workers``); a call's result goes on a ``queue.Queue`` and the Tk
    thread picks it up every 50 ms (``after()`` polling), then updates the widgets.
  * Rule 2 - the window never waits on the network. Calls have short socket timeouts,
    an unreachable branch is shown as down while the rest keeps working, and a refresh
    (about once a second) is skipped for a source whose previous one is still running,
    so slow calls never pile up. The money gauge is drawn only from a consistent
    snapshot of all branches (gui_calls.fetch_money), so its total never jumps.
  * Rule 3 - input is checked before anything is sent. The ``*_ok`` methods (IDLE's
    ``entry_ok`` habit) return the checked values or None, and say what is wrong.
  * Rule 4 - never report "aborted" when it may have committed: when the coordinator
    stops answering in the middle of a transfer the window says the outcome is unknown.
  * If the window started the local cluster, it stops it when it closes; a cluster it
    merely attached to keeps running.
  * Local files (the activity log and CSV exports) are read and written on the Tk
    thread: they are small and on this machine. Only the network is kept off it.

Glossary (more in protocol.py and coordinator.py):
  source     something the window refreshes: the coordinator, or one branch
  snapshot   the last answer from a source; a down branch keeps its last one, greyed
  gauge      the bar that counts all the money: available, held, in doubt, unreachable
  lab        the controls that break things on purpose: crash, restart, fault, partition
"""

import argparse
import logging
import pathlib
import queue
import signal
import sys
import time
import tkinter as tk
from tkinter import filedialog, messagebox

from bank import local_cluster
from bank.window import diagram as draw
from bank import rpc
from bank.activity import JOURNAL_FIELDS, ActivityLog, write_csv
from bank.errors import BankError, FaultCode, check_text, split_acct_ref
from bank.window.calls import (ALL, WORKERS, Workers, fetch_branch, fetch_coordinator, fetch_journal,
                       fetch_money, fetch_routes, new_request_id)
from bank.window.layout import TITLE, Layout  # noqa: F401  (TITLE: the window's name)
from bank.money import format_amount, parse_amount

log = logging.getLogger("gui")

POLL_MS = 50               # how often the Tk thread collects finished calls
REFRESH_MS = 1000          # how often each source is refreshed
CALL_TIMEOUT = 3           # seconds: refresh calls give up quickly
OPERATION_TIMEOUT = 15     # seconds: a transfer may wait for a slow vote (5 s at most)
FONT_SIZE = 10             # points; --font-size 14 for a big projector
COORD = local_cluster.COORDINATOR


# ---- the window --------------------------------------------------------------------------

class App(Layout):
    """The whole window. Build it with a coordinator client; tests drive it directly.

    ``App(root, bank, cluster=LocalCluster or None, activity=ActivityLog)``. ``pump()``
    runs the callbacks of finished calls; ``refresh()`` asks every source again.
    """

    def __init__(self, root, bank, *, cluster=None, activity=None, started=False,
                 source="", refresh_ms=REFRESH_MS, workers=WORKERS, font_size=FONT_SIZE):
        self.root, self.bank, self.cluster, self.started = root, bank, cluster, started
        self.activity = activity or ActivityLog(pathlib.Path("logs") / "activity.csv")
        self.refresh_ms, self.font_size = refresh_ms, font_size
        secret = getattr(bank, "secret", None)
        self.secret = secret
        self.poll_client = rpc.Client(bank.url, secret, timeout=CALL_TIMEOUT,
                                      label="the coordinator")
        self.workers = Workers(workers)
        self.busy = set()                  # sources with a refresh in flight (Rule 2)
        self.routes = {}                   # branch -> URL
        self.clients = {}                  # branch -> short-timeout rpc.Client
        self.partitioned = {}              # branch -> bool (a lab partition)
        self.replication = {}              # branch -> (epoch, [replica rows]) from branches()
        self.snaps = {}                    # branch -> last snapshot (see fetch_branch)
        self.coord = {"up": None, "ping": {}, "error": "", "seen": ""}
        self.txns = {}                     # txid -> summary row
        self.selected = ""                 # txid whose diagram is shown
        self.shown_txn = None              # the transaction() reply drawn
        self.journal_rows, self.journal_loaded = [], ""   # the rows shown, and of what
        self.activity_stamp = None
        self.closed = False
        if cluster is not None:
            for name in cluster.branch_names:
                self.routes[name] = cluster.members[name].url
        self._style()
        self._build(source)
        self._update_clients()
        self.root.protocol("WM_DELETE_WINDOW", self.close)
        self._poll_id = self.root.after(POLL_MS, self._poll)
        self._tick_id = self.root.after(10, self._tick)

    # ---- plumbing: calls off the Tk thread, results back on it (Rules 1 and 2) ----------

    def submit(self, fn, args, done) -> None:
        """Run fn(*args) on a worker; done(result, error) runs later on the Tk thread."""
        self.workers.submit(fn, args, done)

    def start(self, key: str, fn, args, done) -> bool:
        """Like submit, but not while the previous call for `key` is still running."""
        if key in self.busy:
            return False
        self.busy.add(key)

        def finish(result, error):
            self.busy.discard(key)
            done(result, error)
        self.submit(fn, args, finish)
        return True

    def pump(self) -> int:
        """Run the callbacks of every finished call (Tk thread only); how many ran."""
        count = 0
        while True:
            try:
                done, result, error = self.workers.results.get_nowait()
            except queue.Empty:
                return count
            count += 1
            if self.closed:
                continue
            try:
                done(result, error)
            except Exception:                 # a bug in one callback must not stop polling
                log.exception("callback failed")

    def _poll(self) -> None:
        if self.closed:
            return
        self.pump()
        self._poll_id = self.root.after(POLL_MS, self._poll)

    def _tick(self) -> None:
        if self.closed:
            return
        self.refresh()
        self._tick_id = self.root.after(self.refresh_ms, self._tick)

    def refresh(self) -> None:
        """Ask every source again (skipping those still answering the last time)."""
        slow = []
        if not self.start("coordinator", fetch_coordinator, (self.poll_client,),
                          self._got_coordinator):
            slow.append(COORD)
        self.start("routes", fetch_routes, (self.poll_client,), self._got_routes)
        for name, client in self.clients.items():
            if not self.start(f"branch:{name}", fetch_branch, (name, client, self.poll_client),
                              lambda result, error, n=name: self._got_branch(n, result, error)):
                slow.append(name)
        self.start("money", fetch_money, (dict(self.clients),), self._got_money)
        if self.selected and self._unfinished(self.selected):
            self._fetch_txn(self.selected)
        self._reload_activity_if_changed()
        text = f"Refreshed {time.strftime('%H:%M:%S')}"
        if slow:
            text += f" · still waiting for {', '.join(slow)} (not asked again until it answers)"
        if self.coord.get("error"):
            text += f" · coordinator: {self.coord['error']}"
        self.status.configure(text=text)

    def _update_clients(self) -> None:
        for name, url in self.routes.items():
            client = self.clients.get(name)
            if client is None or client.url != url:
                self.clients[name] = rpc.Client(url, self.secret, timeout=CALL_TIMEOUT,
                                                label=f"branch {name}")
        self._lab_rows([COORD, *sorted(self.routes)])

    # ---- the branches panel ---------------------------------------------------------

    def _got_coordinator(self, result, error) -> None:
        if error is None:
            self.coord = {"up": True, "ping": result["ping"], "error": "",
                          "seen": time.strftime("%H:%M:%S")}
            self._show_txns(result["txns"])
        else:
            self.coord.update(up=False, error=error.message)
        self._render_branches()

    def _got_routes(self, result, error) -> None:
        if error is not None:
            return
        for row in result:
            self.partitioned[row["name"]] = bool(row.get("partitioned"))
            self.replication[row["name"]] = (row.get("epoch", 0), row.get("replicas", []))
            if self.cluster is None or row["name"] not in self.routes or row.get("up"):
                self.routes[row["name"]] = row["url"]      # follows a failover, too
        self._update_clients()
        self._render_branches()

    def _got_branch(self, name: str, result, error) -> None:
        snap = self.snaps.setdefault(name, {"accounts": []})
        if error is None:
            ping = result["ping"]
            snap.update(up=True, error="", role=ping.get("role", ""), faults=ping.get(
                "faults", ""), in_doubt=ping.get("in_doubt", 0), accounts=result["accounts"],
                seen=time.strftime("%H:%M:%S"))
        else:
            snap.update(up=False, error=error.message, in_doubt=0)
        self._render_branches()

    def _got_money(self, result, error) -> None:
        """A consistent snapshot arrived (None: the books kept moving; keep the last)."""
        if error is not None or result is None:
            return
        books = {}
        for name in self.routes:
            seen = result.get(name)
            books[name] = {"up": True, **seen} if seen else {
                "up": False, "accounts": self.snaps.get(name, {}).get("accounts", [])}
        self.split = draw.money_split(books)
        self._draw_gauge()

    def branch_state(self, name: str) -> str:
        """'up', 'down' or '' (not heard from yet): what the panel shows for `name`."""
        if name == COORD:
            up = self.coord.get("up")
        else:
            up = self.snaps.get(name, {}).get("up")
        return "" if up is None else ("up" if up else "down")

    def _render_branches(self) -> None:
        tree = self.branch_tree
        wanted = []
        coord_text = self._member_text(COORD)
        self._upsert(tree, "m:" + COORD, "", "coordinator", (coord_text, "", "", ""),
                     self._member_tag(COORD))
        wanted.append("m:" + COORD)
        for name in sorted(self.routes):
            snap = self.snaps.get(name, {})
            accounts = snap.get("accounts", [])
            totals = [sum(parse_amount(a[k], allow_zero=True) for a in accounts)
                      for k in ("balance", "held", "available")]
            iid = "m:" + name
            self._upsert(tree, iid, "", name, (self._member_text(name),
                         *(draw.show_money(t) if accounts else "" for t in totals)),
                         self._member_tag(name))
            wanted.append(iid)
            for k, rep in enumerate(self.replication.get(name, (0, []))[1]):
                rid = f"r:{name}/{k}"              # a replica: role, sync state and lag
                state = ("○ down" if not rep["up"] else
                         f"● {'in sync' if rep['in_sync'] else 'OUT OF SYNC'} · "
                         f"lag {rep['lag']}")
                self._upsert(tree, rid, iid, rep["role"] or "server", (state, "", "", ""),
                             "up" if rep["up"] and rep["in_sync"] else "down")
                wanted.append(rid)
            for acct in accounts:
                aid = f"a:{name}/{acct['number']}"
                tag = "stale" if not snap.get("up") else (
                    "holding" if parse_amount(acct["held"], allow_zero=True) else "")
                self._upsert(tree, aid, iid, acct["number"], (
                    acct["owner"], *(draw.show_money(parse_amount(acct[k], allow_zero=True))
                                     for k in ("balance", "held", "available"))), tag)
                wanted.append(aid)
        for iid in [i for p in ("",) + tuple(tree.get_children("")) for i in
                    tree.get_children(p)]:
            if iid not in wanted:
                tree.delete(iid)
        self._render_lab()
        self._refresh_pickers()

    def _upsert(self, tree, iid, parent, text, values, tag) -> None:
        tags = (tag,) if tag else ()
        if tree.exists(iid):
            tree.item(iid, text=text, values=values, tags=tags)
        else:
            tree.insert(parent, "end", iid=iid, text=text, values=values, tags=tags,
                        open=True)

    def _member_text(self, name: str) -> str:
        state = self.branch_state(name)
        if name == COORD:
            ping = self.coord.get("ping", {})
            if state == "up":
                armed = f" · armed: {self.armed(name)}" if self.armed(name) else ""
                return f"● up · {ping.get('in_flight', 0)} in flight{armed}"
            return "○ down" if state == "down" else "..."
        snap = self.snaps.get(name, {})
        if state == "down":
            return "○ down"
        if state == "":
            return "..."
        text = f"● up · {snap.get('role', '')}"
        epoch, replicas = self.replication.get(name, (0, []))
        if replicas:
            text += f" · epoch {epoch}"
        if snap.get("in_doubt"):
            text += f" · {snap['in_doubt']} in doubt"
        if self.partitioned.get(name):
            text += " · cut off"
        if self.armed(name):
            text += f" · armed: {self.armed(name)}"
        return text

    def _member_tag(self, name: str) -> str:
        state = self.branch_state(name)
        if state == "up" and self.partitioned.get(name):
            return "cut"
        return {"up": "up", "down": "down"}.get(state, "")

    def _draw_gauge(self) -> None:
        draw.draw_gauge(self.gauge, self.split, self.gauge.winfo_width())

    def account_refs(self) -> list:
        """Every account the panel knows, as BRANCH/NUMBER."""
        return [f"{n}/{a['number']}" for n in sorted(self.routes)
                for a in self.snaps.get(n, {}).get("accounts", [])]

    def _refresh_pickers(self) -> None:
        owners = {f"{n}/{a['number']}": a["owner"] for n in self.routes
                  for a in self.snaps.get(n, {}).get("accounts", [])}
        choices = [f"{ref}  {owner}" for ref, owner in owners.items()]
        for box in self.pickers:
            if list(box.cget("values")) != choices:
                box.configure(values=choices)
        branches = sorted(self.routes)
        for box in self.branch_pickers:
            if list(box.cget("values")) != branches:
                box.configure(values=branches)
        refs = [ALL, *branches, *owners]
        if list(self.journal_scope_box.cget("values")) != refs:
            self.journal_scope_box.configure(values=refs)
            self.activity_filter_box.configure(values=[ALL, *owners])

    # ---- operations: check, send, explain (Rules 3 and 4) ------------------------------

    def say(self, text: str, kind: str = "info") -> None:
        """Show a result in plain words: kind is ok, bad, unknown or info."""
        self.result.configure(text=text, style=f"{kind.capitalize()}.TLabel")

    def _account_ok(self, text: str, what: str):
        """BRANCH/NUMBER from a picker (the owner shown after it is ignored), or None."""
        text = (text or "").strip().split()[0] if (text or "").strip() else ""
        if not text:
            self.say(f"Choose {what} account (like Mumbai/1001).", "bad")
            return None
        try:
            branch, number = split_acct_ref(text)
        except BankError as exc:
            self.say(exc.message, "bad")
            return None
        if self.routes and branch not in self.routes:
            self.say(f"There is no branch {branch!r}; the branches are "
                     f"{', '.join(sorted(self.routes))}.", "bad")
            return None
        return f"{branch}/{number}"

    def _amount_ok(self, text: str, allow_zero=False):
        """The amount as a two-decimal string, or None (with the reason shown)."""
        try:
            return format_amount(parse_amount((text or "").strip(), allow_zero=allow_zero))
        except BankError as exc:
            self.say(exc.message, "bad")
            return None

    def transfer_ok(self):
        """(src, dst, amount) from the transfer form, or None."""
        src = self._account_ok(self.transfer_src.get(), "the from")
        dst = src and self._account_ok(self.transfer_dst.get(), "the to")
        amount = dst and self._amount_ok(self.transfer_amount.get())
        if not amount:
            return None
        if src == dst:
            self.say("The two accounts are the same; choose another destination.", "bad")
            return None
        return src, dst, amount

    def deposit_ok(self, acct_var, amount_var):
        """(account, amount) from a deposit or withdraw form, or None."""
        acct = self._account_ok(acct_var.get(), "an")
        amount = acct and self._amount_ok(amount_var.get())
        return (acct, amount) if amount else None

    def open_account_ok(self):
        """(branch, owner, initial) from the open-account form, or None."""
        branch = self.open_branch.get().strip()
        if branch not in self.routes:
            self.say("Choose a branch: " + ", ".join(sorted(self.routes)) + ".", "bad")
            return None
        try:
            owner = check_text(self.open_owner.get(), "owner name")
        except BankError as exc:
            self.say(exc.message, "bad")
            return None
        initial = self._amount_ok(self.open_initial.get() or "0", allow_zero=True)
        return (branch, owner, initial) if initial else None

    def do_transfer(self) -> None:
        checked = self.transfer_ok()
        if checked is None:
            return
        src, dst, amount = checked
        self.say(f"Transferring {amount} from {src} to {dst}...", "info")
        self.submit(self.bank.call, ("transfer", src, dst, amount, new_request_id()),
                    lambda r, e: self._transfer_done(checked, r, e))

    def _transfer_done(self, checked, result, error) -> None:
        src, dst, amount = checked
        if error is not None:
            text, kind = self._failure_text("transfer", error)
        elif result["outcome"] == "committed":
            kind = "ok"
            how = ("one branch: a local transaction, no Two-Phase Commit needed"
                   if result.get("local") else
                   f"both branches voted yes and the decision was logged; {result['txid']}")
            text = f"Done: {amount} moved from {src} to {dst} ({how})."
            if result.get("waiting_for"):
                kind = "unknown"
                text += (f" {', '.join(result['waiting_for'])} has not confirmed yet; the "
                         "coordinator keeps telling it until it does.")
        else:
            text, kind = (f"Not done: the transfer was aborted and no money moved. "
                          f"Why: {result['reason'] or 'a participant voted no'}."), "bad"
        committed = error is None and result["outcome"] == "committed"
        self._finish(f"transfer {src} {dst} {amount}", (src, dst), kind, text, ok=committed)
        self.refresh()
        if result and result.get("txid"):
            self.select_txn(result["txid"])

    def _failure_text(self, what: str, error: BankError):
        """A refusal, or (Rule 4) an outcome we cannot know yet.

        An unreachable server is never taken as "nothing happened": the call may have
        arrived just before it went down (and xmlrpc.client re-sends a request once on
        a reset connection, so even "connection refused" can follow a delivered call).
        """
        if error.code == FaultCode.UNAVAILABLE:
            return (f"The outcome of this {what} is not known: {error.message} If it was "
                    "down before you pressed the button, nothing happened; if it went down "
                    "during the call, the operation may still complete. Watch the balances "
                    "and the transactions list."), "unknown"
        return f"Refused: {error.message}", "bad"

    def _finish(self, command: str, accounts, kind: str, text: str, ok=None) -> None:
        """Show the result and add it to the activity log."""
        self.say(text, kind)
        try:
            self.activity.record("gui", command, accounts, ok=kind == "ok" if ok is None
                                 else ok, result=text)
        except OSError as exc:
            self.status.configure(text=f"Cannot write the activity log: {exc}")
        self._reload_activity_if_changed()

    def do_deposit(self) -> None:
        self._money_op("deposit", self.deposit_acct, self.deposit_amount)

    def do_withdraw(self) -> None:
        self._money_op("withdraw", self.withdraw_acct, self.withdraw_amount)

    def _money_op(self, verb: str, acct_var, amount_var) -> None:
        checked = self.deposit_ok(acct_var, amount_var)
        if checked is None:
            return
        acct, amount = checked
        self.say(f"{verb.capitalize()}ing {amount} ...", "info")

        def done(result, error):
            if error is not None:
                text, kind = self._failure_text(verb, error)
            else:
                did = "deposited" if verb == "deposit" else "withdrew"
                into = "into" if verb == "deposit" else "from"
                text, kind = (f"Done: {did} {amount} {into} {acct}; its balance is now "
                              f"{result['balance']} ({result['available']} available)."), "ok"
            self._finish(f"{verb} {acct} {amount}", (acct,), kind, text)
            self.refresh()
        self.submit(self.bank.call, (verb, acct, amount, new_request_id()), done)

    def do_open_account(self) -> None:
        checked = self.open_account_ok()
        if checked is None:
            return
        branch, owner, initial = checked

        def done(result, error):
            if error is not None:
                text, kind, ref = *self._failure_text("account opening", error), ()
            else:
                acct = f"{branch}/{result['number']}"
                text, kind, ref = (f"Done: opened {acct} for {owner} with {result['balance']}."
                                   , "ok", (acct,))
            self._finish(f"open {branch} {owner!r} {initial}", ref, kind, text)
            self.refresh()
        self.submit(self.bank.call, ("open_account", branch, owner, initial), done)

    # ---- transactions and the sequence diagram --------------------------------------

    def _show_txns(self, rows: list) -> None:
        tree = self.txn_tree
        self.txns = {r["txid"]: r for r in rows}
        for index, row in enumerate(rows):
            values = (row["txid"], f"{row['src']} → {row['dst']}",
                      draw.show_money(parse_amount(row["amount"])) if row.get("amount")
                      else "", draw.txn_state_text(row))
            tags = (draw.txn_category(row),)
            if tree.exists(row["txid"]):
                tree.item(row["txid"], values=values, tags=tags)
                if tree.index(row["txid"]) != index:
                    tree.move(row["txid"], "", index)
            else:
                tree.insert("", index, iid=row["txid"], values=values, tags=tags)
        for iid in tree.get_children(""):
            if iid not in self.txns:
                tree.delete(iid)
        if self.selected in self.txns and tree.selection() != (self.selected,):
            tree.selection_set(self.selected)     # chosen before its row was listed
        if self.selected in self.txns and self.shown_txn is not None and \
                self.shown_txn.get("state") != self.txns[self.selected]["state"]:
            self._fetch_txn(self.selected)

    def select_txn(self, txid: str) -> None:
        """Select a transaction in the list (its diagram follows)."""
        if self.txn_tree.exists(txid):
            self.txn_tree.selection_set(txid)
            self.txn_tree.see(txid)
        else:
            self.selected = txid
            self._fetch_txn(txid)

    def _on_select_txn(self) -> None:
        chosen = self.txn_tree.selection()
        if chosen and chosen[0] != self.selected:
            self.selected = chosen[0]
            self.shown_txn = None
            self.diagram.delete("all")
            self.diagram_title.configure(text=f"{self.selected}: loading...")
            self._fetch_txn(self.selected)

    def _unfinished(self, txid: str) -> bool:
        row = self.txns.get(txid) or self.shown_txn or {}
        return draw.txn_category(row) == "in-doubt"

    def _fetch_txn(self, txid: str) -> None:
        def done(result, error):
            if txid != self.selected:
                return                        # the user has moved on
            if error is not None:
                self.diagram_title.configure(text=f"{txid}: {error.message}")
                return
            if result != self.shown_txn:
                new = self.shown_txn is None or self.shown_txn["txid"] != txid
                following = new or self.diagram.yview()[1] > 0.99
                self.shown_txn = result
                self._draw_diagram()
                if following and draw.txn_category(result) == "in-doubt":
                    self.diagram.yview_moveto(1.0)   # keep the latest messages in view
        self.start(f"txn:{txid}", self.poll_client.call, ("transaction", txid), done)

    def _draw_diagram(self) -> None:
        txn = self.shown_txn
        if txn is None:
            return
        self.diagram_title.configure(
            text=f"{txn['txid']}:  {txn['src']} → {txn['dst']}  {txn['amount']}  ·  "
                 f"{draw.txn_state_text(txn)}",
            style={"committed": "Ok.TLabel", "aborted": "Bad.TLabel"}.get(
                draw.txn_category(txn), "Unknown.TLabel"))
        draw.draw_sequence(self.diagram, txn, self.diagram.winfo_width())

    # ---- the activity log and the branch journals ------------------------------------

    def _on_tab(self) -> None:
        tab = self.right_tabs.tab(self.right_tabs.select(), "text")
        if tab == "Branch journals" and not self.journal_rows:
            self.load_journal()
        if tab == "Activity log":
            self.show_activity()

    def _reload_activity_if_changed(self) -> None:
        try:
            stamp = self.activity.path.stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp != self.activity_stamp:
            self.show_activity()

    def activity_account(self) -> str:
        """The filter: '' for every account, else BRANCH/NUMBER."""
        value = self.activity_filter.get().strip()
        return "" if value in ("", ALL) else value.split()[0]

    def show_activity(self) -> None:
        try:
            self.activity_stamp = self.activity.path.stat().st_mtime_ns
        except OSError:
            self.activity_stamp = None
        rows = self.activity.rows(self.activity_account())
        tree = self.activity_tree
        tree.delete(*tree.get_children(""))
        for row in reversed(rows[-1000:]):            # newest first
            tree.insert("", "end", values=(row["ts"][5:19].replace("T", " "), row["source"],
                                           row["command"], row["ok"], row["result"]),
                        tags=() if row["ok"] == "yes" else ("refused",))

    def _ask_csv_path(self, name: str) -> str:
        return filedialog.asksaveasfilename(
            parent=self.root, title="Export as CSV", defaultextension=".csv",
            initialfile=name, filetypes=[("CSV files", "*.csv"), ("All files", "*")]) or ""

    def export_activity(self) -> None:
        account = self.activity_account()
        path = self._ask_csv_path(f"activity-{account.replace('/', '-') or 'all'}.csv")
        if not path:
            return
        try:
            count = self.activity.export(path, account)
        except OSError as exc:
            self.say(f"Could not export the activity log: {exc}", "bad")
            return
        self.say(f"Exported {count} activity rows ({account or 'all accounts'}) to {path}.",
                 "ok")

    def clear_activity(self) -> None:
        rows = len(self.activity.rows())
        if not messagebox.askyesno(
                "Clear the activity log?",
                f"This removes all {rows} rows from {self.activity.path}.\n\nThe branch "
                "journals (the bank's own record) are not touched.", parent=self.root):
            return
        removed = self.activity.clear()
        self.show_activity()
        self.say(f"Cleared the activity log ({removed} rows removed).", "ok")

    def load_journal(self) -> None:
        """Fetch the chosen journal (an account, a branch or all) into the table."""
        scope = (self.journal_scope.get().split() or [ALL])[0]
        try:
            limit = max(1, min(10000, int(self.journal_limit.get())))
        except ValueError:
            self.say("The journal limit must be a whole number.", "bad")
            return

        def done(result, error):
            if error is not None:
                self.say(f"Cannot load the journal of {scope}: {error.message}", "bad")
                return
            self.journal_rows, self.journal_loaded = result, scope
            tree = self.journal_tree
            tree.delete(*tree.get_children(""))
            for row in reversed(result):
                tree.insert("", "end", values=(row["ts"][5:23].replace("T", " "), row["branch"],
                                               row["account"], row["kind"], row["amount"],
                                               row["balance_after"], row["txid"], row["detail"]))
        self.start("journal", fetch_journal, (dict(self.clients), scope, limit), done)

    def export_journal(self) -> None:
        if not self.journal_rows:
            self.say("Load a journal first (choose it above and press Load).", "bad")
            return
        scope = self.journal_loaded
        path = self._ask_csv_path(f"journal-{scope.replace('/', '-')}.csv")
        if not path:
            return
        try:
            count = write_csv(self.journal_rows, path, JOURNAL_FIELDS)
        except OSError as exc:
            self.say(f"Could not export the journal: {exc}", "bad")
            return
        self.say(f"Exported {count} journal rows ({scope}) to {path}.", "ok")

    # ---- lab controls ---------------------------------------------------------------

    def armed(self, name: str) -> str:
        """The fault point armed in a member, as its last ping said ('' if none)."""
        if self.branch_state(name) != "up":
            return ""
        snap = self.coord.get("ping", {}) if name == COORD else self.snaps.get(name, {})
        return snap.get("faults", "")

    def _render_lab(self) -> None:
        for name, label in self.lab_labels.items():
            state = self.branch_state(name) or "?"
            if self.armed(name):
                label.configure(text="armed", foreground=draw.AMBER)
            elif self.partitioned.get(name) and state == "up":
                label.configure(text="cut off", foreground=draw.AMBER)
            else:
                label.configure(text=state, foreground=draw.GREEN if state == "up"
                                else draw.RED)

    def _lab(self, command: str, fn, args, explain) -> None:
        self.say(f"Lab: {command}...", "info")

        def done(result, error):
            if error is not None:
                self._finish(f"lab: {command}", (), "bad", f"Lab: {command} failed: "
                             f"{error.message}")
            else:
                self._finish(f"lab: {command}", (), "ok", "Lab: " + explain(result))
            self.refresh()
        self.submit(fn, args, done)

    def do_crash(self, name: str) -> None:
        self._lab(f"crash {name}", self.cluster.kill, (name,),
                  lambda r: f"{name} crashed (its process was killed, like a power cut).")

    def do_restart(self, name: str) -> None:
        self._lab(f"restart {name}", self.cluster.restart, (name,),
                  lambda url: f"{name} restarted at {url}; it recovers from its "
                              f"{'recovery log' if name == COORD else 'database'}.")

    def do_partition(self, name: str) -> None:
        self._lab(f"partition {name}", self.bank.call, ("partition", name),
                  lambda r: f"the coordinator is cut off from {name} (this window still "
                            "sees it).")

    def do_heal(self, name: str) -> None:
        self._lab(f"heal {name}", self.bank.call, ("heal", name),
                  lambda r: f"{name} is reachable again; unfinished transactions are "
                            "retried.")

    def do_failover(self, name: str) -> None:
        self._lab(f"failover {name}", self.bank.call, ("failover", name),
                  lambda r: f"{name} is now served by {r['primary']} at epoch {r['epoch']}; "
                            "the old primary is fenced if it comes back.")

    def do_arm(self, disarm=False) -> None:
        name = self.fault_member.get()
        point = "" if disarm else self.fault_point.get().strip()
        if not disarm and not point:
            self.say("Choose a fault point to arm.", "bad")
            return
        client = self.bank if name == COORD else self.clients.get(name)
        if client is None:
            self.say(f"There is no member {name!r}.", "bad")
            return
        what = f"disarm {name}" if disarm else f"arm {point} on {name}"
        fires = ("it slows every prepare, commit and abort there until disarmed"
                 if point.startswith("delay=") else
                 "it fires once, at that step of the next transfer")
        self._lab(what, client.call, ("fault", point),
                  lambda r: f"{name}: no fault armed." if disarm else
                  f"{point} is armed on {name}; {fires}.")

    def do_recover(self) -> None:
        self._lab("recover", self.bank.call, ("recover",),
                  lambda r: f"re-sent {r['resent']} decision(s); still unfinished: "
                            f"{', '.join(r['unfinished']) or 'none'}.")

    # ---- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the window; stop the local cluster if this window started it."""
        if self.closed:
            return
        self.closed = True
        for after_id in (self._poll_id, self._tick_id):
            try:
                self.root.after_cancel(after_id)
            except tk.TclError:
                pass
        self.workers.stop()
        if self.started and self.cluster is not None:
            self.root.withdraw()
            self.cluster.stop()
        self.root.destroy()


# ---- command line ------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="The desktop window of the distributed bank.")
    p.add_argument("--coordinator", metavar="URL", help="a coordinator to use, e.g. "
                   "http://192.168.1.30:9000 (default: the local cluster)")
    p.add_argument("--secret-file", help="the shared secret of that coordinator")
    p.add_argument("--config", help="cluster.ini: use the coordinator it describes")
    p.add_argument("--home", default=str(local_cluster.KIT),
                   help="the local cluster's folder (data/ and logs/)")
    p.add_argument("--activity", help="the activity log (default HOME/logs/activity.csv)")
    p.add_argument("--font-size", type=int, default=FONT_SIZE,
                   help=f"text size in points (default {FONT_SIZE}; try 14 on a projector)")
    return p.parse_args(argv)


def connect(args):
    """(bank client, cluster or None, started, description) from the command line."""
    if args.coordinator or args.config:
        url, secret_file = args.coordinator, args.secret_file
        if args.config:
            from bank.config import read_config
            config = read_config(args.config)
            host = config.get("host", "127.0.0.1")
            host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            url = url or f"http://{host}:{config.get('port', 9000)}"
            secret_file = secret_file or config.get("secret_file")
        secret = rpc.load_secret(secret_file) if secret_file else None
        bank = rpc.Client(url, secret, timeout=OPERATION_TIMEOUT, label="the coordinator")
        return bank, None, False, f"coordinator {url}"
    print("Attaching to the local cluster, or starting one...", flush=True)
    cluster, started = local_cluster.attach_or_start(args.home)
    bank = cluster.coordinator(timeout=OPERATION_TIMEOUT)
    how = "started by this window (stops when it closes)" if started else "attached"
    return bank, cluster, started, f"local cluster, {how} · {cluster.coordinator_url}"


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        bank, cluster, started, description = connect(args)
    except (RuntimeError, OSError) as exc:
        print(f"Cannot start the local cluster: {exc}", file=sys.stderr)
        return 1
    home = pathlib.Path(args.home) if cluster is not None else local_cluster.KIT
    activity = ActivityLog(args.activity or home / "logs" / "activity.csv")
    try:
        try:
            root = tk.Tk()
        except tk.TclError as exc:
            print(f"Cannot open the window ({exc}): is there a display?", file=sys.stderr)
            return 1
        app = App(root, bank, cluster=cluster, activity=activity, started=started,
                  source=description, font_size=args.font_size)
        # Ctrl-C in the terminal, or `kill`, closes the window the same way (Tk itself
        # would only print the KeyboardInterrupt and carry on).
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: root.after_idle(app.close))
        root.mainloop()
    finally:
        if started:
            cluster.stop()                 # idempotent: also if the window failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
