#!/usr/bin/env python3
"""The checklist's own program (Python 3 standard library only).

    python3 tools/checklist.py check    [--file PATH]
    python3 tools/checklist.py profiles [--file PATH] [--format md|csv|json]
    python3 tools/checklist.py items    [--profile KEY | --answers CSV] [--party P] [--involving P] [--stage S]
                                        [--format md|csv|json] [--file PATH]
    python3 tools/checklist.py status   [--profile KEY | --answers CSV] [--format md|csv|json] [--file PATH]
    python3 tools/checklist.py import   ANSWERS.csv [--replace] [--file PATH]

Shape, in file order: the model (`Item`, `Profile`, `Doc`); `parse()`, which reads the
Markdown once into a Doc; Applies conditions (`parse_condition`, `evaluate`, `applicable`);
`RULES`, small functions over a Doc that yield `(line, rule, message)`; answers (secret
and safety checks, CSV reading, atomic writing); views (`items`, `profiles`, `status`);
and `main()`, a thin argparse layer. The default file is README.md next to tools/.
"""
import argparse
import csv
import io
import json
import os
import re
import shutil
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "README.md"
FIELDS = ("Form", "Unblocks", "From", "Stage", "Applies", "Note", "Answer")
REQUIRED = ("Form", "Unblocks", "From", "Stage", "Applies")
STAGE_TABLE, PARTY_TABLE = "Stage", "Party"
HOWTO, CHECKLIST, START, ROUTER, REFERENCES = (
    "How to use this checklist", "The checklist", "Start here", "Which items apply to you",
    "References")
PROFILE_FIELDS = ("Assumes", "Items that apply", "Answer first")

HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*(\w*)")
ITEM = re.compile(r'^- \[([ xX])\] (?:<a id="([^"]*)"></a>)?\*\*([A-Z]{2,4})-([1-9][0-9]*)\*\* (\S.*)$')
ITEM_START = re.compile(r"^- \[(?![^\]]*\][(\[])")     # a task-list bullet, not "- [text](#link)"
LOOSE_ID = re.compile(r"\b([A-Z]{2,4})-([1-9][0-9]*)\b")
ID_TOKEN = re.compile(r"\b[A-Z]{2,4}-\d+\b")
FIELD = re.compile(r"^  - \*\*([A-Za-z ]+):\*\*\s*(.*)$")
LOOSE_FIELD = re.compile(r"^  - (?:\*\*)?([A-Za-z]+)(?:\*\*)?:")
GROUP = re.compile(r"\(([A-Z]{2,4})\)$")
PROFILE_HEADING = re.compile(r"\(`([a-z][a-z0-9-]*)`\)$")
SPEC = re.compile(r"\b(TS|TR)[ \u00a0](\d{2}\.\d{3}(?:-\d+)?)\b")
PLACEHOLDER = re.compile(r"\b(TODO|FIXME|XXX|TBD)\b")
LINK = re.compile(r"\[([^\]]*)\]\(#([^)\s]+)\)")
HTML_ANCHOR = re.compile(r"""<a\s+(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
CODE_SPAN = re.compile(r"`[^`]*`")
BACKTICKED = re.compile(r"`([^`]+)`")
TEST_ID = re.compile(r"^([A-Z]{2,4}-[1-9][0-9]*)(?:\.([a-z][a-z0-9-]*))?$")
COMMANDS = ("python3 tools/checklist.py items --profile", "bash .ci/run")


# ---------------------------------------------------------------- model

@dataclass
class Declared:
    """The answers a routing item accepts: `one` token, `many` tokens, or one value per part."""
    kind: str
    values: list
    parts: list = field(default_factory=list)


@dataclass
class Item:
    """One checklist item: its ID, first line, box, anchor, group and fields."""
    id: str
    line: int
    ask: str
    ticked: bool
    anchor: str
    group: str
    fields: dict = field(default_factory=dict)    # label -> (value, line)

    def get(self, label):
        return self.fields.get(label, ("", self.line))[0]

    @property
    def stage(self):
        m = BACKTICKED.match(self.get("Stage"))
        return m.group(1).strip() if m else ""

    @property
    def party(self):
        """The accountable party: the first word of From."""
        words = re.findall(r"[a-z]+", self.get("From").lower())
        return words[0] if words else ""

    def involves(self, party):
        """True if From names `party`, as accountable or as a contributor."""
        return party in re.findall(r"[a-z]+", self.get("From").lower())

    @property
    def condition_text(self):
        m = re.fullmatch(r"`([^`]+)`\.?", self.get("Applies").strip())
        return m.group(1).strip() if m else None

    @property
    def declared(self):
        """The Form's declared answers, if this is a routing item."""
        form = self.get("Form")
        m = re.match(r"for each part, one of (.*?)\. Parts: (.*)$", form, re.I)
        if m:
            return Declared("parts", BACKTICKED.findall(m.group(1)), BACKTICKED.findall(m.group(2)))
        m = re.match(r"(one or more of|one of):\s*(.*)$", form, re.I)
        if m and BACKTICKED.search(m.group(2)):
            kind = "many" if m.group(1).lower() == "one or more of" else "one"
            return Declared(kind, BACKTICKED.findall(m.group(2)))
        return None

    @property
    def answer_tokens(self):
        """Backticked tokens of a recorded Answer (a routing item's answer), or None."""
        answer = self.get("Answer")
        return BACKTICKED.findall(answer) if answer else None


@dataclass
class Profile:
    """A named set of routing answers under 'Which items apply to you'."""
    key: str
    name: str
    line: int
    fields: dict = field(default_factory=dict)    # label -> (value, line)

    def assumes(self):
        """{id: [tokens]} from 'ID `a`, `b`; ID `c`'."""
        value = self.fields.get("Assumes", ("", 0))[0]
        out = {}
        for part in value.split(";"):
            ids = ID_TOKEN.findall(part)
            if ids:
                out[ids[0]] = BACKTICKED.findall(part)
        return out


@dataclass
class Doc:
    """The whole checklist, parsed once: tables, groups, items and profiles, with line numbers."""
    path: str
    lines: list
    fenced: list
    headings: list                                  # (line, level, title)
    stages: list = field(default_factory=list)      # declared order
    parties: list = field(default_factory=list)
    groups: dict = field(default_factory=dict)      # prefix -> heading line
    preambles: dict = field(default_factory=dict)   # prefix -> (condition text, line)
    items: dict = field(default_factory=dict)       # id -> Item, document order
    profiles: dict = field(default_factory=dict)    # key -> Profile
    problems: list = field(default_factory=list)    # defects found while parsing

    def live(self):
        return ((n, line) for n, line in enumerate(self.lines, 1) if not self.fenced[n - 1])

    def section(self, title):
        """(first, end) line numbers of the '## title...' section, or None."""
        bounds = [n for n, lvl, _ in self.headings if lvl <= 2] + [len(self.lines) + 1]
        for n, lvl, text in self.headings:
            if lvl == 2 and text.startswith(title):
                return n, next(b for b in bounds if b > n)
        return None

    def inside(self, n, title):
        sec = self.section(title)
        return sec is not None and sec[0] <= n < sec[1]

    def routing(self):
        return {iid: it.declared for iid, it in self.items.items() if it.declared}

    def start_order(self):
        """{id: position} of the IDs in the Start-here table, in order of appearance."""
        sec, order = self.section(START), {}
        for n, line in self.live():
            if sec and sec[0] <= n < sec[1] and line.startswith("|"):
                for iid in ID_TOKEN.findall(line):
                    order.setdefault(iid, len(order))
        return order

    def recorded_answers(self):
        """{id: tokens} for routing items that carry an Answer."""
        return {iid: it.answer_tokens for iid, it in self.items.items()
                if it.declared and it.answer_tokens is not None}


# ---------------------------------------------------------------- parsing

def slugify(text):
    """GitHub heading anchor (without the -N suffix for repeats)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)
    text = text.strip().lower()
    keep = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return keep.replace(" ", "-")


def fenced_lines(lines):
    """One flag per line: True if the line belongs to a fenced code block."""
    flags, fence = [], None
    for line in lines:
        m = FENCE.match(line)
        if fence is None:
            fence = m.group(1) if m else None
            flags.append(fence is not None)
        else:
            flags.append(True)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip().strip(fence[0]):
                fence = None
    return flags


def table_column(doc, section, header):
    """Backticked first-column values of the table whose first header cell is `header`."""
    values, rows = [], []
    for n, line in list(doc.live()) + [(0, "")]:
        if doc.inside(n, section) and line.strip().startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if rows and rows[0][0].strip("* ") == header:
            values += [m.group(1).strip() for row in rows[2:]
                       if (m := re.fullmatch(r"`([^`]+)`", row[0]))]
        rows = []
    return values


def parse(text, path="README.md"):
    """Read the Markdown once into a Doc; shape defects go to doc.problems."""
    lines = text.replace("\r\n", "\n").split("\n")
    doc = Doc(path, lines, fenced_lines(lines), [])
    for n, line in doc.live():
        m = HEADING.match(line)
        if m:
            doc.headings.append((n, len(m.group(1)), m.group(2).strip()))
    doc.stages = table_column(doc, HOWTO, STAGE_TABLE)
    doc.parties = table_column(doc, HOWTO, PARTY_TABLE)
    heading_at = {n: (lvl, title) for n, lvl, title in doc.headings}
    group = profile = None
    item_lines = []
    for n, line in doc.live():
        if n in heading_at:
            lvl, title = heading_at[n]
            group = profile = None
            g, p = GROUP.search(title), PROFILE_HEADING.search(title)
            if lvl == 3 and g and doc.inside(n, CHECKLIST):
                group = g.group(1)
                doc.groups.setdefault(group, n)
            elif lvl == 3 and p and doc.inside(n, ROUTER):
                profile = Profile(p.group(1), title[:p.start()].strip(), n)
                doc.profiles.setdefault(profile.key, profile)
            continue
        if group and group not in doc.preambles and line.startswith("**Applies to this group:**"):
            m = BACKTICKED.search(line)
            doc.preambles[group] = (m.group(1) if m else "", n)
        if profile and line.startswith("- **"):
            m = re.match(r"^- \*\*([^*:]+):\*\*\s*(.*)$", line)
            if m:
                profile.fields.setdefault(m.group(1), (m.group(2).strip(), n))
        if ITEM_START.match(line):
            item_lines.append(n)
            parse_item(doc, n, line, group)
    under_items = {k + 1 for n in item_lines for k in range(n, field_block_end(doc.lines, n))}
    for n, line in doc.live():
        if FIELD.match(line) and n not in under_items and doc.inside(n, CHECKLIST):
            doc.problems.append((n, "item-format", "field line is not under an item "
                                                   "(a blank line or other text separates them)"))
    return doc


def field_block_end(lines, n):
    """0-based index just past the indented lines that follow the bullet on 1-based line n."""
    k = n
    while k < len(lines) and lines[k].startswith("  "):
        k += 1
    return k


def parse_item(doc, n, line, group):
    """Read the item starting on line n, with its field lines, into doc.items (or doc.problems)."""
    m = ITEM.match(line)
    if m:
        ticked, anchor, prefix, number, ask = m.groups()
    else:
        doc.problems.append((n, "item-format",
                             "item must look like '- [ ] <a id=\"abc-1\"></a>**ABC-1** text'"))
        loose = LOOSE_ID.search(line)
        if not loose:
            return
        anchor = HTML_ANCHOR.search(line)
        ticked, anchor, (prefix, number), ask = " ", anchor and anchor.group(1), loose.groups(), line
    iid = f"{prefix}-{number}"
    if iid in doc.items:
        doc.problems.append((n, "duplicate-id", f"{iid} is already defined at line {doc.items[iid].line}"))
        return
    item = Item(iid, n, ask, ticked != " ", anchor, group if doc.inside(n, CHECKLIST) else None)
    for k in range(n, field_block_end(doc.lines, n)):
        if not doc.fenced[k]:
            f = FIELD.match(doc.lines[k])
            loose = LOOSE_FIELD.match(doc.lines[k])
            label = f.group(1) if f else (loose.group(1) if loose else None)
            if label is None and doc.lines[k].startswith("  - "):
                doc.problems.append((k + 1, "unknown-field",
                                     f"{iid}: sub-bullet is not a '**Label:** text' field"))
            elif label and label not in FIELDS:
                doc.problems.append((k + 1, "unknown-field", f"{iid}: unknown field '{label}'"))
            elif label and not f:
                doc.problems.append((k + 1, "item-format", f"{iid}: field must be written '**{label}:** text'"))
                item.fields.setdefault(label, (doc.lines[k].split(":", 1)[1].strip(" *"), k + 1))
            elif label in item.fields:
                doc.problems.append((k + 1, "duplicate-field", f"{iid}: {label} appears more than once"))
            elif label:
                item.fields[label] = (f.group(2).strip(), k + 1)
    doc.items[iid] = item


# ---------------------------------------------------------------- conditions

class ConditionError(ValueError):
    """An Applies condition that does not parse."""


MAX_NESTING = 50


def parse_condition(text):
    """Parse an Applies condition into a tree.

    cond := conj ('or' conj)* ; conj := neg ('and' neg)* ; neg := 'not' neg | '(' cond ')' | test
    test := ID['.'part] ('is'|'includes') value ('or' value)*   -- an 'or' followed by a value
    (not an ID, 'not' or '(') extends the value list. `always` is the whole condition alone.
    """
    if text == "always":
        return ("always",)
    tokens = re.findall(r"[()]|[^\s()]+", text)
    if tokens.count("(") + tokens.count("not") > MAX_NESTING:
        raise ConditionError(f"more than {MAX_NESTING} parentheses and 'not's; split the condition")
    pos = 0

    def peek(offset=0):
        return tokens[pos + offset] if pos + offset < len(tokens) else None

    def take(expected=None):
        nonlocal pos
        token = peek()
        if token is None or (expected and token != expected):
            raise ConditionError(f"expected {expected or 'more'} at the end" if token is None
                                 else f"expected '{expected}', found '{token}'")
        pos += 1
        return token

    def chain(word, operand):
        terms = [operand()]
        while peek() == word:
            take()
            terms.append(operand())
        return terms[0] if len(terms) == 1 else (word, terms)

    def disjunction():
        return chain("or", conjunction)

    def conjunction():
        return chain("and", negation)

    def negation():
        if peek() == "not":
            take()
            return ("not", negation())
        if peek() == "(":
            take()
            inner = disjunction()
            take(")")
            return inner
        return test()

    def is_value(token):
        return token is not None and token not in ("and", "or", "not", "(", ")") \
            and not TEST_ID.match(token)

    def test():
        m = TEST_ID.match(take())
        if not m:
            raise ConditionError(f"expected an item ID, found '{tokens[pos - 1]}'")
        op = take()
        if op not in ("is", "includes"):
            raise ConditionError(f"expected 'is' or 'includes' after {tokens[pos - 2]}, found '{op}'")
        if not is_value(peek()):
            raise ConditionError(f"expected a value after '{op}'")
        values = [take()]
        while peek() == "or" and is_value(peek(1)):
            take()
            values.append(take())
        return ("test", m.group(1), m.group(2), op, tuple(values))

    tree = disjunction()
    if pos != len(tokens):
        raise ConditionError(f"unexpected '{tokens[pos]}'")
    return tree


def tests_in(tree):
    """The ('test', id, part, op, values) leaves of a condition tree."""
    if tree[0] == "test":
        yield tree
    elif tree[0] == "not":
        yield from tests_in(tree[1])
    elif tree[0] in ("and", "or"):
        for sub in tree[1]:
            yield from tests_in(sub)


def evaluate(tree, answers):
    """True, False, or None (cannot be decided yet); answers = {id: tokens}."""
    kind = tree[0]
    if kind == "always":
        return True
    if kind == "test":
        _, iid, part, _, values = tree
        tokens = answers.get(iid)
        if tokens is None:
            return None
        if part:
            given = [t.split("=", 1)[1] for t in tokens if t.startswith(part + "=")]
            return given[0] in values if given else None
        return any(t in values for t in tokens)
    if kind == "not":
        value = evaluate(tree[1], answers)
        return None if value is None else not value
    results = [evaluate(sub, answers) for sub in tree[1]]
    decisive = kind == "or"                      # True decides an 'or', False an 'and'
    if decisive in results:
        return decisive
    return None if None in results else not decisive


def condition_problems(tree, routing):
    """Messages for tests that name non-routing items, wrong operators, parts or values."""
    for _, iid, part, op, values in tests_in(tree):
        declared = routing.get(iid)
        if declared is None:
            yield f"{iid} is not a routing item (its Form declares no answers)"
            continue
        expected = "includes" if declared.kind == "many" else "is"
        if op != expected:
            yield f"use '{expected}' with {iid}"
        if declared.kind == "parts" and part not in declared.parts:
            yield f"{iid} needs a part, one of {declared.parts}" if part is None \
                else f"{iid} has no part '{part}'"
        elif declared.kind != "parts" and part:
            yield f"{iid} has no parts"
        for value in values:
            if value not in declared.values:
                yield f"'{value}' is not an answer of {iid} {declared.values}"


def answer_problems(iid, tokens, declared):
    """Messages for a routing answer (list of tokens) that its item does not accept."""
    if not tokens:
        return [f"{iid} needs one of {declared.values}"]
    if declared.kind == "parts":
        pairs = [t.split("=", 1) if "=" in t else [t, ""] for t in tokens]
        problems = [f"{iid}: '{p}={v}' is not a part=value pair with a value in {declared.values}"
                    for p, v in pairs if p not in declared.parts or v not in declared.values]
        named = [p for p, _ in pairs]
        problems += [f"{iid}: part '{p}' is answered {named.count(p)} times"
                     for p in declared.parts if named.count(p) > 1]
        missing = [p for p in declared.parts if p not in named]
        if missing:
            problems.append(f"{iid}: no value for part(s) {', '.join(missing)}")
        return problems
    problems = [f"'{t}' is not an answer of {iid} {declared.values}"
                for t in tokens if t not in declared.values]
    if declared.kind == "one" and len(tokens) > 1:
        problems.append(f"{iid} takes exactly one answer")
    return problems


def condition_of(item):
    """Parsed Applies of an item, or None if it is missing or malformed."""
    text = item.condition_text
    try:
        return parse_condition(text) if text else None
    except ConditionError:
        return None


def applicable(doc, answers):
    """[(item, verdict, waits_on)] for non-void items: verdict True, False or None."""
    out = []
    for item in doc.items.values():
        if item.stage == "void":
            continue
        tree = condition_of(item)
        verdict = evaluate(tree, answers) if tree else None
        waits = sorted({t[1] for t in tests_in(tree) if t[1] not in answers}) if tree and verdict is None else []
        out.append((item, verdict, waits))
    order, start = {s: i for i, s in enumerate(doc.stages)}, doc.start_order()
    out.sort(key=lambda x: (order.get(x[0].stage, len(order)), start.get(x[0].id, len(start))))
    rank = {it.id: n for n, it in enumerate(working_order(doc, [row[0] for row in out]))}
    return sorted(out, key=lambda x: rank[x[0].id])


def working_order(doc, items):
    """`items` kept in their order, except that an item moves after the items of its own stage
    that unblock it (blockers keep the Start-here order)."""
    ids = {it.id for it in items}
    waits_for = {it.id: set() for it in items}
    for it in items:
        for other in unblocked_ids(it) & ids - {it.id}:
            if doc.items[other].stage == it.stage != "blocker":
                waits_for[other].add(it.id)
    done, ordered, pending = set(), [], list(items)
    while pending:
        ready = next((it for it in pending if waits_for[it.id] <= done), pending[0])   # pending[0]: a cycle
        pending.remove(ready)
        done.add(ready.id)
        ordered.append(ready)
    return ordered


def profile_view(doc, profile):
    """(applying items, undecided items, first items) for a profile's assumed answers."""
    rows = applicable(doc, profile.assumes())
    yes = [it for it, verdict, _ in rows if verdict]
    undecided = [(it, waits) for it, verdict, waits in rows if verdict is None]
    first = [it for it in yes if it.stage == first_stage_after_blockers(doc)]
    return yes, undecided, first


def first_stage_after_blockers(doc):
    """The stage whose items a profile lists as "Answer first"."""
    later = [s for s in doc.stages if s not in ("blocker", "void")]
    return later[0] if later else None


RANGE = re.compile(r"\b([A-Z]{2,4})-(\d+) to ([A-Z]{2,4})-(\d+)\b")
LONGEST_RANGE = 100


def unblocked_ids(item):
    """IDs in an item's Unblocks, with 'ABC-2 to ABC-5' expanded (see bad_ranges for the rest)."""
    text = item.get("Unblocks")
    ids = set(ID_TOKEN.findall(text))
    for pa, na, pb, nb in RANGE.findall(text):
        if pa == pb and 0 <= int(nb) - int(na) <= LONGEST_RANGE:
            ids.update(f"{pa}-{k}" for k in range(int(na), int(nb) + 1))
    return ids


def bad_ranges(item):
    """'ABC-5 to ABC-2'-style ranges in Unblocks that run backwards, across groups or too far."""
    return [f"{pa}-{na} to {pb}-{nb}" for pa, na, pb, nb in RANGE.findall(item.get("Unblocks"))
            if pa != pb or not 0 <= int(nb) - int(na) <= LONGEST_RANGE]


# ---------------------------------------------------------------- rules
# Each rule takes a Doc and yields (line, rule, message).

RULES = []


def rule(fn):
    """Register a rule: a function of a Doc that yields (line, rule, message)."""
    RULES.append(fn)
    return fn


@rule
def parse_problems(doc):
    """Shape defects found while parsing (item format, unknown or repeated fields, duplicate IDs)."""
    yield from doc.problems


@rule
def structure(doc):
    """The required sections and the Stage and Party tables exist."""
    for title in (HOWTO, START, ROUTER, CHECKLIST, REFERENCES):
        if not doc.section(title):
            yield 1, "structure", f"no '## {title}' section"
    if not doc.stages:
        yield 1, "structure", f"no `{STAGE_TABLE}` table (backticked values) under '## {HOWTO}'"
    if not doc.parties:
        yield 1, "structure", f"no `{PARTY_TABLE}` table (backticked values) under '## {HOWTO}'"
    if doc.section(CHECKLIST) and not doc.groups:
        yield doc.section(CHECKLIST)[0], "structure", "no group headings like '### Name (ABC)'"


@rule
def heading_spacing(doc):
    """Every heading has a blank line before it (pandoc and some renderers need it)."""
    for n, _, _ in doc.headings:
        if n > 1 and doc.lines[n - 2].strip():
            yield n, "heading-blank", "a heading needs a blank line before it"


@rule
def item_shape(doc):
    """Each item has a declared prefix, its own anchor, a first line, and every required field."""
    for item in doc.items.values():
        prefix = item.id.split("-")[0]
        if doc.groups and prefix not in doc.groups:
            yield item.line, "undeclared-prefix", f"{item.id}: no '### ... ({prefix})' group heading"
        elif doc.groups and prefix != item.group:
            where = f"under the ({item.group}) group" if item.group else "outside its group"
            yield item.line, "wrong-group", f"{item.id} sits {where}; it belongs under line {doc.groups[prefix]}"
        if item.anchor != item.id.lower():
            yield item.line, "item-anchor", f'{item.id} needs <a id="{item.id.lower()}"></a> before its ID'
        for label in REQUIRED:
            value, line = item.fields.get(label, (None, item.line))
            if value is None:
                yield item.line, "missing-field", f"{item.id}: no {label} field"
            elif not value:
                yield line, "missing-field", f"{item.id}: {label} is empty"


@rule
def stage_and_party(doc):
    """Stage is one declared stage; From starts with one declared party."""
    for item in doc.items.values():
        value, line = item.fields.get("Stage", ("", item.line))
        if value and doc.stages and (item.stage not in doc.stages or
                                     not re.fullmatch(r"`[^`]+`\.?", value)):
            yield line, "bad-stage", f"{item.id}: Stage must be one backticked value of {doc.stages}"
        value, line = item.fields.get("From", ("", item.line))
        if value and doc.parties and item.party not in doc.parties:
            yield line, "bad-party", f"{item.id}: From must start with one of {doc.parties}"


@rule
def conditions(doc):
    """Every Applies parses and names only routing items, their parts and declared answers."""
    routing = doc.routing()
    for item in doc.items.values():
        value, line = item.fields.get("Applies", ("", item.line))
        if not value:
            continue
        text = item.condition_text
        if text is None:
            yield line, "condition", f"{item.id}: Applies must be one backticked condition or `always`"
            continue
        try:
            tree = parse_condition(text)
        except ConditionError as e:
            yield line, "condition", f"{item.id}: {e}"
            continue
        for message in condition_problems(tree, routing):
            yield line, "condition", f"{item.id}: {message}"
        preamble = doc.preambles.get(item.id.split("-")[0])
        if preamble and tree != ("always",) and not starts_with(tree, preamble[0]):
            yield line, "preamble", (f"{item.id}: Applies must be the group's condition "
                                     f"`{preamble[0]}`, or it followed by 'and ...'")


def starts_with(tree, group_text):
    """True if `tree` is the group's condition, or that condition followed by 'and ...'."""
    try:
        group = parse_condition(group_text)
    except ConditionError:
        return False
    head = group[1] if group[0] == "and" else [group]
    return tree == group or (tree[0] == "and" and tree[1][:len(head)] == head)


@rule
def preamble_conditions(doc):
    """An item in a group with an "Applies to this group" preamble keeps that condition."""
    routing = doc.routing()
    for prefix, (text, line) in doc.preambles.items():
        try:
            problems = list(condition_problems(parse_condition(text), routing))
        except ConditionError as e:
            problems = [str(e)]
        for message in problems:
            yield line, "condition", f"({prefix}) group condition: {message}"
        members = [it for it in doc.items.values() if it.group == prefix and it.stage != "void"]
        if members and all(it.condition_text == "always" for it in members):
            yield line, "preamble", f"({prefix}) states a group condition but no item carries it"


@rule
def answers(doc):
    """Answer lines are well formed, match their box, and a routing answer is declared."""
    routing = doc.routing()
    for item in doc.items.values():
        value, line = item.fields.get("Answer", (None, item.line))
        if value is None:
            if item.ticked and item.stage != "void":
                yield item.line, "answer", f"{item.id} is ticked but has no Answer"
            continue
        if not item.ticked:
            yield item.line, "answer", f"{item.id} has an Answer but its box is not ticked"
        for message in answer_text_problems(value):
            yield line, "answer", f"{item.id}: {message}"
        if item.id in routing:
            for message in answer_problems(item.id, item.answer_tokens, routing[item.id]):
                yield line, "answer", message


@rule
def secrets(doc):
    """Nothing in the file looks like secret material."""
    for n, line in enumerate(doc.lines, 1):
        what = secret_in(line)
        if what:
            yield n, "secret", f"this looks like {what}; {CONFIDENTIAL}"


@rule
def unblock_order(doc):
    """No item unblocks an item of an earlier stage; Unblocks has no cycle or bad range."""
    order = {s: i for i, s in enumerate(doc.stages)}
    edges = {}
    for item in doc.items.values():
        if item.stage == "void":
            continue
        line = item.fields.get("Unblocks", ("", item.line))[1]
        for text in bad_ranges(item):
            yield line, "range", f"{item.id}: '{text}' must run forwards within one group"
        edges[item.id] = sorted(unblocked_ids(item) & doc.items.keys() - {item.id})
        for other in edges[item.id]:
            later = doc.items[other]
            if later.stage in order and item.stage in order and order[later.stage] < order[item.stage]:
                yield line, "stage-order", (f"{item.id} (`{item.stage}`) unblocks {other}, "
                                            f"which is needed earlier (`{later.stage}`)")
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in edges.get(node, []):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                yield doc.items[nxt].line, "cycle", "Unblocks cycle: " + " -> ".join(cycle)
            elif nxt not in state:
                yield from visit(nxt, path + [nxt])
        state[node] = "done"
    for node in edges:
        if node not in state:
            yield from visit(node, [node])


@rule
def mentions(doc):
    """IDs mentioned outside answers (Mermaid included) exist; the Start-here table lists the blockers."""
    skip = {it.line for it in doc.items.values()} | {it.fields["Answer"][1] for it in doc.items.values()
                                                      if "Answer" in it.fields}
    listed = {}
    for n, line in enumerate(doc.lines, 1):
        if n in skip or (doc.fenced[n - 1] and not in_mermaid(doc, n)):
            continue
        for iid in dict.fromkeys(ID_TOKEN.findall(line)):
            if iid.split("-")[0] not in doc.groups:
                continue
            if iid not in doc.items:
                yield n, "undefined-id", f"{iid} is not a checklist item"
            elif doc.inside(n, START) and line.startswith("|"):
                listed.setdefault(iid, n)
    blockers = {iid for iid, it in doc.items.items() if it.stage == "blocker"}
    for iid in sorted(blockers - listed.keys()):
        yield doc.items[iid].line, "blocker-list", f"{iid} is a blocker but not in the table under '## {START}'"
    for iid in sorted(listed.keys() - blockers):
        yield listed[iid], "blocker-list", f"{iid} is in the table under '## {START}' but is not a blocker"


def in_mermaid(doc, n):
    """True if line n is inside a ```mermaid fence."""
    for k in range(n - 1, 0, -1):
        m = FENCE.match(doc.lines[k - 1])
        if m:
            return m.group(2) == "mermaid" and doc.fenced[k - 1]
    return False


@rule
def links(doc):
    """Internal links land on a heading or an item; links whose text is an ID land on that item."""
    anchors, seen = set(), {}
    for _, _, title in doc.headings:
        slug = slugify(title)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    for _, line in doc.live():
        anchors.update(HTML_ANCHOR.findall(line))
    for n, line in doc.live():
        bare = CODE_SPAN.sub("", line)
        for text, target in LINK.findall(bare):
            if unquote(target) not in anchors:
                yield n, "anchor", f"#{target} matches no heading or <a id>"
            elif ID_TOKEN.fullmatch(text) and target != text.lower():
                yield n, "id-link", f"a link whose text is {text} must point to #{text.lower()}"
        if line.lstrip().startswith("|") or doc.inside(n, ROUTER):
            for iid in dict.fromkeys(ID_TOKEN.findall(LINK.sub("", bare))):
                if iid in doc.items:
                    yield n, "unlinked-id", f"{iid} here must be a link: [{iid}](#{iid.lower()})"


@rule
def profiles(doc):
    """Each profile assumes declared answers, decides every item, and shows the computed
    count and first items."""
    if doc.section(ROUTER) and len(doc.profiles) < 1:
        yield doc.section(ROUTER)[0], "profile", "no profile headings like '### Name (`key`)'"
    routing = doc.routing()
    for p in doc.profiles.values():
        missing = [f for f in PROFILE_FIELDS if f not in p.fields]
        if missing:
            yield p.line, "profile", f"profile {p.key}: no {', '.join(missing)} line"
            continue
        for iid, tokens in p.assumes().items():
            if iid not in routing:
                yield p.fields["Assumes"][1], "profile", f"profile {p.key}: {iid} is not a routing item"
            else:
                for message in answer_problems(iid, tokens, routing[iid]):
                    yield p.fields["Assumes"][1], "profile", f"profile {p.key}: {message}"
        yes, undecided, first = profile_view(doc, p)
        if undecided:
            names = ", ".join(f"{it.id} (waits on {', '.join(w) or 'a malformed Applies'})"
                              for it, w in undecided[:5])
            yield p.fields["Assumes"][1], "profile", (f"profile {p.key} leaves {len(undecided)} "
                                                      f"item(s) undecided: {names}")
        count, line = p.fields["Items that apply"]
        shown = re.match(r"\D*(\d+)", count)
        if not shown or int(shown.group(1)) != len(yes):
            said = shown.group(1) if shown else "no number"
            yield line, "profile", f"profile {p.key}: says {said}, computed {len(yes)}"
        value, line = p.fields["Answer first"]
        listed, wanted = ID_TOKEN.findall(value), [it.id for it in first]
        if listed != wanted:
            yield line, "profile", f"profile {p.key}: first items should be {', '.join(wanted) or 'none'}"


@rule
def references(doc):
    """Every standard cited by number is listed under References."""
    refs = doc.section(REFERENCES)
    listed = {" ".join(m.groups()) for n, line in doc.live() if refs and refs[0] <= n < refs[1]
              for m in SPEC.finditer(line)}
    for n, line in doc.live():
        if refs and refs[0] <= n < refs[1]:
            continue
        for m in SPEC.finditer(line):
            spec = " ".join(m.groups())
            if spec not in listed:
                listed.add(spec)
                yield n, "reference", f"{spec} is cited but not listed under '## {REFERENCES}'"


@rule
def leftovers(doc):
    """No placeholder words or stale commands remain."""
    for n, line in doc.live():
        for word in dict.fromkeys(PLACEHOLDER.findall(line)):
            yield n, "placeholder", f"placeholder '{word}' left in the text"
    text = "\n".join(doc.lines)
    for command in COMMANDS:
        if command not in text:
            yield len(doc.lines), "commands", f"the document never gives the command '{command}'"


def check(doc):
    """All defects of a Doc, sorted by line."""
    return sorted({d for rule_fn in RULES for d in rule_fn(doc)})


# ---------------------------------------------------------------- answers

CONFIDENTIAL = ("confidential material is sent through a confidential channel and only a pointer "
                "(ID, date, recipient) is recorded here: see 'Answering' in README.md")
HEX_RUN = re.compile(r"[0-9A-Fa-f]{32,}")
HASH_LABEL = re.compile(r"(sha-?(1|224|256|384|512)|sha3-\d+|blake2[bs]?|md5|commit)\s*[:=]?\s*$", re.I)
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
KEY_MARKERS = re.compile(r"-----BEGIN [A-Z0-9 ]*-----|PRIVATE KEY-----|PuTTY-User-Key-File|AGE-SECRET-KEY-")
NOT_NEEDED = re.compile(r"^not needed\b[\s:;,.()\u2014-]*(.*)$", re.I)


def secret_in(text):
    """What secret material `text` seems to hold (a short description), or None."""
    if KEY_MARKERS.search(text):
        return "a private key or PEM block"
    if any(not HASH_LABEL.search(text[:m.start()]) for m in HEX_RUN.finditer(text)):
        return "a key (32 or more hex digits in a row, like a subscriber key K or OPc)"
    for run in BASE64_RUN.findall(text):
        if re.search(r"\d", run) and re.search(r"[a-z]", run) and re.search(r"[A-Z]", run):
            return "encoded key material (a long base64 run)"
    return None


def answer_text_problems(value):
    """Problems of a recorded Answer's text, whatever the item."""
    m = NOT_NEEDED.match(value)
    if not value:
        return ["the Answer is empty"]
    if m and len(m.group(1).strip()) < 3:
        return ["'not needed' must give its reason, for example 'not needed: no radio in this laboratory'"]
    return []


def unsafe_text(cell):
    """Why a CSV answer cell cannot be written into a Markdown field line, or None."""
    if re.search(r"[\x00-\x1f\x7f]", cell):
        return "an answer must be one line of text (no line breaks or control characters)"
    if re.match(r"(#+|[-*+>|]|\d+[.)])(\s|$)", cell):
        return "an answer may not start with a list, heading, quote or table marker"
    if re.search(r"<[A-Za-z!/?]", cell):
        return "an answer may not contain HTML"
    if cell.count("`") % 2:
        return "an answer has an unmatched backtick"
    return None


def format_answer(item, cell):
    """(text to record, problems) for a CSV answer cell addressed to `item`."""
    what = secret_in(cell)
    problem = f"{item.id}: this looks like {what}; {CONFIDENTIAL}" if what else unsafe_text(cell)
    if problem:
        return None, [problem if problem.startswith(item.id) else f"{item.id}: {problem}"]
    declared = item.declared
    if not declared:
        return cell, [f"{item.id}: {m}" for m in answer_text_problems(cell)]
    if NOT_NEEDED.match(cell):
        return None, [f"{item.id} is a routing item: answer with one of {declared.values}, not 'not needed'"]
    tokens_part, _, comment = cell.partition(";")
    tokens_part = re.sub(r"\s*=\s*", "=", tokens_part.strip())
    tokens = [canonical(tok.strip("`"), declared) for tok in re.split(r"[,\s]+", tokens_part) if tok.strip("`")]
    problems = answer_problems(item.id, tokens, declared)
    if "`" in comment:
        problems.append(f"{item.id}: the comment after ';' may not contain backticks")
    text = ", ".join(f"`{tok}`" for tok in tokens) + (f"; {comment.strip()}" if comment.strip() else "")
    return text, problems


def canonical(token, declared):
    """The declared spelling of a token typed in any letter case ('Teaching' -> 'teaching')."""
    spelled = {v.lower(): v for v in declared.values + declared.parts}
    if "=" in token:
        part, value = token.split("=", 1)
        return f"{spelled.get(part.lower(), part)}={spelled.get(value.lower(), value)}"
    return spelled.get(token.lower(), token)


def read_answers(path):
    """([(csv line, id, answer)], problems) from a CSV with 'id' and 'answer' columns."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        return [], [(0, f"cannot read: {e.strerror}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return [], [(raw[:e.start].count(b"\n") + 1, "not UTF-8 text: save the sheet as 'CSV UTF-8'")]
    if "\x00" in text:
        return [], [(text[:text.index("\x00")].count("\n") + 1, "not a CSV file (it holds binary data)")]
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows, problems, start = [], [], 1
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
        missing = [name for name in ("id", "answer") if name not in header]
        if missing:
            return [], [(1, f"no {' or '.join(repr(m) for m in missing)} column in the header line "
                            "(export one with: items --format csv)")]
        repeated = sorted({name for name in ("id", "answer") if header.count(name) > 1})
        if repeated:
            return [], [(1, f"the header names {' and '.join(repr(r) for r in repeated)} more than once")]
        id_col, answer_col = header.index("id"), header.index("answer")
        start = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row[len(header):]):
                problems.append((start, f"more cells than the header has columns ({len(row)} for "
                                        f"{len(header)}); quote an answer that contains '{delimiter}'"))
            elif any(cell.strip() for cell in row):
                cells = row + [""] * (len(header) - len(row))
                rows.append((start, cells[id_col], cells[answer_col]))
            start = reader.line_num + 1
    except csv.Error as e:
        problems.append((start, f"not valid CSV: {e}"))
    return rows, problems


def known_rows(doc, rows, problems):
    """(line, item, answer) for CSV rows with a non-empty answer; unknown or repeated IDs go to problems."""
    seen = {}
    for line, raw_id, cell in rows:
        iid, cell = raw_id.strip().upper(), cell.strip()
        if iid not in doc.items:
            problems.append((line, f"'{raw_id.strip()}' is not an item of the checklist"))
        elif iid in seen:
            problems.append((line, f"{iid} appears twice (first at line {seen[iid]})"))
        else:
            seen[iid] = line
            if cell:
                yield line, doc.items[iid], cell


def plan_answers(doc, rows, replace):
    """({id: text to record}, problems) for CSV rows; same answer again is a no-op."""
    changes, problems = {}, []
    for line, item, cell in known_rows(doc, rows, problems):
        iid = item.id
        text, messages = format_answer(item, cell)
        problems += [(line, m) for m in messages]
        existing = item.get("Answer")
        if messages or text == existing:
            continue
        if existing and not replace:
            problems.append((line, f"{iid} already has a different answer ('{existing}'); "
                                   "use --replace to overwrite it"))
            continue
        changes[iid] = text
    return changes, problems


def apply_answers(doc, changes):
    """The document's text with each item ticked and its Answer line set."""
    lines = list(doc.lines)
    for iid in sorted(changes, key=lambda i: -doc.items[i].line):
        item = doc.items[iid]
        answer_line = f"  - **Answer:** {changes[iid]}"
        if "Answer" in item.fields:
            lines[item.fields["Answer"][1] - 1] = answer_line
        else:
            lines.insert(field_block_end(lines, item.line), answer_line)
        lines[item.line - 1] = re.sub(r"^- \[[ xX]\]", "- [x]", lines[item.line - 1])
    return "\n".join(lines)


def write_atomically(path, original, text):
    """Replace `path` with `text` only if it still holds `original` and `text` checks clean.

    A lock file next to `path` makes a second concurrent import refuse rather than wait;
    the new text goes to a temporary file in the same folder, is parsed and checked
    again, and only then moved over `path` with os.replace.
    """
    if not path.stat().st_mode & 0o222:
        raise SystemExit(f"{path.name} is read-only; nothing written.")
    lock = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise SystemExit(f"{path.name}: another import is writing it ({lock.name} exists); nothing written. "
                         "Try again, or delete that file if no import is running.")
    except OSError as e:
        raise SystemExit(f"{path.name}: cannot write next to it ({e.strerror}); nothing written.")
    tmp = None
    try:
        try:
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", dir=path.parent,
                                             prefix=f".{path.name}.", suffix=".tmp", delete=False) as out:
                tmp = Path(out.name)
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
        except OSError as e:
            raise SystemExit(f"{path.name}: cannot write a temporary file next to it ({e.strerror}); "
                             "nothing written.")
        defects = check(parse(tmp.read_text(encoding="utf-8"), path.name))
        if defects:
            raise SystemExit("\n".join(f"the import would break the document, so nothing was written: "
                                       f"{path.name}:{n}: [{r}] {m}" for n, r, m in defects))
        if path.read_bytes() != original:
            raise SystemExit(f"{path.name} changed while importing; nothing written. Run the import again.")
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        os.close(fd)
        lock.unlink(missing_ok=True)


# ---------------------------------------------------------------- views

COLUMNS = ("id", "ask", "form", "unblocks", "from", "party", "stage", "applies", "waits_on", "note",
           "assumed", "answer")


def item_record(item, waits, assumed=None):
    """One item as a flat record; `assumed` pre-fills a routing answer from a profile."""
    answer = item.get("Answer") or (", ".join(assumed) if assumed else "")
    return {"id": item.id, "ask": item.ask, "form": item.get("Form"), "unblocks": item.get("Unblocks"),
            "from": item.get("From"), "party": item.party, "stage": item.stage,
            "applies": item.condition_text or "", "waits_on": " ".join(waits), "note": item.get("Note"),
            "assumed": "yes" if assumed and not item.get("Answer") else "", "answer": answer}


def render(records, fmt, markdown):
    """Records as CSV, JSON, or via the given Markdown function."""
    if fmt == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(records[0]) if records else COLUMNS,
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    return markdown(records)


def counted(n, noun, plural=""):
    """'1 item', '3 items': a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def items_markdown(title):
    """A Markdown renderer for item records, under `title`."""
    def markdown(records):
        out = [f"# {title}", ""]
        waiting = sum(1 for r in records if r["waits_on"])
        out.append(f"{counted(len(records), 'item')}, {waiting} of them waiting on a routing answer.")
        out.append("")
        for r in records:
            box = "x" if r["answer"] and not r["assumed"] else " "
            out.append(f"- [{box}] **{r['id']}** {r['ask']}")
            for label in ("form", "unblocks", "from", "stage", "applies", "note"):
                if r[label]:
                    out.append(f"  - **{label.capitalize()}:** {r[label]}")
            if r["waits_on"]:
                out.append(f"  - **Waits on:** {r['waits_on']}")
            if r["answer"]:
                out.append(f"  - **{'Assumed, not recorded' if r['assumed'] else 'Answer'}:** {r['answer']}")
        return "\n".join(out) + "\n"
    return markdown


def routing_answers(doc, args):
    """(answers, title) from --profile, or --answers over the recorded answers, or the recorded answers."""
    if args.profile:
        return doc.profiles[args.profile].assumes(), f"profile `{args.profile}`"
    if args.answers:
        return {**doc.recorded_answers(), **answers_in_csv(doc, args.answers)[0]}, f"the answers in {args.answers}"
    return doc.recorded_answers(), "the answers recorded so far"


def answers_in_csv(doc, path):
    """({id: tokens} of the routing answers, {ids answered at all}) in a CSV, read as `import`
    reads them; nothing is written."""
    rows, problems = read_answers(path)
    answers, answered = {}, set()
    for line, item, cell in list(known_rows(doc, rows, problems)):
        answered.add(item.id)
        if item.declared:
            text, more = format_answer(item, cell)
            problems += [(line, message) for message in more]
            answers[item.id] = BACKTICKED.findall(text or "")
    if problems:
        raise SystemExit(csv_problems(path, problems))
    return answers, answered


def csv_problems(path, problems):
    """One 'path:line: message' per problem, sorted; line 0 (the file as a whole) shows no number."""
    return "\n".join(f"{path}:{line}: {message}" if line else f"{path}: {message}"
                     for line, message in sorted(problems))


def cmd_items(doc, args):
    """`items`: the items that apply, filtered by party, stage or involvement."""
    answers, source = routing_answers(doc, args)
    seed = answers if args.profile or args.answers else {}
    records = [item_record(it, waits, seed.get(it.id)) for it, verdict, waits in applicable(doc, answers)
               if verdict is not False
               and (not args.party or it.party == args.party)
               and (not args.involving or it.involves(args.involving))
               and (not args.stage or it.stage == args.stage)]
    title = f"Items that apply, given {source}" + "".join(
        f", {label} `{value}`" for label, value in (("party", args.party), ("involving", args.involving),
                                                     ("stage", args.stage)) if value)
    return render(records, args.format, items_markdown(title))


def cmd_profiles(doc, args):
    """`profiles`: each profile with its item count."""
    records = []
    for p in doc.profiles.values():
        yes, undecided, first = profile_view(doc, p)
        records.append({"profile": p.key, "name": p.name, "items": len(yes),
                         "undecided": len(undecided), "first": " ".join(it.id for it in first)})

    def markdown(rows):
        width = max((len(r["profile"]) for r in rows), default=7)
        return "".join(f"{r['profile']:<{width}}  {r['items']:>3} items  {r['name']}\n" for r in rows)
    return render(records, args.format, markdown)


STATES = ("answered", "not needed", "open", "waiting")


def item_state(item, verdict, given=()):
    """'waiting', 'open', 'not needed' or 'answered'; `given` holds IDs answered outside the file."""
    if verdict is None:
        return "waiting"
    if item.id in given:
        return "answered"
    answer = item.get("Answer")
    if not answer:
        return "open"
    return "not needed" if NOT_NEEDED.match(answer) else "answered"


def count_table(rows, key, values):
    """A Markdown table of item states counted by `key` (stage or party)."""
    head = [f"| {key.capitalize()} | " + " | ".join(s.capitalize() for s in STATES) + " |",
            "|---|" + "--:|" * len(STATES)]
    body = [f"| `{v}` | " + " | ".join(str(sum(1 for r in rows if r[key] == v and r["state"] == s))
                                       for s in STATES) + " |"
            for v in values if any(r[key] == v for r in rows)]
    total = "| total | " + " | ".join(str(sum(1 for r in rows if r["state"] == s)) for s in STATES) + " |"
    return "\n".join(head + body + [total])


def cmd_status(doc, args):
    """`status`: progress by stage and party, open blockers, and what to answer next."""
    answers, source = routing_answers(doc, args)
    given = answers_in_csv(doc, args.answers)[1] if args.answers else set()
    rows = applicable(doc, answers)
    records = [{"id": it.id, "ask": it.ask, "stage": it.stage, "party": it.party,
                "state": item_state(it, verdict, given), "waits_on": " ".join(waits)}
               for it, verdict, waits in rows if verdict is not False]
    not_applying = sum(1 for _, verdict, _ in rows if verdict is False)

    def markdown(recs):
        recorded = "; ".join(f"{i} " + ", ".join(f"`{t}`" for t in toks) for i, toks in answers.items())
        verdicts = {it.id: verdict for it, verdict, _ in rows}
        missing = [i for i in doc.routing() if i not in answers and verdicts.get(i) is not False]
        blockers = [r for r in recs if r["stage"] == "blocker" and r["state"] in ("open", "waiting")]
        upcoming = [r for r in recs if r["stage"] != "blocker" and r["state"] == "open"][:5]
        out = [f"# Progress of {doc.path}, given {source}", "",
               f"Routing answers: {recorded or 'none'}. Still to answer: {', '.join(missing) or 'none'}.",
               f"{counted(len(recs), 'item')} apply or may apply; {not_applying} do not apply to these answers."
               + (" Waiting: the item's Applies needs a routing answer not yet given."
                  if any(r["state"] == "waiting" for r in recs) else ""), "",
               count_table(recs, "stage", doc.stages), "", count_table(recs, "party", doc.parties), "",
               "## Open blockers, in order", ""]
        out += [f"{k}. {r['id']}: {r['ask']} ({r['party']}" +
                (f"; waits on {r['waits_on']})" if r["waits_on"] else ")") for k, r in enumerate(blockers, 1)]
        out += ([] if blockers else ["None."]) + ["", "## Next to answer", ""]
        out += [f"{k}. {r['id']}: {r['ask']} ({r['party']}, `{r['stage']}`)" for k, r in enumerate(upcoming, 1)]
        return "\n".join(out + ([] if upcoming else ["Nothing open beyond the blockers."])) + "\n"
    return render(records, args.format, markdown)


def cmd_import(doc, args):
    """`import`: record the answers of a CSV, refusing the whole file on any problem."""
    path = (Path(args.file) if args.file else DEFAULT_FILE).resolve()    # a symlink's target is written
    original = path.read_bytes()
    doc = parse(original.decode("utf-8"), doc.path)    # exactly the bytes write_atomically compares
    defects = check(doc)
    if defects:
        raise SystemExit(f"{doc.path} fails its own check ({counted(len(defects), 'defect')}; run 'check'); "
                         "fix it before importing. Nothing written.")
    rows, problems = read_answers(args.answers)
    changes, more = plan_answers(doc, rows, args.replace) if not problems else ({}, [])
    problems += more
    if problems:
        raise SystemExit(csv_problems(args.answers, problems)
                         + f"\n{counted(len(problems), 'problem')}; {doc.path} not changed.")
    if not changes:
        return f"{doc.path}: nothing to record (no new answers).\n"
    text = apply_answers(doc, changes)
    if b"\r\n" in original:
        text = text.replace("\n", "\r\n")                 # keep the file's line endings
    defects = check(parse(text, doc.path))
    if defects:
        csv_line = {iid: line for line, iid, _ in ((ln, i.strip().upper(), a) for ln, i, a in rows)}
        owner = owners(parse(text, doc.path), changes)
        raise SystemExit("\n".join(f"{args.answers}:{csv_line.get(owner.get(n), '?')}: this answer would break "
                                   f"the document ([{rule}] {message})" for n, rule, message in defects)
                         + f"\n{doc.path} not changed.")
    write_atomically(path, original, text)
    late = not_applying(parse(text, doc.path), changes)
    verb = "does" if len(late) == 1 else "do"
    note = f" Note: {', '.join(late)} {verb} not apply to the routing answers recorded." if late else ""
    return f"{doc.path}: recorded {counted(len(changes), 'answer')}: {', '.join(sorted(changes))}.{note}\n"


def owners(doc, changes):
    """{line: id} for the item lines and Answer lines of the items just answered."""
    out = {}
    for iid in changes:
        item = doc.items.get(iid)
        if item:
            out[item.line] = iid
            out[item.fields.get("Answer", (None, item.line))[1]] = iid
    return out


def not_applying(doc, changes):
    """IDs among `changes` whose Applies is false for the routing answers now recorded."""
    verdicts = {it.id: verdict for it, verdict, _ in applicable(doc, doc.recorded_answers())}
    return sorted(iid for iid in changes if verdicts.get(iid) is False)


# ---------------------------------------------------------------- command line

def load(path):
    """Parse the checklist (README.md by default); exit with a clear message if it cannot be read."""
    shown = path or "README.md"
    try:
        raw = Path(path or DEFAULT_FILE).read_bytes()
        return parse(raw.decode("utf-8"), shown)     # as `import` reads it: no newline translation
    except OSError as e:
        raise SystemExit(f"{shown}: cannot read: {e.strerror}")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise SystemExit(f"{shown}:{line}: not UTF-8 text")


def cmd_check(doc, args):
    """`check`: every rule over the document; exit 1 on any defect."""
    defects = check(doc)
    out = "".join(f"{doc.path}:{line}: [{name}] {message}\n" for line, name, message in defects)
    if defects:
        sys.stdout.write(out)
        raise SystemExit(1)
    return f"{doc.path}: OK ({len(doc.items)} items, {len(doc.groups)} groups, {len(doc.profiles)} profiles)\n"


def build_parser():
    """The argparse parser: one subcommand per view, shared --file, --format and routing options."""
    parser = argparse.ArgumentParser(prog="checklist.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--file", help="the checklist (default: README.md next to tools/)")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=("md", "csv", "json"), default="md")
    sub.add_parser("check", parents=[common], help="check the document; exit 1 on any defect")
    sub.add_parser("profiles", parents=[common, fmt], help="the profiles and their item counts")
    route = argparse.ArgumentParser(add_help=False)
    choice = route.add_mutually_exclusive_group()
    choice.add_argument("--profile", help="route with this profile's answers instead of the recorded ones")
    choice.add_argument("--answers", metavar="CSV", help="route with the answers in this CSV "
                        "(as 'import' reads it) over the recorded ones; nothing is written")
    items = sub.add_parser("items", parents=[common, fmt, route], help="the items that apply")
    items.add_argument("--party", help="only items this party is accountable for")
    items.add_argument("--involving", help="only items whose From names this party at all")
    items.add_argument("--stage", help="only items of this stage")
    sub.add_parser("status", parents=[common, fmt, route], help="progress, given the answers recorded so far")
    imp = sub.add_parser("import", parents=[common], help="record the answers of a CSV in the checklist")
    imp.add_argument("answers", help="a CSV with 'id' and 'answer' columns (as 'items --format csv' writes)")
    imp.add_argument("--replace", action="store_true", help="overwrite answers already recorded")
    return parser


def main(argv=None):
    """Run one command and print its output."""
    args = build_parser().parse_args(argv)
    doc = load(args.file)
    for option, known in (("profile", doc.profiles), ("party", doc.parties), ("involving", doc.parties),
                          ("stage", doc.stages)):
        value = getattr(args, option, None)
        if value and value not in known:
            raise SystemExit(f"unknown --{option} '{value}'; choose from: {', '.join(known)}")
    commands = {"check": cmd_check, "profiles": cmd_profiles, "items": cmd_items,
                "status": cmd_status, "import": cmd_import}
    sys.stdout.write(commands[args.command](doc, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
