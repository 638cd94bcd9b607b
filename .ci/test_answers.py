"""Tests for recording answers: `import`, `status`, and the answer and secret rules.

Run through test_checklist.py, which collects TESTS from here. Every refused import
must exit non-zero, name the CSV line, and leave the checklist byte-for-byte unchanged.
"""
import csv
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from test_checklist import FIXTURE, README, ROOT, cl, expect, run_cli, swap, unanswered

TESTS = []
PROGRAM = str(ROOT / "tools" / "checklist.py")


def test(fn):
    TESTS.append(fn)
    return fn


class Sandbox:
    """A temporary folder holding a copy of a checklist, for imports that write."""

    def __init__(self, text=FIXTURE):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.doc = self.dir / "README.md"
        self.doc.write_text(text, encoding="utf-8")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tmp.cleanup()

    def csv(self, content, name="answers.csv"):
        path = self.dir / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    def run(self, *args):
        return run_cli(*args, "--file", str(self.doc), cwd=self.dir)

    def refused(self, content, message, *flags):
        """Import `content`; it must fail, mention `message`, and change nothing."""
        before = self.doc.read_bytes()
        result = self.run("import", str(self.csv(content)), *flags)
        assert result.returncode != 0, f"accepted: {result.stdout}"
        assert message in result.stderr, f"{message!r} not in {result.stderr!r}"
        assert self.doc.read_bytes() == before, "the checklist changed"
        return result.stderr


def refuse(content, message, text=FIXTURE):
    with Sandbox(text) as box:
        return box.refused(content, message)


# ---------------------------------------------------------------- the round trip

@test
def round_trip_on_the_real_checklist():
    with Sandbox(unanswered(README.read_text(encoding="utf-8"))) as box:
        exported = box.run("items", "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(exported.stdout)))
        answers = {"LIC-1": "no", "REQ-3": "United States: development and laboratory test",
                   "REQ-7": "not needed: no Huawei product is in use"}
        for row in rows:
            row["answer"] = answers.get(row["id"], row["answer"])
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        result = box.run("import", str(box.csv(out.getvalue())))
        assert result.returncode == 0, result.stderr
        listed = json.loads(box.run("items", "--format", "json").stdout)
        assert not [r["id"] for r in listed if r["id"].startswith("DEL-")], "DEL items still listed"
        assert {r["id"]: r["answer"] for r in listed}["LIC-1"] == "`no`"
        status = box.run("status").stdout
        assert "LIC-1 `no`" in status and "| total | 2 | 1 |" in status, status
        states = {r["id"]: r["state"] for r in json.loads(box.run("status", "--format", "json").stdout)}
        assert states["REQ-3"] == "answered" and states["REQ-7"] == "not needed", states
        assert box.run("check").returncode == 0
        again = box.run("import", str(box.csv(out.getvalue())))
        assert again.returncode == 0 and "nothing to record" in again.stdout, again


@test
def answers_in_a_csv_route_without_writing():
    with Sandbox(unanswered(README.read_text(encoding="utf-8"))) as box:
        before = box.doc.read_bytes()
        answers = box.csv("id,answer\nLIC-1,no\nREQ-3,Canada\n")
        listed = json.loads(box.run("items", "--answers", str(answers), "--format", "json").stdout)
        assert not [r["id"] for r in listed if r["id"].startswith("DEL-")], "DEL items still listed"
        states = {r["id"]: r["state"] for r in
                  json.loads(box.run("status", "--answers", str(answers), "--format", "json").stdout)}
        assert states["LIC-1"] == "answered" and states["REQ-3"] == "answered", states
        bad = box.run("items", "--answers", str(box.csv("id,answer\nLIC-1,maybe\n", "bad.csv")))
        assert bad.returncode != 0 and "bad.csv:2: 'maybe' is not an answer of LIC-1" in bad.stderr, bad
        assert box.doc.read_bytes() == before, "the checklist changed"


@test
def semicolons_bom_and_lower_case_ids_are_accepted():
    with Sandbox() as box:
        result = box.run("import", str(box.csv(b"\xef\xbb\xbfID;Answer;Note\nlic-1;no;x\n")))
        assert result.returncode == 0, result.stderr
        assert "  - **Answer:** `no`" in box.doc.read_text(encoding="utf-8")
        assert "- [x] <a id=\"lic-1\">" in box.doc.read_text(encoding="utf-8")


@test
def routing_answer_with_parts_and_comment():
    with Sandbox() as box:
        result = box.run("import", str(box.csv('id,answer\nREQ-2,"ap=build, radio=out; radios later"\n')))
        assert result.returncode == 0, result.stderr
        assert "  - **Answer:** `ap=build`, `radio=out`; radios later" in box.doc.read_text(encoding="utf-8")


@test
def replace_overwrites_and_same_answer_is_a_no_op():
    with Sandbox() as box:
        assert box.run("import", str(box.csv("id,answer\nLIC-1,no\n"))).returncode == 0
        before = box.doc.read_bytes()
        same = box.run("import", str(box.csv("id,answer\nLIC-1,no\n")))
        assert same.returncode == 0 and box.doc.read_bytes() == before
        box.refused("id,answer\nLIC-1,yes\n", "answers.csv:2: LIC-1 already has a different answer")
        result = box.run("import", str(box.csv("id,answer\nLIC-1,yes\n")), "--replace")
        assert result.returncode == 0, result.stderr
        text = box.doc.read_text(encoding="utf-8")
        assert "**Answer:** `yes`" in text and "**Answer:** `no`" not in text


@test
def profile_export_seeds_the_routing_answers():
    with Sandbox() as box:
        exported = box.run("items", "--profile", "lab", "--format", "csv").stdout
        seeded = {r["id"]: r["answer"] for r in csv.DictReader(io.StringIO(exported)) if r["assumed"]}
        assert seeded == {"REQ-1": "teaching", "LIC-1": "no", "REQ-2": "ap=build, radio=out"}, seeded
        result = box.run("import", str(box.csv(exported)))
        assert result.returncode == 0, result.stderr
        doc = cl.parse(box.doc.read_text(encoding="utf-8"))
        assert doc.recorded_answers() == doc.profiles["lab"].assumes()


@test
def forgiving_spelling_and_outside_identifiers():
    with Sandbox() as box:
        body = ('id,answer\nREQ-1,Teaching\nREQ-2,"AP = build, radio=OUT"\n'
                "REQ-3,memo REG-2026-03 and sha256:" + "ab" * 32 + "\n")
        result = box.run("import", str(box.csv(body)))
        assert result.returncode == 0, result.stderr
        text = box.doc.read_text(encoding="utf-8")
        assert "**Answer:** `teaching`" in text and "**Answer:** `ap=build`, `radio=out`" in text
        assert box.run("check").returncode == 0


@test
def not_needed_is_not_a_routing_answer():
    refuse("id,answer\nLIC-1,not needed: no licence\n", "LIC-1 is a routing item: answer with one of")


@test
def answer_to_an_item_that_does_not_apply_is_kept_with_a_note():
    with Sandbox() as box:
        result = box.run("import", str(box.csv("id,answer\nLIC-1,no\nDEL-1,repository at example\n")))
        assert result.returncode == 0 and "DEL-1 does not apply" in result.stdout, result


@test
def status_with_a_profile_and_without_answers():
    with Sandbox() as box:
        plain = box.run("status").stdout
        assert "Still to answer: REQ-1, REQ-2, LIC-1." in plain, plain
        routed = box.run("status", "--profile", "lab").stdout
        assert "given profile `lab`" in routed and "Still to answer: none." in routed, routed


# ---------------------------------------------------------------- bad input, nothing written

@test
def not_utf8():
    refuse(b"id,answer\nREQ-3,caf\xe9\n", "answers.csv:2: not UTF-8")


@test
def not_csv():
    refuse(b"PK\x03\x04\x00\x00binary", "answers.csv:1: not a CSV file")
    refuse('[{"id": "LIC-1", "answer": "no"}]', "answers.csv:1: no 'id' or 'answer' column")


@test
def missing_columns():
    refuse("id,reply\nLIC-1,no\n", "answers.csv:1: no 'answer' column")
    refuse("", "answers.csv:1: no 'id' or 'answer' column")


@test
def unknown_and_repeated_ids():
    refuse("id,answer\nLIC-99,yes\n", "answers.csv:2: 'LIC-99' is not an item")
    refuse("id,answer\nREQ-3,4\nLIC-1,no\nREQ-3,5\n", "answers.csv:4: REQ-3 appears twice (first at line 2)")


@test
def undeclared_routing_answers():
    refuse("id,answer\nLIC-1,maybe\n", "answers.csv:2: 'maybe' is not an answer of LIC-1")
    refuse("id,answer\nLIC-1,\"yes, no\"\n", "answers.csv:2: LIC-1 takes exactly one answer")
    refuse("id,answer\nREQ-2,ap=build\n", "answers.csv:2: REQ-2: no value for part(s) radio")
    refuse("id,answer\nREQ-2,\"ap=build, radio=out, wall=build\"\n", "'wall=build' is not a part=value pair")
    refuse("id,answer\nLIC-1,no; see `memo`\n", "the comment after ';' may not contain backticks")


@test
def secret_looking_answers():
    for value in ("K 000102030405060708090A0B0C0D0E0F", "-----BEGIN PRIVATE KEY-----",
                  "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"):
        message = refuse(f"id,answer\nREQ-3,{value}\n", "answers.csv:2: REQ-3: this looks like")
        assert "confidential channel" in message, message


@test
def not_needed_without_reason():
    refuse("id,answer\nREQ-3,not needed\n", "answers.csv:2: REQ-3: 'not needed' must give its reason")
    with Sandbox() as box:
        assert box.run("import", str(box.csv("id,answer\nREQ-3,Not needed: one site only\n"))).returncode == 0


@test
def answers_that_would_break_the_document():
    refuse('id,answer\nREQ-3,"two\nlines"\n', "answers.csv:2: REQ-3: an answer must be one line")
    refuse("id,answer\nREQ-3,- a bullet\n", "may not start with a list")
    refuse("id,answer\nREQ-3,## heading\n", "may not start with a list")
    refuse("id,answer\nREQ-3,see <!-- hidden\n", "may not contain HTML")
    refuse("id,answer\nREQ-3,4 `sites\n", "unmatched backtick")
    refuse("id,answer\nREQ-3,see [memo](#nowhere)\n", "would break the document")


@test
def extra_cells_and_repeated_header_names():
    refuse("id;answer\nREQ-3;a, b; c\n", "answers.csv:2: more cells than the header has columns")
    refuse("id,answer,id\nREQ-3,4,\n", "answers.csv:1: the header names 'id' more than once")


@test
def crlf_line_endings_are_kept():
    with Sandbox(FIXTURE.replace("\n", "\r\n")) as box:
        result = box.run("import", str(box.csv("id,answer\nREQ-3,12 sites\n")))
        assert result.returncode == 0, result.stderr
        raw = box.doc.read_bytes()
        assert raw.count(b"\n") == raw.count(b"\r\n") and b"**Answer:** 12 sites\r\n" in raw


@test
def read_only_checklist_is_refused():
    with Sandbox() as box:
        box.doc.chmod(0o444)
        box.refused("id,answer\nREQ-3,12 sites\n", "is read-only; nothing written")


@test
def broken_quoting_is_named_by_line():
    refuse('id,answer\nREQ-3,4\nLIC-1,"no\n', "answers.csv:3: not valid CSV")


@test
def checklist_that_fails_its_check_is_not_touched():
    refuse("id,answer\nLIC-1,no\n", "fails its own check", text=swap("4 of 8", "5 of 8"))


@test
def second_import_refuses_while_one_is_writing():
    with Sandbox() as box:
        (box.dir / ".README.md.lock").write_text("", encoding="utf-8")
        box.refused("id,answer\nLIC-1,no\n", "another import is writing it")


@test
def change_during_import_is_refused():
    with Sandbox() as box:
        original = box.doc.read_bytes()
        box.doc.write_bytes(original + b"\n")
        try:
            cl.write_atomically(box.doc, original, original.decode())
        except SystemExit as e:
            assert "changed while importing" in str(e)
        else:
            raise AssertionError("a stale write was accepted")
        assert box.doc.read_bytes() == original + b"\n"
        assert sorted(p.name for p in box.dir.iterdir()) == ["README.md"], "a temporary or lock file was left"


@test
def concurrent_imports_never_corrupt_the_file():
    answers = {"a.csv": "id,answer\nREQ-3,12 sites\n", "b.csv": "id,answer\nLIC-1,no\n",
               "c.csv": "id,answer\nREQ-1,teaching\n"}
    for _ in range(3):
        with Sandbox() as box:
            procs = {name: subprocess.Popen([sys.executable, PROGRAM, "import", str(box.csv(body, name)),
                                             "--file", str(box.doc)], stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
                     for name, body in answers.items()}
            results = {name: (p.wait(timeout=60), p.stderr.read()) for name, p in procs.items()}
            text = box.doc.read_text(encoding="utf-8")
            assert cl.check(cl.parse(text)) == [], "the file no longer checks clean"
            expected = {"a.csv": "**Answer:** 12 sites", "b.csv": "**Answer:** `no`",
                        "c.csv": "**Answer:** `teaching`"}
            for name, (code, err) in results.items():
                assert (expected[name] in text) == (code == 0), (name, code, err)
                if code:
                    assert "nothing written" in err, err
            assert sorted(p.name for p in box.dir.iterdir()) == ["README.md", *sorted(answers)]


# ---------------------------------------------------------------- the check on recorded answers

TICKED_REQ3 = "- [x] <a id=\"req-3\"></a>**REQ-3**"


@test
def ticked_box_without_answer():
    expect(swap("- [ ] <a id=\"req-3\"></a>**REQ-3**", TICKED_REQ3), "answer", "**REQ-3**")


@test
def answer_without_ticked_box():
    expect(swap("  - **Form:** a number.", "  - **Form:** a number.\n  - **Answer:** 12"), "answer", "**REQ-3**")


@test
def not_needed_without_reason_in_the_file():
    text = swap("- [ ] <a id=\"req-3\"></a>**REQ-3**", TICKED_REQ3)
    text = swap("  - **Form:** a number.", "  - **Form:** a number.\n  - **Answer:** not needed", text)
    expect(text, "answer", "**Answer:** not needed")


@test
def secret_written_by_hand():
    expect(swap("a lab plan.", "a lab plan, key 000102030405060708090a0b0c0d0e0f."), "secret", "a lab plan, key")
