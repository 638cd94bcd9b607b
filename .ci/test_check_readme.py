#!/usr/bin/env python3
"""Tests for check_readme.py (standard library only).

The base document is README.md at the repo root, or .ci/fixture.md while README.md
does not exist. Each injection test puts ONE defect into a copy of the base text,
found programmatically, and expects exactly that defect (rule and line) back.
"""
import re
import sys
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check_readme as cr  # noqa: E402

README, FIXTURE = HERE.parent / "README.md", HERE / "fixture.md"
BASE_PATH = README if README.exists() else FIXTURE
LINES = BASE_PATH.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")
SPEC = re.compile(r"\b(?:TS|TR) \d{2}\.\d{3}(?:-\d+)?\b")
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# ---- locating things in the base text (independent of the checker's parser) ----
def live():
    """0-based indices of lines outside fenced code blocks."""
    fence = None
    for i, line in enumerate(LINES):
        m = re.match(r"^ {0,3}(```|~~~)", line)
        if m and (fence is None or m.group(1) == fence):
            fence = None if fence else m.group(1)
        elif fence is None:
            yield i


def first(iterable, what):
    for x in iterable:
        return x
    raise AssertionError(f"cannot find {what} in {BASE_PATH.name}")


def h2(prefix):
    """(heading index, end index) of the first '## <prefix>...' section."""
    idx = [i for i in live() if re.match(r"^#{1,2} ", LINES[i])]
    start = first((i for i in idx if LINES[i].startswith("## " + prefix)), f"'## {prefix}'")
    return start, next((i for i in idx if i > start), len(LINES))


def parse_items():
    items = []
    for i in live():
        m = re.match(r"^- \[[ xX]\] \*\*(([A-Z]{2,4})-(\d+))\*\*", LINES[i])
        if not m:
            continue
        it = {"idx": i, "id": m.group(1), "pfx": m.group(2), "num": int(m.group(3)), "fields": {}}
        k = i + 1
        while k < len(LINES) and LINES[k].startswith("  "):
            f = re.match(r"^  - (?:\*\*)?(\w+):(?:\*\*)?\s*(.*)", LINES[k])
            if f:
                it["fields"].setdefault(f.group(1), k)
                if f.group(1) == "Stage":
                    words = f.group(2).split()
                    it["stage"] = words[0].strip("`*.,;:") if words else ""
            k += 1
        it["end"] = k
        items.append(it)
    return items


ITEMS, NON_BLOCKERS, GROUPS, HOWTO, START = [], [], [], None, None


def setup():
    """Locate the targets in the base text; a failure here fails the run, not crashes it."""
    global ITEMS, NON_BLOCKERS, GROUPS, HOWTO, START
    ITEMS = parse_items()
    NON_BLOCKERS = [it for it in ITEMS if it.get("stage") != "blocker"]
    GROUPS = [(i, m.group(1)) for i in range(*h2("The checklist"))
              if (m := re.match(r"^### .*\(([A-Z]{2,4})\)\s*$", LINES[i]))]
    HOWTO = h2("How to use this checklist")[0]
    START = h2("Start here")


def with_lines(at, new, drop=0):
    """Text of the base with LINES[at:at+drop] replaced by `new`."""
    return "\n".join(LINES[:at] + list(new) + LINES[at + drop:])


def replaced(i, line):
    return with_lines(i, [line], drop=1)


def clone(it, new_id):
    """The item's block (item line + fields) with its ID changed."""
    block = LINES[it["idx"]:it["end"]]
    return [block[0].replace(f"**{it['id']}**", f"**{new_id}**", 1)] + block[1:]


def next_id(pfx):
    return f"{pfx}-{max(it['num'] for it in ITEMS if it['pfx'] == pfx) + 1}"


def prose(*new):
    """Insert lines as a paragraph right after the how-to heading; 1-based line of the first."""
    return with_lines(HOWTO + 1, ["", *new, ""]), HOWTO + 3


def expect(text, rule, line):
    got = cr.check(text)
    assert len(got) == 1 and got[0][:2] == (line, rule), \
        f"expected exactly [{rule}] at line {line}, got {got}"


def expect_clean(text):
    got = cr.check(text)
    assert not got, f"expected no defects, got {got}"


# ---- tests ----
@test
def clean_base():
    expect_clean("\n".join(LINES))
    assert ITEMS and GROUPS and NON_BLOCKERS, "base has no items / groups / non-blockers"

if BASE_PATH != FIXTURE:
    @test
    def clean_fixture():
        expect_clean(FIXTURE.read_text(encoding="utf-8"))

@test
def slug_rules():
    cases = {"Start here: the blockers": "start-here-the-blockers",
             "Licence, contract and intellectual property (LIC)":
                 "licence-contract-and-intellectual-property-lic",
             "A -- B": "a----b", "`code` and *em* [link](http://x)": "code-and-em-link",
             "Übersicht_2 & more": "übersicht_2--more"}
    for heading, slug in cases.items():
        assert cr.slugify(heading) == slug, f"{heading!r} -> {cr.slugify(heading)!r}"

@test
def duplicate_id():
    it = NON_BLOCKERS[0]
    expect(with_lines(it["end"], clone(it, it["id"])), "duplicate-id", it["end"] + 1)

@test
def item_format_no_bold():
    it = ITEMS[0]
    expect(replaced(it["idx"], LINES[it["idx"]].replace(f"**{it['id']}**", it["id"], 1)),
           "item-format", it["idx"] + 1)

@test
def item_format_bad_checkbox():
    it = ITEMS[-1]
    expect(replaced(it["idx"], "- [] " + LINES[it["idx"]][6:]), "item-format", it["idx"] + 1)

@test
def undeclared_prefix():
    it, pfx = NON_BLOCKERS[0], next(p for p in ("QZX", "QZXY") if p not in {g for _, g in GROUPS})
    expect(with_lines(it["end"], clone(it, f"{pfx}-1")), "undeclared-prefix", it["end"] + 1)

@test
def wrong_group_heading():
    it = NON_BLOCKERS[0]
    heading = first((i for i, p in GROUPS if p != it["pfx"]), "a second group heading")
    expect(with_lines(heading + 1, ["", *clone(it, next_id(it["pfx"])), ""]),
           "wrong-group", heading + 3)

@test
def item_outside_checklist():
    it = NON_BLOCKERS[0]
    text, line = prose(*clone(it, next_id(it["pfx"])))
    expect(text, "wrong-group", line)

@test
def missing_form():
    it = ITEMS[0]
    expect(with_lines(it["fields"]["Form"], [], drop=1), "missing-field", it["idx"] + 1)

@test
def missing_stage():
    it = NON_BLOCKERS[0]
    expect(with_lines(it["fields"]["Stage"], [], drop=1), "missing-field", it["idx"] + 1)

@test
def empty_field():
    i = ITEMS[0]["fields"]["Unblocks"]
    expect(replaced(i, "  - **Unblocks:**"), "missing-field", i + 1)

@test
def unknown_field():
    i = ITEMS[0]["idx"] + 1
    expect(with_lines(i, ["  - **Colour:** red"]), "unknown-field", i + 1)

@test
def bad_stage():
    i = NON_BLOCKERS[0]["fields"]["Stage"]
    expect(replaced(i, "  - **Stage:** `bogus`"), "bad-stage", i + 1)

@test
def undefined_id_in_prose():
    text, line = prose(f"See also {next_id(ITEMS[0]['pfx'])}.")
    expect(text, "undefined-id", line)

@test
def blocker_missing_from_start_here():
    listed = "\n".join(LINES[START[0]:START[1]])
    it = first((it for it in NON_BLOCKERS if not re.search(rf"\b{it['id']}\b", listed)),
               "a non-blocker item not mentioned under '## Start here'")
    expect(replaced(it["fields"]["Stage"], "  - **Stage:** `blocker`"), "blocker-list", it["idx"] + 1)

@test
def start_here_lists_non_blocker():
    text = with_lines(START[0] + 1, ["", f"Also {NON_BLOCKERS[0]['id']}.", ""])
    expect(text, "blocker-list", START[0] + 3)

@test
def broken_anchor():
    i = first((i for i in live() if re.search(r"\]\(#[^)\s]+\)", LINES[i])), "an internal link")
    expect(replaced(i, re.sub(r"\]\(#([^)\s]+)\)", r"](#\1-zz-broken)", LINES[i], count=1)),
           "anchor", i + 1)

@test
def duplicate_heading_suffix():
    tail = ["", "#### How to use this checklist", "", "See [again](#how-to-use-this-checklist-1)."]
    expect_clean(with_lines(len(LINES), tail))
    tail[-1] = tail[-1].replace("-1)", "-2)")
    expect(with_lines(len(LINES), tail), "anchor", len(LINES) + 4)

@test
def cited_spec_not_in_references():
    text, line = prose("Timing follows TS 99.999.")
    expect(text, "reference", line)

@test
def spec_dropped_from_references():
    refs = range(*h2("References"))
    i, spec = first(((i, m.group(0)) for i in live() if i not in refs
                     for m in SPEC.finditer(LINES[i])), "a TS/TR citation outside References")
    pat = re.compile(re.escape(spec) + r"(?![-\d])")
    lines = [pat.sub("TS 00.000", line) if n in refs else line for n, line in enumerate(LINES)]
    expect("\n".join(lines), "reference", i + 1)

@test
def placeholder():
    text, line = prose("TODO: write this paragraph.")
    expect(text, "placeholder", line)

@test
def harmless_lookalikes():
    expect_clean(prose("A todo list for IMT-2020 and Rel-15 per ITU-R; see [x](#references).")[0])

@test
def fenced_block_ignored():
    pfx = ITEMS[0]["pfx"]
    expect_clean(prose("```", "- [ ] broken TODO", f"[x](#nowhere) {pfx}-999 TS 99.999",
                       "### Stray (QZX)", "```")[0])

@test
def ci_not_named():
    expect("\n".join(LINES).replace(".ci/run", ".ci/xyz"), "ci-named", 1)

@test
def stage_table_missing():
    i = first((i for i in range(HOWTO, h2("How to use this checklist")[1])
               if re.match(r"^\|\s*\**Stage\**\s*\|", LINES[i])
               and re.match(r"^\|[\s:|-]+$", LINES[i + 1])), "the Stage table header")
    expect(replaced(i, LINES[i].replace("Stage", "Phase", 1)), "structure", HOWTO + 1)

def main():
    passed = failed = 0
    try:
        setup()
    except Exception as e:
        failed += 1
        print(f"FAIL setup: cannot locate sections/items in {BASE_PATH.name}: {e!r}")
    for fn in TESTS:
        name = fn.__name__ + (f":{BASE_PATH.name}" if fn.__name__ == "clean_base" else "")
        try:
            fn()
        except Exception as e:  # report any error as a failure of this test
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
        else:
            passed += 1
            print(f"ok {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
