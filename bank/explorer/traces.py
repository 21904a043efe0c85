"""Runs as JSON files: saved when the explorer finds a violation, loaded to replay it.

Role: turn a run (the configuration and the list of actions from the initial state)
into plain JSON and back, exactly. The file is meant to be read too: each step is
one object naming what happened, with the message in full.

Rules:
  * T1 - a loaded file is checked before use: an unknown message type, a missing
    field or a bad value is refused with one sentence, never a traceback.
  * T2 - saving then loading gives back equal actions (tests/test_explorer.py).

Glossary:
  step     one action of the run: {"kind", "who", "txid", "branch", "message", ...}
"""

import dataclasses
import enum
import json
from pathlib import Path

from bank.core.messages import (Abort, Ack, Commit, DecisionAnswer, DecisionQuery,
                                OutcomeAnswer, OutcomeQuery, Prepare, TxState, Vote, VoteMsg)
from bank.explorer.world import Action, Config, Envelope

MESSAGES = {cls.__name__: cls for cls in (Prepare, VoteMsg, Commit, Abort, Ack,
                                          DecisionQuery, DecisionAnswer, OutcomeQuery,
                                          OutcomeAnswer)}
ENUM_FIELDS = {"vote": Vote, "state": TxState}


def save(path, config: Config, actions: list, violation=None) -> None:
    data = {"config": dataclasses.asdict(config),
            "violation": violation and {"invariant": violation.invariant,
                                        "detail": violation.detail},
            "steps": [step_to_json(a) for a in actions]}
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def load(path) -> tuple:
    """(Config, actions) from a saved file; a ValueError with a sentence if it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        config = Config(**data["config"])
        return config, [step_from_json(s) for s in data["steps"]]
    except OSError as exc:
        raise ValueError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a run saved by the explorer ({exc}).") from None


def step_to_json(action: Action) -> dict:
    step = {"kind": action.kind, "who": action.who}
    step.update({k: v for k, v in (("txid", action.txid), ("branch", action.branch),
                                    ("crash_after", action.crash_after)) if v})
    if action.envelope is not None:
        env = action.envelope
        step.update({"from": env.src, "to": env.dst, "message": message_to_json(env.message)})
    return step


def step_from_json(step: dict) -> Action:
    envelope = None
    if "message" in step:
        envelope = Envelope(str(step["from"]), str(step["to"]),
                            message_from_json(step["message"]))
    return Action(str(step["kind"]), str(step["who"]), str(step.get("txid", "")),
                  str(step.get("branch", "")), envelope, int(step.get("crash_after", 0)))


def message_to_json(message) -> dict:
    data = {"type": type(message).__name__}
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, tuple):                 # ops: pairs; participants: names
            value = [list(op) if isinstance(op, tuple) else op for op in value]
        data[f.name] = value
    return data


def message_from_json(data: dict):
    cls = MESSAGES.get(data.get("type"))
    if cls is None:
        raise ValueError(f"unknown message type {data.get('type')!r}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue                                   # a default value
        value = data[f.name]
        if f.name in ENUM_FIELDS:
            value = ENUM_FIELDS[f.name](value)
        elif f.name == "ops":
            value = tuple((str(number), int(delta)) for number, delta in value)
        elif f.name == "participants":
            value = tuple(str(name) for name in value)
        values[f.name] = value
    return cls(**values)
