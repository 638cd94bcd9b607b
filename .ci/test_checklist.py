#!/usr/bin/env python3
"""Tests for tools/checklist.py, standard library only. Run: python3 .ci/test_checklist.py [NAME ...]

Rule tests put ONE defect into a copy of .ci/fixture.md and expect exactly that defect back, with
its code and line; every declared code has such a case. Condition and helper tests follow; then
the product's routing goldens on README.md itself. test_answers.py (import, status, hostile input)
and test_cli.py (real processes) are collected from here. The run ends with 'N passed, N failed'.
"""
import json
import os
import sys
import tempfile

from support import FIXTURE, README, TESTS, cl, defects, expect, line_of, run_main, run_tests, swap, test

REQ4_META = "  - `design` · requester · if `has-radio or REQ-1 includes product`"
NAMES_TABLE = "| `licensed` | `LIC-1 is yes or undecided` |"
LAST_REQ = "- [x] <a id=\"req-5\"></a>**REQ-5** Merged into REQ-4.\n  - `void`\n"
PARTY_TABLE = ("| Party | Who |\n|---|---|\n| `requester` | who asked |\n| `counsel` | lawyers |\n"
               "| `licensor` | the vendor of the licensed code |\n")
LONG = " ".join(["word"] * 110)

# (test name, text replaced, replacement, code expected, text on the line where it is expected)
ONE_DEFECT = [
    ("item_without_bold_id", '<a id="req-3"></a>**REQ-3**', '<a id="req-3"></a>REQ-3', "item-format", "REQ-3 The number"),
    ("item_with_broken_checkbox", '- [ ] <a id="req-4"></a>', '- [] <a id="req-4"></a>', "item-format", "- [] "),
    ("field_written_without_bold", "  - **Form:** a number.", "  - Form: a number.", "item-format", "Form: a number"),
    ("answer_line_indented_three_spaces", "  - **Form:** a number.", "  - **Form:** a number.\n   - **Answer:** 4",
     "item-format", "   - **Answer:** 4"),
    ("answer_line_with_a_star_bullet", "  - **Form:** a number.", "  - **Form:** a number.\n  * **Answer:** 4",
     "item-format", "  * **Answer:** 4"),
    ("text_under_an_item", "  - **Form:** a number.", "  - **Form:** a number.\n  just some text",
     "item-format", "just some text"),
    ("field_line_cut_off_from_its_item", LAST_REQ, LAST_REQ + "\n  - **Note:** stray\n", "item-format", "stray"),
    ("paragraph_after_an_item", LAST_REQ, LAST_REQ + "\n    an old second paragraph\n", "item-continuation",
     "an old second paragraph"),
    ("line_right_after_an_item", LAST_REQ, LAST_REQ + "Buyers: list transit countries too.\n", "item-format",
     "Buyers: list"),
    ("unknown_field", "  - **Form:** a number.", "  - **Form:** a number.\n  - **Colour:** red", "unknown-field", "Colour"),
    ("duplicate_field", "  - **Form:** a number.", "  - **Form:** a number.\n  - **Form:** two",
     "duplicate-field", "**Form:** two"),
    ("second_meta_line", "  - `plan` · requester\n", "  - `plan` · requester\n  - `plan` · counsel\n",
     "duplicate-field", "`plan` · counsel"),
    ("undeclared_prefix", '<a id="req-4"></a>**REQ-4**', '<a id="qzx-1"></a>**QZX-1**', "undeclared-prefix", "QZX-1"),
    ("item_in_wrong_group", '<a id="req-4"></a>**REQ-4**', '<a id="lic-3"></a>**LIC-3**', "wrong-group", "LIC-3"),
    ("item_without_its_anchor", '<a id="req-4"></a>**REQ-4**', "**REQ-4**", "item-anchor", "**REQ-4**"),
    ("missing_form", "  - **Form:** a number.\n", "", "missing-field", "**REQ-3**"),
    ("missing_meta_line", "  - `plan` · requester\n", "", "missing-field", "**REQ-3**"),
    ("bad_stage", REQ4_META, REQ4_META.replace("design", "bogus"), "bad-stage", "`bogus`"),
    ("bad_party", REQ4_META, REQ4_META.replace("requester", "marketing"), "bad-party", "marketing"),
    ("condition_names_a_missing_answer", REQ4_META, REQ4_META.replace("product", "gadget"), "condition", "gadget"),
    ("condition_that_does_not_parse", REQ4_META, REQ4_META.replace("has-radio or", "has-radio or or"),
     "condition", "or or"),
    ("condition_with_an_unknown_name", REQ4_META, REQ4_META.replace("has-radio", "radios"), "condition", "`radios or"),
    ("group_condition_that_does_not_parse", "**Applies to this group:** `licensed`",
     "**Applies to this group:** `licensed and`", "group-condition", "Applies to this group"),
    ("group_condition_with_an_undeclared_answer", "**Applies to this group:** `licensed`",
     "**Applies to this group:** `LIC-1 is maybe`", "group-condition", "Applies to this group"),
    ("named_condition_that_uses_a_name", NAMES_TABLE, NAMES_TABLE + "\n| `both` | `licensed and has-radio` |",
     "named-condition", "`both`"),
    ("named_condition_that_is_an_answer", NAMES_TABLE, NAMES_TABLE + "\n| `yes` | `LIC-1 is yes` |",
     "named-condition", "| `yes`"),
    ("role_with_a_bad_condition", "| `maker` | `REQ-1 includes product` |", "| `maker` | `REQ-1 includes gadget` |",
     "role", "gadget"),
    ("last_role_not_always", "| `builder` | `always` |", "| `builder` | `REQ-1 includes teaching` |",
     "role", "`builder`"),
    ("routing_answer_not_declared", '- [ ] <a id="lic-1"></a>**LIC-1** Whether licensed material is used.\n'
     "  - **Form:** One of: `yes`, `no`, `undecided`.", '- [x] <a id="lic-1"></a>**LIC-1** Whether licensed '
     "material is used.\n  - **Form:** One of: `yes`, `no`, `undecided`.\n  - **Answer:** `maybe`", "answer", "`maybe`"),
    ("ticked_box_without_answer", '- [ ] <a id="req-3"></a>', '- [x] <a id="req-3"></a>', "answer", "**REQ-3**"),
    ("answer_without_ticked_box", "  - **Form:** a number.", "  - **Form:** a number.\n  - **Answer:** 12",
     "answer", "**REQ-3**"),
    ("hand_written_answer_with_html", '- [ ] <a id="req-3"></a>**REQ-3** The number of sites.\n  - **Form:** a number.',
     '- [x] <a id="req-3"></a>**REQ-3** The number of sites.\n  - **Form:** a number.\n  - **Answer:** 4 <b>sites</b>',
     "answer", "<b>sites</b>"),
    ("answer_to_a_void_item", "  - `void`\n", "  - `void`\n  - **Answer:** kept\n", "answer", "**Answer:** kept"),
    ("secret_written_by_hand", "used by the tests.", "used by the tests, key 000102030405060708090a0b0c0d0e0f.",
     "secret", "used by the tests, key"),
    ("door_code_typed_in_prose", "used by the tests.", "used by the tests. Lab door code is 7391.", "secret",
     "Lab door code is 7391"),
    ("wifi_key_typed_in_a_table", "| `lab` | Teaching lab |", "| `lab` | Teaching lab |\n| lab wifi | bluefalcon77 is the key |",
     "secret", "bluefalcon77"),
    ("pin_typed_in_prose", "used by the tests.", "used by the tests; PIN 4471 for the cabinet.", "secret", "PIN 4471"),
    ("door_code_typed_in_a_field", "  - **Form:** a number.", "  - **Form:** a number; the door code is 4821.",
     "secret", "the door code is 4821"),
    ("password_typed_in_an_ask", "**REQ-3** ", "**REQ-3** (Wi-Fi password: Sunflower77) ", "secret", "Sunflower77"),
    ("door_code_typed_in_a_profile", "| `lab` | Teaching lab |", "| `lab` | Teaching lab; lab door code 4821 |",
     "secret", "lab door code 4821"),
    ("password_typed_in_a_role_rule", "| the value the system must meet |",
     "| the value the system must meet; Wi-Fi password: Sunflower77 |", "secret", "Sunflower77"),
    ("door_code_typed_in_a_group_note", "### Scope (REQ)\n", "### Scope (REQ)\n\nThe lab's door code is 4821.\n",
     "secret", "door code is 4821"),
    ("item_line_too_long_to_judge", "  - **Form:** a number.", "  - **Form:** a number" + "." * 2000, "secret",
     "a number..."),
    ("unblocks_an_earlier_stage", "  - **Unblocks:** radio design.", "  - **Unblocks:** radio design; REQ-3.",
     "stage-order", "radio design; REQ-3"),
    ("unblocks_cycle", "  - **Unblocks:** REQ-3.\n", "  - **Unblocks:** REQ-3 and REQ-1.\n", "cycle", "**REQ-1**"),
    ("unblocks_range_backwards", "  - **Unblocks:** sizing.", "  - **Unblocks:** sizing; REQ-4 to REQ-3.",
     "range", "REQ-4 to REQ-3"),
    ("undefined_id_in_prose", "TS 23.501 is cited here.", "TS 23.501 is cited here; see REQ-9.", "undefined-id", "REQ-9"),
    ("undefined_id_in_mermaid", 'A["REQ-1 use"]', 'A["REQ-7 use"]', "undefined-id", "REQ-7 use"),
    ("blocker_not_listed_in_start_here", REQ4_META, REQ4_META.replace("design", "blocker"), "blocker-list", "**REQ-4**"),
    ("start_here_lists_a_non_blocker", "| 3 | [REQ-2](#req-2) | Which parts are built |",
     "| 3 | [REQ-2](#req-2) | Which parts are built |\n| 4 | [REQ-3](#req-3) | Sites |", "blocker-list", "| 4 |"),
    ("broken_internal_link", "used by the tests.", "used by the [tests](#nowhere).", "anchor", "#nowhere"),
    ("id_link_to_the_group", "| 1 | [REQ-1](#req-1) |", "| 1 | [REQ-1](#scope-req) |", "id-link", "#scope-req"),
    ("unlinked_id_in_a_table", "| 2 | [LIC-1](#lic-1) |", "| 2 | LIC-1 |", "unlinked-id", "| 2 | LIC-1 |"),
    ("duplicate_anchor", "used by the tests.", 'used by the tests. <a id="req-3"></a>', "duplicate-anchor",
     '<a id="req-3"></a>**REQ-3**'),
    ("profile_count_drift", "| `lab` | Teaching lab | 4 |", "| `lab` | Teaching lab | 5 |", "profile", "| 5 |"),
    ("profile_leaves_items_undecided", "; [REQ-2](#req-2) `ap=build`, `radio=out`", "", "profile",
     "`teaching`; [LIC-1](#lic-1) `no` |"),
    ("profile_assumes_an_undeclared_answer", "[LIC-1](#lic-1) `no`", "[LIC-1](#lic-1) `nope`", "profile", "`nope`"),
    ("profile_without_assumed_answers", "| `vendor` | [REQ-1](#req-1) `product`; [LIC-1](#lic-1) `yes`; "
     "[REQ-2](#req-2) `ap=build`, `radio=build` |\n", "", "profile", "| `vendor` | Vendor"),
    ("uncited_reference", "TS 23.501 is cited here.", "TS 23.502 is cited here.", "reference", "TS 23.502"),
    ("placeholder_left", "used by the tests.", "used by the tests (TODO).", "placeholder", "TODO"),
    ("html_comment", "used by the tests.", "used by the tests. <!-- not for buyers -->", "hidden-text", "<!--"),
    ("lone_carriage_return", "used by the tests.", "used by the tests.\r  - **Answer:** forged", "line-ending",
     "used by the tests."),
    ("invisible_character", "used by the tests.", "used by the tests,\u202e the reversed\u200b part.",
     "invisible-character", "the reversed"),
    ("control_character", "used by the tests.", "used by the tests.\x1b]0;pwned\x07 and \x00", "control-character",
     "used by the tests."),
    ("heading_without_blank_line_before", LAST_REQ + "\n### Licence", LAST_REQ + "### Licence",
     "heading-blank", "### Licence"),
    ("no_party_table", PARTY_TABLE, "", "structure", 1),
    ("item_too_long", "  - **Form:** a number.", f"  - **Form:** a number. {LONG}", "item-length", "**REQ-3**"),
]


def one_defect_test(name, old, new, code, needle):
    def case():
        expect(swap(old, new), code, needle)
    case.__name__ = name
    return case


TESTS += [one_defect_test(*case) for case in ONE_DEFECT]


@test
def fixture_is_clean():
    assert defects(FIXTURE) == [], defects(FIXTURE)


@test
def every_declared_code_has_a_one_defect_case():
    declared = {code for fn in cl.RULES for code in fn.codes}
    tested = {case[3] for case in ONE_DEFECT} | {"duplicate-id", "commands"}
    assert declared == tested, f"untested: {sorted(declared - tested)}; unknown: {sorted(tested - declared)}"


@test
def duplicate_id():
    block = '- [ ] <a id="req-3"></a>**REQ-3** Again.\n  - **Form:** x.\n  - **Unblocks:** y.\n  - `plan` · requester\n'
    text = swap('- [ ] <a id="req-4"></a>', block + '- [ ] <a id="req-4"></a>')
    expect(text, "duplicate-id", "Again.")


@test
def empty_unblocks():
    text = swap("  - **Unblocks:** sizing.", "  - **Unblocks:**")
    expect(text, "missing-field", text.split("\n").index("  - **Unblocks:**") + 1)


@test
def command_missing():
    text = swap("bash .ci/run\n", "")
    expect(text, "commands", len(text.split("\n")))


@test
def list_rules_names_every_code():
    result = run_main("check", "--list-rules", "--file", README)
    assert result.returncode == 0
    for fn in cl.RULES:
        for code in fn.codes:
            assert f"\n{code} " in "\n" + result.stdout, code


# ---------------------------------------------------------------- conditions and helpers

@test
def condition_precedence_and_value_lists():
    tree = cl.parse_condition("LIC-1 is yes or undecided and not REQ-2.ru is out or REQ-1 includes lab")
    Test, All, Any_, Not = cl.Test, cl.All, cl.Any_, cl.Not
    assert tree == Any_((All((Test("LIC-1", None, "is", ("yes", "undecided")),
                              Not(Test("REQ-2", "ru", "is", ("out",))))),
                         Test("REQ-1", None, "includes", ("lab",)))), tree


@test
def named_conditions_expand_as_if_in_parentheses():
    names = {"either": cl.parse_condition("LIC-1 is yes or REQ-1 includes lab")}
    tree = cl.parse_condition("either and REQ-2.ru is out", names)
    assert cl.evaluate(tree, {"LIC-1": ["no"], "REQ-1": ["lab"], "REQ-2": ["ru=build"]}) is False
    assert cl.evaluate(tree, {"LIC-1": ["no"], "REQ-1": ["lab"], "REQ-2": ["ru=out"]}) is True


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
def conditions_nested_too_deep_are_refused():
    text = "(" * 60 + "LIC-1 is yes" + ")" * 60
    try:
        cl.parse_condition(text)
    except cl.ConditionError as e:
        assert "more than 50" in str(e)
    else:
        raise AssertionError("accepted")


@test
def group_conditions_are_inherited():
    doc = cl.parse(FIXTURE)
    vendor_without_radio = {"REQ-1": ["product"], "LIC-1": ["yes"], "REQ-2": ["ap=build", "radio=out"]}
    verdicts = {r.item.id: r.applies for r in cl.applicable(doc, vendor_without_radio)}
    assert verdicts["DEL-1"] is True and verdicts["DEL-2"] is False
    assert {r.item.id: r.applies for r in cl.applicable(doc, {"LIC-1": ["no"]})}["DEL-2"] is False


@test
def a_printed_condition_keeps_its_meaning():
    doc = cl.parse(FIXTURE)
    text = cl.applies_text(doc, doc.items["DEL-2"])
    assert text == "(licensed) and (not REQ-2.radio is out)", text
    names = cl.name_trees(doc)
    for answers in ({"LIC-1": ["no"]}, {"LIC-1": ["yes"], "REQ-2": ["ap=build", "radio=out"]}):
        assert cl.evaluate(cl.parse_condition(text, names), answers) == cl.evaluate(cl.item_tree(doc, doc.items["DEL-2"]), answers)


@test
def roles_follow_the_routing_answers():
    doc = cl.parse(FIXTURE)
    assert cl.role_of(doc, {"REQ-1": ["product"]}).key == "maker"
    assert cl.role_of(doc, {"REQ-1": ["teaching"]}).key == "builder"
    assert cl.role_of(doc, {}).key == "builder"


@test
def an_item_with_no_line_for_your_role_shows_another_fitting_roles_line():
    doc = readme()
    answers = {"REQ-1": ["public"], "REQ-4": ["customer"], "REQ-17": ["running"]}
    roles = cl.roles_of(doc, answers)
    assert [r.key for r in roles] == ["buyer", "running-network"], [r.key for r in roles]
    assert cl.role_line(doc.items["ACC-4"], roles) == "Running network: " + doc.items["ACC-4"].get("Running network")
    assert cl.role_line(doc.items["ACC-3"], roles) == doc.items["ACC-3"].get("Buyer")
    assert cl.role_line(doc.items["LIC-18"], roles) == "", "the default role lends no line"
    assert [r.key for r in cl.roles_of(doc, {"REQ-1": ["teaching"]})] == ["builder"]


@test
def cited_items_include_links_without_their_id_and_group_notes_keep_the_first_paragraph():
    doc = cl.parse(FIXTURE.replace("### Licence (LIC)\n", "### Licence (LIC)\n\nAsk counsel first.\n\n- a list\n", 1))
    record = {"id": "REQ-1", "ask": "", "form": "see [the term sheet](#lic-2)", "in_your_role": "", "note": ""}
    assert cl.cited_elsewhere(doc, [record]) == ["LIC-2"]
    assert cl.group_intro(doc, "LIC") == "Ask counsel first.", cl.group_intro(doc, "LIC")


@test
def a_role_is_decided_by_answers_to_items_that_apply_and_its_own_line_wins():
    doc = readme()
    assert cl.role_of(doc, {"REQ-1": ["teaching"], "REQ-17": ["running"]}).key == "builder", \
        "REQ-17 does not apply without a network, so it makes no running network"
    roles = cl.roles_of(doc, {"REQ-1": ["private"], "REQ-4": ["supplier"], "REQ-17": ["running"]})
    assert [r.key for r in roles] == ["supplier", "running-network"], [r.key for r in roles]
    ops1 = doc.items["OPS-1"]
    assert ops1.get("Supplier") and ops1.get("Running network")
    assert cl.role_line(ops1, roles) == ops1.get("Supplier"), "the requester's own line wins over a lent one"


def buyer_items(answers_csv, *fmt):
    """`items --profile buyer --answers FILE [--format F]` on README.md, FILE holding these CSV rows."""
    with tempfile.TemporaryDirectory() as tmp:
        mine = os.path.join(tmp, "mine.csv")
        with open(mine, "w", encoding="utf-8") as f:
            f.write("id,answer\n" + answers_csv)
        return run_main("items", "--profile", "buyer", "--answers", mine, "--file", README, *fmt)


@test
def answers_so_far_leave_out_assumptions_for_items_that_do_not_apply():
    public_running = "REQ-1,`public`\nREQ-17,`running`\n"
    result = buyer_items(public_running)
    head = result.stdout.split("Rules for every role:")[0]
    assert result.returncode == 0 and "REQ-10" not in head, head
    assert "(also fits: running-network;" in head, head
    first = buyer_items(public_running, "--format", "csv").stdout.lstrip("\ufeff").split("\n", 1)[0]
    assert first.startswith(f'"# {cl.SHEET_HINT} Role: buyer (also fits: running-network;'), first
    data = json.loads(buyer_items(public_running, "--format", "json").stdout)
    assert data["also"] == ["running-network"], data["also"]


@test
def a_markdown_packet_gives_the_items_it_names_but_does_not_list_and_its_groups_notes():
    out = buyer_items("EXP-1,`pending`\n").stdout
    listed, cited = out.split("## Items named above but not in this list")
    assert "**DEL-3**" not in listed and "**SEC-22**" in listed, "SEC-22 names DEL-3, which pending drops"
    assert f'<a id="del-3"></a>**DEL-3** {readme().items["DEL-3"].ask} Form: ' in cited, cited[:400]
    assert "[DEL-3](#del-3)" in listed, "a link to a cited item stays a link"
    assert "**DEL-4**" in cited and "**DEL-15**" in cited, "linked ranges are expanded"
    notes = listed.split("Group notes:")[1].split("- [ ]")[0]
    intro = cl.group_intro(readme(), "EXP")
    assert intro and f"- **EXP:** {intro}" in notes and "Applies to this group" not in notes, notes
    named_in_notes = cl.ids_in(intro) - {line.split("**")[1] for line in listed.splitlines() if line.startswith("- [")}
    assert named_in_notes and all(f"**{iid}** " in cited for iid in named_in_notes), (named_in_notes, cited[:400])


@test
def unblocks_ranges_expand():
    item = cl.Item("X-1", 1, "", False, "x-1", "X", fields={"Unblocks": cl.Field("LIC-3 to LIC-5 and DEL-2.", 2)})
    assert cl.unblocked_ids(item) == {"LIC-3", "LIC-4", "LIC-5", "DEL-2"}


@test
def slugs_match_github():
    cases = {"Start here": "start-here",
             "Engineering's proposed defaults for a laboratory": "engineerings-proposed-defaults-for-a-laboratory",
             "Licence, contract and intellectual property (LIC)": "licence-contract-and-intellectual-property-lic",
             "`code` and *em* [link](http://x)": "code-and-em-link", "_under_ score_d": "under-score_d"}
    for heading, slug in cases.items():
        assert cl.slugify(heading) == slug, (heading, cl.slugify(heading))


@test
def repeated_headings_get_numbered_anchors():
    text = swap("## References", "## Notes\n\nSee [the second](#notes-1).\n\n## Notes\n\n## References")
    assert defects(text) == [], defects(text)
    assert [d.code for d in defects(text.replace("#notes-1", "#notes-2"))] == ["anchor"]


@test
def links_inside_code_spans_are_not_links():
    assert defects(swap("used by the tests.", "used by the tests: `[x](#nowhere)`.")) == []


@test
def a_shorter_fence_does_not_close_a_longer_one():
    text = swap("## References", "````text\n```\n[x](#nowhere)\n````\n\n## References")
    assert defects(text) == [], defects(text)


@test
def words_are_counted_as_rendered():
    assert cl.words('- [ ] <a id="x-1"></a>**X-1** See [the table](#t) and `code`.') == 6
    assert cl.words("|---|---:|") == 0


# ---------------------------------------------------------------- README.md itself: the product's routing

def readme():
    return cl.load(str(README))


@test
def readme_is_clean():
    doc = readme()
    found = cl.run_rules(doc)
    assert found == [], "\n".join(f"README.md:{d.line}: [{d.code}] {d.message}" for d in found[:20])


@test
def a_byte_order_mark_before_the_checklist_is_no_invisible_character():
    """Notepad saves README.md with a byte-order mark: check passes it (the invisible-character rule flagged it)."""
    assert cl.run_rules(cl.parse("\ufeff" + README.read_text(encoding="utf-8"))) == []


@test
def readme_stays_within_its_length_budget():
    doc = readme()
    sizes = sorted(cl.item_words(doc, it) for it in doc.items.values() if not it.void)
    total = sum(cl.words(line) for line in doc.lines)
    assert total <= 20000, f"{total} words"
    assert sizes[len(sizes) // 2] <= 50 and sizes[-1] <= 120, (sizes[len(sizes) // 2], sizes[-1])



@test
def an_item_line_indented_says_so_wherever_it_stands():
    """An item's line indented by a tab or spaces (H47-29) is named as such, under another item or after a blank line,
    not only through what it breaks (profile counts, links)."""
    for before, after in (('- [ ] <a id="req-4"></a>', '\t- [ ] <a id="req-4"></a>'),
                          ('- [ ] <a id="req-4"></a>', '\n   - [ ] <a id="req-4"></a>')):
        text = FIXTURE.replace(before, after, 1)
        line = line_of(text, after.strip("\n"))
        assert (line, "item-format") in [(d.line, d.code) for d in defects(text)], defects(text)

def main(names):
    import test_cli      # noqa: F401  real processes (first, so that the two processes end together)
    import test_answers  # noqa: F401  recording answers: import, status, hostile input
    import test_routing  # noqa: F401  the product's routing goldens on README.md
    import test_others   # noqa: F401  `others=VALUE` in a one-value-per-part answer
    import test_form     # noqa: F401  the answer form, in a headless browser where there is one
    return run_tests(TESTS, names)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
