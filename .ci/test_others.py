"""`others=VALUE` in a one-value-per-part answer (REQ-2): it stands for every part not named in the same answer,
wherever such answers are read (profiles, recorded answers, import, --answers), and is refused when it means
nothing or two things. The page's side is in test_form.py (browser_validation_agrees_with_python)."""
import json
import re

from support import README, Sandbox, cl, refused_exactly, test, unanswered


def parts_item(doc):
    """(id, Declared) of the routing item that takes one value per part."""
    return next((i, d) for i, d in doc.routing().items() if d.kind == "parts")


def in_full(text, doc):
    """README.md's text with every profile's part answer written out part by part, without `others=` (the same
    answers); each profile must use `others=`."""
    iid, _ = parts_item(doc)
    written = re.compile(rf"\[{iid}\]\(#{iid.lower()}\) ((?:`[^`]+`(?:, )?)+)")
    lines = text.split("\n")
    for p in doc.profiles.values():
        k = p.assumes_line - 1
        m = written.search(lines[k])
        assert m and "`others=" in m.group(1), p.key
        lines[k] = lines[k][:m.start(1)] + ", ".join(f"`{t}`" for t in p.assumes[iid]) + lines[k][m.end(1):]
    return "\n".join(lines)


@test
def profiles_written_with_others_route_as_written_in_full():
    short_text = README.read_text(encoding="utf-8")
    doc = cl.parse(short_text)
    iid, _ = parts_item(doc)
    text = in_full(short_text, doc)
    full = cl.parse(text)
    assert not [d for d in cl.run_rules(full) if d.code == "profile"], cl.run_rules(full)
    assert not [d for d in cl.run_rules(doc) if d.code == "profile"], cl.run_rules(doc)
    assert doc.profiles.keys() == full.profiles.keys()
    for key, p in doc.profiles.items():
        q = full.profiles[key]
        assert p.assumes == q.assumes, (key, p.assumes[iid], q.assumes[iid])
        got, want = cl.profile_view(doc, p), cl.profile_view(full, q)
        assert [it.id for it in got[0]] == [it.id for it in want[0]], key
        assert [it.id for it in got[2]] == [it.id for it in want[2]], key
        assert cl.role_of(doc, p.assumes).key == cl.role_of(full, q.assumes).key, key
    # and as the program lists them (two profiles: the listing is the model's, compared above for all)
    with Sandbox(short_text) as box, Sandbox(text) as original:
        for key in list(full.profiles)[::6]:
            a = json.loads(box.run("items", "--profile", key, "--format", "json").stdout)
            b = json.loads(original.run("items", "--profile", key, "--format", "json").stdout)
            assert a == b, key


@test
def expand_others_fills_the_parts_not_named_and_a_named_part_wins():
    _, d = parts_item(cl.parse(README.read_text(encoding="utf-8")))
    first, rest = d.parts[0], d.parts[1:]
    assert cl.expand_others([f"{first}={d.values[0]}", f"others={d.values[-1]}"], d) == \
        [f"{first}={d.values[0]}"] + [f"{p}={d.values[-1]}" for p in rest]
    assert cl.expand_others([f"others={d.values[1]}", f"{d.parts[-1]}={d.values[0]}"], d) == \
        [f"{p}={d.values[1]}" for p in d.parts[:-1]] + [f"{d.parts[-1]}={d.values[0]}"]
    assert cl.expand_others([f"{p}={d.values[0]}" for p in d.parts], d) == [f"{p}={d.values[0]}" for p in d.parts]
    for bad in (["others=nonsense"], ["others"], ["others=out", "others=build"],
                [f"{p}=out" for p in d.parts] + ["others=out"]):
        assert cl.expand_others(bad, d) == bad                     # left for answer_problems to refuse


def readme_with_answer(answer):
    """The shipped README with REQ-2 answered (by hand) as `answer`, its box ticked."""
    lines = unanswered(README.read_text(encoding="utf-8")).split("\n")
    k = next(n for n, line in enumerate(lines) if line.startswith('- [ ] <a id="req-2"></a>'))
    lines[k] = lines[k].replace("- [ ]", "- [x]", 1)
    end = next(n for n in range(k + 1, len(lines)) if not lines[n].startswith("  "))
    lines.insert(end, f"  - **Answer:** {answer}")
    return "\n".join(lines)


@test
def a_recorded_answer_with_others_is_read_as_the_parts_it_stands_for():
    doc = cl.parse(readme_with_answer("`core=build`, `others=out`"))
    assert not [d for d in cl.run_rules(doc) if d.code == "answer"], cl.run_rules(doc)
    iid, d = parts_item(doc)
    assert doc.recorded()[iid] == ["core=build"] + [f"{p}=out" for p in d.parts if p != "core"]
    full = cl.parse(readme_with_answer(", ".join(f"`{t}`" for t in doc.recorded()[iid])))
    assert [(r.item.id, r.applies) for r in cl.applicable(doc, doc.recorded())] == \
        [(r.item.id, r.applies) for r in cl.applicable(full, full.recorded())]
    tree = cl.parse_condition("REQ-2.core is build and REQ-2.ru is out")
    assert cl.evaluate(tree, doc.recorded()) is True
    bad = cl.parse(readme_with_answer("`core=build`, `others=maybe`"))
    assert [d.message for d in cl.run_rules(bad) if d.code == "answer"] == [
        f"REQ-2: 'others=maybe' needs a value of {VALUES}"]


VALUES = "['build', 'operate', 'buy', 'model', 'out']"
FULL_CORE_BUILD = "`core=build`, `upf=out`, `cu=out`, `du=out`, `ru=out`, `transport=out`, `oam=out`, `hardware=out`"


@test
def import_and_answers_accept_others():
    shipped = unanswered(README.read_text(encoding="utf-8"))
    with Sandbox(shipped) as box:
        typed = box.accepted('id,answer\nREQ-2,"core=build, others=out"\n')
        assert f"**Answer:** {FULL_CORE_BUILD}" in typed, "the expanded tokens are recorded"
        assert box.run("check").returncode == 0
        # the same answer again, written either way, is a no-op
        again = box.run("import", box.csv('id,answer\nREQ-2,"others=out, core=build"\n'))
        assert again.returncode == 0 and box.doc.read_text(encoding="utf-8") == typed, again
    with Sandbox(shipped) as box:
        short = box.run("items", "--format", "json", "--answers", box.csv('id,answer\nREQ-2,"core=build, others=out"\n'))
        full = box.run("items", "--format", "json", "--answers",
                       box.csv(f'id,answer\nREQ-2,"{FULL_CORE_BUILD}"\n', "full.csv"))
        assert short.returncode == 0 and short.stdout == full.stdout.replace("full.csv", "answers.csv"), short
        assert box.run("items", "--format", "json", "--profile", "lab", "--answers",
                       box.csv('id,answer\nREQ-2,"Oam = Build, OTHERS=operate"\n')).returncode == 0


@test
def others_is_refused_when_it_means_nothing_or_two_things():
    shipped = unanswered(README.read_text(encoding="utf-8"))
    every = ", ".join(f"{p}=out" for p in parts_item(cl.parse(shipped))[1].parts)
    parts = parts_item(cl.parse(shipped))[1].parts
    twice = "2: REQ-2: 'others=' is given 2 times; give it once"
    with Sandbox(shipped) as box:
        refused_exactly(box, 'id,answer\nREQ-2,"core=build, others=maybe"\n',
                        f"2: REQ-2: 'others=maybe' needs a value of {VALUES}")
        refused_exactly(box, 'id,answer\nREQ-2,"core=build, others"\n', f"2: REQ-2: 'others' needs a value of {VALUES}")
        refused_exactly(box, 'id,answer\nREQ-2,"core=build, others=out, others=buy"\n', twice)
        # one mistake, one message: not also "'others=out' is given twice"
        refused_exactly(box, 'id,answer\nREQ-2,"core=build, others=out, others=out"\n', twice)
        refused_exactly(box, f'id,answer\nREQ-2,"{every}, others=build"\n',
                        f"2: REQ-2: 'others=' leaves no part to set: every part of {parts} is named")
        refused_exactly(box, 'id,answer\nREQ-1,"others=out"\n', "2: REQ-1: 'others=out' is not an answer of REQ-1 "
                                                               "['public', 'private', 'product', 'lab', 'research', "
                                                               "'teaching', 'evaluation']")
        path = box.csv('id,answer\nREQ-2,"others=out, others=buy"\n')
        result = box.run("items", "--answers", path)
        assert (result.returncode, result.stderr) == (1, f"{path}:{twice}\n"), result
