"""The handouts: labs/labNN_name.md, written from each lab's docstring and its real output.

Role: keep every handout in step with its lab. A lab's docstring is the one source of its
goal, the files to read, what happens, the steps and the questions; this script adds the
options, the expected transcript (the lab run in normal mode) and the pointers to the
scenario file and the teacher's answers.

    python labs/handouts.py            # run every lab, rewrite every handout
    python labs/handouts.py lab04      # only the labs whose name starts so
    python labs/handouts.py --check    # is every handout current? (keeps the transcripts)

Rules:
  * A handout is never edited by hand: edit the lab's docstring, then run this script.
  * --check runs no lab: it rebuilds each handout around the transcript already in it and
    compares (tests/test_labs.py uses it), so a docstring cannot drift from its handout.

Glossary:
  transcript  what the lab prints in normal mode; txids, times and folders differ per run
"""

import pathlib
import re
import subprocess
import sys
import time

LABS = pathlib.Path(__file__).resolve().parent
SECTIONS = ("Goal", "Read first", "Scenario", "Steps", "Questions", "Run")
FENCE = "```"


def docstring_sections(lab: pathlib.Path) -> dict:
    """{"title", "Goal", "Read first", "Scenario", "Steps", "Questions"} from the docstring."""
    doc = lab.read_text(encoding="utf-8").split('"""')[1]
    found = {"title": doc.strip().splitlines()[0]}
    for name in SECTIONS:
        others = "|".join(re.escape(s) for s in SECTIONS)
        match = re.search(rf"^{re.escape(name)}:[ \t]*(.*?)(?=^(?:{others}):|\Z)", doc, re.S | re.M)
        found[name] = match.group(1).strip("\n").rstrip() if match else ""
    return found


def run_lab(lab: pathlib.Path) -> tuple:
    """(transcript, seconds): the lab in normal mode, as a student runs it."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(lab)], capture_output=True, text=True,
                          encoding="utf-8", errors="replace",   # a lab writes UTF-8
                          stdin=subprocess.DEVNULL, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"{lab.name} failed, so its handout was not written:\n"
                         f"{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return done.stdout.rstrip(), time.monotonic() - started


def _sentence(text: str) -> str:
    return _capital(" ".join(text.split()))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _dedent(text: str) -> str:
    lines = text.splitlines()
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return "\n".join(l[indent:] if l.strip() else "" for l in lines)


def handout(lab: pathlib.Path, transcript: str, seconds: float) -> str:
    """The handout's text for one lab."""
    part = docstring_sections(lab)
    questions = re.split(r"(?<=\?)\s+", " ".join(part["Questions"].split()))
    scenario = LABS / "scenarios" / f"{lab.stem}.ini"
    text = [f"# {part['title']}", "",
            f"Run: `python labs/{lab.name}` (about {max(1, round(seconds))} s; with `--step`, "
            "as long as you look).",
            "Options: `--step` stops at each state worth looking at until you press Enter; "
            "`--keep` keeps",
            "the lab's folder (printed first) with its databases and logs; `--seed N` changes "
            "anything random.",
            "Prerequisites: Python 3.10+, `pip install -r requirements.txt`; see labs/README.md "
            "for the lessons before this one.",
            "", "## Goal", "", _sentence(part["Goal"]),
            "", "## Read first", "", " ".join(part["Read first"].split()),
            "", "## What happens", "", _capital(_dedent(part["Scenario"])),
            "", "## Steps", "", _dedent(part["Steps"]),
            "", "## Expected transcript", "",
            "Your txids, times, folder and ports differ; every `ok:` line and the last line "
            "must match.", "", FENCE, transcript, FENCE, "",
            "If a line starts with `LAB FAILED`, the kit broke a guarantee: the lab names it "
            "and keeps", "its folder; read the logs there (`logs/*.log`) and tell your teacher.", ""]
    if scenario.exists():
        text += ["## Without Python", "",
                 "The same lesson as a scenario file: "
                 f"`python -m bank.scenario labs/scenarios/{scenario.name}`",
                 "plays it on a fresh cluster and grades every line (`ok` or `FAIL` with what "
                 "was found).", "Change an expected value and play it again to see a FAIL.", ""]
    text += ["## Questions", ""] + [f"{i}. {q}" for i, q in enumerate(questions, 1)] + [
        "", f"Answers for teachers: `labs/answers/{lab.stem}.md`.", ""]
    return "\n".join(text)


def kept_transcript(path: pathlib.Path) -> tuple:
    """(transcript, seconds) as an existing handout has them (for --check)."""
    text = path.read_text(encoding="utf-8")
    transcript = text.split(FENCE + "\n", 1)[1].split("\n" + FENCE, 1)[0]
    seconds = float(re.search(r"\(about (\d+) s", text).group(1))
    return transcript, seconds


def labs(prefixes=()) -> list:
    found = sorted(LABS.glob("lab[0-9]*.py"))
    return [lab for lab in found if not prefixes or lab.stem.startswith(tuple(prefixes))]


def stale() -> list:
    """The handouts that are missing or do not match their lab's docstring."""
    wrong = []
    for lab in labs():
        path = lab.with_suffix(".md")
        try:
            if path.read_text(encoding="utf-8") != handout(lab, *kept_transcript(path)):
                wrong.append(path.name)
        except (OSError, IndexError, AttributeError):
            wrong.append(path.name)
    return wrong


def main(argv) -> int:
    if {"-h", "--help"} & set(argv):
        print(__doc__.split("\n\n")[2].rstrip())              # the three ways to run it
        return 0
    if "--check" in argv:
        wrong = stale()
        print("Every handout is current." if not wrong else
              f"Out of date (run python labs/handouts.py): {', '.join(wrong)}")
        return 1 if wrong else 0
    chosen = labs(argv)
    if argv and not chosen:
        print(f"No lab's name starts with {' or '.join(argv)}: the labs are "
              f"{', '.join(lab.stem for lab in labs())}.", file=sys.stderr)
        return 2
    for lab in chosen:
        transcript, seconds = run_lab(lab)
        lab.with_suffix(".md").write_text(handout(lab, transcript, seconds), encoding="utf-8",
                                          newline="\n")          # LF on Windows too
        print(f"{lab.with_suffix('.md').name}: written ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
