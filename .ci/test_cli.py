"""The command line: from another directory, exit codes, the linter format, concurrent imports, and
output that cannot be written. Real processes are kept few, because each starts an interpreter: the
usage errors, --help and the linter format run in-process (main() returns the code the process exits
with, and writes what it prints)."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from support import PROGRAM, Sandbox, cl, line_of, run_main, swap, test


@test
def cli_items_json_from_another_directory():
    """In-process, from a temporary directory (h14_7 runs a real process from one)."""
    with tempfile.TemporaryDirectory() as elsewhere:
        result = run_main("items", "--profile", "vendor", "--party", "counsel", "--format", "json", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["role"] == "maker" and data["items"] and all(r["party"] == "counsel" for r in data["items"])


@test
def cli_unknown_profile_is_a_usage_error():
    result = run_main("items", "--profile", "nobody")
    assert result.returncode == 2 and "unknown --profile 'nobody'" in result.stderr, result
    masked = run_main("items", "--profile", "Hunter22x!")      # a password typed as an option is not echoed (round 58)
    assert masked.returncode == 2 and "unknown --profile 'Hun\u2026'" in masked.stderr, masked


@test
def cli_missing_file():
    result = run_main("check", "--file", "no-such-file.md")
    assert result.returncode == 2 and "cannot read" in result.stderr, result


@test
def cli_check_reports_in_linter_style():
    text = swap("| `lab` | Teaching lab | 4 |", "| `lab` | Teaching lab | 5 |")
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.md"
        bad.write_text(text, encoding="utf-8")
        result = run_main("check", "--file", bad)
    assert result.returncode == 1
    assert result.stdout.strip() == f"{bad}:{line_of(text, '| 5 |')}: [profile] profile lab: says 5 items, " \
                                    "computed 4", result.stdout


@test
def cli_help_states_python_and_exit_codes():
    result = run_main("--help")
    assert result.returncode == 0 and "Exit codes: 0" in result.stdout and "Python 3.8" in result.stdout


@test
def concurrent_imports_never_corrupt_the_file():
    answers = {"a.csv": "id,answer\nREQ-3,12 sites\n", "b.csv": "id,answer\nLIC-1,no\n"}     # two, at once
    with Sandbox() as box:
        procs = {name: subprocess.Popen([sys.executable, PROGRAM, "import", str(box.csv(body, name)),
                                         "--file", str(box.doc)], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                 for name, body in answers.items()}
        results = {}
        for name, p in procs.items():                 # communicate(): no polling, pipes closed
            err = p.communicate(timeout=60)[1]
            results[name] = (p.returncode, err)
        text = box.doc.read_text(encoding="utf-8")
        assert cl.run_rules(cl.parse(text)) == [], "the file no longer checks clean"
        expected = {"a.csv": "**Answer:** 12 sites", "b.csv": "**Answer:** `no`"}
        for name, (code, err) in results.items():   # the later one waits, reads the file again and records its own
            assert code == 0 and expected[name] in text, (name, code, err)
        assert sorted(p.name for p in box.dir.iterdir()) == ["README.md", *sorted(answers)]


@test
def cli_output_that_cannot_be_written_is_never_a_traceback():
    """G6 and G12 as real processes, where Python itself flushes standard output at exit, all three at once:
    an import into a full disk; a view into a pipe whose reader has gone; and a view in a locale whose code
    page lacks the characters of an answer (UTF-8 is written whatever the locale)."""
    chinese = swap("  - **Form:** a number.", "  - **Form:** a number.\n  - **Answer:** \u4e2d\u56fd: testing")
    with Sandbox(chinese.replace('- [ ] <a id="req-3">', '- [x] <a id="req-3">')) as box:
        env = {**os.environ, "PYTHONIOENCODING": "cp1252", "PYTHONDONTWRITEBYTECODE": "1"}

        def start(*args, stdout=subprocess.PIPE):
            return subprocess.Popen([sys.executable, PROGRAM, *map(str, args), "--file", str(box.doc)], stdout=stdout,
                                    stderr=subprocess.PIPE, env=env)
        with open("/dev/full", "wb") as full:
            imported = start("import", box.csv("id,answer\nREQ-4,36\n"), stdout=full)
        gone, piped = start("status"), start("items", "--format", "csv")
        gone.stdout.close()                             # the reader goes before the view writes
        out, err = piped.communicate(timeout=60)
        assert (piped.returncode, err) == (0, b"") and "\u4e2d\u56fd: testing" in out.decode("utf-8"), (out[-300:], err)
        assert (gone.wait(timeout=60), gone.stderr.read()) == (0, b"")
        assert imported.wait(timeout=60) == 0
        assert imported.stderr.read().decode() == (f"{box.doc}: recorded 1 answer: REQ-4. The report could not be "
                                                   "printed on standard output (No space left on device).\n")
        assert "**Answer:** 36" in box.doc.read_text(encoding="utf-8")
        for proc in (imported, gone):
            proc.stderr.close()


@test
def cli_an_option_given_twice_is_a_usage_error():
    """'--profile vendor --profile lab' took the last silently; any option given twice is refused, naming it."""
    for args in (("items", "--profile", "vendor", "--profile", "lab"), ("status", "--format", "csv", "--format=md"),
                 ("form", "--party", "counsel", "--party", "counsel"), ("check", "--file", "a.md", "--file", "b.md")):
        result = run_main(*args)
        assert result.returncode == 2 and f"argument {args[1]}: given twice; give it once" in result.stderr, result
    assert run_main("items", "--profile", "lab", "--party", "requester", "--format", "csv").returncode == 0


@test
def cli_items_of_one_group():
    """--group takes a prefix in either case, as IDs are read ('exp' is EXP); an unknown one is refused with the list."""
    for group in ("EXP", "exp"):
        result = run_main("items", "--profile", "vendor", "--party", "counsel", "--group", group, "--format", "json")
        ids = [r["id"] for r in json.loads(result.stdout)["items"]]
        assert result.returncode == 0 and ids and all(i.startswith("EXP-") for i in ids), ids
    result = run_main("items", "--group", "exq")
    assert result.returncode == 2 and "unknown --group 'exq'; choose from: REQ, LIC, EXP" in result.stderr, result


@test
def cli_import_reads_standard_input_for_a_dash():
    """'import -' reads the CSV from a pipe (as 'form -o -' writes to standard output), all of it; its messages name
    '-' (one real process: the rest of import is the same as from a file)."""
    with Sandbox() as box:
        refused = subprocess.run([sys.executable, str(PROGRAM), "import", "-", "--file", str(box.doc)],
                                 input="id,answer\nREQ-3,12 sites\nNOPE-1,x\n", capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and refused.stderr.startswith("-:3: 'NOPE-1' is not an item"), refused

