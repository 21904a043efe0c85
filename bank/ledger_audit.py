"""A branch's own audit: its books summed in SQL, exact at any size.

Role: answer the shell's `check` for one branch: totals, holds, negative balances,
every account whose journal does not add up to its balance, and every heuristic
decision (P10) with the damage when the coordinator decided otherwise (P11). It only
reads, in one snapshot. Mixed into bank.ledger.Ledger.

Rules:
  * Exact at any size: every row is summed by SQLite; nothing is sampled or cut off.
  * One read snapshot: balances and journal are read as of the same moment.

Glossary:
  reconcile   an account's journal amounts add up to its balance
  damage      a heuristic decision the coordinator's contradicts: this branch applied
              what it should not have, or not what it should have
  imbalance   what the damage did to the money: + created here, - missing here
"""

import json

from bank.money import format_amount


class Audit:
    """Mixed into Ledger: audit() and reconcile(), read-only."""

    def reconcile(self) -> list:
        """Accounts whose journal does not add up to their balance (should be none)."""
        rows = self._read().execute(
            "SELECT a.number, a.balance, COALESCE(SUM(j.amount), 0) AS total "
            "FROM accounts a LEFT JOIN journal j ON j.account = a.number "
            "GROUP BY a.number HAVING total != a.balance").fetchall()
        return [{"account": r["number"], "balance": format_amount(r["balance"]),
                 "journal_total": format_amount(r["total"])} for r in rows]

    # ---- the audit behind the shell's `check` (exact at any size) ---------------------

    AUDIT_NAMED = 50         # accounts named per finding; the counts are always exact

    def audit(self) -> dict:
        """This branch's books, summed in SQL over every row in one read snapshot.

        Exact at any size: no row limit. Amounts are decimal strings. Returns
        {"branch", "accounts", "journal_rows", "total", "held", "brought_in"
        (opening balances + deposits - withdrawals), "negative" [numbers],
        "holds" [{"account", "held"}], "mismatched" [{"account", "balance",
        "journal_total"}], "negative_count", "holds_count", "mismatched_count"};
        each list names at most AUDIT_NAMED accounts.
        """
        db, named = self._read(), self.AUDIT_NAMED
        db.execute("BEGIN")                  # one snapshot: balances and journal agree
        try:
            sums = db.execute(
                "SELECT (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM journal), "
                "(SELECT COALESCE(SUM(balance), 0) FROM accounts), "
                "(SELECT COALESCE(SUM(held), 0) FROM accounts), "
                "(SELECT COALESCE(SUM(amount), 0) FROM journal "
                " WHERE kind IN ('open', 'deposit', 'withdraw'))").fetchone()
            negative = [r[0] for r in db.execute(
                "SELECT number FROM accounts WHERE balance < 0 ORDER BY number")]
            holds = db.execute("SELECT number, held FROM accounts WHERE held != 0 "
                               "ORDER BY number").fetchall()
            mismatched = self.reconcile()
            heuristics = db.execute("SELECT txid, ops, state, heuristic, told FROM txns "
                                    "WHERE heuristic != '' ORDER BY created").fetchall()
        finally:
            db.execute("COMMIT")
        damaged = [_damage(self.branch, r) for r in heuristics]        # (row, minor units)
        return {"branch": self.branch, "accounts": sums[0], "journal_rows": sums[1],
                "total": format_amount(sums[2]), "held": format_amount(sums[3]),
                "brought_in": format_amount(sums[4]),
                "negative": negative[:named], "negative_count": len(negative),
                "holds": [{"account": r[0], "held": format_amount(r[1])} for r in holds][:named],
                "holds_count": len(holds),
                "mismatched": mismatched[:named], "mismatched_count": len(mismatched),
                "heuristics": [d for d, _ in damaged][:named],
                "heuristics_count": len(damaged),
                "imbalance": format_amount(sum(minor for _, minor in damaged))}


def _damage(branch: str, row) -> tuple:
    """(one heuristic decision, its imbalance in minor units) (P10, P11).

    A heuristic commit the coordinator aborted applied money it should not have (+);
    a heuristic abort the coordinator committed left out money it should have applied (-).
    """
    applied = sum(op["delta"] for op in json.loads(row["ops"]))
    imbalance = 0
    damaged = row["told"] not in ("", row["heuristic"])
    if damaged:
        imbalance = applied if row["heuristic"] == "committed" else -applied
    return {"txid": row["txid"], "branch": branch, "heuristic": row["heuristic"],
            "coordinator": row["told"] or "not known here yet",
            "damaged": damaged, "imbalance": format_amount(imbalance)}, imbalance
