"""What a person is shown: a transfer's state in words, text diagrams, the audit.

Role: the one place that decides how the bank's facts read to a person, computed
without any I/O: what a transaction's state means (committed, aborted, in doubt)
for both the shell and the window, a trace as a text sequence diagram, and the
branches' books as the rows of `check`. Nothing here touches the network or a
file, so all of it can be tested (and printed by a lab) on plain data.

Rules:
  * Rule 1 - three words for a transfer, everywhere: "committed" and "aborted" once
    every participant has been told, "in-doubt" while the votes are being collected
    or the decision is still being delivered ("committing" is in doubt: the commit is
    durable, but a branch has not applied it yet).
  * One column per party (coordinator, its log, each branch), one row per message,
    with its time in ms since the transaction began; an "x" head marks a message
    that got no reply; three or more identical retry rounds fold into one row.
  * Rule 2 - say what is known, no more: a vote that did not arrive is shown by its
    kind ("no answer in time (5 s)", "cut off (lab partition)"), never as a "no"; a
    message refused before it left (never sent) is drawn at its sender only, with the
    reason, never as an arrow reaching the other party.
  * Rule 2b - a recovered transfer's rows from before a coordinator restart are rebuilt
    from its recovery log (bank/twopc_recovery.py): they say so, and a time the log does
    not hold is drawn as "?".
  * Rule 2c - the events a diagram points out are read from the trace in one place
    (trace_mark), for the shell's text diagram and the window's alike: a crash (the
    coordinator's restart, or a branch that refused the connection: nothing listens
    there), a partition (a message a lab partition kept from leaving), a retry (the
    coordinator sending its decision again) and a decision query (a branch asking the
    coordinator). Nothing else is a mark; a timeout is not a crash (it may be slow).
  * Rule 3 - a number that may be old says so: a branch that does not answer now
    shows the count from the last answer it gave, with its age ("1, as of 12 s ago"),
    never a 0 it did not say (in_doubt_text: the shell and the window both use it).
  * The audit says "ok" only for what it can see; work in flight is "wait", a broken
    invariant "FAIL". It works on each branch's own sums (Branch.audit(), made in SQL
    over every journal row), so it is exact at any size. A decision a branch refuses
    (a protocol violation, not silence) is a failure: retrying will not end it.

Glossary:
  category  committed, aborted or in-doubt: what a person is told about a transfer
  trace   the coordinator's list of messages: {"at", "ms", "from", "to", "msg", "detail"}
  party   a sender or receiver in a trace
  mark    an event pointed out on a diagram: (kind, party, words), see trace_mark
"""

from bank.errors import FaultCode
from bank.money import format_amount


def minor(text: str) -> int:
    """"-100.50" (a balance or journal amount) -> -10050 minor units, without floats."""
    units, _, cents = text.strip().lstrip("+-").partition(".")
    value = int(units or 0) * 100 + int((cents + "00")[:2])
    return -value if text.strip().startswith("-") else value


# ---- the state of a transaction, in words (Rule 1) ----------------------------------------

def txn_category(row: dict) -> str:
    """committed, aborted or in-doubt (still being decided or still being told)."""
    state = row.get("state", "")
    if state in ("committed", "aborted"):
        return state
    return "in-doubt"


def txn_state_text(row: dict) -> str:
    """A short phrase for a list of transfers: "committed", "aborted: ...", ..."""
    state, waiting = row.get("state", ""), row.get("waiting_for") or []
    damaged = row.get("damaged") or []
    if damaged and state in ("committed", "aborted"):        # P11: say it where it is listed
        return f"{state}, but heuristic damage at {', '.join(damaged)} (see check)"
    if state == "committed":
        return "committed"
    if state == "aborted":
        return "aborted" + (f": {row['reason']}" if row.get("reason") else "")
    if state == "preparing":
        return "in doubt: collecting votes"
    decided = "committed" if state == "committing" else "aborted"
    return f"in doubt: {decided}, waiting for {', '.join(waiting) or 'acknowledgements'}"


# ---- numbers that may be old (Rule 3) ---------------------------------------------------

def age_text(answered_at: float, now: float) -> str:
    """"as of 12 s ago" (or "4 min ago") for a Unix time; "never answered" for 0."""
    if not answered_at:
        return "never answered"
    seconds = max(0, int(now - answered_at))
    return f"as of {seconds} s ago" if seconds < 120 else f"as of {seconds // 60} min ago"


def in_doubt_text(row: dict, now: float) -> str:
    """A branch's in-doubt count from coordinator.branches(): the number if it answered
    just now, else its last answer with its age, or "?" if it never answered."""
    if not row.get("stale") and row.get("up"):
        return str(row.get("in_doubt", 0))
    if not row.get("answered_at"):
        return "?"
    return f"{row.get('in_doubt', 0)} ({age_text(row['answered_at'], now)})"


# ---- marks: the events a diagram points out (Rule 2c) --------------------------------------

MARK_KINDS = ("crash", "partition", "retry", "query")


def trace_mark(m: dict):
    """(kind, party, words) for a trace row that marks an event, else None (Rule 2c).

    kind is one of MARK_KINDS; party is the lifeline it happened on; words say it in
    one short phrase. Only what the row proves: "unreachable" is a refused connection
    (nothing listens: the branch is down), "cut-off" a lab partition (twopc.py D5).
    """
    msg, kind = m["msg"], m.get("kind")
    if msg == "recovered":
        return "crash", "coordinator", "coordinator crashed, restarted from its log"
    branch = m["to"] if m["from"] == "coordinator" else m["from"]
    if kind == "unreachable":
        return "crash", branch, f"{branch} down (connection refused)"
    if kind == "cut-off":
        return "partition", branch, f"{branch} cut off (lab partition)"
    if msg == "retry":
        return "retry", "coordinator", "the decision sent again"
    if msg == "query":
        return "query", m["from"], f"{m['from']} asks for the decision"
    return None


def mark_counts(trace: list) -> dict:
    """kind -> how many rows of `trace` mark it (Rule 2c), for every kind in MARK_KINDS."""
    counts = dict.fromkeys(MARK_KINDS, 0)
    for m in trace:
        mark = trace_mark(m)
        if mark:
            counts[mark[0]] += 1
    return counts


# ---- the sequence diagram of one transfer -------------------------------------------------

COLUMN = 16                    # characters per party; each lifeline sits at COLUMN // 2


def sequence_diagram(txn: dict) -> str:
    """A transfer's trace as text: one column per party, one row per message."""
    parties = ["coordinator", "log", *txn.get("participants", [])]
    for m in txn.get("trace", []):
        parties += [p for p in (m["from"], m["to"]) if p not in parties]
    lines = [f"Transfer {txn['txid']}: {txn['src']} -> {txn['dst']}, {txn['amount']}",
             f"Outcome: {txn['outcome'] or 'not decided yet'} (coordinator state: "
             f"{txn['state']})", ""]
    if not txn.get("trace"):
        return "\n".join(lines + ["No message trace: the coordinator restarted since this "
                                  "transfer finished; the outcome comes from its log."])
    names = "".join(p.center(COLUMN - 1) + " " for p in parties)
    lifelines = "        " + ("|".rjust(COLUMN // 2) + " " * (COLUMN // 2)) * len(parties)
    lines += ["    ms  " + names.rstrip(), lifelines.rstrip()]
    lines += [_diagram_row(item, len(parties), parties) for item in collapse(txn["trace"])]
    return "\n".join(lines + [lifelines.rstrip()] + _diagram_summary(txn))


def _diagram_row(item: dict, count: int, parties: list) -> str:
    if "repeat" in item:
        return (f"{'':8}{'. . .':^{COLUMN * count}}  the {item['size']} message(s) above "
                f"repeated {item['repeat']} more time(s), until {item['until']} ms")
    label, note, head = message_label(item)
    line = list(("|".rjust(COLUMN // 2) + " " * (COLUMN // 2)) * count)
    a, b = (parties.index(item[end]) * COLUMN + COLUMN // 2 - 1 for end in ("from", "to"))
    if item.get("sent") is False:                 # Rule 2: it never left the sender
        mark = f"[{label} NOT SENT]"
        line[a + 2:a + 2 + len(mark)] = mark
    elif a == b:                                  # a message to itself: a retry
        line[a + 2:a + 4 + len(label)] = f"[{label}]"
    else:
        lo, hi = min(a, b), max(a, b)
        line[lo + 1:hi] = "-" * (hi - lo - 1)
        tip = b - 1 if b > a else b + 1           # the end where the message arrives
        line[tip] = "x" if head == "x" else ">" if b > a else "<"
        text = f" {label} "[:hi - lo - 5]
        start = lo + 2 + (hi - lo - 3 - len(text)) // 2
        line[start:start + len(text)] = text
    if item.get("rebuilt"):                      # Rule 2b: it says where it came from
        note += " (rebuilt from the log)"
    mark = trace_mark(item)
    if mark:                                      # Rule 2c: the event, named
        note = f"[{mark[0]}: {mark[2]}] {note}"
    return f"{item['ms']:>6}  {''.join(line)}  {note}".rstrip()


def message_label(m: dict) -> tuple:
    """(label on the arrow, note beside it, arrow head: ">" or "x" for no reply)."""
    msg, detail = m["msg"], m.get("detail", "")
    first, _, rest = detail.partition(": ")
    if m.get("sent") is False:
        return msg, detail[detail.find("never sent"):], ""
    if msg == "vote":
        return f"vote {first}", rest, ">"
    if msg == "decision":                         # "commit (forced to disk)" or "abort: why"
        forced = "forced to disk: the commit point" if first.startswith("commit") else \
            "not forced: a lost abort is presumed anyway (C8)"
        return (first.split() or ["?"])[0].upper(), rest or forced, ">"
    if msg == "error":
        return {"timeout": "no answer", "error": "error"}.get(m.get("kind"), "no reply"), \
            detail, "x"
    if msg == "query":
        return "decision?", detail.replace("decision? -> ", "answered: "), ">"
    rides = rides_text(m)
    if msg == "prepare":
        return "prepare", f"{m['to']}/{detail}" + (f"; {rides}" if rides else ""), ">"
    if msg == "ack":                              # "commit; but Delhi had decided ..." (P11)
        done, _, damage = detail.partition("; ")
        return f"ack {done}", damage, ">"
    return msg, "; ".join(part for part in (detail, rides) if part), ">"


def collapse(trace: list, longest: int = 4) -> list:
    """Fold 3+ repeats of the same group of messages (retry rounds) into a marker row."""
    def group(i, k):
        return [(m["from"], m["to"], m["msg"], m.get("detail")) for m in trace[i:i + k]]
    out, i = [], 0
    while i < len(trace):
        for k in range(1, longest + 1):
            n = 1
            while i + (n + 1) * k <= len(trace) and group(i + n * k, k) == group(i, k):
                n += 1
            if n >= 3:
                out += trace[i:i + k] + [{"repeat": n - 1, "size": k,
                                          "until": trace[i + n * k - 1]["ms"]}]
                i += n * k
                break
        else:
            out.append(trace[i])
            i += 1
    return out


def _no_votes(trace: list) -> str:
    """What to say when the coordinator knows no vote: after a restart it knows only
    what its recovery log holds, and the log keeps decisions, not votes."""
    restarted = any(m.get("rebuilt") for m in trace) or any(
        m["msg"] == "recovered" for m in trace)
    return ("none known (the coordinator restarted since, and its recovery log keeps "
            "decisions, not votes)" if restarted else "none")


def _diagram_summary(txn: dict) -> list:
    trace, votes = txn["trace"], txn.get("votes") or {}
    decided = [m["detail"] for m in trace if m["msg"] == "decision"]
    lines = ["Votes: " + ("; ".join(vote_text(b, v, (txn.get("vote_kinds") or {}).get(b))
                                    for b, v in sorted(votes.items())) or _no_votes(trace)),
             "Decision (logged): " + (decided[-1] if decided else "none logged yet")]
    if any(m.get("rebuilt") for m in trace):
        lines.append("Before the restart: rebuilt from the recovery log (times it does not "
                     "hold are shown as ?); after it: as it happened")
    marks = mark_counts(trace)
    if any(marks.values()):
        lines.append(f"Retries by the coordinator: {marks['retry']}; decision queries from "
                     f"branches: {marks['query']}; crash marks (a restart, or a connection "
                     f"refused): {marks['crash']}; "
                     f"messages kept back by a partition: {marks['partition']}")
    if txn.get("waiting_for"):
        lines.append(f"Still waiting: {not_told_yet(txn['waiting_for'])}.")
    return lines


def not_told_yet(waiting: list, verb: str = "acknowledged") -> str:
    """The branches a committed transfer still waits for, as one sentence: "Delhi has
    not acknowledged it yet; the coordinator tells it until it does" (or "Delhi and
    Mumbai have ... tells them until they do")."""
    if len(waiting) == 1:
        return f"{waiting[0]} has not {verb} it yet; the coordinator tells it until it does"
    return (f"{' and '.join(waiting)} have not {verb} it yet; the coordinator tells them "
            "until they do")


def rides_text(m: dict) -> str:
    """How a message that did not leave at once goes (bank/batching.py B5, B6): "" for
    one sent at once; once its batch left, its time in the trace is when it left."""
    if m.get("rides") == "held":
        return "held for company, then sent (B6)" if m.get("left") else \
            "held for company (B6): not sent yet"
    if m.get("rides") == "queued":
        return "rode a batch behind a busy line (B5)" if m.get("left") else \
            "waits to ride the next batch (B5)"
    return ""


def vote_text(branch: str, words: str, kind=None) -> str:
    """One participant's vote for a summary (Rule 2): "Delhi: yes", "Delhi: no: reason",
    or "Mumbai: none arrived - no answer in time (5 s)": a missing vote is not a no."""
    if kind in (None, "yes", "no") and words.split(":")[0] in ("yes", "no"):
        return f"{branch}: {words}"
    return f"{branch}: none arrived - {words}"


# ---- the audit behind `check` ---------------------------------------------------------------

def refusals(txn: dict) -> list:
    """(branch, its answer) for each branch still to acknowledge `txn`'s decision whose
    latest answer in the trace is a refusal (fault 409, a protocol violation, as the
    trace row's code says): it will refuse every retry, so this is a failure to report,
    not work in flight."""
    latest = {}
    for m in txn.get("trace", []):
        if m["to"] == "coordinator" and m["msg"] in ("ack", "error"):
            latest[m["from"]] = m
    return [(b, latest[b]["detail"].partition(": ")[2] or latest[b]["detail"])
            for b in txn.get("waiting_for") or []
            if b in latest and latest[b]["msg"] == "error"
            and latest[b].get("code") == FaultCode.PROTOCOL_VIOLATION]


def audit(books: list, in_doubt: list, branches: list, start_total=None, missing=(),
          refused=()) -> list:
    """(check, result, detail) rows; result is "ok", "wait" (work in flight) or "FAIL".

    books: each branch's audit() (sums over its whole journal, made in SQL, with the
           role and URL of the server that answered: a fenced server or a replica
           answering for a branch whose primary is down fails the check);
    refused: (txid, branch, answer) for decisions a branch refuses for good.
    """
    total = sum(minor(b["total"]) for b in books)
    brought_in = sum(minor(b["brought_in"]) for b in books)
    busy = bool(in_doubt) or any(b.get("in_doubt") for b in branches)
    start = "" if start_total is None else f" (at shell start {format_amount(start_total)})"
    detail = (f"total {format_amount(total)}{start}; opening balances + deposits - "
              f"withdrawals {format_amount(brought_in)}")
    result = "ok" if total == brought_in else "wait" if busy and not refused else "FAIL"
    if missing:
        result, detail = "?", f"cannot tell while {', '.join(missing)} cannot be read"
    accounts = sum(b["accounts"] for b in books)
    negative = _named(books, "negative", lambda b, n: f"{b}/{n}")
    wrong = _named(books, "mismatched", lambda b, m: f"{b}/{m['account']}: journal "
                   f"{m['journal_total']}, balance {m['balance']}")
    held = _named(books, "holds", lambda b, h: f"{b}/{h['account']} holds {h['held']}")
    doubts = [f"{t['txid']} ({txn_state_text(t)})" for t in in_doubt]
    doubts += [f"{b['name']} has {b['in_doubt']} prepared" for b in branches if b.get("in_doubt")]
    rows = [("money conserved", result, detail),
            ("no negative balance", "FAIL" if negative else "ok",
             ", ".join(negative) or f"all {accounts} accounts >= 0"),
            ("journals reconcile", "FAIL" if wrong else "ok",
             "; ".join(wrong) or "every account's journal adds up to its balance "
                                 f"({sum(b['journal_rows'] for b in books)} rows)"),
            ("holds", "wait" if held else "ok", ", ".join(held) or "none"),
            ("in-doubt transactions", "wait" if doubts else "ok", "; ".join(doubts) or "none")]
    rows += heuristic_rows(books)
    stale = [f"{b['branch']} read from {b.get('url') or 'a server'}, a {b['role']}"
             + (" server" if b["role"] == "fenced" else "")         # not "a fenced:"
             for b in books if b.get("role", "primary") != "primary"]
    if stale:                    # no primary answered: the books may lack acknowledged writes
        rows.append(("books from a primary", "FAIL",
                     "; ".join(stale) + ": no primary answers, so these books may lack "
                     "acknowledged writes"))
    if refused:
        rows.append(("decisions accepted", "FAIL", "; ".join(
            (answer.rstrip(".") if branch in answer and txid in answer else
             f"{branch} refuses the decision of {txid}: {answer.rstrip('.')}") +
            " (the decision is logged: every retry will be refused)"
            for txid, branch, answer in refused)))
    return rows


def heuristic_rows(books: list) -> list:
    """The audit's rows for heuristic decisions (P10, P11): none if there were none; FAIL
    naming each damaged transaction, who decided what, and the money out of balance."""
    decided = [h for b in books for h in b.get("heuristics", [])]
    if not decided:
        return []
    damaged = [h for h in decided if h["damaged"]]
    detail = "; ".join(
        f"{h['txid']}: {h['branch']} decided {h['heuristic']} (heuristic), the coordinator "
        + (f"decided {h['coordinator']}: {h['branch']} is {_imbalance_words(h['imbalance'])}"
           if h["damaged"] else "has not told it yet") for h in decided)
    if not damaged:
        return [("heuristic decisions", "wait", detail)]
    total = sum(minor(b.get("imbalance", "0.00")) for b in books)
    return [("heuristic decisions", "FAIL", detail + " (heuristic mixed outcome)"),
            ("money out of balance (heuristic damage)", "FAIL",
             f"{format_amount(total)} across branches ("
             + ", ".join(f"{b['branch']} {b['imbalance']}" for b in books
                         if b.get("heuristics")) + ")")]


def _imbalance_words(amount: str) -> str:
    """ "-7.00" -> "7.00 short of the decision"; "7.00" -> "7.00 over the decision". """
    return (f"{amount.lstrip('-')} short of the decision" if amount.startswith("-")
            else f"{amount} over the decision")


def _named(books: list, key: str, show) -> list:
    """The accounts each branch named under `key`, and how many it left unnamed."""
    out = []
    for b in books:
        out += [show(b["branch"], item) for item in b[key]]
        if b.get(key + "_count", 0) > len(b[key]):
            out.append(f"{b['branch']}: {b[key + '_count'] - len(b[key])} more")
    return out
