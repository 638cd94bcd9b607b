#!/usr/bin/env python3
"""Tests for tools/checklist.py (standard library only).

Rule tests put ONE defect into a copy of .ci/fixture.md and expect exactly that defect
back, with its rule and line. README tests check the real document and its profiles.
CLI tests run the program as a user would, from another directory.
The run ends with the line 'N passed, N failed'.
"""
import csv
import io
import json
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tools"))
import checklist as cl  # noqa: E402

FIXTURE = (HERE / "fixture.md").read_text(encoding="utf-8")
README = ROOT / "README.md"
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def swap(old, new, text=FIXTURE):
    """The text with its single occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the fixture"
    return text.replace(old, new)


def line_of(text, needle):
    """1-based number of the first line of `text` that contains `needle`."""
    for n, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not found")


def defects(text):
    return cl.check(cl.parse(text))


def expect(text, rule, needle):
    """Exactly one defect, of `rule`, on the line containing `needle` (or at that line number)."""
    line = needle if isinstance(needle, int) else line_of(text, needle)
    got = defects(text)
    assert [(d[0], d[1]) for d in got] == [(line, rule)], f"expected [{rule}] at line {line}, got {got}"


def run_cli(*args, cwd=None):
    """Run the program from `cwd` (a fresh temporary directory by default)."""
    with tempfile.TemporaryDirectory() as tmp:
        return subprocess.run([sys.executable, str(ROOT / "tools" / "checklist.py"), *args],
                              cwd=cwd or tmp, capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------- the fixture and one defect each

@test
def fixture_is_clean():
    assert defects(FIXTURE) == [], defects(FIXTURE)


@test
def item_without_bold_id():
    text = swap('<a id="req-3"></a>**REQ-3**', '<a id="req-3"></a>REQ-3')
    expect(text, "item-format", "REQ-3 The number")


@test
def item_with_broken_checkbox():
    text = swap('- [ ] <a id="req-4"></a>', '- [] <a id="req-4"></a>')
    expect(text, "item-format", "- [] ")


@test
def duplicate_id():
    block = "\n".join(FIXTURE.split("\n")[line_of(FIXTURE, 'id="req-3"') - 1:][:6])
    text = swap("- [ ] <a id=\"req-4\"></a>", block + "\n- [ ] <a id=\"req-4\"></a>")
    expect(text, "duplicate-id", line_of(text, 'id="req-4"') - 6)


@test
def undeclared_prefix():
    expect(swap('<a id="req-4"></a>**REQ-4**', '<a id="qzx-1"></a>**QZX-1**'), "undeclared-prefix", "QZX-1")


@test
def item_in_wrong_group():
    expect(swap('<a id="req-4"></a>**REQ-4**', '<a id="lic-3"></a>**LIC-3**'), "wrong-group", "LIC-3")


@test
def item_without_its_anchor():
    expect(swap('<a id="req-4"></a>**REQ-4**', '**REQ-4**'), "item-anchor", "**REQ-4**")


@test
def missing_form():
    text = swap("  - **Form:** a number.\n", "")
    expect(text, "missing-field", "**REQ-3**")


@test
def missing_applies():
    text = swap("  - **Applies:** `always`\n  - **Note:** withdrawn", "  - **Note:** withdrawn")
    expect(text, "missing-field", "**REQ-5**")


@test
def empty_field():
    text = swap("  - **Unblocks:** sizing.", "  - **Unblocks:**")
    expect(text, "missing-field", text.split("\n").index("  - **Unblocks:**") + 1)


@test
def unknown_field():
    expect(swap("  - **Form:** a number.", "  - **Form:** a number.\n  - **Colour:** red"),
           "unknown-field", "Colour")


@test
def sub_bullet_that_is_not_a_field():
    expect(swap("  - **Form:** a number.", "  - **Form:** a number.\n  - just some text"),
           "unknown-field", "just some text")


@test
def field_written_without_bold():
    expect(swap("  - **Form:** a number.", "  - Form: a number."), "item-format", "Form: a number")


@test
def duplicate_field():
    expect(swap("  - **Form:** a number.", "  - **Form:** a number.\n  - **Form:** two"),
           "duplicate-field", "**Form:** two")


@test
def bad_stage():
    expect(swap("  - **Stage:** `design`\n  - **Applies:** `REQ-2",
                "  - **Stage:** `bogus`\n  - **Applies:** `REQ-2"), "bad-stage", "`bogus`")


@test
def bad_party():
    text = swap("  - **From:** requester.\n  - **Stage:** `design`",
                "  - **From:** marketing.\n  - **Stage:** `design`")
    expect(text, "bad-party", "marketing")


@test
def undefined_id_in_prose():
    expect(swap("TS 23.501 is cited here.", "TS 23.501 is cited here; see REQ-9."), "undefined-id", "REQ-9")


@test
def undefined_id_in_mermaid():
    expect(swap('A["REQ-1 use"]', 'A["REQ-7 use"]'), "undefined-id", "REQ-7 use")


@test
def blocker_not_listed_in_start_here():
    text = swap("  - **Stage:** `design`\n  - **Applies:** `REQ-2",
                "  - **Stage:** `blocker`\n  - **Applies:** `REQ-2")
    expect(text, "blocker-list", "**REQ-4**")


@test
def start_here_lists_a_non_blocker():
    text = swap("| 3 | [REQ-2](#req-2) | Which parts are built |",
                "| 3 | [REQ-2](#req-2) | Which parts are built |\n| 4 | [REQ-3](#req-3) | Sites |")
    expect(text, "blocker-list", "| 4 |")


@test
def broken_internal_link():
    expect(swap("- **You get back:** a lab plan.", "- **You get back:** a [lab plan](#nowhere)."),
           "anchor", "#nowhere")


@test
def id_link_to_the_group_instead_of_the_item():
    expect(swap("| 1 | [REQ-1](#req-1) |", "| 1 | [REQ-1](#scope-req) |"), "id-link", "#scope-req")


@test
def unlinked_id_in_a_table():
    expect(swap("| 2 | [LIC-1](#lic-1) |", "| 2 | LIC-1 |"), "unlinked-id", "| 2 | LIC-1 |")


@test
def unlinked_id_in_the_router():
    expect(swap("Routing items are [REQ-1](#req-1),", "Routing items are REQ-1,"),
           "unlinked-id", "Routing items are")


@test
def uncited_reference():
    expect(swap("TS 23.501 is cited here.", "TS 23.502 is cited here."), "reference", "TS 23.502")


@test
def placeholder_left():
    expect(swap("a lab plan.", "a lab plan (TODO)."), "placeholder", "TODO")


@test
def heading_without_blank_line_before():
    expect(swap("  - **Applies:** `always`\n  - **Note:** withdrawn: there is none.\n\n### Licence",
                "  - **Applies:** `always`\n  - **Note:** withdrawn: there is none.\n### Licence"),
           "heading-blank", "### Licence")


@test
def command_missing():
    text = swap("bash .ci/run\n", "")
    expect(text, "commands", len(text.split("\n")))


@test
def no_party_table():
    text = swap("| Party | Who |\n|---|---|\n| `requester` | who asked |\n| `counsel` | lawyers |\n"
                "| `licensor` | the vendor of the licensed code |\n", "")
    expect(text, "structure", 1)


VOID_APPLIES = "  - **Applies:** `always`\n  - **Note:** withdrawn"


def void_condition(condition):
    return swap(VOID_APPLIES, f"  - **Applies:** {condition}\n  - **Note:** withdrawn")


@test
def conditions_that_do_not_check():
    for condition in ("`REQ-1 includes`", "`REQ-3 is 4`", "`REQ-1 is teaching`", "`LIC-1 is maybe`",
                      "`REQ-2.wall is build`", "`REQ-2 is build`", "`LIC-1.ap is yes`",
                      "`LIC-1 is yes and`", "`(LIC-1 is yes`", "always", "`LIC-1 equals yes`"):
        expect(void_condition(condition), "condition", "**Applies:** " + condition)


@test
def condition_that_drops_the_group_condition():
    text = swap("`LIC-1 is yes or undecided and not REQ-2.radio is out`", "`not REQ-2.radio is out`")
    expect(text, "preamble", "`not REQ-2.radio is out`")


@test
def unblocks_an_earlier_stage():
    expect(swap("  - **Unblocks:** radio design.", "  - **Unblocks:** radio design; REQ-3."),
           "stage-order", "radio design; REQ-3")


@test
def unblocks_cycle():
    text = swap("  - **Unblocks:** REQ-3.\n", "  - **Unblocks:** REQ-3 and REQ-1.\n")
    expect(text, "cycle", "**REQ-1**")


@test
def profile_count_drift():
    expect(swap("4 of 8", "5 of 8"), "profile", "5 of 8")


@test
def profile_first_items_drift():
    expect(swap("- **Answer first:** [REQ-3](#req-3)\n", "- **Answer first:** [REQ-3](#req-3), [LIC-2](#lic-2)\n"),
           "profile", "- **Answer first:** [REQ-3](#req-3), [LIC-2]")


@test
def profile_leaves_items_undecided():
    text = swap("; [REQ-2](#req-2) `ap=build`, `radio=out`", "")
    expect(text, "profile", "`teaching`; [LIC-1](#lic-1) `no`")


@test
def profile_assumes_an_undeclared_answer():
    expect(swap("[LIC-1](#lic-1) `no`", "[LIC-1](#lic-1) `nope`"), "profile", "`nope`")


@test
def profile_without_a_field():
    expect(swap("- **Answer first:** [REQ-3](#req-3), [LIC-2](#lic-2)\n", ""), "profile", "### Vendor")


@test
def routing_answer_not_declared():
    text = swap("  - **Form:** One of: `yes`, `no`, `undecided`.",
                "  - **Form:** One of: `yes`, `no`, `undecided`.\n  - **Answer:** `maybe`")
    text = swap('- [ ] <a id="lic-1"></a>', '- [x] <a id="lic-1"></a>', text)
    expect(text, "answer", "`maybe`")


# ---------------------------------------------------------------- conditions and helpers

@test
def condition_precedence_and_value_lists():
    tree = cl.parse_condition("LIC-1 is yes or undecided and not REQ-2.ru is out or REQ-1 includes lab")
    assert tree == ("or", [("and", [("test", "LIC-1", None, "is", ("yes", "undecided")),
                                    ("not", ("test", "REQ-2", "ru", "is", ("out",)))]),
                           ("test", "REQ-1", None, "includes", ("lab",))]), tree


@test
def three_valued_evaluation():
    tree = cl.parse_condition("LIC-1 is yes and REQ-2.ru is build")
    assert cl.evaluate(tree, {}) is None
    assert cl.evaluate(tree, {"LIC-1": ["no"]}) is False
    assert cl.evaluate(tree, {"LIC-1": ["yes"]}) is None
    assert cl.evaluate(tree, {"LIC-1": ["yes"], "REQ-2": ["ru=build"]}) is True
    either = cl.parse_condition("LIC-1 is yes or REQ-1 includes lab")
    assert cl.evaluate(either, {"REQ-1": ["lab", "research"]}) is True
    assert cl.evaluate(either, {"REQ-1": ["research"]}) is None
    assert cl.evaluate(cl.parse_condition("not LIC-1 is no"), {}) is None


@test
def unblocks_ranges_expand():
    item = cl.Item("X-1", 1, "", False, "x-1", "X", {"Unblocks": ("LIC-3 to LIC-5 and DEL-2.", 2)})
    assert cl.unblocked_ids(item) == {"LIC-3", "LIC-4", "LIC-5", "DEL-2"}


@test
def slugs_match_github():
    cases = {"Start here: the blockers": "start-here-the-blockers",
             "Engineering's proposed defaults for a laboratory": "engineerings-proposed-defaults-for-a-laboratory",
             "Licence, contract and intellectual property (LIC)": "licence-contract-and-intellectual-property-lic",
             "`code` and *em* [link](http://x)": "code-and-em-link"}
    for heading, slug in cases.items():
        assert cl.slugify(heading) == slug, (heading, cl.slugify(heading))


# ---------------------------------------------------------------- README.md itself

def readme():
    return cl.parse(README.read_text(encoding="utf-8"), "README.md")


@test
def readme_is_clean():
    doc = readme()
    assert cl.check(doc) == [], "\n".join(f"README.md:{n}: [{r}] {m}" for n, r, m in cl.check(doc))
    assert len(doc.profiles) >= 4, "fewer than four profiles"


GOLDEN = {
    # profile: (items that must apply, items that must not)
    "lab": ({"REQ-9", "STD-5", "IOP-6", "IOP-8", "PY-3", "HW-4"},
            {"LIC-2", "LIC-13", "EXP-1", "DEL-1", "RAD-1", "REG-1", "SEC-8", "HW-9", "OPS-1", "LIC-7"}),
    "vendor": ({"LIC-2", "LIC-13", "EXP-1", "DEL-9", "HW-3", "HW-9", "RAD-1", "LIC-7", "REG-2", "SEC-8"},
               {"REG-1", "PY-3", "PY-6", "STD-8"}),
    "integrator": ({"DEL-3", "DEL-5", "OPS-1", "REG-1", "SEC-4", "ACC-6", "RAD-2"},
                   {"HW-9", "DEL-9", "HW-3", "PY-6"}),
    "open-operator": ({"REG-1", "OPS-1", "RAD-1", "IOP-6", "LIC-7", "EXP-3"},
                      {"DEL-1", "EXP-1", "SEC-8", "LIC-2", "HW-9", "STD-8"}),
}


@test
def profiles_include_and_exclude_what_they_should():
    doc = readme()
    for key, (must, must_not) in GOLDEN.items():
        yes, undecided, _ = cl.profile_view(doc, doc.profiles[key])
        got = {it.id for it in yes}
        assert not undecided, f"{key}: undecided {[it.id for it, _ in undecided]}"
        assert must <= got, f"{key}: missing {sorted(must - got)}"
        assert not must_not & got, f"{key}: should not list {sorted(must_not & got)}"


@test
def every_readme_item_has_a_checked_condition():
    doc = readme()
    for item in doc.items.values():
        assert cl.condition_of(item) is not None, f"{item.id}: Applies does not parse"


# ---------------------------------------------------------------- the command line

@test
def cli_items_csv_from_another_directory():
    result = run_cli("items", "--profile", "lab", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {"id", "ask", "form", "from", "stage", "applies", "answer"} <= set(rows[0])
    assert all(not r["id"].startswith("DEL-") for r in rows)


@test
def cli_items_json_for_one_party():
    result = run_cli("items", "--profile", "vendor", "--party", "counsel", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all(r["party"] == "counsel" for r in rows)


@test
def cli_items_markdown_and_stage():
    result = run_cli("items", "--profile", "vendor", "--stage", "blocker")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Items for profile `vendor`")
    assert "**EXP-1**" in result.stdout and "**RES-1**" not in result.stdout


@test
def cli_items_without_profile_lists_what_waits():
    result = run_cli("items", "--format", "json")
    rows = json.loads(result.stdout)
    waiting = [r for r in rows if r["waits_on"]]
    assert waiting and all(r["applies"] != "always" for r in waiting)


@test
def cli_profiles():
    result = run_cli("profiles", "--format", "json")
    keys = [r["profile"] for r in json.loads(result.stdout)]
    assert {"lab", "vendor", "integrator", "open-operator"} <= set(keys), keys


@test
def cli_unknown_profile_is_a_clear_error():
    result = run_cli("items", "--profile", "nobody")
    assert result.returncode == 1 and "unknown --profile 'nobody'" in result.stderr, result


@test
def cli_check_reports_in_linter_style():
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.md"
        bad.write_text(swap("4 of 8", "5 of 8"), encoding="utf-8")
        result = run_cli("check", "--file", str(bad))
    assert result.returncode == 1
    assert result.stdout.strip() == f"{bad}:{line_of(swap('4 of 8', '5 of 8'), '5 of 8')}: [profile] " \
                                    "profile lab: says 5, computed 4", result.stdout


@test
def cli_missing_file():
    result = run_cli("check", "--file", "no-such-file.md")
    assert result.returncode == 1 and "cannot read" in result.stderr, result


def main():
    import test_answers  # recording answers: import, status, and their rules
    passed = failed = 0
    for fn in TESTS + test_answers.TESTS:
        try:
            fn()
            passed += 1
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}")
            traceback.print_exc(limit=1)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
