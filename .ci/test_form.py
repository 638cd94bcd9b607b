"""The answer form (`checklist.py form`, tools/form.html): the page as written by Python, then the
page in a real headless Chromium driven over the DevTools protocol (.ci/browser.py), one browser
for all of them. Where no Chromium is found (or CHROMIUM is set empty) the browser tests are
skipped, never passed. Each browser test compares the page with the program itself: the items
`items` lists, `applicable()` and `role_of()`, `format_answer()`, `read_csv()` and `import`."""
import atexit
import csv
import io
import json
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

from support import (FIXTURE, H10_ACCEPTED, H10_REFUSED, H11_6_ACCEPTED, H11_6_REFUSED, H11_ACCEPTED, H11_REFUSED,
                     H9_ACCEPTED, H9_REFUSED, H12_LABELS, H12_NAMES, H13_WORD_YEAR, H12_NOT_LABELS, H12_PLACEHOLDERS,
                     H14_WEAK, H14_NAMES, H14_PUT_OFF, H14_NOT_PUT_OFF, H15_PAIRS, H15_PAIR_ACCEPTED, H15_SHEET,
                     H15_NOT_SHEET, H16_NAMES, H16_PAIRS, CONTEXT_ACCEPTED, CONTEXT_REFUSED, BOUND_ACCEPTED, BOUND_REFUSED,
                     H12_SIM_ACCEPTED, H12_SIM_REFUSED, H12_STILL_JUDGED, R13_ACCEPTED, R13_PASSWORDS,
                     R13_SIM_REFUSED,
                     N3_REFUSED, N5_ACCEPTED, README, Sandbox, Skip, cl, run_main,
                     swap, test, unanswered)

import browser as cdp

TMP = Path(tempfile.mkdtemp(prefix="form-tests-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
_browser = {}


def readme():
    return cl.load(str(README))


def page_args(profile=None, party=None, answers=None):
    return [a for flag, value in (("--profile", profile), ("--party", party), ("--answers", answers))
            if value for a in (flag, value)]


def write_form(*args, name="form.html", file=README):
    """Write the page for these options into the test folder; its path."""
    out = TMP / name
    result = run_main("form", *args, "--file", file, "-o", out)
    assert result.returncode == 0, result
    return out


def listed(*args):
    """(IDs in order, role) as `items` lists them for the same options."""
    result = run_main("items", *args, "--file", README, "--format", "json")
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    return [r["id"] for r in data["items"]], data["role"]


def page_data(text):
    m = re.search(r'<script type="application/json" id="form-data">(.*?)</script>', text, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


# ---------------------------------------------------------------- the page as written

@test
def form_page_is_one_self_contained_file():
    text = run_main("form", "--profile", "lab", "--file", README).stdout
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "{{" not in text.split('id="form-data">')[0], "a placeholder was left in the template"
    assert not re.search(r"""<(?:script|img|iframe|link|object|embed)\b[^>]*\b(?:src|href|data)\s*=\s*["']?(?!["']|data:|#)""",
                         text, re.I), \
        "the page loads an outside file"
    assert not re.search(r"@import|url\(\s*['\"]?(?!data:)", text), "the style sheet loads an outside file"
    assert "default-src 'none'" in text, "no Content-Security-Policy"
    data = page_data(text)
    assert data["profile"]["key"] == "lab" and data["items"] and data["roles"]
    assert set(data["entities"]) == cl.ENTITY_NAMES and {"amp", "nbsp", "ZeroWidthSpace"} < cl.ENTITY_NAMES   # G11
    assert [it["id"] for it in data["items"]] == [it.id for it in cl.working_order(readme())]


@test
def form_data_block_cannot_be_broken_out_of():
    hostile = "</script><script>alert(1)</script><!-- {{data}} {{title}}"
    text = swap("**REQ-3** The number of sites.", f"**REQ-3** The number of sites {hostile}.")
    with Sandbox(text) as box:
        page = box.run("form").stdout
    block = page.split('id="form-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block, "a '<' was left in the data block"
    assert page.count("</script>") == 2 and page.count("<script") == 2
    assert hostile in json.dumps(page_data(page)["items"], ensure_ascii=False)


@test
def form_writes_a_file_and_refuses_bad_options():
    out = TMP / "written.html"
    result = run_main("form", "--party", "counsel", "--file", README, "-o", out)
    assert result.returncode == 0 and result.stdout == "" and "written" in result.stderr, result
    assert page_data(out.read_text(encoding="utf-8"))["party"] == "counsel"
    assert run_main("form", "--profile", "nobody", "--file", README).returncode == 2
    assert run_main("form", "--party", "nobody", "--file", README).returncode == 2
    with Sandbox() as box:
        refused = box.run("form", "--answers", box.csv("id,answer\nLIC-1,maybe\n"))
        assert refused.returncode == 1 and "answers.csv:2:" in refused.stderr, refused


@test
def form_exports_full_conditions_and_declared_answers():
    doc = cl.parse(FIXTURE)
    with Sandbox() as box:
        data = page_data(box.run("form").stdout)
    items = {it["id"]: it for it in data["items"]}
    # DEL-2's tree holds its group's named condition, expanded
    assert items["DEL-2"]["tree"] == cl.tree_json(cl.item_tree(doc, doc.items["DEL-2"]))
    assert '"test": "LIC-1"' in json.dumps(items["DEL-2"]["tree"]), items["DEL-2"]["tree"]
    assert items["LIC-1"]["declared"]["kind"] == "one" and items["REQ-3"]["declared"] is None
    assert cl.token_labels("One of: `a` (first (really)), `b`, `c` (third).", ["a", "b", "c"]) == \
        {"a": "first (really)", "c": "third"}


@test
def form_brief_takes_outside_facts_with_their_dates():
    text = ("# T\n\n## Outside context: reports\n\nNone of this is an answer. Facts are as of 1 May 2026 unless a "
            "bullet says otherwise. Sources below.\n\n- <a id=\"ctx-a\"></a>**A.** One.\n  - **Sub.** Two, as of "
            "3 June 2026.\n    - Deeper.\n- <a id=\"ctx-b\"></a>**B.** Three.\n\n## Next\n")
    context = cl.outside_context(cl.parse(text))
    assert context["dating"] == "Facts are as of 1 May 2026 unless a bullet says otherwise."
    assert [(b["anchor"], b["as_of"]) for b in context["bullets"]] == [("ctx-a", "3 June 2026"), ("ctx-b", "1 May 2026")]
    assert context["bullets"][0]["lines"] == [(0, "**A.** One."), (1, "**Sub.** Two, as of 3 June 2026."), (2, "Deeper.")]
    assert cl.outside_context(cl.parse(FIXTURE)) == {"dating": "", "date": "", "bullets": []}


@test
def form_says_who_answers_in_plain_words():
    doc = readme()
    data = page_data(run_main("form", "--profile", "buyer", "--party", "operator", "--file", README).stdout)
    # every role of the checklist has a manager's wording: who it is, its rule, and why licences concern it
    assert sorted(r.key for r in doc.roles) == sorted(cl.ROLE_WORDS), "a role without plain words in ROLE_WORDS"
    syntax = re.compile(r"`|\b(?:is|includes) (?:[a-z]+ or )|REQ-\d+\.[a-z]|\band not\b|\b[a-z]+-[a-z]+-[a-z]+\b")
    for role in data["roles"]:
        words = role["words"]
        assert words and all(words[k] for k in ("as", "who", "rule", "why")), role["key"]
        assert not any(syntax.search(words[k]) for k in words), (role["key"], words)
        assert "Huawei's 2019 offer to license" in words["why"] and "(LIC-1)" in words["why"] and "(EXP-1)" in words["why"]
    assert "LIC-1" in doc.items and "EXP-1" in doc.items
    buyer = next(r["words"] for r in data["roles"] if r["key"] == "buyer")
    assert buyer["who"] == "the organisation that buys this network by tender"
    assert "what the tender must require" in buyer["rule"] and "A bidder's equipment may be made under" in buyer["why"]
    # the parties and stages in words, taken from the checklist's own tables
    assert data["party_name"] == "the operator" and data["party_words"]["operator"] == "whoever will run the network"
    assert set(data["party_words"]) == set(doc.parties) and set(data["stage_words"]) == set(doc.stages)
    assert data["stage_words"]["design"] == "before the design of the part it concerns is fixed"
    # links to the checklist's sections that the page holds land on the page
    template = cl.FORM_TEMPLATE.read_text(encoding="utf-8")
    assert data["standins"] == {"start-here": "brief-first", "answering-in-your-role": "brief-who",
                                "outside-context-public-reports-and-rules": "context-all"}
    assert all(f'id="{page_id}"' in template for page_id in data["standins"].values())
    # the page's own words for confidential material point to the page, not to the file
    assert cl.CONFIDENTIAL.startswith(data["confidential_on_page"].rsplit(",", 1)[0]) and "README" not in data["confidential_on_page"]
    assert "applies" not in data["items"][0], "the raw condition is still sent to the page"


@test
def c1_the_form_holds_the_same_provisional_tokens():
    found = re.findall(r"var PROVISIONAL = \[([^\]]*)\];", cl.FORM_TEMPLATE.read_text(encoding="utf-8"))
    assert len(found) == 1 and tuple(re.findall(r"'([^']*)'", found[0])) == cl.PROVISIONAL, found


@test
def c5_token_labels_are_plain_text():
    assert cl.token_labels("One of: `a` (only asking, [LIC-13](#lic-13)), `b` (**bold** and `code`), `c`.",
                           ["a", "b", "c"]) == {"a": "only asking, LIC-13", "b": "bold and code"}
    doc = readme()
    labels = [label for it in doc.items.values() if it.declared
              for label in cl.token_labels(it.get("Form"), it.declared.values + it.declared.parts).values()]
    assert labels and not [label for label in labels if re.search(r"\]\(|\*\*|`", label)], labels


# ---------------------------------------------------------------- in the browser

def chromium():
    """The suite's one browser, started on first use; Skip where there is none."""
    if "error" in _browser:
        raise Skip(_browser["error"])
    if "broken" in _browser:
        raise AssertionError(_browser["broken"])
    if "b" not in _browser:
        if not cdp.find_chromium():
            _browser["error"] = "no Chromium here (bash .ci/run installs Debian's chromium as root)"
            raise Skip(_browser["error"])
        try:
            _browser["b"] = cdp.Browser()
        except Exception as e:                 # installed but not working: a failure, once per test
            _browser["broken"] = f"Chromium did not start: {e}"
            raise
        atexit.register(_browser["b"].close)
        _browser["page"] = _browser["b"].page()
    return _browser["b"]


def open_form(*args, width=1000, name="form.html", file=README):
    """The suite's tab, showing a fresh page for these options, with no error so far."""
    chromium()
    page = _browser["page"]
    page.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                     "mobile": width < 500})
    page.goto(write_form(*args, name=name, file=file).as_uri())
    assert not page.errors(), page.errors()
    return page


def shown(page):
    """The IDs of the items listed on the page (not the other parties' routing items), in order."""
    ids = page.eval("Array.from(document.querySelectorAll('#item-list [data-item]'))"
                    ".filter(e => !e.hidden).map(e => e.dataset.item)")
    assert ids == page.eval("checklistForm.shown()"), "the DOM and the page's own list differ"
    return ids


def expected_brief(doc, answers, party=None, given=None):
    """(open blockers, first items) as the brief should give them for these routing answers (and the answers
    `given` in a CSV, {id: text})."""
    rows = cl.applicable(doc, answers)
    blockers = [r.item.id for r in rows if r.item.stage == "blocker" and r.applies is not False
                and cl.item_state(r.item, r.applies, given) in ("open", "waiting")]
    first = [r.item.id for r in rows if r.applies is True and r.item.stage != "blocker" and r.item.id not in answers
             and cl.item_state(r.item, r.applies, given) == "open" and (not party or r.item.party == party)]
    return blockers, first[:cl.FIRST_ITEMS]


def expected_context(doc, ids, countries=""):
    """The outside facts the brief should give: those the items cite (Note, Form), and those of the countries named."""
    context = cl.outside_context(doc)
    wanted = cl.cited_context(doc.items[i].get("Note") + doc.items[i].get("Form") for i in ids)
    wanted |= cl.country_anchors(context, countries)
    return [b["anchor"] for b in context["bullets"] if b["anchor"] in wanted]


def pages(pdf):
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))


@test
def browser_every_profile_shows_exactly_the_items_that_apply():
    doc = readme()
    cases = [page_args(profile=key) for key in doc.profiles] + [page_args(party="counsel"), []]
    for args in cases:
        page = open_form(*args)
        ids, role = listed(*args)
        assert shown(page) == ids, f"{args}: the page and 'items' differ"
        assert page.eval("checklistForm.currentRole()") == role
        said = f"The requester's role is {cl.ROLE_WORDS[role][0]} (" if "--party" in args else \
            f"You answer as {cl.ROLE_WORDS[role][0]}:"
        assert said in page.eval("document.getElementById('role-line').textContent"), (args, said)
        fields = page.eval("Array.from(document.querySelectorAll('#item-list [data-id]')).map(e => e.dataset.id)")
        assert set(ids) <= set(fields), f"{args}: items without an answer field"
        profile = doc.profiles[args[1]] if args[:1] == ["--profile"] else None
        blockers, first = expected_brief(doc, profile.assumes if profile else {}, "counsel" if "--party" in args else None)
        brief = page.eval("checklistForm.brief()")
        assert (brief["blockers"], brief["first"]) == (blockers, first), f"{args}: brief {brief}"
        assert page.eval("checklistForm.answersSoFar()") == \
            cl.answers_so_far(doc, cl.gather_answers(doc, profile and profile.key)), f"{args}: answers so far"
        if profile:
            assert [it.id for it in cl.profile_view(doc, profile)[2]] == first
        linked = {a for i in blockers + first for a in re.findall(r"\(#(ctx-[a-z0-9-]+)\)",
                                                                   doc.items[i].get("Note") + doc.items[i].get("Form"))}
        assert brief["context"] == [b["anchor"] for b in cl.outside_context(doc)["bullets"] if b["anchor"] in linked]
        assert page.eval("document.querySelectorAll('#brief-context .ctx-list > li').length") == len(linked)
        assert page.eval("document.querySelector('#brief-context').textContent").count("(as of ") >= len(linked)
        page.eval("document.body.classList.add('print-brief')")
        assert pages(page.pdf()) == 1, f"{args}: the brief does not print on one A4 page"
        page.eval("document.body.classList.remove('print-brief')")
        assert not page.errors(), page.errors()
    # --party counsel: the other parties' routing items stay editable, in their own section
    page = open_form("--party", "counsel")
    other = page.eval("Array.from(document.querySelectorAll('#routing-list [data-item]'))"
                      ".filter(e => !e.hidden).map(e => e.dataset.item)")
    assert "REQ-1" in other and "LIC-1" in other and all(doc.items[i].party != "counsel" for i in other)


@test
def browser_conditions_agree_with_python():
    doc = readme()
    rng = random.Random(20261206)
    routing = doc.routing()
    sets = [dict(p.assumes) for p in doc.profiles.values()] + [{}]
    for _ in range(240):
        answers = {}
        for iid, d in routing.items():
            if rng.random() < 0.15:
                continue
            if d.kind == "one":
                answers[iid] = [rng.choice(d.values)]
            elif d.kind == "many":
                answers[iid] = rng.sample(d.values, rng.randint(1, len(d.values)))
            else:
                answers[iid] = [f"{p}={rng.choice(d.values)}" for p in d.parts if rng.random() > 0.1]
        sets.append(answers)
    page = open_form()
    got = page.call("sets => sets.map(a => [checklistForm.verdicts(a), checklistForm.role(a), checklistForm.roles(a)])", sets)
    undecided = 0
    for answers, (verdicts, role, roles) in zip(sets, got):
        expected = {r.item.id: r.applies for r in cl.applicable(doc, answers)}
        assert verdicts == expected, {k: (v, expected.get(k)) for k, v in verdicts.items() if expected.get(k) != v}
        assert role == cl.role_of(doc, answers).key, (answers, role)
        assert roles == [r.key for r in cl.roles_of(doc, answers)], (answers, roles)
        undecided += sum(v is None for v in expected.values())
    assert undecided > 100, "the random answers never left an item undecided"


@test
def browser_an_item_without_a_line_for_your_role_shows_another_fitting_roles_and_asks_show_over_links():
    doc = readme()
    page = open_form("--profile", "buyer")
    click(page, '[data-id="REQ-17"] input[value="running"]')
    terms = page.eval("Array.from(document.querySelectorAll('[data-item=\"ACC-4\"] dt')).filter(d => !d.hidden)"
                      ".map(d => d.textContent + ': ' + d.nextElementSibling.textContent)")
    line = doc.items["ACC-4"].get("Running network").replace("`", "")
    assert f"As Running network (also your role): {line}" in terms, terms
    assert page.eval("checklistForm.roles(checklistForm.answers())") == ["buyer", "running-network"]
    title = page.eval("document.querySelector('[data-item=\"SEC-22\"] a[data-to=\"del-1\"], "
                      "[data-item=\"SEC-22\"] span[title]').title")
    assert title == doc.items["DEL-1"].ask.replace("`", ""), title
    page = open_form("--involving", "counsel")
    assert page.eval("document.title").startswith("Answers, involving counsel: "), page.eval("document.title")


def click(page, selector):
    page.call("s => { const e = document.querySelector(s); if (!e) throw new Error('no ' + s); e.click(); }", selector)


def value(page, selector):
    return page.call("s => document.querySelector(s).value", selector)


@test
def browser_routing_answers_change_the_list_and_the_role():
    doc = readme()
    page = open_form("--profile", "vendor")
    assert any(i.startswith("DEL-") for i in shown(page))
    click(page, '[data-id="LIC-1"] input[value="no"]')
    answers = dict(doc.profiles["vendor"].assumes, **{"LIC-1": ["no"]})
    expected = [r.item.id for r in cl.applicable(doc, answers) if r.applies is not False]
    assert shown(page) == expected and not any(i.startswith("DEL-") for i in expected)
    click(page, '[data-id="REQ-4"] input[value="evaluator"]')
    answers["REQ-4"] = ["evaluator"]
    assert shown(page) == [r.item.id for r in cl.applicable(doc, answers) if r.applies is not False]
    assert page.eval("checklistForm.currentRole()") == cl.role_of(doc, answers).key == "evaluator"
    assert "You answer as an evaluator:" in page.eval("document.getElementById('role-line').textContent")
    # REQ-2, one choice per part
    page.call("() => { const s = document.querySelector('#p-REQ-2-hardware'); s.value = 'out';"
              " s.dispatchEvent(new Event('change', {bubbles: true})); }")
    assert "hardware=out" in page.eval("checklistForm.answers()['REQ-2']")
    # keyboard only: an arrow key moves the choice, the space bar ticks a box
    page = open_form("--profile", "lab")
    values, assumed = doc.items["REQ-4"].declared.values, doc.profiles["lab"].assumes["REQ-4"][0]
    following = values[(values.index(assumed) + 1) % len(values)]
    page.focus(f'[data-id="REQ-4"] input[value="{assumed}"]')
    page.key("ArrowDown", key_code=40)
    assert page.eval("checklistForm.answers()['REQ-4']") == [following]
    page.focus('[data-id="REQ-1"] input[value="public"]')
    page.key(" ", code="Space", key_code=32)
    ticked = [v for v in doc.items["REQ-1"].declared.values if v == "public" or v in doc.profiles["lab"].assumes["REQ-1"]]
    answers = dict(doc.profiles["lab"].assumes, **{"REQ-4": [following], "REQ-1": ticked})
    assert page.eval("checklistForm.answers()['REQ-1']") == answers["REQ-1"]
    assert shown(page) == [r.item.id for r in cl.applicable(doc, answers) if r.applies is not False]
    # clearing a routing answer leaves its items waiting
    click(page, '[data-id="LIC-1"] .clear')
    assert "LIC-1" not in page.eval("checklistForm.answers()")
    assert page.eval("document.querySelector('#st-LIC-1').textContent") == ""
    assert not page.errors(), page.errors()


def problems_of(page, iid):
    return page.call("id => Array.from(document.querySelectorAll('#err-' + id + ' li')).map(e => e.textContent)", iid)


@test
def browser_answers_are_checked_as_you_type():
    page = open_form("--profile", "lab")
    text_item = '#a-REQ-3'
    counts = lambda: [int(n) for n in re.findall(r"\d+", page.eval("document.querySelector('#summary').textContent"))]
    before = counts()
    page.type(text_item, "Germany: development, testing and trials")
    assert problems_of(page, "REQ-3") == [] and page.eval("document.querySelector('#a-REQ-3').getAttribute('aria-invalid')") == "false"
    page.eval("document.querySelector('#a-REQ-3').value = ''")
    page.type(text_item, "K is 465b5ce8b199b49faa5f0a2ee238a6bc")
    [message] = problems_of(page, "REQ-3")
    assert "a key" in message and "confidential channel" in message and "pointer" in message, message
    assert "README" not in message, "the page sends its reader to the checklist file"
    assert page.eval("document.querySelector('#a-REQ-3').getAttribute('aria-invalid')") == "true"
    page.eval("document.querySelector('#a-REQ-3').value = ''")
    page.type(text_item, "=SUM(A1:A9)")
    assert any("formula" in m for m in problems_of(page, "REQ-3")), problems_of(page, "REQ-3")
    click(page, "#download-csv")
    assert "Not downloaded" in page.eval("document.getElementById('file-status').textContent")
    # 'not needed' needs a reason; the button starts one, and its error waits until the person has
    # had the chance to type the reason: it shows once they leave the box, not when the button fills it
    set_text(page, "#a-REQ-3", "")
    click(page, '[data-item="REQ-3"] .not-needed')
    assert value(page, text_item) == "not needed: " and page.eval("document.activeElement.id") == "a-REQ-3"
    assert problems_of(page, "REQ-3") == [] and invalid(page, "REQ-3") == "false"
    assert "type the reason" in page.eval("document.querySelector('#st-REQ-3').textContent")
    page.type(text_item, "n")                          # typing: still no error while the reason is begun
    assert problems_of(page, "REQ-3") == [] and invalid(page, "REQ-3") == "false"
    page.focus("#download-csv")                        # leaving the box shows it, with the new example
    assert problems_of(page, "REQ-3") == ["REQ-3: 'not needed' must give its reason, for example 'not needed: we run no radios'"]
    assert invalid(page, "REQ-3") == "true"
    set_text(page, "#a-REQ-3", "not needed: ")
    page.type(text_item, "nothing is shipped")
    assert problems_of(page, "REQ-3") == [] and invalid(page, "REQ-3") == "false"
    assert counts() == [before[0], before[1] + 1, before[2] - 1], (before, counts())
    # other problems still show as they are typed, even in a 'not needed' answer
    set_text(page, "#a-REQ-3", "not needed: ")
    page.type(text_item, "K=465b5ce8b199b49faa5f0a2ee238a6bc")
    assert any("a key" in m for m in problems_of(page, "REQ-3")), problems_of(page, "REQ-3")
    # keyboard only: Space on the button, then Tab away
    set_text(page, "#a-REQ-3", "")
    page.focus('[data-item="REQ-3"] .not-needed')
    page.key(" ", code="Space", key_code=32)
    assert value(page, text_item) == "not needed: " and page.eval("document.activeElement.id") == "a-REQ-3"
    assert problems_of(page, "REQ-3") == []
    page.key("Tab", key_code=9)
    assert any("must give its reason" in m for m in problems_of(page, "REQ-3")), problems_of(page, "REQ-3")
    assert not page.errors(), page.errors()


def set_text(page, selector, text):
    """Put `text` in a text box as if typed (one input event)."""
    page.call("(s, v) => { const t = document.querySelector(s); t.value = v; t.dispatchEvent(new Event('input')); }",
              selector, text)


def invalid(page, iid):
    return page.call("id => document.getElementById('a-' + id).getAttribute('aria-invalid')", iid)


K256 = "9e1c5f7a3b2d4e6f80a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8"
H40 = "2216af7c9e3b4a5d6f708192a3b4c5d6e7f80912"
H64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

CORPUS = [
    "12 sites in two countries", "research, teaching", "not needed: no radio in this laboratory", "not needed",
    "Not-needed: ok", "not needed \u2013 the lab has no radios", "=SUM(A1:A2)", "+44 20 7946 0000", "-5 dB",
    "@counsel", "<b>bold</b>", "see <https://example.org/spec>", "a <br> b", "unmatched `tick", "`code` is fine",
    "K = 465b5ce8b199b49faa5f0a2ee238a6bc", "465b 5ce8 b199 b49f aa5f 0a2e e238 a6bc 0011",
    "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "commit 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "uuid 123e4567-e89b-12d3-a456-426614174000",
    "key: -----BEGIN RSA PRIVATE KEY-----", "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig",
    "secret dGhpcyBpcyBhIHNlY3JldCBrZXkgbWF0ZXJpYWwxMjM0NTY3OA==", "otp JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "see https://example.org/aBcD1234eFgH5678iJkL9012mNoP3456/path", "AbCdEfGh12345678IjKlMnOp90qRsT",
    "line one\nline two", "zero\u200bwidth", "x" * 2001, "x" * 2000, "\U0001F600" * 1001, "# heading",
    "1. first", "> quote", "| table", "* item", "   padded answer   ", "   ", "\u00dcn\u00efc\u00f6d\u00e9 \u2014 ok",
    "\u0661. arabic digit list", "not needed: ---", "not needed:  ab", "not needed: abc", "notneeded because xyz",
    "needed: not", "a\tb", "\u00a9 2026 ACME", "\ufb01nal answer", "\uff1d1+1", "not\u00a0needed: \uff21\uff22\uff23",
    "<mailto:x@example.org> and <x", "ok </p>", "price < 5 and > 3", "<?php", "<!-- note -->",
    # the second hostile-input review (D1 to D21)
    "K=0x465b5ce8b199b49faa5f0a2ee238a6bc", "OPc 0X465B5CE8B199B49FAA5F0A2EE238A6BC",
    "{0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc}",
    "K=\\x46\\x5b\\x5c\\xe8\\xb1\\x99\\xb4\\x9f\\xaa\\x5f\\x0a\\x2e\\xe2\\x38\\xa6\\xbc",
    "465b  5ce8  b199  b49f  aa5f  0a2e  e238  a6bc", "46.5b.5c.e8.b1.99.b4.9f.aa.5f.0a.2e.e2.38.a6.bc",
    "465b_5ce8_b199_b49f_aa5f_0a2e_e238_a6bc", "K 465b5ce8b199b49faa5f0a2ee238a6bch",
    "K 465b5ce8b199b49f`aa5f0a2ee238a6bc", "K 465b5ce8b199b49f**aa5f0a2ee238a6bc**",
    "K 465b5ce8b199b49f&#8203;aa5f0a2ee238a6bc", "K 465b5ce8b199b49f&shy;aa5f0a2ee238a6bc",
    "totp seed jbswy3dpehpk3pxpjbswy3dpehpk3pxp", "seed JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP",
    "K Rltc 6LGZ tJ+q Xwou 4jim vA==", "K: 8NnwerXI9aay/xRkRUw2mg==", "K: lusnjdopJnt4asxdpTAIig",
    "K: T5XQLDVKV2JIYBMTDLT5IYKMQQ======", "K: 1zAfAuO3xh//cJvRGrl+/W5dYSrET/dEWM18lLTRzvY=",
    "K: HQRITGOJKTQDXIRKRIDGDJYQWY======", "K: beqhqzvqqoormtyjsauivoefjm",
    "see https://github.com/open5gs/open5gs/commit/2216af7c9e3b4a5d6f708192a3b4c5d6e7f80912",
    "see https://github.com/o/o/blob/2216af7c9e3b4a5d6f708192a3b4c5d6e7f80912/configs/amf.yaml.in",
    "see https://code.example/tree/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08/src",
    "see https://kms.example/k/465b5ce8b199b49faa5f0a2ee238a6bc", "https://kms.example/?k=Rltc6LGZtJ+qXwou4jimvA==",
    "SHA256 (fw.bin) = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  fw.bin (sha256sum)",
    "sha256 Fingerprint=9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08",
    "sha256 465b5ce8b199b49faa5f0a2ee238a6bc", "UPF at 2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    "memo at https://docs.google.com/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit",
    "https://contoso.sharepoint.com/:w:/s/legal/EbXyZ12AbCdEfGhIjKlMnOpQrSt3uVwXyZ?e=4aBcDe",
    "see configs/gnb_rf_b210_fdd_srsUE and pduSessionResourceSetupRequestTransfer", "crlf_line_endings_are_kept",
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 (Iran: testing)", "Germany \U0001F468\u200d\U0001F4BB team",
    "\u2764\ufe0f\u200d\U0001F525", "\u0915\u094d\u200d\u0937 lab", "a\u200cb", "1\u200d2", "\u200clab",
    "[](#req-3)", "![](#req-3)", "\u3164", "\u2800\u2800", "\ufe0f", "\u034f", "\uffa0 \u3164", "&nbsp;", "&#8203;",
    "SIM PIN\u17b41234", "SIM PIN\ufe0f1234", "x \ufe0f", "#\ufe0f", "\u2764\ufe0f\ufe0f", "1\ufe0f\u20e3 first",
    "\u845b\U000e0100\u57ce office", "\u203c\ufe0f urgent", "\u00a9\ufe0f 2026", "a\ufe0e", "Indoor room\ufe00\U000e0101",
    "PIN\u180b1234", "\u182e\u180b\u1823 site", "door\u034fcode", "x\ufff0y", "a\U000e0080b", "ok \U000e01f0",
    "Cardiff \U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f", "x\U000e0067y", "a\u180eb",
    "\u182e\u180e\u1820 site", "\u1000\ufe00 site", "\U0001f3f4\U000e0067\U000e0062 x", "\U0001f3f4\U000e007f x",
    "\u673a\U000e0135\u67dc\U000e0138\u94a5\U000e0132\u5319\U000e0139\u5728\U000e0178", "\u2192\U000e0101x", "\u2014\ufe00y",
    "\u845b\U000e0100\u57ce\U000e0101 \u2764\ufe0e",
    "Germany &#x202E;gnitset", "n&#111;t needed", "R&D and AT&T: 2 sites", "*not* needed", "`not needed`",
    "_not_ needed: ok", "[not needed](#req-5)", "not needed: \u3164\u3164\u3164", "not needed: a\u0301\u0301",
    "agreed in [REQ-4](https://evil.example/phish)", "see [REQ-4](<#req-5>)", "see [**REQ-4**](#req-5)",
    "see [REQ\u20114](#req-5)", "see REQ\u22124", "Germany **Note:** forged", "Mu\u0308nchen", "12\rsites",
    # the third hostile-input review (E1 to E14)
    "K 465b5ce8b199b49fa a5f0a2ee238a6bc", "K 465b5ce8b199b49faa5f0a2e e238a6bc",
    "K 46/5b/5c/e8/b1/99/b4/9f/aa/5f/0a/2e/e2/38/a6/bc", "K 46|5b|5c|e8|b1|99|b4|9f|aa|5f|0a|2e|e2|38|a6|bc",
    "K 465b\u20135ce8\u2013b199\u2013b49f\u2013aa5f\u20130a2e\u2013e238\u2013a6bc", "K 465b5ce8 ; b199b49f ; aa5f0a2e ; e238a6bc",
    "K 465B5CE8B199B49F'AA5F0A2EE238A6BC", "K=%46%5B%5C%E8%B1%99%B4%9F%AA%5F%0A%2E%E2%38%A6%BC",
    "K 465b5ce8b199b49f\\-aa5f0a2ee238a6bc", "K 465b\u22125ce8\u2212b199\u2212b49f\u2212aa5f\u22120a2e\u2212e238\u2212a6bc",
    f"digital signature key {K256}", f"256-bit K (64 hex digits) {K256}", f"commit-free key {K256[:40]}",
    f"sha256 of the image we ship to every customer site: {K256}", f"git {H40}", f"sha3-256 {H64}",
    f"Commit {H40} and digest {H64}",
    "TOTP seed JBSWY3DPEHPK3PXP", "totp setup key jbsw y3dp ehpk 3pxp", "K Rltc6LGZtJ+q.Xwou4jimvA==",
    "K Rltc6LGZ tJ+qXwou 4jimvA==", "K at https://kms.example/keys/Rltc6LGZtJ+qXwou4jimvA==",
    "K Rltc6LGZtJ\\+qXwou4jimvA\\=\\=", "students research projects", "with residual-risk thresholds",
    "3GPP Security Assurance", "gNB MACs 00:1a:2b:3c:4d:5e, 00:1a:2b:3c:4d:5f",
    "plan at https://www.notion.so/acme/Plan-1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6", "n/a", "#N/A", "N.A.", "na", "none",
    "Germany \U0001FAE8 (tbc by legal)", "\u0378 and \ufdd0", f"\U0001F600 sha256 {H64}",
    "\U0001F600" * 30 + f"sha256 {H64}", "sha256 " + "\U0001F600" * 25 + H64, "sha256 " + "\U0001F600" * 26 + H64,
    # the fourth hostile-input review (G1 to G15)
    *("K " + sep.join(["465b5ce8", "b199b49f", "aa5f0a2e", "e238a6bc"]) for sep in '!~^=#?$&"+'),
    "K $465b5ce8\\!b199b49f\\!aa5f0a2e\\!e238a6bc$", "K $\\mathtt{465b5ce8}\\mathtt{b199b49f}\\mathtt{aa5f0a2e}\\mathtt{e238a6bc}$",
    "K (465b5ce8)(b199b49f)(aa5f0a2e)(e238a6bc)", "K [465b5ce8][b199b49f][aa5f0a2e][e238a6bc]",
    "1 Dec 2026, 15 Dec 2026, 3 Feb 2027, 4 Feb 2027, 5 Feb 2027 and 6 Dec 2027",
    "(a) 2026-12-01 (b) 2027-01-15 (c) 2027-02-01 (d) 2027-03-01 (e) 2027-04-01",
    "TS 38.211, 38.212, 38.213, 38.214, 38.300, 38.321, 38.401, 38.413, 38.473, 23.501, 33.501",
    "K=Rltc6LGZtJ%2BqXwou4jimvA%3D%3D", "HSS at https://ki:Rltc6LGZtJ+qXwou4jimvA==@hss.example/",
    "see https://Rltc6LGZtJ-qXwou4jimvA.kms.example/", "K Rltc6LGZtJ+qX wou4jimvA==", "K Rlt c6LGZtJ+qXwou4 jimvA==",
    "https://Rltc6LGZtJ+qXwou4jimvA==@hss.example/", "see https://git@github.com/o/o and https://My-Lab.example.org/x",
    "%E2%80%8B%ZZ%e4%b8%ad %C3%28 %F0%9F%98%80 %ED%A0%80 caf%C3%A9", "portal https://Example.com/a%20b/c%2Fd?q=x%26y",
    f"TUAK K (this is not a sha256): {K256}", f"TUAK K (ask git ops): {K256}", f"no checksum, the key: {K256}",
    f"SUCI key: https://kms.example/hn-key/{K256}", f"sha256 of fw.bin: {H64}", f"SHA2-256(fw.bin)= {H64}",
    f"sha256sum: {H64}", f"https://example.org/sha256/{H64}/fw.bin", f"fingerprint (SHA256) = {H64}",
    "K (decimal) 93520343136652685040522976224586802876", "K 12345678901234567890123456789012",
    "K = \\106\\133\\134\\350\\261\\231\\264\\237\\252\\137\\12\\56\\342\\70\\246\\274",
    "$\\phantom{Germany}$", "Germany $\\color{white}{\\text{and also France}}$", "Germany $$x$$", "$\\text{not needed}$",
    "~~not needed~~", "12 sites at $5 to $10 a month each (~20 in all)", "\ufdd0\ufffe\uffff", "Germany \U0010ffff",
    "\U0003fffd\U0004abcd", "\u2014 \u2713 \U0001F44D", "?!", "US carrier AT&T; EU: Vodafone, R&D; Q&A;",
    "a&ZeroWidthSpace;b", "&GT;", "&T;x", "not needed: ~~no~~ radios",
    # the fifth hostile-input review (H1, D2 to D11, FP1 to FP8)
    "US ECCNs 5A002.a.1, 5A992.c, 5D002.c.1, 5D992.c, 5E002.a (per counsel)",
    "PLMN 262-01; TACs 0x00A001, 0x00A002, 0x00A003, 0x00A004, 0x00A005, 0x00A006",
    "cherry-picked commits 3f2a1bc, 7d9e0f1, a4b5c6d, 8e9f0a1, 2b3c4d5",
    "fixed in commits 3f2a1bc8, 7d9e0f12, a4b5c6d3, 8e9f0a14",
    "Gerrit change Change-Id: I8473b95934b5732ac55d26311a706c9c2bde9940 on gerrit.o-ran-sc.org",
    "gNB MACs 001a.2b3c.4d5e, 001a.2b3c.4d5f, 001a.2b3c.4d60", "radio unit serials 21A8F3C2, 21A8F3C3, 21A8F3C4, 21A8F3C5",
    "TACs 0x00A1, 0x00A2, 0x00A3, 0x00A4, 0x00A5, 0x00A6, 0x00A7, 0x00A8", "K 465b5ce8, b199b49f, aa5f0a2e, e238a6bc",
    "K 465b; 5ce8; b199; b49f; aa5f; 0a2e; e238; a6bc", "K and 465b5ce8, b199b49f, aa5f0a2e, e238a6bc",
    "K 46,5b,5c,e8,b1,99,b4,9f,aa,5f,0a,2e,e2,38,a6,bc and more", "no commits: 465b5ce8, b199b49f, aa5f0a2e, e238a6bc",
    "TUAK K 9e1c5f7a3b2d4e6f, 80a1b2c3d4e5f607, 18293a4b5c6d7e8f, 9012a3b4c5d6e7f8",
    "MILENAGE (TS 35.206), SIMs from sysmocom",
    "OPc cd63cb71-954a-9f4e-48a5-994e37a02baf, K 465b5ce8-b199-b49f-aa5f-0a2ee238a6bc",
    "TUAK K 9e1c5f7a-3b2d-4e6f-80a1-b2c3d4e5f607 18293a4b-5c6d-7e8f-9012-a3b4c5d6e7f8",
    "K 465b:5ce8:b199:b49f:aa5f:0a2e:e238:a6bc", "hub ID 4C4C4544-0042-3510-8052-B4C04F4E3732",
    "SBOM urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79", "asset GUID 465b5ce8-b199-b49f-aa5f-0a2ee238a6bc",
    "UPF N3 IPv6 address fd12:3456:789a:0001:0000:0000:0000:0001",
    "N3 IPv6 addresses fd12:3456:789a:0001:0000:0000:0000:0001, fd12:3456:789a:0001:0000:0000:0000:0002",
    "IPv6 fd12:3456:789a:0001:0000:0000:0000:0001, K 465b:5ce8:b199:b49f:aa5f:0a2e:e238:a6bc",
    "UEs 2001:db8:1::1 2001:db8:1::2 2001:db8:1::3 2001:db8:1::4 2001:db8:1::5 2001:db8:1::6",
    f"TUAK K (kept in git): {K256}", f"TUAK K (this isn't really a sha256): {K256}",
    f"TUAK K (not in fact the sha256): {K256}", f"git sha {H64}", f"git commit {H40}", f"no radios; firmware sha256: {H64}",
    f"TUAK K (this isn\u2019t a sha256): {K256}",
    "K Rltc6LGZtJ+qX wou4jimvA", "K Rltc6LGZtJ+qX  wou4jimvA==", "K Rltc6 LGZtJ +qXwo u4jim vA==",
    "K=Rltc6LGZtJ%252BqXwou4jimvA%253D%253D", "K=Rltc6LGZtJ%25252BqXwou4jimvA%25253D%25253D",
    "K Rltc  6LGZ  tJ+q  Xwou  4jim  vA==", "K IZNVZ2FRTG2 J7KS7BIXOEOFGXQ", "SEC-10 Secure-development process",
    "Open5GS configs/open5gs/amf.yaml.in and srsRAN gnb_rf_b210.conf", "sysmoISIM-SJA2 cards, 100 of them",
    "100%25 of sites",
    f"Commit SHA: {H40} (tag v2.7.1)", f"SHA-256 of release v1.0: {H64}", f"sha256sum of the release tarball: {H64}",
    f"checksums in SHA256SUMS: {H64}", "counsel's PGP key: 4AEE 18F8 3AFD EB23 E06A 3B91 4C2A 1C0D 2EE5 B9E4",
    "PGP fingerprint 4AEE 18F8 3AFD EB23 E06A 3B91 4C2A 1C0D 2EE5 B9E4", f"SHA-256 of the OPc file: {K256}",
    f"PGP key: {K256}", f"sha256 of fw.bin, not this: {K256}",
    "\u0627\u0644\u062a\u0637\u0648\u064a\u0631 \u0641\u064a \u0623\u0644\u0645\u0627\u0646\u064a\u0627\u200f (2026)",
    "\u05e2\u05d1\u05e8\u05d9\u05ea\u200e test", "Germany\u200e (2026)", "Germany\u200f (2026)",
    "not needed: tbd", "not needed: TODO.", "not needed: FixMe", "not needed: xxx", "not needed: tbd by counsel in May",
    "Germany, ~France~", "$not\\ needed$", "Germany US$ 5 m, $\\textcolor{white}{and France}$",
    "Germany costs $5 to $\\hphantom{France}$", "Germany $\\vphantom{x}$", "~20 to ~30 UEs per cell", "5~10 ms",
    "about ~20-~30 UEs", "a~b~c", "~\U0001F600~", "\u00bf~x~?",
    "jump host key fingerprint SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s (ED25519)",
    "SBOM in SPDX 2.3; root element SPDXRef-Package-open5gs-2.7.1", "K SHA256 uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
    "> 10 Gbit/s per UPF site", "# 10 channels",
    # the seventh hostile-input review (D1, D3, D6)
    "K1=465b5ce8b199b49f K2=aa5f0a2ee238a6bc", "K 465b5ce8b199b49f and aa5f0a2ee238a6bc",
    "first half 465b5ce8b199b49f; second half aa5f0a2ee238a6bc", "K is 465b5ce8 then b199b49f then aa5f0a2e then e238a6bc",
    "fixed in commits 3f2a1bc8, 7d9e0f12, a4b5c6d3 and 8e9f0a14",
    "fixed in commits 3f2a1bc8, 7d9e0f12, a4b5c6d3, 8e9f0a14, 1234abcd, 9876fedc, 0a1b2c3d and 4d5e6f70",
    "radio unit serials 21A8F3C2 and 21A8F3C3, then 21A8F3C4 and 21A8F3C5",
    "IMSIs 001010000000001 and 001010000000002, dates 20261201 and 20270115",
    "see https://git.example/o/r/commit/2216af7c and https://git.example/o/r/commit/9e3b4a5d and "
    "https://git.example/o/r/commit/6f708192 and https://git.example/o/r/commit/a3b4c5d6",
    "K 465b5\u0441e8b199b49f\u0430\u04305f0\u04302\u0435\u0435238\u04306b\u0441",
    "OPc 465B5CE8B199B49F\u0391\u03915F0\u03912EE238\u03916\u0392C", "K Rltc6LGZtJ+qXwou4jimvA".replace("c", "\u0441"),
    "\u0421\u0435\u0440\u0432\u0435\u0440 \u0432 \u041c\u043e\u0441\u043a\u0432\u0435: 2 \u0441\u0430\u0439\u0442\u0430",
    "admin password: Tr0ub4dor&3xyz", "api token: 3f9a1c2e7b", "passwd=hunter22", "pwd: s3cr3t!!", "API key: AbC123xyz",
    "secret: Xy7#kk9q", "token = 9f8e7d6c", "DB_PASSWORD=hunter22", "Wi-Fi passphrase: 'Gr33n-Fields-7'",
    "x-api-key: 7f3a9b2c1d", "ssh alice:Hunter2pw@git.example.org", "scp fw.bin ops:pw@10.0.0.1.example:/tmp",
    "password policy: 12 characters minimum", "token bucket, 100 requests a second", "password: changed every 90 days",
    "secret: none", "API key: kept in Vault (path kv/prod/amf)", "token: see OPS-1234", "API token: OPS-1234",
    "password: https://vault.example/item/12", "password: x", "secret: kubernetesSecretName",
    "<mailto:alice@example.org>", "meet at 10:30@hq.example.org", "sip:alice@example.org and git@github.com:org/repo.git",
    "password: \u201cHunter22\u201d.", "token:\u00a0Zz9-Qq8-Ww7", "\u03c1assword: Tr0ub4dor",
    "ap\u0130 key: Xy7kk9qq", "\u0130password: Tr0ub4dor", "\u017fecret: Xy7kk9qq", "api \u212aey: Xy7kk9qq",
    # the eighth hostile-input review (N3, N5)
    *N5_ACCEPTED, *N3_REFUSED, "password:\u3000Welcome-2024\u3000\n(x)", "pw:x12345678,",
    "mot\u00a0de\u00a0passe - Tr0ub4dor&3", "token: \u017fha256-hashed", "password: Tr0ub4dor&3.next",
    # the ninth hostile-input review (H9-1 to H9-4), and edges of secret_value()'s letter cases, paths and schemes
    *H9_REFUSED, *H9_ACCEPTED, "password: \u0131ttps://x.example/a", "token: \u0130NC0012345", "secret: \u01c5abcdefg",
    "secret: \u00aaabcdefg", "secret: ABC\u00e9DEFG", "secret: abc\u00c9defg", "secret: AbcD\u00e9fgh",
    "pwd: /x/Tr0ub4dor&3", "pwd: ~/", "pwd: //", "pwd: a/b/c/", "pwd: \u00e9/\u00e8/\u00ea", "password:\u2014Tr0ub4dor&3",
    "password: \u2014\u2014", "token: (bcrypt)(12)", "token: eap-tls1.3x", "token: sha512crypt9", "token: 12+d\u00edas",
    "token: TICKET-4711", "token: \u017fha512crypt", "passcode: 123456 \u2013 x", "password: 12\u0661\u0662\u0663\u0664",
    # the tenth (H10-1, part of H10-2), and edges of the 'credentials' rule
    *H10_ACCEPTED, *H10_REFUSED, "credentials: Tr0ub4dor&3xyz\u3000", "credentials: Tr0ub4dor&3xyz (old)",
    "credentials: Tr0ub4dor&3xyz\r\nx", "credentials: Tr0ub4dor&3xyz\nsecond line", "credentials: Tr0ub4dor&3xyz\u2028x",
    "PSK: 3.5ghz/2.4ghz-only",
    # the eleventh (H11-1 to H11-3, H11-6)
    *H11_REFUSED, *H11_ACCEPTED, *H11_6_REFUSED, *H11_6_ACCEPTED, "password isolation:x", "pass\u3000is\u3000Tr0ub4dor&3", "token: TTLTTLX=15min", "password: {{ .Values.db }}", "password: $K7PQ2XLM9Z",
    "token: v123.4.5-rc1", "password: Open5GS/2024", "password: ${_A_1_}", "credentials: Open5GS-2.7.1",
    # the twelfth (H12-1 to H12-3, H12-5)
    *H12_NAMES, *H13_WORD_YEAR, *H12_STILL_JUDGED, *H12_LABELS, *H12_NOT_LABELS, *H12_SIM_REFUSED, *H12_SIM_ACCEPTED, *H12_PLACEHOLDERS,
    "credentials: srsRAN_4G \u3000defaults", "credentials: srsRAN_4G \u00e9t\u00e9", "credentials: srsRAN_4G !!",
    "credentials: srsRAN_4G\u2014", "password: %DB_PASSWORD%%41", "\u201cpassword\u201d: \u201cK7#pQ2!xLm9\u201d",
    "PASSWORD_HINT: K7pQ2xLm9 x", "ota  key - 465B5CE8B199B49F", "token: 12345-abcde-67890 x",
    # code review 127 (B2 to B4)
    *R13_PASSWORDS, *R13_SIM_REFUSED, *R13_ACCEPTED, "pass\u3000:\u3000Hunter22x x", "'pass' = Hunter22x x",
    "kid\u2014465B5CE8B199B49F", "password: srsRAN_4G defaults", "PUK: \u201c84729135\u201d\u2014x",
    # the fourteenth (H14-1, H14-3)
    *H14_WEAK, *H14_NAMES, *H14_PUT_OFF, *H14_NOT_PUT_OFF, "credentials: Root1 x", "credentials: 12-user x",
    "credentials: Pas$w0rd!7 x", "token: Gue5t2024 x", "p\u0131nding", "\u00e9pending", "pending\u200b", "?!",
    " " * 90 + "pending", " " * 120 + "pending",
    # the fifteenth (H15-1, H15-3, H15-5, H15-8)
    *H15_PAIRS, *H15_PAIR_ACCEPTED, *H15_SHEET, *H15_NOT_SHEET, *H16_NAMES, *H16_PAIRS,
    "Budget approved; exact figure TBD after the vendor quote",
    "Germany\nAustria", "Germany\r\n", "credentials: admin /", "credentials: admin and", "login: a/", "user: x:y:z",
    # S17: a password or key near its name
    *CONTEXT_REFUSED, *CONTEXT_ACCEPTED, *BOUND_REFUSED, *BOUND_ACCEPTED, "\u041f\u0410\u0420\u041e\u041b\u042c Zx9kq7Lm", "K = 70 91 92 232 177 153 180 159",
    "password: SUNSHINE.", "PASSWORD IS Sunshine!", "login K8s-Secrets", "pw: ${DB_PASSWORD}", "PIN 123456",
    "password: x \u00e9t\u00e9 Zx9\u00e9kq7Lm", "token \u0662\u0663 Ab1cD2eF3", "ssh key Xq7Lmz", "API key at ~/k/Zx9kq7Lm",
    # round 64: text garbled from any script, a replacement character, Latin-1 names
    "\u00d0\u0178\u00d0\u00b5\u00d1\u20ac\u00d0\u00bc\u00d1\u0152 614000", "\u00e4\u00ba\u00ac 100-0001", "M\ufffdnchen 80802",
    "\u00d8resund 2\u00d710 GHz", "\u00c0 bient\u00f4t", "1900/1/0", "ERROR", "Riula d\u00ee password: almenu 14 caratteri",
]


@test
def h11_browser_refuses_the_eleventh_rounds_secrets_and_keeps_its_descriptions():
    """The page's secretIn() refuses every H11-1 to H11-3 string as import does, and accepts the descriptions."""
    page = open_form()
    refused, accepted = H11_REFUSED + H11_6_REFUSED, H11_ACCEPTED + H11_6_ACCEPTED
    got = page.call("ts => ts.map(t => checklistForm.secretIn(t))", list(refused + accepted))
    kinds = dict(zip(refused + accepted, got))
    assert [v for v in refused if kinds[v] != cl.secret_in(v) or kinds[v] is None] == []
    assert [v for v in accepted if kinds[v] is not None] == []
    big = "id,answer,notes\nRES-1,short," + "a" * 200_000 + "\n"
    rows, problems = page.call("t => checklistForm.readCsvText(t)", big)
    assert problems == [[2, cl.long_cell(131_072)]], problems


@test
def h12_browser_judges_the_twelfth_rounds_strings_as_import_does():
    """The page's textProblems() gives import's messages word for word on every H12 string: names joined to numbers
    recorded, the judged token quoted, quoted and environment labels, SIM codes and '%NAME%' placeholders."""
    page = open_form()
    texts = list(H12_NAMES + H12_STILL_JUDGED + H12_LABELS + H12_NOT_LABELS + H12_SIM_REFUSED + H12_SIM_ACCEPTED +
                 H12_PLACEHOLDERS)
    got = page.call("ts => ts.map(t => checklistForm.textProblems(t))", texts)
    assert [(t, js) for t, js in zip(texts, got) if js != cl.text_problems(t)] == []
    assert page.call("t => checklistForm.textProblems(t)", "credentials: srsRAN_4G") == [
        f"'srs…' (9 characters) after 'credentials:' looks like a password; {cl.CONFIDENTIAL}"]
    assert sum(1 for js in got if not js) == len(H12_NAMES + H12_NOT_LABELS + H12_SIM_ACCEPTED + H12_PLACEHOLDERS)


@test
def r13_browser_judges_code_review_127s_strings_as_import_does():
    """B2 to B4 on the page: textProblems() gives import's messages word for word; a password label's token without
    separators and a SIM code cut at a dash are refused, a JWT key ID and a test verdict accepted."""
    page = open_form()
    texts = list(R13_PASSWORDS + R13_SIM_REFUSED + R13_ACCEPTED)
    got = page.call("ts => ts.map(t => checklistForm.textProblems(t))", texts)
    assert [(t, js) for t, js in zip(texts, got) if js != cl.text_problems(t)] == []
    assert [t for t, js in zip(texts, got) if not js] == list(R13_ACCEPTED)
    assert page.call("t => checklistForm.textProblems(t)", "password: Hunter22x for the WebUI") == [
        f"'Hun\u2026' (9 characters) after 'password:' looks like a password; {cl.CONFIDENTIAL}"]


@test
def r13_d1_browser_refuses_an_answer_typed_in_the_recorded_column():
    """The page refuses a row with no answer whose 'recorded' cell holds one, for an item with none recorded, with
    import's message (planRows, known_rows)."""
    page = open_form()
    text = "id,answer,recorded\nREQ-1,,France\nREQ-3,,\n"
    message = "REQ-1: the recorded column is read-only; type the answer in 'answer'"
    assert page.call("t => checklistForm.planCsvText(t)", text) == {"answers": [], "problems": [[2, message]]}
    path = TMP / "recorded-typed.csv"
    path.write_text(text, encoding="utf-8")
    rows, problems = cl.read_csv(str(path))
    assert planned(readme(), rows, problems) == ([], [cl.Problem(2, message)])


@test
def browser_validation_agrees_with_python():
    doc = readme()
    routing = doc.routing()
    text_id = next(i for i, it in doc.items.items() if not it.void and not it.declared)
    one = next(i for i, d in routing.items() if d.kind == "one")
    many = next(i for i, d in routing.items() if d.kind == "many")
    parts = next(i for i, d in routing.items() if d.kind == "parts")
    d1, dm, dp = routing[one], routing[many], routing[parts]
    full = " ".join(f"{p}={dp.values[0]}" for p in dp.parts)
    cases = [(text_id, v) for v in CORPUS] + [(i, v) for i in (one, many, parts) for v in CORPUS[:12]] + [
        (one, d1.values[0]), (one, d1.values[0].upper() + "; a comment"), (one, ", ".join(d1.values[:2])),
        (one, "maybe"), (one, "not needed: x y z"), (one, f"{d1.values[0]}; see `x`"), (one, f"={d1.values[0]}"),
        (many, ", ".join(dm.values[:2])), (many, f"{dm.values[0]} {dm.values[0]}"),
        (many, f"`{dm.values[0]}`, `{dm.values[1]}`; a comment"), (parts, full), (parts, full.replace("=", " = ", 1)),
        (parts, f"{dp.parts[0]}={dp.values[0]}"), (parts, full + f" {dp.parts[0]}={dp.values[-1]}"),
        (parts, full.upper()), (parts, full + "; a comment, with commas"), ("REQ-5", "anything"),
        # `others=`: expanded, a named part winning, and its refusals
        (parts, f"{dp.parts[0]}={dp.values[0]}, others={dp.values[-1]}"), (parts, f"others={dp.values[1]}"),
        (parts, f"OTHERS = {dp.values[1].upper()} {dp.parts[-1]}={dp.values[0]}; a comment"),
        (parts, f"others={dp.values[0]}, {dp.parts[2]}={dp.values[1]}, {dp.parts[2]}={dp.values[2]}"),
        (parts, f"{dp.parts[0]}={dp.values[0]}, others=maybe"), (parts, f"{dp.parts[0]}={dp.values[0]}, others"),
        (parts, f"others={dp.values[0]}, others={dp.values[1]}"), (parts, f"others={dp.values[0]} others={dp.values[0]}"),
        (parts, full + f", others={dp.values[1]}"), (parts, f"others={dp.values[0]}, bogus={dp.values[0]}"),
        (one, f"others={d1.values[0]}"),
        (one, "z" * 80), (many, "\u00e9" * 70), (one, "Tr0ub4dor&3xQ9"), (many, "Welcome_2024"),
        (parts, f"{dp.parts[0]}=K7#pQ2!xLm9 {dp.parts[1]}={dp.values[0]}"),
        # round 69: a date a sheet keeps as its day number, where the Form asks for dates; round 68: a sheet's apostrophe
        ("RES-2", "46096"), ("RES-2", "46096.5"), ("RES-2", "46096 euros"), ("REQ-3", "46096"), (text_id, "'90s-era plan"),
        (text_id, "'4 servers"),
    ]
    assert len(cases) >= 40
    page = open_form()
    got = page.call("cases => cases.map(c => checklistForm.formatAnswer(c[0], c[1]))", cases)
    disagree = []
    for (iid, cell), (js_text, js_problems) in zip(cases, got):
        text, problems = cl.format_answer(doc.items[iid], cell) if iid in doc.items else (None, ["unknown"])
        if problems != js_problems or (not problems and text != js_text):
            disagree.append((iid, cell[:60], problems, js_problems, text, js_text))
    assert not disagree, disagree
    accepted = sum(1 for _, p in got if not p)
    assert 15 <= accepted <= len(cases) - 15, f"the corpus is one-sided: {accepted} of {len(cases)} accepted"
    # and on seeded random text made of the pieces the rules look for: the same messages, word for word
    rng = random.Random(4)
    texts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8))) for _ in range(1600)]
    got = page.call("ts => ts.map(t => [checklistForm.textProblems(t), checklistForm.secretIn(t), "
                    "checklistForm.isNotNeeded(t)])", texts)
    wrong = [(t, js) for t, js in zip(texts, got) if js != [cl.text_problems(t), cl.secret_in(t), cl.is_not_needed(t)]]
    assert not wrong, wrong[:3]


PIECES = ["not needed", "not-needed:", "Not_Needed", "needed", ": ", " ", "\u00a0", "\u3000", "`", "<", ">", "<b>",
          "</i", "<!--", "<?", "<https://x.org/a>", "<mailto:a@b>", "=", "+", "-", "@", "#", "*", "|", "1.", "2)",
          "\u0661.", "\uff11.", "a", "Z", "9", "\u00e9", "\u017f", "\u212a", "0123456789abcdef", "DEADBEEF",
          "465b 5ce8 b199 b49f", "aa:bb:cc:dd", "sha256:", "sha3-512=", "commit ", "blake2b ",
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "123e4567-e89b-12d3-a456-426614174000",
          "eyJhbGciOiJIUzI1NiJ9", ".", "eyJzdWIiOiIxMjM0NTY3ODkwIn0.", "AbCd1234EfGh5678IjKl90", "/", "+/", "xY9/",
          "JBSWY3DPEHPK3PXP", "ABCDEFGHIJKLMNOPQRSTUVWXYZ2345", "https://example.org/", "?q=", "&", ";", ",",
          "-----BEGIN EC PRIVATE KEY-----", "\U0001F600", "\u200b", "\t", "\n", "\x1f", "\x85", "\ufeff", "\ue000",
          # the second hostile-input review
          "0x", "0X4", "\\x", "&#8203;", "&shy;", "&nbsp;", "&#x202E;", "**", "_", "[", "]", "](", "](#req-3)", "![",
          "\u3164", "\u2800", "\ufe0f", "\u034f", "\u200c", "\u200d", "\u17b4", "\u20e3", "\U000e0100", "\u845b", "\U0001F468", "\U0001F3FD", "\u0645", "\u094d",
          "\u0301", "REQ\u20114", "\u2212", "jbswy3dpehpk3pxp", "JBSW Y3DP ", "Rltc 6LGZ tJ+q ", "vA==",
          "8NnwerXI9aay/xRkRUw2mg==", "lusnjdopJnt4asxdpTAIig", "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
          "https://github.com/a/b/commit/", "2216af7c9e3b4a5d6f708192a3b4c5d6e7f80912", "#frag", "{", "}", "46:5b:5c:e8:",
          "465b  5ce8  ", "b199_b49f_", "aa5f.0a2e.", ", 0x", "digest ", "fingerprint=", "pduSessionResource",
          "configs/gnb_rf_", "\x1c", "-----\x1cBEGIN RSA ", "\r", "h", "G",
          # the third hostile-input review
          "/", "|", "'", "%", "\\", "\\-", "\\+", "\u2013", "\u2212", "465b5ce8b199b49fa", "a5f0a2ee238a6bc", "sha256 ",
          "git ", "digital ", "commit-", "sha3-256 ", "jbsw ", "Rltc6LGZ ", ".Xwou4jimvA==", "https://kms.example/keys/",
          "00:1a:2b:3c:4d:5e", "00-1A-2B-", "n/a", "#N/A", "NA", "\U0001FAE8", "\u0378", K256, "research ",
          # the fourth hostile-input review
          "!", "~", "~~", "^", "=", "?", "$", "$$", "&", '"', "(", ")", "[", "]", "\\!", "\\mathtt{", "\\text{",
          "\\color", "\\phantom", "465b5ce8", "b199b49f", "aa5f0a2e", "1 Dec 2026", "(a) ", "AT&T;", "&T;", "&GT;",
          "%2B", "%3D", "%E2%80%8B", "%C3", "%", "https://ki:", "@hss.example/", "Rltc6LGZtJ+qX ", "wou4jimvA==",
          "Rltc6LGZtJ-qXwou4jimvA.kms.example", "not a ", "no ", "sha256): ", "git ops ", "SHA2-256(fw.bin)= ",
          "sha256sum ", "93520343136652685040522976224586802876", "\\106\\133\\134\\350", "\ufdd0", "\uffff",
          "\U0001fffe", "\U0003fffd", "\u2014",
          # the fifth hostile-input review
          ", ", "; ", ",", "5A002.a.1", "0x00A001", "3f2a1bc8", "21A8F3C2", "001a.2b3c.4d5e", "Change-Id: I", "uuid ",
          "urn:uuid:", "GUID=", "9e1c5f7a-3b2d-4e6f-80a1-b2c3d4e5f607", "465b5ce8-b199-b49f-aa5f-0a2ee238a6bc",
          "465b:5ce8:b199:b49f:aa5f:0a2e:e238:a6bc", "2001:db8::1", "::", "IPv6 ", "address ", "kept in git): ",
          "fd12:3456:789a:0001:0000:0000:0000:0001", " and ", " or ",
          "isn't really a ", "isn\u2019t ", "not in fact the ", "git sha ", "Commit SHA: ", " of release v1.0: ",
          "PGP key: ", "4AEE 18F8 3AFD EB23 ", " the key ", "Rltc6LGZtJ+qX", " wou4jimvA", "  ", "IZNVZ2FRTG2 ",
          "J7KS7BIXOEOFGXQ", "%25", "%252B", "SEC-10 ", "Secure-development ", "\u200e", "\u200f", "\u0627",
          "\u05e2", "\U00010900", "tbd", "TODO", "\\ ", "\\,", "\\textcolor", "\\hphantom", "\\vphantom", "~",
          "~x~", "SHA256:", "uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", "SPDXRef-", "> ", "\u00bf",
          # the seventh hostile-input review
          "K1=", " K2=", "465b5ce8b199b49f", "aa5f0a2ee238a6bc", " then ", " and ", "3f2a1bc8", "\u0430", "\u0441",
          "\u0435", "\u0391", "\u0392", "\u041a", "\ua4ee", "password: ", "passwd=", "pwd:", "api key: ", "token=",
          "secret: ", "Tr0ub4dor&3", "hunter22", "changed", "policy", "alice:", "pw@", "host.example.org", "mailto:",
          "10:30@", "OPS-1234", "kv/prod",
          # the eighth hostile-input review
          "pw: ", "PSK=", "passcode - ", "mot de passe: ", "contrase\u00f1a:", "Welcome-2024", "Summer_2024!", "84729135",
          "argon2id", "SHA256-hashed", "WPA3-SAE", "5G-AKA", "/opt/open5gs", " (", "(", "\x1b",
          # the seventeenth round: a password or key near its name
          "\u043f\u0430\u0440\u043e\u043b\u044c ", "\u041f\u0410\u0420\u041e\u041b\u042c", "\u5bc6\u7801 ", "Ki ", "PIN ",
          " admin ", "root ", "Zx9kq7Lm", "Nokia123", "70 91 92 232 ", "sunshine", " is ", "Debian12", "amf-01", "K8s-",
          "Zx9.kq7.Lm4", "Xq7Lmz", "has\u0142o", "~/k/",
          # the eighteenth round
          "Kennwort f\u00fcr X: ", "door code ", "-p", "admin / ", "scott/Tiger#2024@orcl", "Change_Me", "Admin@storage",
          "https://hooks.slack.com/services/T0/B0/X", "Sommer2024", "auth-2025.*", "4711#", "\u039a\u03c9\u03b4\u03b9\u03ba",
          "verify_adm ", "123456-234567-345678-456789-567890-678901", "S5735-L48T4S-A1", "m=64MiB", "600000 iterations"]


CSV_CORPUS = [
    'id,answer\nREQ-3,"a, b"\n', "id;answer\nREQ-3;a\n", "id\tanswer\nREQ-3\ta\n", "# x, y\nid,answer\nREQ-3,a\n",
    '"# x, y",,\nid,answer\nREQ-3,a\n', "\"# Type answers in the 'answer' column; import reads no other.\",REQ-3 is 4\nid,answer\nREQ-3,a\n",
    "\n\nid,answer\nREQ-3,a\n", " , \n# x\n\nid;answer\nREQ-3;a\n", "\ufeff\r\nid,answer\r\nREQ-3,#SPILL!\r\n", "id,answer\nREQ-3,#ERROR!\nREQ-4,Err:508\nREQ-6,#WERT!\n",
    "id,answer\nREQ-3,a\n,,\n;\n \n|\n", "Title, 5 May\nid,answer\nREQ-3,a\n", "sep=;\nTitle\n\nid;answer\n",
    ",id,answer\n0,REQ-3,a\n", 'id,answer\nREQ-3, "a, b" \n', "id,answer\nREQ-3,req-3\nREQ-5,REQ-6\n", "id,answer\nREQ-3,8.9441E+19\nREQ-6,30/12/1899\n", "id,answer\nREQ-3,0\nREQ-6,true\nREQ-7,\u0418\u0421\u0422\u0418\u041d\u0410\n", "id,answer\nREQ-3,$0.00\nREQ-6,12:00:00 AM\nREQ-7,(blank)\nREQ-13,0 %\n",
    "id,answer\nREQ-3,VERDADEIRO\nREQ-6,YANLI\u015e\nREQ-7,\u03a8\u0395\u03a5\u0394\u0395\u03a3\nREQ-13,TRUE()\n",
    'id,answer\nREQ-3,CHF 0.00\nREQ-6,\u20b90.00\nREQ-7,"0,00 z\u0142"\nREQ-13,(0.00)\n',
    'id,answer\nREQ-3,"January 0, 1900"\nREQ-6,0 days 00:00:00\nREQ-7,12:00:00 a.m.\nREQ-13,1/0/00\n',
    "id,answer\nREQ-3,Click or tap here to enter text.\nREQ-6,Choose an item.\nREQ-7,W\u00e4hlen Sie ein Element aus.\n"
    "REQ-13,Select...\n",
    "id,answer\nREQ-3,Wi-Fi pass-word: otterharbour\nREQ-6,we do not write passwords here.\nREQ-7,0 sites\n",
    "id,answer\nREQ-3,a\n\ufeff\"# x\",y\nid,answer\nREQ-6,b\n", "id,answer\nREQ-3,a\nID , Answer\n", "id,answer\n\ufeffREQ-3,a\n",
    "id,answer\nREQ-3,Votre r\u00e9ponse\nREQ-6,\u00c0 d\u00e9finir\nREQ-7,\u0423\u0422\u041e\u0427\u041d\u042f\u0415\u0422\u0421\u042f\nREQ-13,t.b.c.\n",
    "id,answer\nREQ-3,Short answer text\nREQ-6,\u5f85\u5b9a\nREQ-7,'4 servers\nREQ-13,unknown\n",
    "id,answer\nREQ-1,lab/research\n", "id,answer\nREQ-1,lab;#research\n", "id,answer\nREQ-1,`lab` / research; minutes\n",
    "id,answer\nREQ-1,lab;research;\nREQ-3,\u041c\u043e\u0439 \u043e\u0442\u0432\u0435\u0442\nREQ-6,N/A - TBD\nREQ-7,\\N\nREQ-13,x\n",
    "id,answer\nREQ-3,not needed: pending\nREQ-6,Choose an option\nREQ-7,waiting on vendor\nREQ-13,n/a (tbd)\n",
    "id,answer\nREQ-3,12345678901234500000\nREQ-6,123456789012345\n",
    "id,answer\nREQ-3,Option 1\nREQ-6,\u0412\u0430\u0440\u0438\u0430\u043d\u0442 1\nREQ-7,Spalte1\nREQ-13,n.v.t.\n",
    "id,answer\nREQ-3,2026-03-14 00:00:00\nREQ-6,\"Mar 14, 2026, 12:00:00 AM\"\nREQ-7,Jan-00\nREQ-13,01.01.1970\n",
    "id,answer\nREQ-3,2026-03-14\nREQ-6,wie oben\nREQ-7,Untitled question\nREQ-13,No file chosen\n",
    "id,answer\nREQ-3,Caf\u00c3\u00a9 M\u00c3\u00bcller lab\nREQ-6,N\u00c3O se aplica\nREQ-7,it\u00e2\u20ac\u2122s done\n",
    "id,answer\nREQ-3,#\u0417\u041d\u0410\u0427!\nREQ-6,FIXME\nREQ-7,{{HW-8}}\nREQ-13,see attached\n",
    "id,answer\nREQ-3,1904-01-01\nREQ-6,as discussed\nREQ-7,see attached minutes of 3 May\n",
    "id,answer\nREQ-3,\"your condition on a licensee or networks using its products, or `for the licensee`; your own answer for items naming a regulator or national authority\"\n", 'id,answer\nREQ-1,"research\uff0cteaching"\nREQ-4,PIN5829\nLIC-1,"no\u3001yes; x"\n',
    "id,answer\nREQ-3,\"where the system would be developed, tested and operated.\"\nREQ-6,DEPLOYMENT SCENARIOS AND THEIR SIZE.\n", "id,answer\nREQ-3,blocker\nREQ-5,design\nREQ-6,design\n", "id,answer\nREQ-3,requester\nREQ-6,design\n",
    "id,answer\nREQ-3,requester\nREQ-5,\"requester, with operator\"\nREQ-6,requester\nREQ-13,plan\n", "id,answer\n" + "\n" * 1_048_577 + "REQ-3,a\n",
    "id,ask,form,unblocks,answer\nREQ-3,a,b,c,x\n", "id,ask,form,unblocks,was,answer\nREQ-3,a,b,c,,x\n",
    "answer,id\na,REQ-3\n", "id,answer\nREQ-3,a,b\n", 'id,answer\nREQ-3,"unterminated\n', 'id,answer\nREQ-3,"a"x\n',
    "foo,bar\n1,2\n", "id,answer,id\n", "\ufeffid,answer\r\nREQ-3,a\r\n", "id,answer\n\n\nREQ-3,a\n,\n",
    'id,answer\r\nREQ-3,"multi\r\nline"\r\nLIC-1,no\r\n', "ID , Answer \nREQ-3, a \n", "\n", "", "id,answer\rREQ-3,a\r",
    'id,answer\nREQ-3,a\n"REQ-4","x""y"\n', "id,answer\nREQ-3\n", "#only a comment\n",
    "id,answer\n\u200b" + "X" * 70 + ",a,b\n",
    "\ufeff\ufeffid,answer\nREQ-3,a\n", 'id,answer\nREQ-3, "a, b"\n', 'id, answer\nREQ-3,  " a "\n', "id,answer\n ,\n",
    'id,answer\nREQ-4(b),x\nlic-6 (B),y\nREQ-3,Mu\u0308nchen\n', '[{"id": "LIC-1", "answer": "no"}]',
    "id,answer\n" + "REQ-3,x\n" * 10001, "id,answer\n" + "NOPE-1,x\n" * 300, "id,answer\n" + "REQ-3,[](#x)\n" * 300,
    # the fourth hostile-input review (G1, G7)
    "id,answer,\nREQ-1,research, teaching\nREQ-3,Germany, France\n", "id,answer,,,\nREQ-1,public, private, product\n",
    'id,answer,\nREQ-3,"Germany, France",\nREQ-4,x\n', "id,,answer\nREQ-3,x,a\nREQ-4,,b\n", "id;answer;\nREQ-3;a; b\n",
    "id,answer\u200b,answer\nREQ-3,France,Germany\n", "id,\u0430nswer,answer\nREQ-3,France,Germany\n",
    "\u0456d,answer\nREQ-3,France\n", "id,\uff21\uff2e\uff33\uff37\uff25\uff32\nREQ-3,France\n",
    "id,Answer, ANSWER\nREQ-3,a,b\n", "ID,Answer,R\u00e9ponse,\u041e\u0442\u0432\u0435\u0442\nREQ-3,a,x,y\n",
    "# role\nid,ANSW\u0415R\nREQ-3,a\n", "id,a\u0301nswer\nREQ-3,a\n", "i\ufeffd,answer\nREQ-3,a\n",
    # the fifth hostile-input review (FP8): Excel's separator line
    "sep=;\nid;answer\nREQ-3;Germany, France\n", "\ufeffsep=,\r\nid,answer\r\nREQ-4,4 sites\r\n",
    "sep=;\nid,answer\nREQ-1,teaching\n", "SEP=|\nid|answer\nREQ-3|a, b\n", "sep=\t \nid\tanswer\nREQ-3\ta\n",
    "sep=;\n# role\nid;answer\nREQ-3;a\n", "sep=:\nid:answer\n", "sep=;", "x\nsep=;\nid;answer\n",
    # the seventh hostile-input review (D7, D8): a key in the id column; an export's 'recorded' column
    "id,answer\n465b5ce8b199b49faa5f0a2ee238a6bc,Germany\nREQ-33,x\nRequirement three of the list,x\n",
    "id,answer\nK 465b5ce8b199b49f and aa5f0a2ee238a6bc,x\n\u001b[31m,x\n",
    "id,answer,recorded\nREQ-3,Spain,Germany\nLIC-1,yes,\n", "recorded,answer,id\nGermany,Spain,REQ-3\n",
    "id,answer,recorded,recorded\nREQ-3,x,,\n", "id,answer,r\u0435c\u043erded\nREQ-3,x,\n",
    "id,answer,RECORDED\nREQ-3,x,y\n", "id;answer;recorded\nREQ-3;a, b;\n", "id,answer,recorded\nREQ-3,x\n",
    # the eighth hostile-input review (N2): a renamed 'recorded' column
    "id,answer,recorded answer\nREQ-3,Spain,Germany\n", "id,answer,Recorded at export\nREQ-3,x,\n",
    "id,answer,recorded,Recorded answer\nREQ-3,x,y,z\n", "recorded_by,id,answer,recorded\nme,REQ-3,x,y\n",
    "id,answer,r\u0435corded answer\nREQ-3,x,y\n", "id,answer,recordedness\nREQ-3,x,y\n",
    # the eleventh (H11-5): a cell over the field limit, in an unread column and as an answer, and one just under it
    "id,answer,notes\nRES-1,short," + "a" * 131_072 + "\n", "id,answer\nRES-1,x\nREQ-3,\"" + "b" * 140_000 + "\"\n",
    "id,answer,notes\nRES-1,short," + "a" * 131_071 + "\n",
    # code review 127 (D1): an answer typed in the 'recorded' column, for an item with none recorded
    "id,answer,recorded\nREQ-1,,France\n", "id,answer,recorded\nREQ-3,,Germany\nREQ-1,,\n",
    # the fifty-third: text typed in an export's 'note' column (the real notes are in note_sheets())
    "id,answer,note\nREQ-3,a,my own note\nLIC-1,no,\n", "id,answer,Note,note\nREQ-3,a,,\n", "id,answer,note\nRES-9,,x\n",
    "id,answer,assumed\nREQ-1,,`teaching` (profile simulator)\nLIC-1,,`no` (profile lab)\nREQ-3,,x (mine.csv)\n",
    'id,answer,assumed\nREQ-1,,"`research`,  `teaching`\n(profile simulator)"\nREQ-4,x,teaching\n', "id,answer,assumed,assumed\n",
    "# one\n# two\nid,answer\nREQ-3,x\n", ",,# moved\nanswer,x,id\n`none`,,REQ-4\n", ",# a,# b\nid,answer\n", "id,answer,note,\uff4e\uff4f\uff54\uff45\nREQ-3,,,x\n", "id,answer,n\u043ete\nREQ-3,x,\n", "id,answer\n" + "door code 5829 " * 400 + ",x\n" + "\u06a9\u062f " * 3000 + ",y\n", "sep=;\n# one\n\n#two;x\nid;answer\n", "#\n\"#x\ny\"\nid,answer\n",
    "id,answer,password Hunter22x\nREQ-3,x,y\n", "id,answer\n'REQ-3,x\n' lic-1 ,no\n''\n", "id,answer,Bemerkungen zum Punkt\nREQ-3,x,y\n",
    "id,answer,waits_on,in_your_role,stage\nREQ-3,,REQ-1 LIC-1,,blocker\nLIC-1,,x,,\nREQ-4,,,,design\nDEL-3,,,Buyer: x,\n",
    # round 65: programs' dates for none, ranges a sheet turned into dates
    "id,answer\nREQ-3,0000-00-00\nREQ-6,04-Mar\nREQ-7,Invalid Date\nREQ-13,4-mars\n",
    "id,answer\nREQ-3,Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)\nREQ-6,0001-01-01 00:00:00 +0000 UTC\n"
    "REQ-7,4 May\nREQ-13,1 Jan 2027\n",
    # round 66: databases' placeholder dates, ranges turned into dates in German, Russian and French sheets
    "id,answer\nREQ-3,1900-01-01\nREQ-6,9999-12-31\nREQ-7,03. Apr\nREQ-13,3-\u0430\u043f\u0440\nREQ-14,avr.-03\n",
]


def note_sheets():
    """The README's export for a buyer untouched, with its notes' spaces changed (read as untouched), with text typed
    into its notes, at their end or inside a link made plain (refused), and with each row's Form or note pasted as
    its answer (refused)."""
    sheet = run_main("items", "--profile", "buyer", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(sheet.lstrip("\ufeff"))))
    note = rows[1].index("note")

    def written(change):
        out = io.StringIO()
        csv.writer(out).writerows(rows[:2] + [row[:note] + [change(row[note])] + row[note + 1:] for row in rows[2:]])
        return out.getvalue()
    out = io.StringIO()
    csv.writer(out).writerows(rows[:2] + [row[:-1] + [row[rows[1].index("form")] or row[note]] for row in rows[2:]])
    pasted = out.getvalue()
    out = io.StringIO()                                   # each answer the next row's ask, or its own 'from'
    csv.writer(out).writerows(rows[:2] + [row[:-1] + [rows[k + 1][1] if k % 2 else row[rows[1].index("from")]]
                                          for k, row in enumerate(rows[2:-1], 2)])
    pasted = [pasted, out.getvalue()]
    return [sheet, written(lambda cell: cell.replace(". ", ".\n  ")),
            written(lambda cell: cell + " Ask Anna." if "(the checklist, " in cell else cell),
            written(lambda cell: cell.replace("(the checklist, ", "(ask Bob; the checklist, "))] + pasted


@test
def browser_csv_reading_agrees_with_python():
    rng = random.Random(3)
    pieces = ["id", "answer", " Answer ", ",", ";", "\t", '"', '""', "\n", "\r\n", "\r", "#", " #c", "REQ-3", "lic-1",
              "x", "a b", "\ufeff", "\x1f", "\u00e9", "XYZ-9", "=1", "", ",,", "answer\u200b", "\u0430nswer", "\u0456d"]
    heads = ["id,answer\n", "id;answer\r\n", "# c\nid\tanswer\n", "answer,id,x\n", "", "#a,b\n\nid,answer\n",
             "sep=;\nid;answer\n", "sep=,\r\n", "sep=|\n"]
    texts = CSV_CORPUS + note_sheets() + [rng.choice(heads) + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
                          for _ in range(300)]
    page = open_form()
    doc = readme()
    got = page.call("texts => texts.map(t => [checklistForm.readCsvText(t), checklistForm.planCsvText(t)])", texts)
    for k, (text, ((rows, problems), plan)) in enumerate(zip(texts, got)):
        path = TMP / f"corpus-{k}.csv"
        path.write_bytes(text.encode("utf-8"))
        py_rows, py_problems = cl.read_csv(str(path))
        assert [list(r) for r in py_rows] == rows, (text[:200], py_rows[:5], rows[:5])
        assert [list(p) for p in py_problems] == problems, (text[:200], py_problems[:5], problems[:5])
        answers, py_plan = planned(doc, py_rows, py_problems)
        assert answers == plan["answers"], (text[:200], answers, plan["answers"])
        assert sorted(py_plan) == sorted(tuple(p) for p in plan["problems"]), (text[:200], py_plan[:5], plan["problems"][:5])


def planned(doc, rows, problems):
    """([[id, text]], problems) of CSV rows as answers_in_csv reads them (the page's planRows)."""
    found, more = cl.known_rows(doc, rows) if not problems else ([], [])
    problems, answers = problems + more, []
    for line, item, cell in found:
        if len(problems) > cl.MAX_PROBLEMS:
            break
        text, messages = cl.format_answer(item, cell)
        problems += [cl.Problem(line, m) for m in messages]
        answers += [] if messages else [[item.id, text]]
    return answers, problems


def download(page, folder):
    """Click the download button; the path of the file Chromium saved."""
    b = chromium()
    b.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder), "eventsEnabled": True})
    b.events = [e for e in b.events if not e[1].startswith("Browser.download")]
    click(page, "#download-csv")
    begin = b.wait_for(lambda s, m, p: m == "Browser.downloadWillBegin")[2]
    b.wait_for(lambda s, m, p: m == "Browser.downloadProgress" and p["guid"] == begin["guid"] and p["state"] != "inProgress")
    return Path(folder) / begin["suggestedFilename"]


@test
def browser_download_imports_unchanged():
    doc = readme()
    page = open_form("--profile", "lab")
    click(page, '[data-id="REQ-1"] .confirm')
    page.type('#c-LIC-1', "public standards only")
    page.type('#a-REQ-3', 'Germany: development and "testing", no transmission')
    text_item = next(i for i in shown(page) if not doc.items[i].declared and i != "REQ-3")
    page.type(f"#a-{text_item}", "not needed: a laboratory with no budget line")
    folder = TMP / "downloads"
    folder.mkdir(exist_ok=True)
    path = download(page, folder)
    raw = path.read_bytes()
    assert path.name == "answers-lab.csv" and raw.startswith("\ufeffid,answer,recorded\r\n".encode()), raw[:40]
    lines = raw.decode("utf-8-sig").split("\r\n")
    expected = {"REQ-1": 'REQ-1,"research, teaching",', "LIC-1": "LIC-1,no; public standards only,",
                "REQ-3": 'REQ-3,"Germany: development and ""testing"", no transmission",',
                text_item: f"{text_item},not needed: a laboratory with no budget line,"}
    assert lines[1:-1] == [expected[it.id] for it in cl.working_order(doc) if it.id in expected], lines
    # the status counts the rows as the progress counter counts the answers, and says what to do next
    answered, not_needed, _ = summary_counts(page)
    status = page.eval("document.querySelector('#file-status p').textContent")
    assert (answered, not_needed) == (3, 1), (answered, not_needed)
    assert f"Downloaded answers-lab.csv: 4 rows: {answered} answered, {not_needed} not needed." in status, status
    assert "send this file back to whoever sent you this page" in status.lower(), status
    assert "python3" not in status and "README" not in status, status
    assert page.eval("document.querySelector('#file-status .note').textContent") == \
        "For whoever records it: python3 tools/checklist.py import answers-lab.csv."
    # loaded back into a fresh page, the file gives the same answers and the same CSV
    page = open_form("--profile", "lab")
    page.set_files("#load-csv", [path])
    wait_for_status(page, "Loaded 4 answers")
    assert page.eval("checklistForm.csv().text") == raw.decode("utf-8")
    assert value(page, "#a-REQ-3") == 'Germany: development and "testing", no transmission'
    assert "REQ-4" in page.eval("checklistForm.answers()") and "REQ-4" not in raw.decode()
    with Sandbox(README.read_bytes()) as box:
        result = box.run("import", path)
        assert result.returncode == 0, result
        after = cl.load(str(box.doc))
        assert after.items["REQ-1"].get("Answer") == "`research`, `teaching`"
        assert after.items["LIC-1"].get("Answer") == "`no`; public standards only"
        assert after.items["REQ-3"].get("Answer") == 'Germany: development and "testing", no transmission'
        assert after.items[text_item].get("Answer") == "not needed: a laboratory with no budget line"
        assert not after.items["REQ-4"].get("Answer"), "an assumption went into the CSV"
        assert cl.run_rules(after) == []
        # the same page made from the file with those answers shows them as recorded, not as new
        page.goto(write_form("--profile", "lab", file=box.doc, name="recorded.html").as_uri())
        assert page.eval("document.querySelector('#st-REQ-3').textContent").startswith("Recorded in")
        assert page.eval("checklistForm.csv().text") == "\ufeffid,answer\r\n"
        set_text(page, "#a-REQ-3", "Spain")
        assert "--replace" in page.eval("document.querySelector('#st-REQ-3').textContent")
        # answers recorded already are counted on the page but not repeated in the file: the status says so
        answered, not_needed, _ = summary_counts(page)
        got = page.eval("checklistForm.csv()")
        assert got["summary"] == "1 row: 1 answered, 0 not needed" and got["kept"] == answered + not_needed - 1 == 3, got
    assert not page.errors(), page.errors()


def choose_part(page, iid, part, choice):
    """Choose a value for one part of a one-choice-per-part item, as a person does (a change event)."""
    page.call("(id, p, v) => { const s = document.getElementById('p-' + id + '-' + p); s.value = v;"
              " s.dispatchEvent(new Event('change', {bubbles: true})); }", iid, part, choice)


@test
def e06_browser_an_assumption_goes_into_the_csv_only_when_changed_or_confirmed():
    doc = readme()
    lab, parts = doc.profiles["lab"].assumes, doc.items["REQ-2"].declared.parts
    header, rows_header = "\ufeffid,answer\r\n", "\ufeffid,answer,recorded\r\n"       # a file with rows gives 'recorded'
    page = open_form("--profile", "lab")
    page.type("#c-REQ-1", "?")                                 # typed and deleted: still the assumption
    page.key("Backspace", key_code=8)
    assert value(page, "#c-REQ-1") == "" and page.eval("checklistForm.csv().text") == header
    for _ in range(2):                                        # a box ticked and unticked again
        click(page, '[data-id="REQ-1"] input[value="lab"]')
    click(page, f'[data-id="REQ-4"] input[value="{lab["REQ-4"][0]}"]')    # the assumed radio, clicked
    assert page.eval("checklistForm.csv().text") == header
    assert page.eval("document.querySelector('#st-REQ-1').textContent").startswith("Assumed by profile lab")
    # one part of REQ-2 changed: not an answer, and the page says which parts still need a choice
    choose_part(page, "REQ-2", "ru", "model")
    rest = ", ".join(p for p in parts if p != "ru")
    assert f"Still to choose: {rest};" in page.eval("document.querySelector('#st-REQ-2').textContent")
    assert page.eval("checklistForm.csv()")["problems"] == 1
    click(page, "#download-csv")
    status = page.eval("document.getElementById('file-status').textContent")
    assert "Not downloaded" in status and f"REQ-2: choose {rest} too" in status, status
    assumed = dict(t.split("=") for t in lab["REQ-2"])
    for part in parts[:-1]:                                   # every part chosen by the person: an answer
        if part != "ru":
            choose_part(page, "REQ-2", part, assumed[part])
    assert "REQ-2" not in page.eval("checklistForm.csv().text")
    choose_part(page, "REQ-2", parts[-1], "buy")
    chosen = dict(assumed, ru="model", **{parts[-1]: "buy"})
    req2 = '"' + ", ".join(f"{p}={chosen[p]}" for p in parts) + '"'
    assert page.eval("checklistForm.csv().text") == rows_header + f"REQ-2,{req2},\r\n"
    # a changed value goes in as it is; an untouched one only once confirmed
    click(page, '[data-id="REQ-1"] input[value="lab"]')
    click(page, '[data-id="LIC-1"] .confirm')
    rows = dict(line[:-1].split(",", 1) for line in page.eval("checklistForm.csv().text").split("\r\n")[1:-1])
    ticked = [v for v in doc.items["REQ-1"].declared.values if v in ("lab", *lab["REQ-1"])]
    assert rows == {"REQ-1": f'"{", ".join(ticked)}"', "REQ-2": req2, "LIC-1": "no"}, rows
    # on a fresh page: one part changed, then the rest confirmed
    page = open_form("--profile", "lab")
    choose_part(page, "REQ-2", "ru", "model")
    click(page, '[data-id="REQ-2"] .confirm')
    partly = ", ".join(f"{p}={'model' if p == 'ru' else assumed[p]}" for p in parts)
    assert page.eval("checklistForm.csv().text") == rows_header + f'REQ-2,"{partly}",\r\n'
    assert not page.errors(), page.errors()


@test
def e10_browser_a_hand_spaced_routing_answer_does_not_block_the_download():
    lic1 = ('- [ ] <a id="lic-1"></a>**LIC-1** Whether licensed material is used.\n'
            "  - **Form:** One of: `yes`, `no`, `undecided`.")
    text = swap(lic1, lic1.replace("- [ ]", "- [x]") + "\n  - **Answer:** `no` ; public standards only")
    with Sandbox(text) as box:
        assert box.run("check").returncode == 0
        page = open_form(name="hand.html", file=box.doc)
        page.type("#a-REQ-3", "12 sites")
        assert page.eval("checklistForm.csv()")["problems"] == 0
        assert page.eval("checklistForm.csv().text") == "\ufeffid,answer,recorded\r\nREQ-3,12 sites,\r\n"
        assert not page.errors(), page.errors()


def summary_counts(page):
    """(answered, not needed, open) as the progress counter gives them."""
    text = page.eval("document.getElementById('summary').textContent")
    m = re.fullmatch(r"(\d+) answered, (\d+) not needed, (\d+) open", text)
    assert m, text
    return tuple(int(n) for n in m.groups())


def wait_for_status(page, text, seconds=5):
    """Wait until the file status line says `text` (a file is read asynchronously); return the status."""
    deadline = time.monotonic() + seconds
    while True:
        status = page.eval("document.getElementById('file-status').textContent")
        if text in status or time.monotonic() > deadline:
            assert text in status, status
            return status


@test
def browser_load_csv_resumes_and_refuses_like_import():
    page = open_form("--profile", "lab")
    good = TMP / "colleague.csv"
    good.write_text('# from a colleague; kept\r\nid;answer\r\nREQ-3;"Spain; testing only"\r\nlic-1;Yes\r\n', encoding="utf-8")
    page.set_files("#load-csv", [good])
    wait_for_status(page, "Loaded 2 answers from colleague.csv")
    assert value(page, "#a-REQ-3") == "Spain; testing only"
    assert page.eval("document.querySelector('[data-id=\"LIC-1\"] input[value=\"yes\"]').checked")
    ids, role = listed("--profile", "lab", "--answers", str(good))
    assert shown(page) == ids and "EXP-1" in ids and page.eval("checklistForm.currentRole()") == role
    loaded = page.eval("checklistForm.csv().text")
    # the same file given to 'form --answers' fills in the same answers, marked as not yet recorded
    prefilled = open_form("--profile", "lab", "--answers", str(good), name="prefilled.html")
    assert prefilled.eval("checklistForm.csv().text") == loaded and shown(prefilled) == ids
    assert value(prefilled, "#a-REQ-3") == "Spain; testing only"
    assert "not yet recorded" in prefilled.eval("document.querySelector('#st-REQ-3').textContent")
    page = open_form("--profile", "lab")
    page.set_files("#load-csv", [good])
    wait_for_status(page, "Loaded 2 answers")
    before = page.eval("checklistForm.csv().text")
    bad = TMP / "bad.csv"
    bad.write_text("id,answer\nREQ-3,=SUM(1)\nXYZ-1,foo\nREQ-2,core=build\n", encoding="utf-8")
    page.set_files("#load-csv", [bad])
    status = wait_for_status(page, "bad.csv not loaded")
    refused = run_main("import", bad, "--file", README)
    assert refused.returncode == 1
    for line in refused.stderr.splitlines()[:-1]:
        assert line.split(":", 1)[1].split(":", 1)[0] in status, (line, status)
    assert "bad.csv:2:" in status and "bad.csv:3:" in status and "bad.csv:4:" in status, status
    assert page.eval("checklistForm.csv().text") == before, "a refused file changed the answers"
    assert not page.errors(), page.errors()


@test
def browser_brief_says_who_the_page_is_for_and_why_licences_come_first():
    page = open_form("--profile", "buyer", "--party", "operator")
    headings = page.eval("Array.from(document.querySelectorAll('#brief h3')).map(h => h.textContent)")
    assert headings[0] == "Who this page is for", headings
    first = page.eval("document.querySelector('#brief h3').nextElementSibling.id")
    assert first == "brief-who", first
    assert page.eval("document.getElementById('brief-for').textContent") == \
        "For the operator (whoever will run the network): this page lists the items the operator answers, in the order to answer them."
    role = page.eval("document.getElementById('role-line').textContent")
    assert role.startswith("These items are for the operator. The requester's role is a buyer (the organisation "
                           "that buys this network by tender); items written for someone else are answered by that "
                           "rule: where an item is written for whoever builds the network, answer with what the "
                           "tender must require of bidders"), role
    why = page.eval("document.getElementById('brief-why').textContent")
    assert why.startswith("Why licence and export questions come first. This checklist starts from Huawei's 2019 offer "
                          "to license its 5G network technology") and "A bidder's equipment may be made under" in why, why
    # the next step, for someone who is no programmer: download and send the file back
    brief = page.eval("document.getElementById('brief').textContent")
    assert "send the file back to whoever sent you this page" in brief, brief
    assert "python3" not in brief and "README" not in brief and "import" not in brief, brief
    # the command and the file name of the checklist only where they are a note for the sender or provenance
    stray = page.eval("""(() => { const out = [], w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        while (w.nextNode()) { const n = w.currentNode, p = n.parentElement;
          if (/python3|checklist\\.py/.test(n.textContent) && !p.closest('.note, noscript, script')) out.push(n.textContent);
          if (/README/.test(n.textContent) && !p.closest('#subtitle, #footer-text, script')) out.push(n.textContent); }
        return out; })()""")
    assert not stray, stray
    assert "python3 tools/checklist.py import answers-buyer-operator.csv" in page.eval("document.querySelector('#footer-text .note').textContent")
    # the role follows the routing answers; the brief still prints on one page
    click(page, '[data-id="REQ-4"] input[value="evaluator"]')
    assert page.eval("document.getElementById('role-line').textContent").startswith(
        "These items are for the operator. The requester's role is an evaluator (")
    assert "code and hardware you examine" in page.eval("document.getElementById('brief-why').textContent")
    page.eval("document.body.classList.add('print-brief')")
    assert pages(page.pdf()) == 1, "the brief does not print on one A4 page"
    # with no party, the page says it is for everyone who answers
    page = open_form("--profile", "lab")
    assert page.eval("document.getElementById('brief-for').textContent").startswith("For everyone who answers:")
    assert not page.errors(), page.errors()


def dead_links(page):
    """Links on the page whose target is missing or hidden (an in-page link that leads nowhere)."""
    return page.eval("""Array.from(document.querySelectorAll('a[href]')).filter(a => {
        const h = a.getAttribute('href');
        if (!h.startsWith('#')) return true;
        const t = document.getElementById(decodeURIComponent(h.slice(1)));
        return !t || !!t.closest('[hidden]') || !t.getClientRects().length;
      }).map(a => a.getAttribute('href') + ' ' + a.textContent + ' in ' + ((a.closest('[id]') || {}).id || '?'))""")


@test
def browser_page_shows_no_raw_conditions_or_dead_links():
    doc = readme()
    raw = {cl.applies_text(doc, it) for it in doc.items.values()} | {r.condition for r in doc.roles} | \
          {f.value for f in doc.names.values()} | {n for n in doc.names if "-" in n}
    raw = {c for c in raw if c and c != "always" and re.search(r"[-. ]", c)}
    assert "has-radio" in raw and "real-or-eval and not deciding" in raw and "REQ-4 is customer or REQ-9 includes F" in raw
    for args in (["--profile", "buyer", "--party", "operator"], ["--party", "counsel"], ["--profile", "lab"],
                 ["--profile", "vendor"], []):
        page = open_form(*args)
        text = page.eval("document.body.innerText")
        assert "applies if" not in text, args
        shown_raw = sorted(c for c in raw if re.search(r"(?<![\w-])" + re.escape(c) + r"(?![\w-])", text))
        assert not shown_raw, (args, shown_raw)
        assert not dead_links(page), (args, dead_links(page))
        # an item's stage is said in words
        first = shown(page)[0]
        meta = page.call("id => document.querySelector('[data-item=\"' + id + '\"] .meta').textContent", first)
        assert meta == f"Stage {doc.items[first].stage}: {cl.column_words(doc, 'Stage')[doc.items[first].stage]}.", meta
    # the buyer's operator page of the review: REQ-3 (not on the page) is text in the brief, not a link
    page = open_form("--profile", "buyer", "--party", "operator")
    assert page.eval("document.querySelector('#brief-blockers li:nth-child(2) .iid').tagName") == "SPAN"
    assert page.eval("document.querySelector('#brief-blockers li:nth-child(1) .iid').getAttribute('href')") == "#req-1"
    # the laboratory's defaults table is not on the page: 'defaults' is plain text
    page = open_form("--profile", "lab")
    note = page.eval("document.querySelector('[data-item=\"SEC-5\"] dl').innerHTML")
    assert "defaults" in note and "engineerings-proposed" not in note, note
    # links follow the routing: an item that stops applying is no longer linked to
    page = open_form("--profile", "vendor")
    assert page.eval("document.querySelectorAll('a a').length") == 0, "a link inside a link"
    linked = set(page.eval("Array.from(document.querySelectorAll('a[href^=\"#del-\"]')).map(a => a.getAttribute('href'))"))
    assert linked, "no link to a DEL item to begin with"
    click(page, '[data-id="LIC-1"] input[value="no"]')
    assert not dead_links(page), dead_links(page)
    assert not page.eval("document.querySelectorAll('a[href^=\"#del-\"]').length")
    click(page, '[data-id="LIC-1"] input[value="yes"]')
    assert set(page.eval("Array.from(document.querySelectorAll('a[href^=\"#del-\"]')).map(a => a.getAttribute('href'))")) == linked
    assert not page.errors(), page.errors()


@test
def browser_page_is_labelled_narrow_and_printable():
    for args in (["--profile", "vendor"], ["--party", "counsel"]):
        page = open_form(*args, width=375)
        assert page.eval("document.documentElement.scrollWidth") <= 375, "wider than 375 px"
        unlabelled = page.eval("Array.from(document.querySelectorAll('input, select, textarea, button'))"
                               ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')"
                               " && !(e.tagName === 'BUTTON' && e.textContent.trim())).map(e => e.outerHTML.slice(0, 80))")
        assert not unlabelled, unlabelled
        assert page.eval("Array.from(document.querySelectorAll('fieldset')).every(f => f.querySelector('legend'))")
        assert page.eval("Array.from(document.querySelectorAll('[tabindex]')).every(e => e.tabIndex >= -1 && "
                         "(e.tabIndex < 0 ? !e.matches('input, select, textarea, button, a') : true))")
        pdf = page.pdf()
        assert pages(pdf) > 1 and not page.errors(), page.errors()
    # Tab walks to the download button and the file chooser
    page.focus("#print-brief")
    seen = []
    for _ in range(4):
        page.key("Tab", key_code=9)
        seen.append(page.eval("document.activeElement.id"))
    assert "download-csv" in seen and "load-csv" in seen, seen


# ---------------------------------------------------------------- new-user reviews, fourth round (C1 to C7)

@test
def c1_browser_a_provisional_answer_keeps_its_blocker_open():
    with Sandbox() as box:
        answers = box.csv('id,answer\nREQ-1,teaching\nREQ-2,"ap=build, radio=out"\nLIC-1,undecided\n')
        page = open_form("--answers", answers, name="provisional.html", file=box.doc)
        assert page.eval("checklistForm.brief()")["blockers"] == ["LIC-1"]
        brief = page.eval("document.getElementById('brief-first').textContent")
        assert "No blocker is open" not in brief and "Whether licensed material is used. (requester) provisional: " \
            "undecided" in brief, brief
        assert summary_counts(page) == (2, 0, 4)       # LIC-1 routes as given: LIC-2 and DEL-1 apply
        assert page.eval("document.querySelector('#st-LIC-1').textContent") == \
            f"From {answers}; not yet recorded. Provisional: the item stays open until it is decided."
        assert page.eval("checklistForm.csv()")["summary"] == \
            "3 rows: 2 answered, 0 not needed, 1 provisional (counted open)"
        click(page, '[data-id="LIC-1"] input[value="no"]')
        assert page.eval("checklistForm.brief()")["blockers"] == [] and summary_counts(page) == (3, 0, 1)
        assert "No blocker is open." in page.eval("document.getElementById('brief-first').textContent")
    # on the checklist: counsel's EXP-1 `pending` stays an open blocker, and the brief cites its outside facts
    doc = readme()
    pending = TMP / "pending.csv"
    pending.write_text("id,answer\nEXP-1,pending\n", encoding="utf-8")
    page = open_form("--profile", "vendor", "--party", "counsel", "--answers", str(pending))
    answers = dict(doc.profiles["vendor"].assumes, **{"EXP-1": ["pending"]})
    blockers, first = expected_brief(doc, answers, "counsel", {"EXP-1": "`pending`"})
    brief = page.eval("checklistForm.brief()")
    assert "EXP-1" in blockers and (brief["blockers"], brief["first"]) == (blockers, first), brief
    assert brief["context"] == expected_context(doc, blockers + first)
    assert cl.cited_context([doc.items["EXP-1"].get("Note")]) <= set(brief["context"]), brief["context"]
    assert summary_counts(page)[0] == 0, "EXP-1 `pending` is counted as answered"
    assert not page.errors(), page.errors()


@test
def c1_browser_provisional_answers_agree_with_python():
    chromium()                                        # skipped at once where there is none
    doc = readme()
    cases = [(iid, tokens) for iid, d in doc.routing().items()
             for tokens in [[v] for v in d.values] + [d.values[:2], [], ["pending", "undecided"]]]
    got = open_form().call("cases => cases.map(c => checklistForm.isProvisional(c[0], c[1]))", cases)
    assert got == [cl.provisional(doc.items[iid], tokens) for iid, tokens in cases]
    assert any(got) and not all(got)


@test
def c3_browser_the_brief_gives_the_answers_so_far():
    chromium()                                        # skipped at once where there is none
    given = TMP / "so-far.csv"
    given.write_text("id,answer\nREQ-3,Spain: development\nEXP-1,pending\n", encoding="utf-8")
    with Sandbox(unanswered(README.read_text(encoding="utf-8"))) as box:
        doc = cl.load(str(box.doc))
        page = open_form("--profile", "vendor", "--answers", str(given), name="so-far.html", file=box.doc)
    expected = cl.answers_so_far(doc, cl.gather_answers(doc, "vendor", str(given)))
    assert page.eval("checklistForm.answersSoFar()") == expected
    assert {e["origin"] for e in expected} == {"given in " + str(given), "assumed by profile vendor"}, expected
    paragraphs = page.eval("Array.from(document.querySelectorAll('#brief-answers p')).map(p => p.textContent)")
    lines = page.eval("Array.from(document.querySelectorAll('#brief-answers li')).map(li => li.textContent)")
    assert len(paragraphs) == 2 and paragraphs[1] == f"Given in {given}:", paragraphs
    assert lines == ["REQ-3Spain: development", "EXP-1pending (provisional)"], lines
    assert paragraphs[0].startswith(f"Assumed by profile vendor ({doc.profiles['vendor'].who}): REQ-1"), paragraphs
    assert paragraphs[0].endswith(". Assumptions are shown with a dashed border: not answers, and left out of the "
                                  "file until you confirm or change them."), paragraphs
    set_text(page, "#a-REQ-3", "Portugal")                # an answer given on the page joins them
    assert {"id": "REQ-3", "answer": "Portugal", "origin": "answered on this page", "provisional": False} in \
        page.eval("checklistForm.answersSoFar()")
    assert page.eval("document.querySelector('#brief h3:nth-of-type(2)').textContent") == "Answers so far"
    with Sandbox() as box:
        plain = open_form(name="plain.html", file=box.doc)
    assert plain.eval("document.getElementById('brief-answers').textContent") == "None yet."
    assert not plain.errors(), plain.errors()


@test
def c6_browser_a_page_for_another_party_does_not_give_it_the_requesters_role():
    chromium()                                        # skipped at once where there is none
    doc = readme()
    _, role = listed("--profile", "lab", "--party", "counsel")
    words = cl.ROLE_WORDS[role]
    page = open_form("--profile", "lab", "--party", "counsel")
    assert page.eval("document.getElementById('role-line').textContent") == \
        f"These items are for counsel. The requester's role is {words[0]} ({words[1]}); items written for someone " \
        f"else are answered by that rule: {words[2]}."
    assert "You answer as" not in page.eval("document.getElementById('brief').textContent")
    page = open_form("--profile", "lab", "--party", "requester")
    assert page.eval("document.getElementById('role-line').textContent").startswith(f"You answer as {words[0]}: ")
    assert not page.errors(), page.errors()


@test
def c7_browser_the_brief_gives_the_facts_of_the_countries_named():
    chromium()                                        # skipped at once where there is none
    doc = readme()
    context = cl.outside_context(doc)
    page = open_form("--profile", "lab")
    base = page.eval("checklistForm.brief()")["context"]
    countries = [b["country"] for b in context["bullets"] if b["anchor"] not in base and b["country"]]
    assert len(countries) >= 2, countries
    texts = [f"{countries[0]} and the {countries[1].upper()}: testing", countries[-1].lower(), countries[0] + "s only",
             f"{countries[0]}-based", ""]
    for text in texts:
        set_text(page, "#a-REQ-3", text)
        got = page.eval("checklistForm.brief()")["context"]
        wanted = set(base) | cl.country_anchors(context, text)
        assert got == [b["anchor"] for b in context["bullets"] if b["anchor"] in wanted], (text, got)
    assert len(got) == len(base) and cl.country_anchors(context, texts[0]), "the countries named changed nothing"
    given = TMP / "country.csv"
    given.write_text(f"id,answer\nREQ-3,{countries[1]}\n", encoding="utf-8")
    brief = open_form("--profile", "lab", "--answers", str(given), name="country.html").eval("checklistForm.brief()")
    assert brief["context"] == expected_context(doc, brief["blockers"] + brief["first"], countries[1])
    assert set(brief["context"]) - set(base), brief["context"]
    assert not page.errors(), page.errors()


@test
def browser_the_brief_gives_the_contact_rule_while_exp1_applies_and_says_when_nothing_is_licensed():
    chromium()                                        # skipped at once where there is none
    doc = readme()
    rule = cl.contact_rule(doc)
    assert rule.startswith("One rule comes first: no contact with the licensor"), rule
    page = open_form("--profile", "buyer", "--party", "counsel")
    rules = page.eval("Array.from(document.querySelectorAll('#every-role > li')).map(li => li.textContent)")
    assert len(rules) == len(cl.every_role_rules(doc)) + 1 and rules[1].startswith("Counsel's answers") and \
        rules[-1].startswith("One rule comes first: no contact with the licensor"), rules
    assert page.eval("document.getElementById('brief-why').textContent").startswith("Why licence and export")
    page = open_form("--profile", "lab", "--party", "counsel")       # LIC-1 no: EXP-1 does not apply
    text = page.eval("document.getElementById('brief-who').textContent")
    assert "no contact with the licensor" not in text and "Counsel's answers" in text, text
    assert page.eval("document.getElementById('brief-why').textContent") == "Licence questions. " + \
        cl.LICENCE_NOT_USED.replace("`", "")
    assert not page.errors(), page.errors()


@test
def browser_a_page_for_every_item_that_names_a_party_shows_what_items_lists():
    chromium()                                        # skipped at once where there is none
    for args in (["--profile", "buyer", "--involving", "counsel"], ["--profile", "lab", "--involving", "engineering"]):
        page = open_form(*args)
        ids, _ = listed(*args)
        assert ids and shown(page) == ids, f"{args}: the page and 'items' differ"
        assert "answers or contributes to" in page.eval("document.getElementById('brief-for').textContent")
        assert not page.errors(), page.errors()


@test
def h7_d9_browser_an_old_answers_csv_never_stands_for_a_newer_recorded_answer():
    """D9: `form --answers old.csv` over newer recorded answers. The page shows the recorded answers, names the CSV's
    other ones, and leaves them out of an untouched download (option B); a row it does write carries the answer
    recorded when the page was made (`recorded`), so that import refuses it if that answer changes before the import,
    as the page's advice about --replace says (the D8 check); and a page made later leaves such a row out on loading."""
    chromium()                                        # skipped at once where there is none
    with Sandbox() as box:
        assert box.accepted('id,answer\nREQ-3,"Germany, France (newer)"\nLIC-1,no; public standards only\n')
        old = box.csv("id,answer\nREQ-3,Germany\nLIC-1,yes\nREQ-4,channels 1 to 11\n", "old.csv")
        page = open_form("--answers", old, name="old-answers.html", file=box.doc)
        assert value(page, "#a-REQ-3") == "Germany, France (newer)"
        assert page.eval("document.querySelector('#st-REQ-3').textContent") == (
            f"Recorded in {box.doc}. {old} gives another answer, left out of the file: \u201cGermany\u201d. Type it in "
            "only if it should replace the one recorded.")
        assert page.eval("document.querySelector('#st-LIC-1').textContent").startswith(f"Recorded in {box.doc}. {old} "
                                                                                      "gives another answer")
        assert page.eval("checklistForm.csv().text") == "\ufeffid,answer,recorded\r\nREQ-4,channels 1 to 11,\r\n"
        folder = TMP / "d9"
        folder.mkdir(exist_ok=True)
        untouched = download(page, folder)
        assert "--replace" not in page.eval("document.querySelector('#file-status').textContent")
        before = box.doc.read_bytes()
        text = box.accepted(untouched.read_bytes(), "--replace")
        assert "**Answer:** Germany, France (newer)" in text and "**Answer:** `no`; public standards only" in text and \
            "**Answer:** channels 1 to 11" in text, text
        assert box.doc.read_bytes() != before
        # a change typed on the page carries the answer recorded when the page was made; the advice says what then
        set_text(page, "#a-REQ-3", "Spain")
        status = page.eval("document.querySelector('#st-REQ-3').textContent")
        assert status == (f"Changes the answer recorded in {box.doc}: import the CSV with --replace. Its row carries "
                          "the answer recorded when this page was made, and import refuses the row if that answer has "
                          "changed since."), status
        changed = download(page, folder)
        assert changed.read_bytes().decode("utf-8-sig").split("\r\n")[1] == 'REQ-3,Spain,"Germany, France (newer)"'
        assert page.eval("document.querySelector('#file-status .note').textContent") == (
            "For whoever records it: python3 tools/checklist.py import answers.csv --replace (it changes the recorded "
            "answers of REQ-3; a row whose recorded answer has changed since this page was made is refused).")
        now = cl.parse(box.doc.read_text(encoding="utf-8")).items["REQ-3"].get("Answer").replace('"', '""')
        box.accepted(f'id,answer,recorded\nREQ-3,Italy (newest),"{now}"\n', "--replace")   # after the page was made
        before = box.doc.read_bytes()
        result = box.run("import", changed, "--replace")
        assert (result.returncode, result.stderr) == (1, f"{changed}:2: REQ-3's recorded answer changed since this "
                                                         "sheet was exported (now: 'Italy (newest)'); export again, or "
                                                         "put that answer in its 'recorded' cell to replace it anyway\n"
                                                         f"1 problem; {box.doc} not changed.\n"), result
        assert box.doc.read_bytes() == before
        # loaded into a page made now, the file's REQ-3 row is not taken (N1): it was made before the answer recorded
        # now, which stays, with the file's answer named under it
        page = open_form(name="newer.html", file=box.doc)
        page.set_files("#load-csv", [changed])
        wait_for_status(page, "Loaded 1 answer")                     # REQ-4's, which is recorded now
        assert page.eval("document.querySelector('#file-status p').textContent") == (
            f"Loaded 1 answer from answers.csv. Not taken, as it would change the answer recorded in {box.doc} (shown "
            "under each item; type it in only if it should replace that answer): REQ-3.")
        assert value(page, "#a-REQ-3") == "Italy (newest)" and page.eval("checklistForm.csv().text") == "\ufeffid,answer\r\n"
    assert not page.errors(), page.errors()


@test
def h8_n1_browser_load_csv_never_takes_a_change_of_a_recorded_answer_silently():
    """N1: the page's Load CSV over answers recorded since the CSV was made. A row that would change a recorded
    answer is taken only when its 'recorded' cell (under any name that starts with 'recorded', N2) holds that
    answer; otherwise the recorded answer stays, the row's is named under the item, and the download leaves it
    out unless the person types it in; so import --replace of an untouched download changes nothing."""
    chromium()                                        # skipped at once where there is none
    with Sandbox() as box:
        box.accepted('id,answer\nREQ-3,"Germany, France (newer)"\nLIC-1,"`no`; public standards only"\n')
        page = open_form(name="n1.html", file=box.doc)
        note = (f"Not taken, as they would change the answer recorded in {box.doc} (shown under each item; type it in "
                "only if it should replace that answer): REQ-3, LIC-1.")
        for name, text in (("old.csv", "id,answer\nREQ-3,Germany\nLIC-1,yes\n"),
                           ("renamed.csv", "id,answer,recorded answer\nREQ-3,Germany,Germany\nLIC-1,yes,yes\n"),
                           ("blank.csv", "id,answer,recorded\nREQ-3,Germany,\nLIC-1,yes\n")):
            assert page.call("a => checklistForm.loadCsvText(a[0], a[1])", [name, text])
            assert page.eval("document.querySelector('#file-status p').textContent") == \
                f"Loaded 0 answers from {name}. {note}", name
            assert value(page, "#a-REQ-3") == "Germany, France (newer)"
            assert page.eval("document.querySelector('#st-REQ-3').textContent") == (
                f"Recorded in {box.doc}. {name} gives another answer, left out of the file: \u201cGermany\u201d. Type "
                "it in only if it should replace the one recorded."), name
            assert page.eval("checklistForm.csv().text") == "\ufeffid,answer\r\n", name
        folder = TMP / "n1"
        folder.mkdir(exist_ok=True)
        before = box.doc.read_bytes()
        result = box.run("import", download(page, folder), "--replace")
        assert result.returncode == 0 and "nothing to record" in result.stdout and box.doc.read_bytes() == before
        # typed in, the change goes into the file, carrying the answer recorded when the page was made
        set_text(page, "#a-REQ-3", "Germany")
        assert page.eval("checklistForm.csv().text") == '\ufeffid,answer,recorded\r\nREQ-3,Germany,"Germany, France ' \
                                                        '(newer)"\r\n'
        # a row whose 'recorded' cell holds the answer recorded now is taken, as before
        assert page.call("a => checklistForm.loadCsvText(a[0], a[1])",
                         ["now.csv", 'id,answer,Recorded at export\nREQ-3,Spain,"Germany, France (newer)"\n'])
        assert page.eval("document.querySelector('#file-status p').textContent") == "Loaded 1 answer from now.csv."
        assert value(page, "#a-REQ-3") == "Spain" and page.eval("document.querySelector('#st-REQ-3').textContent") \
            .startswith(f"Changes the answer recorded in {box.doc}")
        assert page.eval("checklistForm.csv().text") == '\ufeffid,answer,recorded\r\nREQ-3,Spain,"Germany, France ' \
                                                        '(newer)"\r\n'
    assert not page.errors(), page.errors()


@test
def h9_n1_form_answers_leaves_out_a_row_exported_before_the_answer_was_retracted():
    """N1's variant: a packet exported while REQ-3 was recorded as Germany, its answer since retracted by hand, given
    to `form --answers`: its row's 'recorded' cell is not the answer recorded now (none), so the page names its answer
    as a note and leaves it out of the file unless typed in, as Load CSV does; a row whose cell matches is taken."""
    with Sandbox() as box:
        packet = box.csv("id,answer,recorded\nREQ-3,Spain,Germany\nREQ-4,channels 1 to 11,\n", "pk.csv")
        args = cl.build_parser().parse_args(["form", "--answers", str(packet)])
        items = {it["id"]: it for it in cl.form_data(cl.load(box.doc), args)["items"]}
        assert (items["REQ-3"]["given"], items["REQ-3"]["given_instead"]) == ("", "Spain"), items["REQ-3"]
        assert (items["REQ-4"]["given"], items["REQ-4"]["given_instead"]) == ("channels 1 to 11", ""), items["REQ-4"]


@test
def h9_n1_browser_form_answers_untouched_download_never_records_a_retracted_row():
    chromium()                                        # skipped at once where there is none
    with Sandbox() as box:
        packet = box.csv("id,answer,recorded\nREQ-3,Spain,Germany\nREQ-4,channels 1 to 11,\n", "pk.csv")
        page = open_form("--answers", packet, name="h9-n1.html", file=box.doc)
        assert value(page, "#a-REQ-3") == ""
        assert page.eval("document.querySelector('#st-REQ-3').textContent") == (
            f"Nothing is recorded in {box.doc} now. {packet} gives an answer exported when another was recorded, left "
            "out of the file: \u201cSpain\u201d. Type it in only if it should be recorded.")
        assert page.eval("checklistForm.csv().text") == "\ufeffid,answer,recorded\r\nREQ-4,channels 1 to 11,\r\n"
        folder = TMP / "h9-n1"
        folder.mkdir(exist_ok=True)
        text = box.accepted(download(page, folder).read_bytes(), "--replace")
        assert "Spain" not in text and "**Answer:** channels 1 to 11" in text, text
        set_text(page, "#a-REQ-3", "Spain")                                  # typed in, it goes into the file
        assert page.eval("checklistForm.csv().text") == \
            "\ufeffid,answer,recorded\r\nREQ-3,Spain,\r\nREQ-4,channels 1 to 11,\r\n"
    assert not page.errors(), page.errors()


@test
def browser_others_fills_the_part_selects_and_routes_as_written_in_full():
    """`others=VALUE` in REQ-2, given in a CSV (--answers), loaded, or recorded: the per-part selects show the
    parts it stands for, the list is the one `items` gives, and the download writes the expanded tokens."""
    chromium()                                        # skipped at once where there is none
    doc = readme()
    parts = next(d for d in doc.routing().values() if d.kind == "parts").parts
    selects = "Array.from(document.querySelectorAll('[data-id=\"REQ-2\"] select')).map(s => s.value)"
    expanded = ["build" if p == "core" else "out" for p in parts]
    csv = TMP / "others.csv"
    csv.write_text('id,answer\nREQ-2,"core=build, others=out"\n', encoding="utf-8")
    page = open_form("--profile", "lab", "--answers", csv, name="others.html")
    assert page.eval(selects) == expanded, (page.eval(selects), expanded)
    assert page.eval("checklistForm.answers()['REQ-2']") == [f"{p}={v}" for p, v in zip(parts, expanded)]
    answers = dict(doc.profiles["lab"].assumes, **{"REQ-2": [f"{p}={v}" for p, v in zip(parts, expanded)]})
    assert shown(page) == [r.item.id for r in cl.applicable(doc, answers) if r.applies is not False]
    assert "REQ-2," + '"' + ", ".join(f"{p}={v}" for p, v in zip(parts, expanded)) + '"' in \
        page.eval("checklistForm.csv().text")
    # loaded: a named part wins; refused as import refuses it
    assert page.call("a => checklistForm.loadCsvText(a[0], a[1])",
                     ["o.csv", 'id,answer\nREQ-2,"others=operate, oam=build"\n'])
    assert page.eval(selects) == ["build" if p == "oam" else "operate" for p in parts]
    bad = 'id,answer\nREQ-2,"others=out, others=buy"\n'
    assert page.call("t => checklistForm.planCsvText(t)", bad)["problems"] == \
        [[2, "REQ-2: 'others=' is given 2 times; give it once"]]
    with Sandbox(unanswered(README.read_text(encoding="utf-8"))) as box:
        box.refused(bad, "REQ-2: 'others=' is given 2 times; give it once")
        box.accepted('id,answer\nREQ-2,"others=model; a comment"\n')
        page = open_form(name="others-recorded.html", file=box.doc)
        assert page.eval(selects) == ["model"] * len(parts)
    assert not page.errors(), page.errors()
