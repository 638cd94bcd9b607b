"""The program as a real process: from another directory, exit codes, the linter format, and
concurrent imports. Kept few, because each starts an interpreter."""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from support import FIXTURE, PROGRAM, README, Sandbox, cl, line_of, run_cli, swap, test


@test
def cli_items_json_from_another_directory():
    result = run_cli("items", "--profile", "vendor", "--party", "counsel", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["role"] == "maker" and data["items"] and all(r["party"] == "counsel" for r in data["items"])


@test
def cli_unknown_profile_is_a_usage_error():
    result = run_cli("items", "--profile", "nobody")
    assert result.returncode == 2 and "unknown --profile 'nobody'" in result.stderr, result


@test
def cli_missing_file():
    result = run_cli("check", "--file", "no-such-file.md")
    assert result.returncode == 2 and "cannot read" in result.stderr, result


@test
def cli_check_reports_in_linter_style():
    text = swap("| `lab` | Teaching lab | 4 |", "| `lab` | Teaching lab | 5 |")
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.md"
        bad.write_text(text, encoding="utf-8")
        result = run_cli("check", "--file", bad)
    assert result.returncode == 1
    assert result.stdout.strip() == f"{bad}:{line_of(text, '| 5 |')}: [profile] profile lab: says 5 items, " \
                                    "computed 4", result.stdout


@test
def cli_help_states_python_and_exit_codes():
    result = run_cli("--help")
    assert result.returncode == 0 and "Exit codes: 0" in result.stdout and "Python 3.8" in result.stdout


@test
def concurrent_imports_never_corrupt_the_file():
    answers = {"a.csv": "id,answer\nREQ-3,12 sites\n", "b.csv": "id,answer\nLIC-1,no\n",
               "c.csv": "id,answer\nREQ-1,teaching\n"}
    for _ in range(2):
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
            expected = {"a.csv": "**Answer:** 12 sites", "b.csv": "**Answer:** `no`",
                        "c.csv": "**Answer:** `teaching`"}
            for name, (code, err) in results.items():
                assert (expected[name] in text) == (code == 0), (name, code, err)
                if code:
                    assert "nothing written" in err or "changed while importing" in err, err
            assert sorted(p.name for p in box.dir.iterdir()) == ["README.md", *sorted(answers)]


@test
def cli_readme_check_passes():
    result = run_cli("check", "--file", README)
    assert result.returncode == 0, result.stdout[:2000]
    assert FIXTURE  # the fixture is loaded by support
