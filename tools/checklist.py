#!/usr/bin/env python3
"""The checklist's own program: Python 3.8 or later, standard library only.

    python3 tools/checklist.py check    [--list-rules] [--format md|json] [--file PATH]
    python3 tools/checklist.py profiles [--show KEY] [--format md|csv|json] [--file PATH]
    python3 tools/checklist.py items    [--profile KEY] [--answers CSV] [--party P | --involving P]
                                        [--stage S] [--format md|csv|json] [--file PATH]
    python3 tools/checklist.py status   [--profile KEY] [--answers CSV] [--format md|csv|json] [--file PATH]
    python3 tools/checklist.py stats    [--format md|csv|json] [--file PATH]
    python3 tools/checklist.py import   ANSWERS.csv [--replace] [--file PATH]
    python3 tools/checklist.py form     [--profile KEY] [--party P] [--answers CSV] [--file PATH] [-o FILE]

Exit codes: 0 done; 1 the checklist has defects (check), or the input was refused and nothing
was written (import, --answers; a CSV that cannot be read is refused input); 2 the command could
not run as asked: a usage error (an unknown option, profile, party or stage, an empty value) or
a checklist that cannot be read.

Shape, in file order: format (section titles and every regex); model (`Item`, `Role`, `Profile`,
`Doc` and small named tuples); `parse()`, which reads the Markdown once into a Doc; conditions
(`parse_condition`, `evaluate`) and routing (`applicable`, `role_of`, `profile_view`); answer
validation (`text_problems`, `secret_in`, `format_answer`); rules, each declaring its codes with
`@rule(...)`; import (CSV reading, planning, atomic writing); views; and `main()`, a thin argparse
layer and the only place that prints or exits. To add a rule: write a function of a Doc that yields
`Defect`s, register it with `@rule("its-code", ...)`, and add a one-defect case to the tests;
`check --list-rules` lists every code. The default file is README.md next to tools/.
"""
import argparse
import collections
import contextlib
import csv
import functools
import io
import json
import math
import os
import re
import select
import shutil
import signal
import stat
import statistics
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional, Tuple
from urllib.parse import unquote

try:
    import fcntl                       # POSIX: a lock the kernel drops when its process dies
except ImportError:                    # pragma: no cover (Windows)
    fcntl = None

# ---------------------------------------------------------------- format

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "README.md"
START, ROUTER, ROLES, HOWTO, CHECKLIST, ASSUMED, REFERENCES = (
    "Start here", "Which items apply to you", "Answering in your role", "How to use this checklist",
    "The checklist", "Profiles: the answers each assumes", "References")
REQUIRED_SECTIONS = (START, ROUTER, ROLES, HOWTO, CHECKLIST, ASSUMED, REFERENCES)
TEXT_FIELDS = ("Form", "Unblocks", "Note", "Answer")
REQUIRED_FIELDS = ("Form", "Unblocks")
MAX_ITEM_WORDS = 120
MAX_ANSWER_CHARS = 2000
MAX_CSV_BYTES = 16 * 1024 * 1024
MAX_CSV_ROWS = 10_000
FIFO_WAIT = 10                         # seconds a CSV that is a FIFO may take to give its data
MAX_NESTING = 50
MAX_PROBLEMS = 200                     # refused input: problems collected, and shown
MAX_PROBLEMS_SHOWN = 50
FIRST_ITEMS = 7
COMMANDS = ("python3 tools/checklist.py items --profile", "bash .ci/run")

# A heading, matched on the line without its trailing spaces (linear time): '## Title', '### Name (ABC) ##'
HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*))?")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*(\w*)")
# An item's first line:  - [ ] <a id="lic-4"></a>**LIC-4** The rights granted for each licensed item.
ITEM = re.compile(r'^- \[(?P<box>[ xX])\] (?:<a id="(?P<anchor>[^"]*)"></a>)?'
                  r'\*\*(?P<id>[A-Z]{2,4}-[1-9][0-9]*)\*\* (?P<ask>\S.*)$')
ITEM_START = re.compile(r"^- \[(?![^\]]*\][(\[])")     # a task-list bullet, not "- [text](#link)"
# A field line:          - **Form:** a list of ...
FIELD = re.compile(r"^  - \*\*(?P<label>[A-Za-z][A-Za-z ]*):\*\*[ \t]*(?P<value>.*)$")
# The meta line:         - `design` · counsel, with licensor · if `licensed and holder`
META = re.compile(r"^  - `(?P<stage>[^`]*)`(?: · (?P<source>[^·`]+?))?(?: · if `(?P<cond>[^`]*)`)?[ \t]*$")
ANY_BULLET = re.compile(r"^\s*[-*+][ \t]")
LOOSE_FIELD = re.compile(r"^\s*[-*+]?\s*(?:\*\*)?(?P<label>[A-Za-z][A-Za-z ]*?)(?:\*\*)?\s*:")
LOOSE_ID = re.compile(r"\b([A-Z]{2,4}-[1-9][0-9]*)\b")
ID_TOKEN = re.compile(r"\b[A-Z]{2,4}-\d+\b")
GROUP = re.compile(r"\(([A-Z]{2,4})\)$")
SPEC = re.compile(r"\b(TS|TR)[ \u00a0](\d{2}\.\d{3}(?:-\d+)?)\b")
PLACEHOLDER = re.compile(r"\b(TODO|FIXME|XXX|TBD)\b")
LINK = re.compile(r"\[([^\]\[]*)\]\(#([^)\s]+)\)")       # no '[' inside link text: linear time
HTML_ANCHOR = re.compile(r"""<a\s+(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
CODE_SPAN = re.compile(r"`[^`]*`")
BACKTICKED = re.compile(r"`([^`]+)`")
# An item ID with a lettered part, as the checklist writes it: 'LIC-6(b)' (a CSV gives it no row of its own)
LETTERED = re.compile(r"([A-Za-z]{2,4}-[1-9][0-9]*) *\(([A-Za-z])\)")
TEST_ID = re.compile(r"^([A-Z]{2,4}-[1-9][0-9]*)(?:\.([a-z][a-z0-9-]*))?$")
NAME = re.compile(r"^[a-z][a-z0-9-]*$")
RANGE = re.compile(r"\b([A-Z]{2,4})-(\d+) to ([A-Z]{2,4})-(\d+)\b")
LONGEST_RANGE = 100


# ---------------------------------------------------------------- model

class Defect(NamedTuple):
    """One finding of `check`: printed as 'path:line: [code] message'."""
    line: int
    code: str
    message: str


class Problem(NamedTuple):
    """One refused input: a CSV line (0: the file as a whole) and why."""
    line: int
    message: str


class Field(NamedTuple):
    value: str
    line: int


class Refusal(Exception):
    """A request the program will not carry out; main() prints it and exits with `code`."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


@dataclass
class Declared:
    """The answers a routing item accepts: `one` token, `many` tokens, or one value per part."""
    kind: str
    values: list
    parts: list = field(default_factory=list)


@dataclass
class Item:
    """One checklist item: ID, first line, box, anchor, group, fields, and its meta line."""
    id: str
    line: int
    ask: str
    ticked: bool
    anchor: str
    group: Optional[str]
    end: int = 0                                   # 0-based index just past its field lines
    fields: dict = field(default_factory=dict)     # label -> Field
    stage: str = ""
    source: str = ""                               # who answers: "counsel, with licensor"
    condition: str = ""                            # the item's own condition ("" = none)
    meta_line: int = 0

    def get(self, label):
        return self.fields[label].value if label in self.fields else ""

    def line_of(self, label):
        return self.fields[label].line if label in self.fields else self.line

    @property
    def party(self):
        """The accountable party: the first word of the source."""
        words = re.findall(r"[a-z]+", self.source.lower())
        return words[0] if words else ""

    def involves(self, party):
        return party in re.findall(r"[a-z]+", self.source.lower())

    @property
    def void(self):
        return self.stage == "void"

    @functools.cached_property
    def declared(self):
        """The Form's declared answers, if this is a routing item (read once, after parsing)."""
        form = self.get("Form")
        m = re.match(r"for each part, one of (.*?)\. Parts: (.*)$", form, re.I)
        if m:
            return Declared("parts", unique(BACKTICKED.findall(m.group(1))), BACKTICKED.findall(m.group(2)))
        m = re.match(r"(one or more of|one of):\s*(.*)$", form, re.I)
        if m and BACKTICKED.search(m.group(2)):
            kind = "many" if m.group(1).lower() == "one or more of" else "one"
            return Declared(kind, unique(BACKTICKED.findall(m.group(2))))
        return None


@dataclass
class Role:
    """A row of 'Answering in your role': who it is, when it applies, and its answering rule."""
    key: str
    condition: str
    rule: str
    line: int

    @property
    def label(self):
        """The label of the item lines that state this role's exception: 'Software maker'."""
        return self.key.replace("-", " ").capitalize()


@dataclass
class Profile:
    """A typical requester: the router row (who, item count) and its assumed routing answers."""
    key: str
    who: str
    line: int
    count: str = ""
    assumes: dict = field(default_factory=dict)    # id -> [tokens]
    assumes_line: int = 0


class Output(NamedTuple):
    """What a command returns to main(): its text, its exit code, and a note for stderr."""
    text: str
    code: int = 0
    note: str = ""


class Row(NamedTuple):
    line: int
    cells: list


@dataclass
class Doc:
    """The whole checklist, parsed once, with line numbers."""
    path: str
    lines: list
    fenced: list
    headings: list = field(default_factory=list)     # (line, level, title)
    sections: dict = field(default_factory=dict)     # level-2 title -> (first, end)
    stages: list = field(default_factory=list)
    parties: list = field(default_factory=list)
    names: dict = field(default_factory=dict)        # condition name -> Field(text, line)
    roles: list = field(default_factory=list)
    groups: dict = field(default_factory=dict)       # prefix -> heading line
    preambles: dict = field(default_factory=dict)    # prefix -> Field(condition, line)
    items: dict = field(default_factory=dict)        # id -> Item, document order
    profiles: dict = field(default_factory=dict)     # key -> Profile
    start_ids: list = field(default_factory=list)    # Row per Start-here ID: (line, [id])
    problems: list = field(default_factory=list)     # Defects found while parsing
    raw: bytes = b""                                 # the file's bytes, as read (import compares them)
    real_path: Optional[Path] = None                 # the file import writes (a symlink's target)
    _names: Optional[dict] = None                    # caches: named-condition trees,
    _trees: dict = field(default_factory=dict)       # item condition trees,
    _order: list = field(default_factory=list)       # and the working order

    def live(self):
        return ((n, line) for n, line in enumerate(self.lines, 1) if not self.fenced[n - 1])

    def section(self, title):
        """(first, end) line numbers of the '## title...' section, or None."""
        return next((bounds for name, bounds in self.sections.items() if name.startswith(title)), None)

    def inside(self, n, title):
        sec = self.section(title)
        return sec is not None and sec[0] <= n < sec[1]

    def routing(self):
        return {iid: it.declared for iid, it in self.items.items() if not it.void and it.declared}

    def recorded(self):
        """{id: tokens} for routing items that carry an Answer."""
        routing = self.routing()
        return {iid: BACKTICKED.findall(self.items[iid].get("Answer"))
                for iid in routing if self.items[iid].get("Answer")}

    def role_labels(self):
        return {role.label for role in self.roles}


def unique(values):
    """The values in their order, each once."""
    return list(dict.fromkeys(values))


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


def tables(doc, title):
    """The tables of a section: lists of Rows, header first, separator row dropped."""
    found, rows = [], []
    sec = doc.section(title)
    for n in range(*sec) if sec else ():
        line = doc.lines[n - 1]
        if doc.fenced[n - 1]:
            continue
        if line.strip().startswith("|"):
            rows.append(Row(n, [c.strip() for c in line.strip().strip("|").split("|")]))
            continue
        if rows:
            found.append([r for k, r in enumerate(rows) if k != 1])
        rows = []
    if rows:
        found.append([r for k, r in enumerate(rows) if k != 1])
    return found


def table(doc, title, header):
    """Rows (header excluded) of the section's table whose first header cell is `header`."""
    for rows in tables(doc, title):
        if rows and rows[0].cells[0].strip("* ") == header:
            return rows[1:]
    return []


def code_cell(cell):
    """The text of a cell written as one code span, or None."""
    m = re.fullmatch(r"`([^`]+)`", cell.strip())
    return m.group(1).strip() if m else None


def parse(text, path="README.md"):
    """Read the Markdown once into a Doc; shape defects go to doc.problems."""
    lines = text.split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    doc = Doc(path, lines, fenced_lines(lines))
    for n, line in doc.live():
        m = HEADING.fullmatch(line.rstrip(" \t"))
        if m:
            doc.headings.append((n, len(m.group(1)), heading_title(m.group(2) or "")))
    tops = [(n, title) for n, level, title in doc.headings if level <= 2] + [(len(lines) + 1, None)]
    for (n, title), (end, _) in zip(tops, tops[1:]):
        level = next(lvl for k, lvl, _ in doc.headings if k == n)
        if level == 2:
            doc.sections.setdefault(title, (n, end))
    parse_tables(doc)
    parse_items(doc)
    return doc


def heading_title(text):
    """A heading's text without its closing #s (which need a space or tab before them)."""
    bare = text.rstrip("#")
    return (bare if not bare or bare[-1] in " \t" else text).strip()


def parse_tables(doc):
    """Stages, parties, named conditions, roles, profiles and the Start-here IDs."""
    doc.stages = [v for r in table(doc, HOWTO, "Stage") if (v := code_cell(r.cells[0]))]
    doc.parties = [v for r in table(doc, HOWTO, "Party") if (v := code_cell(r.cells[0]))]
    for r in table(doc, HOWTO, "Name"):
        name, text = code_cell(r.cells[0]), code_cell(r.cells[1]) if len(r.cells) > 1 else None
        if name:
            doc.names.setdefault(name, Field(text or "", r.line))
    for r in table(doc, ROLES, "Role"):
        key = code_cell(r.cells[0])
        if key and len(r.cells) >= 3:
            doc.roles.append(Role(key, code_cell(r.cells[1]) or "", r.cells[2].strip(), r.line))
    for r in table(doc, ROUTER, "Profile"):
        key = code_cell(r.cells[0])
        if key and len(r.cells) >= 3:
            doc.profiles.setdefault(key, Profile(key, r.cells[1].strip(), r.line, r.cells[2].strip()))
    for r in table(doc, ASSUMED, "Profile"):
        key = code_cell(r.cells[0])
        if key in doc.profiles and len(r.cells) >= 2:
            profile = doc.profiles[key]
            profile.assumes_line = r.line
            for part in r.cells[1].split(";"):
                ids = ID_TOKEN.findall(LINK.sub(r"\1", part))
                if ids:
                    profile.assumes[ids[0]] = BACKTICKED.findall(part)
    for rows in tables(doc, START):
        for r in rows[1:]:
            doc.start_ids.append(Row(r.line, unique(ID_TOKEN.findall(" ".join(r.cells)))))


def parse_items(doc):
    """Groups, group conditions and items, with their field lines."""
    heading_at = {n: (level, title) for n, level, title in doc.headings}
    group, under_items = None, set()
    for n, line in doc.live():
        if n in heading_at:
            level, title = heading_at[n]
            m = GROUP.search(title)
            group = m.group(1) if level == 3 and m and doc.inside(n, CHECKLIST) else None
            if group:
                doc.groups.setdefault(group, n)
            continue
        if group and group not in doc.preambles and line.startswith("**Applies to this group:**"):
            m = BACKTICKED.search(line)
            doc.preambles[group] = Field(m.group(1).strip() if m else "", n)
        if ITEM_START.match(line):
            parse_item(doc, n, line, group if doc.inside(n, CHECKLIST) else None)
            under_items.update(range(n + 1, block_end(doc.lines, n) + 1))
    for n, line in doc.live():
        if (FIELD.match(line) or META.match(line)) and n not in under_items and doc.inside(n, CHECKLIST):
            doc.problems.append(Defect(n, "item-format", "field line is not under an item "
                                                         "(a blank line or other text separates them)"))


def block_end(lines, n):
    """0-based index just past the indented lines that follow the bullet on 1-based line n."""
    k = n
    while k < len(lines) and lines[k][:1] in (" ", "\t") and lines[k].strip():
        k += 1
    return k


def parse_item(doc, n, line, group):
    """Read the item starting on line n, with its field lines, into doc.items; return it."""
    m = ITEM.match(line)
    if m:
        iid, ticked, anchor, ask = m.group("id"), m.group("box") != " ", m.group("anchor"), m.group("ask")
    else:
        doc.problems.append(Defect(n, "item-format",
                                   "item must look like '- [ ] <a id=\"abc-1\"></a>**ABC-1** text'"))
        loose = LOOSE_ID.search(line)
        if not loose:
            return None
        found = HTML_ANCHOR.search(line)
        iid, ticked, anchor, ask = loose.group(1), False, found and found.group(1), line
    if iid in doc.items:
        doc.problems.append(Defect(n, "duplicate-id", f"{iid} is already defined at line {doc.items[iid].line}"))
        return None
    item = Item(iid, n, ask, ticked, anchor, group, end=block_end(doc.lines, n))
    labels = set(TEXT_FIELDS) | doc.role_labels()
    for k in range(n, item.end):
        text, number = doc.lines[k], k + 1
        if doc.fenced[k]:
            continue
        meta, found = META.match(text), FIELD.match(text)
        if meta:
            if item.meta_line:
                doc.problems.append(Defect(number, "duplicate-field", f"{iid}: a second meta line"))
                continue
            item.stage, item.meta_line = meta.group("stage").strip(), number
            item.source = (meta.group("source") or "").strip()
            item.condition = (meta.group("cond") or "").strip()
        elif found and found.group("label") in labels:
            label = found.group("label")
            if label in item.fields:
                doc.problems.append(Defect(number, "duplicate-field", f"{iid}: {label} appears more than once"))
            else:
                item.fields[label] = Field(found.group("value").strip(), number)
        elif found:
            doc.problems.append(Defect(number, "unknown-field", f"{iid}: unknown field '{found.group('label')}'"))
        elif (loose := LOOSE_FIELD.match(text)) and loose.group("label") in labels:
            label = loose.group("label")
            doc.problems.append(Defect(number, "item-format", f"{iid}: write the field as '  - **{label}:** text'"))
            if label != "Answer":                     # an answer in the wrong shape is not an answer
                item.fields.setdefault(label, Field(text.split(":", 1)[1].strip(" *"), number))
        elif ANY_BULLET.match(text) or text.startswith("  "):
            doc.problems.append(Defect(number, "item-format",
                                       f"{iid}: a line under an item must be '  - **Label:** text' or the "
                                       "meta line '  - `stage` · party · if `condition`', indented two spaces"))
    doc.items[iid] = item
    return item


# ---------------------------------------------------------------- conditions

class Always(NamedTuple):
    pass


class Test(NamedTuple):
    id: str
    part: Optional[str]
    op: str
    values: Tuple[str, ...]


class Not(NamedTuple):
    node: object


class All(NamedTuple):
    nodes: tuple


class Any_(NamedTuple):
    nodes: tuple


ALWAYS = Always()
KEYWORDS = ("and", "or", "not", "(", ")")


class ConditionError(ValueError):
    """A condition that does not parse."""


def parse_condition(text, names=None):
    """Parse a condition into a tree of Always, Test, Not, All and Any_ nodes.

    cond := conj ('or' conj)* ; conj := neg ('and' neg)* ; neg := 'not' neg | '(' cond ')' | NAME | test
    test := ID['.'part] ('is'|'includes') value ('or' value)*   -- an 'or' followed by a value
    (not an ID, a name, 'not' or '(') extends the value list. `always` alone means no condition.
    NAME is a named condition from `names` ({name: tree}); it stands for its tree, as if in parentheses.
    """
    names = names or {}
    if text.strip() == "always":
        return ALWAYS
    tokens = re.findall(r"[()]|[^\s()]+", text)
    if not tokens:
        raise ConditionError("the condition is empty")
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

    def chain(word, operand, node):
        terms = [operand()]
        while peek() == word:
            take()
            terms.append(operand())
        return terms[0] if len(terms) == 1 else node(tuple(terms))

    def disjunction():
        return chain("or", conjunction, Any_)

    def conjunction():
        return chain("and", negation, All)

    def negation():
        if peek() == "not":
            take()
            return Not(negation())
        if peek() == "(":
            take()
            inner = disjunction()
            take(")")
            return inner
        if peek() in names:
            return names[take()]
        return test()

    def is_value(token):
        return token is not None and token not in KEYWORDS and token not in names and not TEST_ID.match(token)

    def test():
        token = take()
        m = TEST_ID.match(token)
        if not m:
            raise ConditionError(f"'{token}' is neither an item ID nor a named condition")
        op = take()
        if op not in ("is", "includes"):
            raise ConditionError(f"expected 'is' or 'includes' after {token}, found '{op}'")
        if not is_value(peek()):
            raise ConditionError(f"expected a value after '{op}'")
        values = [take()]
        while peek() == "or" and is_value(peek(1)):
            take()
            values.append(take())
        return Test(m.group(1), m.group(2), op, tuple(values))

    tree = disjunction()
    if pos != len(tokens):
        raise ConditionError(f"unexpected '{tokens[pos]}'")
    return tree


def tests_in(tree):
    """The Test leaves of a condition tree."""
    if isinstance(tree, Test):
        yield tree
    elif isinstance(tree, Not):
        yield from tests_in(tree.node)
    elif isinstance(tree, (All, Any_)):
        for sub in tree.nodes:
            yield from tests_in(sub)


def evaluate(tree, answers):
    """True, False, or None (cannot be decided yet); answers = {id: tokens}."""
    if isinstance(tree, Always):
        return True
    if isinstance(tree, Test):
        tokens = answers.get(tree.id)
        if tokens is None:
            return None
        if tree.part:
            given = [t.split("=", 1)[1] for t in tokens if t.startswith(tree.part + "=")]
            return given[0] in tree.values if given else None
        return any(t in tree.values for t in tokens)
    if isinstance(tree, Not):
        value = evaluate(tree.node, answers)
        return None if value is None else not value
    results = [evaluate(sub, answers) for sub in tree.nodes]
    decisive = isinstance(tree, Any_)                 # True decides an 'or', False an 'and'
    if decisive in results:
        return decisive
    return None if None in results else not decisive


def condition_problems(tree, routing):
    """Messages for tests that name non-routing items, wrong operators, parts or values."""
    for test in tests_in(tree):
        declared = routing.get(test.id)
        if declared is None:
            yield f"{test.id} is not a routing item (its Form declares no answers)"
            continue
        expected = "includes" if declared.kind == "many" else "is"
        if test.op != expected:
            yield f"use '{expected}' with {test.id}"
        if declared.kind == "parts" and test.part not in declared.parts:
            yield f"{test.id} needs a part, one of {declared.parts}" if test.part is None \
                else f"{test.id} has no part '{test.part}'"
        elif declared.kind != "parts" and test.part:
            yield f"{test.id} has no parts"
        for value in test.values:
            if value not in declared.values:
                yield f"'{value}' is not an answer of {test.id} {declared.values}"


def name_trees(doc):
    """{name: tree} of the named conditions that parse (names may not use names)."""
    trees = {}
    for name, (text, _) in doc.names.items():
        try:
            trees[name] = parse_condition(text)
        except ConditionError:
            continue
    return trees


def item_tree(doc, item):
    """The item's full condition (its group's and its own), or None if either is malformed."""
    if item.id not in doc._trees:
        if doc._names is None:
            doc._names = name_trees(doc)
        names = doc._names
        parts = []
        try:
            group = doc.preambles.get(item.group)
            if group:
                parts.append(parse_condition(group.value, names))
            if item.condition:
                parts.append(parse_condition(item.condition, names))
            tree = ALWAYS if not parts else parts[0] if len(parts) == 1 else All(tuple(parts))
        except ConditionError:
            tree = None
        doc._trees[item.id] = tree
    return doc._trees[item.id]


def applies_text(doc, item):
    """The item's condition as written: group and own, joined by 'and'."""
    group = doc.preambles.get(item.group)
    parts = [text for text in (group.value if group else "", item.condition) if text]
    return " and ".join(f"({text})" for text in parts) if len(parts) > 1 else (parts[0] if parts else "always")


# ---------------------------------------------------------------- routing

class Verdict(NamedTuple):
    item: Item
    applies: Optional[bool]          # True, False, or None: waits on an unanswered routing item
    waits: tuple


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


def working_order(doc):
    """Non-void items in answering order: by stage, blockers in Start-here order, otherwise
    document order, except that an item moves after the items of its own stage that unblock it."""
    if not doc._order:
        stage_rank = {s: k for k, s in enumerate(doc.stages)}
        start = {iid: k for k, row in enumerate(doc.start_ids) for iid in row.cells}
        items = sorted((it for it in doc.items.values() if not it.void),
                       key=lambda it: (stage_rank.get(it.stage, len(stage_rank)), start.get(it.id, len(start))))
        ids = {it.id for it in items}
        waits_for = {it.id: set() for it in items}
        for it in items:
            for other in unblocked_ids(it) & ids - {it.id}:
                if doc.items[other].stage == it.stage != "blocker":
                    waits_for[other].add(it.id)
        done, pending = set(), list(items)
        while pending:
            ready = next((it for it in pending if waits_for[it.id] <= done), pending[0])   # [0]: a cycle
            pending.remove(ready)
            done.add(ready.id)
            doc._order.append(ready)
    return doc._order


def applicable(doc, answers):
    """[Verdict] for every non-void item, in working order."""
    out = []
    for item in working_order(doc):
        tree = item_tree(doc, item)
        verdict = evaluate(tree, answers) if tree is not None else None
        waits = tuple(sorted({t.id for t in tests_in(tree) if t.id not in answers})) \
            if tree is not None and verdict is None else ()
        out.append(Verdict(item, verdict, waits))
    return out


def role_of(doc, answers):
    """The first role whose condition holds for `answers` (the last role if none does)."""
    names = name_trees(doc)
    for role in doc.roles:
        try:
            if evaluate(parse_condition(role.condition, names), answers):
                return role
        except ConditionError:
            continue
    return doc.roles[-1] if doc.roles else None


def profile_view(doc, profile):
    """(applying items, undecided items, first items to answer) for a profile's answers."""
    rows = applicable(doc, profile.assumes)
    yes = [r.item for r in rows if r.applies]
    undecided = [r for r in rows if r.applies is None]
    first = [it for it in yes if it.stage != "blocker" and it.id not in profile.assumes][:FIRST_ITEMS]
    return yes, undecided, first


# ---------------------------------------------------------------- answer validation

CONFIDENTIAL = ("send confidential material through a confidential channel and record only a pointer "
                "(ID, date, recipient): see 'Answering' in README.md")
INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}
UNSEEN = INVISIBLE | {"Mn", "Me"}                    # with combining marks: categories that render as nothing
FILLERS = "\u115f\u1160\u2800\u3164\uffa0"          # Hangul and braille blanks: letters that render as nothing
JOINERS = "\u200c\u200d"                            # ZWNJ and ZWJ: Persian, Indic and emoji spelling needs them
# A character that is not printable ASCII (the only kind that may render blank)
NOT_ASCII = re.compile(r"[^ -~]")
# HTML entities, named or numeric: '&nbsp;', '&#8203;', '&#x202E;'
ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")
# A Markdown link shell, whose text is empty: '[](#req-3)'
LINK_SHELL = re.compile(r"!?\[\]\([^)]*\)")
# The middle of a Markdown inline link or image: '[text](' (an autolink <https://...> has none)
MD_LINK = re.compile(r"\]\(")
# An item ID written with a hyphen that is not ASCII: 'REQ‑4' (U+2011)
ID_LOOKALIKE = re.compile(r"(?<![A-Za-z])[A-Z]{2,4}[\u2010-\u2015\u2212][0-9]")
# A hex prefix or escape before a hex digit: '0x46', '\x46'
HEX_PREFIX = re.compile(r"(?:0[xX]|\\x)(?=[0-9A-Fa-f])")
# Markdown emphasis and code marks: they render as nothing between two halves of a key
MARKUP = re.compile(r"[*`]")
# A canonical UUID (8-4-4-4-12 hex digits): an identifier, taken out before the hex scan
UUID = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}(?![0-9A-Fa-f])")
# A full IPv6 address (eight groups of 1 to 4 hex digits): taken out before the hex scan
IPV6 = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}(?![0-9A-Fa-f:])")
# A run of hex digits 32 characters long or more: one group of more than 16, or groups of at most 16
# (whole groups) joined across separators: '465b 5ce8 b199 ...', '46:5b:5c:...'; lists of hashes stay apart
HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])(?=[0-9A-Fa-f\s:._,{}-]{32})(?:[0-9A-Fa-f]{17,}|[0-9A-Fa-f]{1,16}"
                     r"(?![0-9A-Fa-f])(?:[\s:._,{}-]+[0-9A-Fa-f]{1,16}(?![0-9A-Fa-f]))*)")
# A base64-alphabet run of hex digits only (with '-' or '_'): the hex rules judge it
HEX_ONLY = re.compile(r"[0-9A-Fa-f_-]+")
HASH_LENGTHS = (40, 56, 64, 96, 128)                # SHA-1, SHA-224, SHA-256, SHA-384, SHA-512 in hex
# A word that says a hex run of a hash's length is a digest, anywhere in the answer
HASH_WORD = re.compile(r"sha-?(?:1|224|256|384|512)|sha3|blake2|commit|digest|checksum|fingerprint|git", re.I)
# A URL: a short scheme (so the search stays linear), host, path, and the query and fragment after them
URL = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://[^/?#\s<>]*(?P<path>[^?#\s<>]*)"
                 r"(?P<rest>[^\s<>]*)")
# A run of base64 or base64url characters with its padding, and base64 written in groups of four
B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
B64_QUADS = re.compile(r"(?<![A-Za-z0-9+/_=-])(?:[A-Za-z0-9+/_-]{4} ){3,}[A-Za-z0-9+/_-]{2,4}={0,2}"
                       r"(?![A-Za-z0-9+/_=-])")
# Base32 in one letter case, 26 characters or more (a 128-bit key), with its padding
BASE32_RUN = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z2-7]{26,}|[a-z2-7]{26,})={0,6}(?![A-Za-z0-9])")
# A word in a base64-alphabet run, in one of its shapes: 'session', 'Session', 'SCTP', '5'
WORDSHAPE = re.compile(r"[a-z]+|[A-Z][a-z]+|[A-Z]+|[0-9]+")
# A camelCase identifier: 'pduSessionResourceSetupRequestTransfer', 'absoluteFrequencySSB22'
CAMEL = re.compile(r"[a-z]*(?:[A-Z][a-z]{2,}|[A-Z]{2,}(?=[A-Z][a-z]|\d|$))*\d*")
# A signed token (JWT): a base64url header, which starts '{"' ('eyJ'), and payload
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.")
# The first line of a PEM block or of another private key format, in any letter case
KEY_MARKERS = re.compile(r"-----\s*BEGIN [A-Z0-9 ]*-----|PRIVATE KEY-----|PuTTY-User-Key-File|AGE-SECRET-KEY-", re.I)
# 'not needed', in the spellings people type, and the reason after it
NOT_NEEDED = re.compile(r"^not[\s_\-\u2010-\u2015]*needed\b(?P<reason>.*)$", re.I | re.S)
# An HTML tag, comment or processing instruction; and an autolink, which is not one: '<https://...>'
HTML_TAG = re.compile(r"<(?:[A-Za-z][\w-]*(?:\s|/?>)|/[A-Za-z]|!--|\?)")
AUTOLINK = re.compile(r"<[a-z][a-z0-9+.-]*:[^\s<>]*>", re.I)
FORMULA_START = ("=", "+", "-", "@")


def shown(value, limit=60):
    """A value from outside, safe to print: invisible and control characters escaped, cut short."""
    out = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in INVISIBLE else c for c in value)
    return out if len(out) <= limit else out[:limit] + "…"


def joins(value, k):
    """True if value[k] is a ZWNJ or ZWJ between letters, or a ZWJ between emoji."""
    if value[k] not in JOINERS or not 0 < k < len(value) - 1:
        return False
    before, after = unicodedata.category(value[k - 1]), unicodedata.category(value[k + 1])
    if before[0] in "LM" and after[0] == "L":       # a letter, or a letter's mark such as a virama
        return True
    return value[k] == "\u200d" and after == "So" and (before in ("So", "Sk") or value[k - 1] == "\ufe0f")


def hidden_characters(value):
    """The invisible and control characters of a value, sorted (joiners in their place excepted)."""
    if value.isprintable():                         # the common case, checked in C
        return []
    return sorted({c for k, c in enumerate(value) if unicodedata.category(c) in INVISIBLE and not joins(value, k)})


def blank(c):
    """True for a character that renders as nothing: invisible, a combining mark or a filler."""
    return unicodedata.category(c) in UNSEEN or c in FILLERS


def substance(text):
    """What a reader sees of the text: no whitespace, blank characters or empty link shells."""
    return LINK_SHELL.sub("", "".join(c for c in text if not (c.isspace() or blank(c))))


def scanned(text):
    """The text as the secret scan reads it: NFKC; without blank characters (whitespace kept),
    HTML entities, Markdown emphasis and code marks, or hex prefixes."""
    text = NOT_ASCII.sub(lambda m: "" if blank(m.group()) and not m.group().isspace() else m.group(),
                         unicodedata.normalize("NFKC", text))
    return HEX_PREFIX.sub("", MARKUP.sub("", ENTITY.sub("", text)))


def hex_key(text):
    """True if the text holds a key in hex: 32 or more digits with 8 decimal digits and 2 letters,
    unless a hash's length beside a hash word or in a URL's path. UUIDs and IPv6 addresses are not keys."""
    if not HEX_RUN.search(text):                      # the common case, without the work below
        return False
    text = IPV6.sub(" ", UUID.sub(" ", text))
    for m in HEX_RUN.finditer(text):
        digits = re.sub(r"[^0-9A-Fa-f]", "", m.group())
        if len(digits) < 32:
            continue
        decimal = len(re.sub(r"[^0-9]", "", digits))
        if decimal < 8 or len(digits) - decimal < 2:
            continue
        if len(digits) in HASH_LENGTHS and (HASH_WORD.search(text) or any(
                u.start("path") <= m.start() and m.end() <= u.end("path") for u in URL.finditer(text))):
            continue
        return True
    return False


def char_class(c):
    """'u'pper, 'l'ower, 'd'igit or 'o'ther, for ASCII letters and digits."""
    return "u" if "A" <= c <= "Z" else "l" if "a" <= c <= "z" else "d" if "0" <= c <= "9" else "o"


def transitions(s):
    """How often adjacent characters change class (upper, lower, digit, other)."""
    return sum(char_class(a) != char_class(b) for a, b in zip(s, s[1:]))


def voweled(s):
    """True if every lower-case run of three letters or more has a vowel, as words do."""
    return all(re.search(r"[aeiouy]", run) for run in re.findall(r"[a-z]{3,}", s))


def entropy(s):
    """Shannon entropy of the characters of s, in bits per character."""
    return -sum(n / len(s) * math.log2(n / len(s)) for n in collections.Counter(s).values())


def base64_key(run):
    """True if a base64-alphabet run looks like an encoded key rather than a path, word or identifier."""
    core = run.rstrip("=")
    if run.endswith("=") and len(core) >= 16 and len({char_class(c) for c in core}) >= 2:
        return True
    if len(core) < 20:
        return False
    pieces = [p for segment in core.split("/") for p in re.split(r"[-_.]", segment) if p]
    if "/" in core and all(transitions(p) <= 2 and (len(p) <= 6 or voweled(p)) for p in pieces):
        return False                                # a path
    words = [p for p in re.split(r"[-_]", core) if p]
    if re.search(r"[-_]", core) and voweled(core) and \
            all(WORDSHAPE.fullmatch(p) or (len(p) >= 6 and CAMEL.fullmatch(p)) for p in words):
        return False                                # kebab-case or snake_case words
    if CAMEL.fullmatch(core) and voweled(core):
        return False                                # camelCase words
    return entropy(core) >= 3.0


def base32_key(run):
    """True if a base32 run is padded, holds a digit, or has five consonants in a row, as keys do and words do not."""
    return run.endswith("=") or bool(re.search(r"[2-7]|[b-df-hj-np-tv-xz]{5}", run.lower()))


def secret_in(text):
    """What secret material `text` seems to hold (a short description), or None."""
    text = scanned(text)
    if KEY_MARKERS.search(text):
        return "a private key or PEM block"
    if JWT.search(text):
        return "a signed token (JWT)"
    if hex_key(text):
        return "a key (32 or more hex digits, like a subscriber key K or OPc)"
    plain = URL.sub(url_values, text)
    plain = " ".join([plain] + [quads.replace(" ", "") for quads in B64_QUADS.findall(plain)])
    if any(base32_key(run) for run in BASE32_RUN.findall(plain)):
        return "encoded key material (a base32 run)"
    if any(base64_key(run) for run in B64_RUN.findall(plain) if not HEX_ONLY.fullmatch(run)):
        return "encoded key material (a base64 run)"
    return None


def url_values(m):
    """A URL as the base64 scan reads it: its query values and fragment, without scheme, host or path."""
    return " " + " ".join(p.partition("=")[2] or p for p in re.split(r"[?&;#]", m.group("rest"))) + " "


def reason_length(reason):
    """The letters and digits a reader sees in a reason."""
    return len(re.sub(r"[\W_]", "", substance(reason)))


def unmarked(text):
    """NFKC text without Markdown emphasis or code marks, as 'not needed' is matched."""
    return re.sub(r"[*_`]", "", unicodedata.normalize("NFKC", text))


def text_problems(value):
    """Why a recorded or imported answer's text is not acceptable (the same rules for both)."""
    if len(value) > MAX_ANSWER_CHARS:
        return [f"the answer is longer than {MAX_ANSWER_CHARS:,} characters: keep it elsewhere and "
                "record a pointer to it"]
    bad = hidden_characters(value)
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad[:3])
        return [f"the answer holds an invisible or control character ({codes}); retype it as plain text"]
    text = value.strip()
    if not substance(text):
        return ["the answer is empty"]
    what = secret_in(text)
    if what:
        return [f"this looks like {what}; {CONFIDENTIAL}"]
    problems = []
    if text.startswith(FORMULA_START):
        problems.append(f"the answer starts with '{text[0]}', which a spreadsheet runs as a formula; "
                        "begin it with a word")
    elif re.match(r"(#+|[*>|]|\d+[.)])(\s|$)", text):
        problems.append("the answer may not start with a list, heading, quote or table marker")
    if HTML_TAG.search(AUTOLINK.sub("", text)):
        problems.append("the answer may not contain HTML (a link may be written <https://...>)")
    if ENTITY.search(text):
        problems.append("the answer may not contain HTML entities")
    if MD_LINK.search(text):
        problems.append("the answer may not contain a Markdown link or image (a link may be written <https://...>)")
    if "**" in text:
        problems.append("the answer may not contain bold text ('**')")
    if ID_LOOKALIKE.search(text):
        problems.append("write item IDs with an ASCII hyphen")
    if text.count("`") % 2:
        problems.append("the answer has an unmatched backtick")
    m = NOT_NEEDED.match(unmarked(text))
    if m and reason_length(m.group("reason")) < 3:
        problems.append("'not needed' must give its reason, for example 'not needed: no radio in this laboratory'")
    return problems


def is_not_needed(value):
    """True if the answer says 'not needed' (its reason is text_problems' business)."""
    return bool(NOT_NEEDED.match(unmarked(value.strip())))


def answer_problems(iid, tokens, declared):
    """Messages for a routing answer (list of tokens) that its item does not accept."""
    if not tokens:
        return [f"{iid} needs one of {declared.values}"]
    problems = [f"{iid}: '{shown(t)}' is given twice" for t in unique(tokens) if tokens.count(t) > 1]
    if declared.kind == "parts":
        pairs = [t.split("=", 1) if "=" in t else [t, None] for t in tokens]
        problems += [f"{iid}: '{shown(t)}' is not part=value with a part of {declared.parts} "
                     f"and a value of {declared.values}"
                     for t, (p, v) in zip(tokens, pairs) if p not in declared.parts or v not in declared.values]
        named = [p for p, _ in pairs]
        problems += [f"{iid}: part '{p}' is answered {named.count(p)} times"
                     for p in declared.parts if named.count(p) > 1]
        missing = [p for p in declared.parts if p not in named]
        if missing:
            problems.append(f"{iid}: no value for part(s) {', '.join(missing)}")
        return problems
    problems += [f"{iid}: '{shown(t)}' is not an answer of {iid} {declared.values}"
                 for t in unique(tokens) if t not in declared.values]
    if declared.kind == "one" and len(unique(tokens)) > 1:
        problems.append(f"{iid} takes exactly one answer")
    return problems


def canonical(token, declared):
    """The declared spelling of a token typed in any letter case ('Teaching' -> 'teaching')."""
    spelled = {v.lower(): v for v in declared.values + declared.parts}
    if "=" in token:
        part, value = token.split("=", 1)
        return f"{spelled.get(part.lower(), part)}={spelled.get(value.lower(), value)}"
    return spelled.get(token.lower(), token)


def format_answer(item, cell):
    """(text to record, problems) for an answer addressed to `item` (from a CSV cell)."""
    if item.void:
        return None, [f"{item.id} is withdrawn (void): {item.ask}"]
    cell = unicodedata.normalize("NFC", cell)
    problems = [f"{item.id}: {m}" for m in text_problems(cell)]
    declared = item.declared
    if problems or not declared:
        return (None if problems else cell.strip()), problems
    if is_not_needed(cell):
        return None, [f"{item.id} is a routing item: answer with {declared.values}, not 'not needed'"]
    tokens_part, _, comment = cell.partition(";")
    tokens_part = re.sub(r"\s*=\s*", "=", tokens_part.strip())
    tokens = [canonical(tok.strip("`"), declared) for tok in re.split(r"[,\s]+", tokens_part) if tok.strip("`")]
    problems = answer_problems(item.id, tokens, declared)
    if "`" in comment:
        problems.append(f"{item.id}: the comment after ';' may not contain backticks")
    text = ", ".join(f"`{tok}`" for tok in tokens) + (f"; {comment.strip()}" if comment.strip() else "")
    return text, problems


def same_answer(item, text):
    """True if `text` (as format_answer gives it) is the item's recorded answer, however that is spaced."""
    recorded = item.get("Answer")
    return bool(recorded) and text in (recorded, format_answer(item, recorded)[0])


# ---------------------------------------------------------------- rules

RULES = []


def rule(*codes):
    """Register a rule: a function of a Doc that yields Defects with the codes it declares,
    each written 'code: what it reports'."""
    declared = dict(code.split(": ", 1) for code in codes)
    for code in declared:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", code), code

    def register(fn):
        fn.codes = declared
        RULES.append(fn)
        return fn
    return register


@rule("item-format: an item's first line or a line under it is not in the documented shape",
      "duplicate-id: two items have the same ID",
      "unknown-field: a field label that is neither Form, Unblocks, Note, Answer nor a role",
      "duplicate-field: a field or the meta line appears twice in one item")
def parse_problems(doc):
    """Items and their field lines have the documented shape; IDs and fields are not repeated."""
    yield from doc.problems


@rule("structure: a required section or table is missing")
def required_sections(doc):
    """The required sections and the Stage, Party, Role and profile tables exist."""
    for title in REQUIRED_SECTIONS:
        if not doc.section(title):
            yield Defect(1, "structure", f"no '## {title}' section")
    for what, found in (("Stage", doc.stages), ("Party", doc.parties)):
        if not found:
            yield Defect(1, "structure", f"no `{what}` table (backticked values) under '## {HOWTO}'")
    if not doc.roles:
        yield Defect(1, "structure", f"no `Role` table under '## {ROLES}'")
    if doc.section(CHECKLIST) and not doc.groups:
        yield Defect(doc.section(CHECKLIST)[0], "structure", "no group headings like '### Name (ABC)'")


@rule("heading-blank: a heading has no blank line before it")
def heading_spacing(doc):
    """Every heading has a blank line before it (pandoc and some renderers need it)."""
    for n, _, _ in doc.headings:
        if n > 1 and doc.lines[n - 2].strip():
            yield Defect(n, "heading-blank", "a heading needs a blank line before it")


@rule("line-ending: a carriage return inside a line; renderers break the line there")
def line_endings(doc):
    """No line holds a carriage return but in its line ending (parse() takes that off)."""
    for n, line in enumerate(doc.lines, 1):
        if "\r" in line:
            yield Defect(n, "line-ending", "a carriage return inside a line; renderers break the line there")


@rule("undeclared-prefix: an item's prefix has no group heading",
      "wrong-group: an item sits under another group",
      "item-anchor: an item lacks its own <a id> anchor",
      "missing-field: an item lacks its meta line, Form or Unblocks, or one is empty")
def item_shape(doc):
    """Each item sits in its group, has its own anchor, a meta line and every required field."""
    for item in doc.items.values():
        prefix = item.id.split("-")[0]
        if doc.groups and prefix not in doc.groups:
            yield Defect(item.line, "undeclared-prefix", f"{item.id}: no '### ... ({prefix})' group heading")
        elif doc.groups and prefix != item.group:
            where = f"under the ({item.group}) group" if item.group else "outside its group"
            yield Defect(item.line, "wrong-group",
                         f"{item.id} sits {where}; it belongs under line {doc.groups[prefix]}")
        if item.anchor != item.id.lower():
            yield Defect(item.line, "item-anchor", f'{item.id} needs <a id="{item.id.lower()}"></a> before its ID')
        if not item.meta_line:
            yield Defect(item.line, "missing-field", f"{item.id}: no meta line '  - `stage` · party · if `condition`'")
        if item.void:
            continue
        for label in REQUIRED_FIELDS:
            if label not in item.fields:
                yield Defect(item.line, "missing-field", f"{item.id}: no {label} field")
            elif not item.get(label):
                yield Defect(item.line_of(label), "missing-field", f"{item.id}: {label} is empty")


@rule("bad-stage: the meta line names an undeclared stage",
      "bad-party: the meta line's party is not a declared party")
def stage_and_party(doc):
    """The meta line names one declared stage and, unless void, starts its source with a declared party."""
    for item in doc.items.values():
        if not item.meta_line:
            continue
        if doc.stages and item.stage not in doc.stages:
            yield Defect(item.meta_line, "bad-stage", f"{item.id}: stage must be one of {doc.stages}")
        elif not item.void and doc.parties and item.party not in doc.parties:
            yield Defect(item.meta_line, "bad-party", f"{item.id}: the party must start with one of {doc.parties}")


@rule("condition: an item's condition does not parse or names an undeclared item, part or answer",
      "group-condition: a group's condition is wrong in the same ways",
      "named-condition: a named condition is badly named or wrong in the same ways")
def conditions(doc):
    """Named, group and item conditions parse and name only routing items, parts and declared answers."""
    routing = doc.routing()
    values = {v for d in routing.values() for v in d.values + d.parts}
    names = {}
    for name, (text, line) in doc.names.items():
        problem = None
        if not NAME.match(name) or name in KEYWORDS or name == "always":
            problem = f"'{name}' must be a lower-case word (hyphens allowed), not a keyword"
        elif name in values:
            problem = f"'{name}' is also an answer of a routing item; choose another name"
        else:
            try:
                names[name] = parse_condition(text)
                problem = next(condition_problems(names[name], routing), None)
            except ConditionError as e:
                problem = f"{e} (a name may not use another name)"
        if problem:
            yield Defect(line, "named-condition", f"`{name}`: {problem}")
    for prefix, (text, line) in doc.preambles.items():
        try:
            problems = list(condition_problems(parse_condition(text, names), routing))
        except ConditionError as e:
            problems = [str(e)]
        for message in problems:
            yield Defect(line, "group-condition", f"({prefix}): {message}")
    for item in doc.items.values():
        if not item.condition:
            continue
        try:
            problems = list(condition_problems(parse_condition(item.condition, names), routing))
        except ConditionError as e:
            problems = [str(e)]
        for message in problems:
            yield Defect(item.meta_line, "condition", f"{item.id}: {message}")


@rule("role: a role's condition is wrong, or the last role is not `always`")
def roles(doc):
    """Each role's condition parses, the last role applies always, and exception lines name a role."""
    names, routing = name_trees(doc), doc.routing()
    for role in doc.roles:
        try:
            for message in condition_problems(parse_condition(role.condition, names), routing):
                yield Defect(role.line, "role", f"role {role.key}: {message}")
        except ConditionError as e:
            yield Defect(role.line, "role", f"role {role.key}: {e}")
    if doc.roles and doc.roles[-1].condition != "always":
        yield Defect(doc.roles[-1].line, "role", "the last role must be `always` (the default)")


@rule("answer: a recorded Answer breaks import's rules, its box, or its routing item's answers")
def recorded_answers(doc):
    """Answer lines follow import's rules, match their box, and a routing answer is declared."""
    routing = doc.routing()
    for item in doc.items.values():
        if "Answer" not in item.fields:
            if item.ticked and not item.void:
                yield Defect(item.line, "answer", f"{item.id} is ticked but has no Answer")
            continue
        value, line = item.fields["Answer"]
        if item.void:
            yield Defect(line, "answer", f"{item.id} is withdrawn (void) and takes no Answer")
            continue
        if not item.ticked:
            yield Defect(item.line, "answer", f"{item.id} has an Answer but its box is not ticked")
        for message in text_problems(value):
            if not message.startswith("this looks like"):          # the secret rule reports those
                yield Defect(line, "answer", f"{item.id}: {message}")
        if item.id in routing:
            for message in answer_problems(item.id, BACKTICKED.findall(value), routing[item.id]):
                yield Defect(line, "answer", message)


@rule("secret: a line looks like key material")
def secrets(doc):
    """Nothing in the file looks like secret material."""
    for n, line in enumerate(doc.lines, 1):
        what = secret_in(line)
        if what:
            yield Defect(n, "secret", f"this looks like {what}; {CONFIDENTIAL}")


@rule("range: an Unblocks range runs backwards, across groups or too far",
      "stage-order: an item unblocks an item of an earlier stage",
      "cycle: items unblock each other in a cycle")
def unblock_order(doc):
    """No item unblocks an item of an earlier stage; Unblocks has no cycle or bad range."""
    order = {s: k for k, s in enumerate(doc.stages)}
    edges = {}
    for item in doc.items.values():
        if item.void:
            continue
        line = item.line_of("Unblocks")
        for text in bad_ranges(item):
            yield Defect(line, "range", f"{item.id}: '{text}' must run forwards within one group")
        edges[item.id] = sorted(unblocked_ids(item) & doc.items.keys() - {item.id})
        for other in edges[item.id]:
            later = doc.items[other]
            if later.stage in order and item.stage in order and order[later.stage] < order[item.stage]:
                yield Defect(line, "stage-order", f"{item.id} (`{item.stage}`) unblocks {other}, "
                                                  f"which is needed earlier (`{later.stage}`)")
    state = {}
    for root in edges:                                # depth first, with its own stack: chains may be long
        if root in state:
            continue
        state[root], path, todo = "open", [root], [iter(edges[root])]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                state[path.pop()] = "done"
                todo.pop()
            elif state.get(nxt) == "open":
                cycle = path[path.index(nxt):] + [nxt]
                yield Defect(doc.items[nxt].line, "cycle", "Unblocks cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                state[nxt] = "open"
                path.append(nxt)
                todo.append(iter(edges.get(nxt, [])))


@rule("undefined-id: an ID is mentioned that no item has",
      "blocker-list: the Start-here table and the blockers differ")
def mentions(doc):
    """IDs mentioned outside answers exist; the Start-here table lists exactly the blockers."""
    skip = {it.line for it in doc.items.values()} | {it.line_of("Answer") for it in doc.items.values()
                                                      if "Answer" in it.fields}
    for n, line in enumerate(doc.lines, 1):
        if n in skip or (doc.fenced[n - 1] and not in_mermaid(doc, n)):
            continue
        for iid in unique(ID_TOKEN.findall(line)):
            if iid.split("-")[0] in doc.groups and iid not in doc.items:
                yield Defect(n, "undefined-id", f"{iid} is not a checklist item")
    listed = {iid: row.line for row in doc.start_ids for iid in row.cells if iid in doc.items}
    blockers = {iid for iid, it in doc.items.items() if it.stage == "blocker"}
    for iid in sorted(blockers - listed.keys()):
        yield Defect(doc.items[iid].line, "blocker-list", f"{iid} is a blocker but not in the table under '## {START}'")
    for iid in sorted(listed.keys() - blockers):
        yield Defect(listed[iid], "blocker-list", f"{iid} is in the table under '## {START}' but is not a blocker")


def in_mermaid(doc, n):
    """True if line n is inside a ```mermaid fence."""
    for k in range(n - 1, 0, -1):
        m = FENCE.match(doc.lines[k - 1])
        if m:
            return m.group(2) == "mermaid" and doc.fenced[k - 1]
    return False


@rule("anchor: an internal link matches no heading or anchor",
      "id-link: a link whose text is an ID points elsewhere",
      "unlinked-id: an ID in a table is not a link",
      "duplicate-anchor: two anchors have the same name")
def links(doc):
    """Internal links land on a heading or an item; an ID link lands on its item; anchors are unique."""
    anchors, seen = {}, {}
    for n, _, title in doc.headings:
        slug = slugify(title)
        anchors.setdefault(f"{slug}-{seen[slug]}" if slug in seen else slug, n)
        seen[slug] = seen.get(slug, 0) + 1
    repeated_items = {d.line for d in doc.problems if d.code == "duplicate-id"}
    for n, line in doc.live():
        for anchor in HTML_ANCHOR.findall(line):
            if anchor in anchors and n not in repeated_items:
                yield Defect(n, "duplicate-anchor", f"#{anchor} is already defined at line {anchors[anchor]}")
            else:
                anchors[anchor] = n
    for n, line in doc.live():
        bare = CODE_SPAN.sub("", line)
        for text, target in LINK.findall(bare):
            if unquote(target) not in anchors:
                yield Defect(n, "anchor", f"#{target} matches no heading or <a id>")
            elif ID_TOKEN.fullmatch(text) and target != text.lower():
                yield Defect(n, "id-link", f"a link whose text is {text} must point to #{text.lower()}")
        if line.lstrip().startswith("|"):
            for iid in unique(ID_TOKEN.findall(LINK.sub("", bare))):
                if iid in doc.items:
                    yield Defect(n, "unlinked-id", f"{iid} here must be a link: [{iid}](#{iid.lower()})")


@rule("profile: a profile assumes undeclared answers, leaves items undecided, or states a wrong count")
def profiles(doc):
    """Each profile assumes declared answers, decides every item, and shows its computed count."""
    if doc.section(ROUTER) and not doc.profiles:
        yield Defect(doc.section(ROUTER)[0], "profile", "no profile table ('| Profile | For | Items |')")
    if any(conditions(doc)):
        return                                        # reported as conditions; counts would only echo them
    routing = doc.routing()
    for p in doc.profiles.values():
        if not p.assumes_line:
            yield Defect(p.line, "profile", f"profile {p.key}: no row in the table under '## {ASSUMED}'")
            continue
        for iid, tokens in p.assumes.items():
            if iid not in routing:
                yield Defect(p.assumes_line, "profile", f"profile {p.key}: {iid} is not a routing item")
            else:
                for message in answer_problems(iid, tokens, routing[iid]):
                    yield Defect(p.assumes_line, "profile", f"profile {p.key}: {message}")
        yes, undecided, _ = profile_view(doc, p)
        if undecided:
            names = ", ".join(f"{r.item.id} (waits on {', '.join(r.waits) or 'a malformed condition'})"
                              for r in undecided[:5])
            yield Defect(p.assumes_line, "profile",
                         f"profile {p.key} leaves {len(undecided)} item(s) undecided: {names}")
        shown_count = re.match(r"\D*(\d+)", p.count)
        if not shown_count or int(shown_count.group(1)) != len(yes):
            said = shown_count.group(1) if shown_count else "no number"
            yield Defect(p.line, "profile", f"profile {p.key}: says {said} items, computed {len(yes)}")


@rule("reference: a standard cited by number is not under References")
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
                yield Defect(n, "reference", f"{spec} is cited but not listed under '## {REFERENCES}'")


@rule("placeholder: TODO, FIXME, XXX or TBD is left in the text",
      "commands: the document does not give its two commands")
def leftovers(doc):
    """No placeholder words remain, and the document gives the two commands of its last section."""
    for n, line in doc.live():
        for word in unique(PLACEHOLDER.findall(line)):
            yield Defect(n, "placeholder", f"placeholder '{word}' left in the text")
    text = "\n".join(doc.lines)
    for command in COMMANDS:
        if command not in text:
            yield Defect(len(doc.lines), "commands", f"the document never gives the command '{command}'")


@rule("item-length: an item is longer than 120 words")
def item_length(doc):
    """No item is longer than 120 words as rendered (its Answer not counted)."""
    for item in doc.items.values():
        words = item_words(doc, item)
        if words > MAX_ITEM_WORDS:
            yield Defect(item.line, "item-length", f"{item.id} has {words} words; at most {MAX_ITEM_WORDS}")


def run_rules(doc):
    """All defects of a Doc, sorted by line."""
    found = set()
    for fn in RULES:
        try:
            found.update(fn(doc))
        except Exception as e:                        # pragma: no cover (a bug in a rule)
            raise RuntimeError(f"rule {fn.__name__} failed: {e!r}") from e
    return sorted(found)


check = run_rules


# ---------------------------------------------------------------- words

def rendered(line):
    """A line as a reader sees it: anchors, link targets, emphasis, list and table markup removed."""
    line = re.sub(r"<a [^>]*></a>", "", line)
    line = re.sub(r"\[([^\]\[]*)\]\([^)]*\)", r"\1", line)
    line = line.replace("**", "").replace("`", "")
    line = re.sub(r"^\s*- \[[ xX]\] ", "", line)
    line = re.sub(r"^\s*[-*] ", "", line)
    line = re.sub(r"^#+ ", "", line)
    line = re.sub(r"^\|?[-:| ]+\|?$", "", line)
    return line.replace("|", " ")


def words(line):
    return sum(1 for w in rendered(line).split() if re.search(r"\w", w))


def item_words(doc, item):
    answer = item.line_of("Answer") if "Answer" in item.fields else 0
    return sum(words(doc.lines[k]) for k in range(item.line - 1, item.end) if k + 1 != answer)


# ---------------------------------------------------------------- import

def read_csv(path):
    """([(csv line, id cell, answer cell)], [Problem]) from a CSV with 'id' and 'answer' columns.

    Leading rows whose first cell starts with '#' (the role line of an export) are skipped; the
    delimiter is the first of , ; TAB whose header holds both columns."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISFIFO(mode):
            raw = read_fifo(path)
        elif stat.S_ISREG(mode):
            with open(path, "rb") as f:
                raw = f.read(MAX_CSV_BYTES + 1)
        else:
            return [], [Problem(0, "not a regular file")]
    except OSError as e:
        return [], [Problem(0, f"cannot read: {e.strerror}")]
    if len(raw) > MAX_CSV_BYTES:
        return [], [Problem(0, f"larger than {MAX_CSV_BYTES // 2**20} MiB; split it")]
    try:
        text = raw.decode("utf-8").lstrip("\ufeff")         # any number of byte-order marks
    except UnicodeDecodeError as e:
        return [], [Problem(raw[:e.start].count(b"\n") + 1, "not UTF-8 text: save the sheet as 'CSV UTF-8'")]
    if "\x00" in text:
        return [], [Problem(text[:text.index("\x00")].count("\n") + 1, "not a CSV file (it holds binary data)")]
    for delimiter in (",", ";", "\t"):
        rows, problems = csv_rows(text, delimiter)
        if rows is not None:
            return rows, problems
    return [], [Problem(1, "no 'id' and 'answer' columns in the header line (export one with: items --format csv)")]


def read_fifo(path):
    """What a FIFO gives within FIFO_WAIT seconds, up to one byte over the size limit; a FIFO
    that no program writes to gives nothing (end of data is taken as end of file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks, size, deadline = [], 0, time.monotonic() + FIFO_WAIT
    try:
        while size <= MAX_CSV_BYTES and select.select([fd], [], [], max(0, deadline - time.monotonic()))[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def csv_rows(text, delimiter):
    """The rows read with `delimiter`, or (None, []) if its header lacks 'id' or 'answer'. Reading
    stops after MAX_CSV_ROWS rows or MAX_PROBLEMS problems."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True, strict=True)
    rows, problems, start, header = [], [], 1, None
    try:
        for row in reader:
            if row and row[0].lstrip().startswith("#") and header is None:
                start = reader.line_num + 1
                continue
            header = [cell.strip().lower() for cell in row]
            break
        if not header or "id" not in header or "answer" not in header:
            return None, []
        repeated = sorted({name for name in ("id", "answer") if header.count(name) > 1})
        if repeated:
            return [], [Problem(start, f"the header names {' and '.join(repr(r) for r in repeated)} more than once")]
        id_col, answer_col = header.index("id"), header.index("answer")
        start = reader.line_num + 1
        for row in reader:
            if not any(cell.strip() for cell in row):
                pass                                  # a blank line
            elif len(rows) + len(problems) == MAX_CSV_ROWS:
                problems.append(Problem(start, f"more than {MAX_CSV_ROWS:,} rows; split the file"))
                break
            elif any(cell.strip() for cell in row[len(header):]):
                problems.append(Problem(start, f"more cells than the header has columns ({len(row)} for "
                                               f"{len(header)}): put the answer in quotes if it contains '{delimiter}'"))
            else:
                cells = row + [""] * (len(header) - len(row))
                rows.append((start, cells[id_col], cells[answer_col]))
            if len(problems) > MAX_PROBLEMS:
                break
            start = reader.line_num + 1
    except csv.Error as e:
        if header is None:                            # no header with this delimiter
            return None, []
        problems.append(Problem(start, f"not valid CSV: {e}"))
    return rows, problems


def known_rows(doc, rows):
    """([(line, item, answer)] for rows with an answer, [Problem]) ; unknown or repeated IDs are problems."""
    seen, found, problems = {}, [], []
    for line, raw_id, cell in rows:
        if len(problems) > MAX_PROBLEMS:
            break
        iid = raw_id.strip().upper() if raw_id.strip().isascii() else None
        lettered = LETTERED.fullmatch(raw_id.strip())
        if lettered and lettered.group(1).upper() in doc.items:
            problems.append(Problem(line, "answer lettered parts inside the item's one answer: "
                                          f"{lettered.group(1).upper()},\"({lettered.group(2).lower()}) ...\""))
        elif iid not in doc.items:
            problems.append(Problem(line, f"'{shown(raw_id.strip())}' is not an item of the checklist"))
        elif iid in seen:
            problems.append(Problem(line, f"{iid} appears twice (first at line {seen[iid]})"))
        else:
            seen[iid] = line
            if cell.strip():
                found.append((line, doc.items[iid], cell.strip()))
    return found, problems


def plan_answers(doc, rows, replace):
    """({id: (text to record, csv line)}, [Problem]) for CSV rows; the same answer again is a no-op."""
    found, problems = known_rows(doc, rows)
    changes = {}
    for line, item, cell in found:
        if len(problems) > MAX_PROBLEMS:
            break
        text, messages = format_answer(item, cell)
        problems += [Problem(line, m) for m in messages]
        existing = item.get("Answer")
        if messages or same_answer(item, text):
            continue
        if existing and not replace:
            problems.append(Problem(line, f"{item.id} already has a different answer ('{shown(existing)}'); "
                                          "use --replace to overwrite it"))
            continue
        changes[item.id] = (text, line)
    return changes, problems


def apply_answers(text, doc, changes):
    """The text with each changed item ticked and its Answer line set; every line keeps its ending."""
    lines = text.split("\n")                  # as parse() splits; a CR before LF stays on its line
    for iid in sorted(changes, key=lambda i: -doc.items[i].line):
        item = doc.items[iid]
        answer = f"  - **Answer:** {changes[iid][0]}"
        if "Answer" in item.fields:
            k = item.line_of("Answer") - 1
            lines[k] = answer + ("\r" if lines[k].endswith("\r") else "")
        else:
            k = item.end - 1
            lines.insert(k + 1, answer + ("\r" if lines[k].endswith("\r") else ""))
        lines[item.line - 1] = re.sub(r"^- \[[ xX]\]", "- [x]", lines[item.line - 1])
    return "\n".join(lines)


def write_atomically(path, original, text):
    """Replace `path` with `text` only if it still holds the bytes `original`.

    The file is locked (flock) while it is compared and replaced, so a second import refuses
    rather than interleaves; the kernel drops the lock if the process dies. The text goes to a
    temporary file in the same folder and is moved over `path` with os.replace. Until then a
    signal (SIGTERM, SIGHUP, SIGINT) stops the import and nothing is written; once it has run,
    the file is written and a signal is ignored. An OSError on the way becomes a Refusal."""
    swapped = []                                      # [True] once os.replace has run
    tmp, handle, previous = None, None, catch_signals(swapped)
    try:
        if not (path.stat().st_mode & 0o222 and os.access(path, os.W_OK)):
            raise Refusal(f"{path.name} is read-only; nothing written.")
        handle = open(path, "rb")
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise Refusal(f"{path.name}: another import is writing it; nothing written. Try again.")
        if path.read_bytes() != original:
            raise Refusal(f"{path.name} changed while importing; nothing written. Run the import again.")
        try:
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", dir=path.parent,
                                             prefix=f".{path.name}.", suffix=".tmp", delete=False) as out:
                tmp = Path(out.name)
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
        except OSError as e:
            raise Refusal(f"{path.name}: cannot write a temporary file next to it ({e.strerror}); nothing written.")
        shutil.copymode(path, tmp)
        with signals_held():
            os.replace(tmp, path)
            swapped.append(True)
    except OSError as e:                              # from copymode, replace, or reading the file again
        raise Refusal(f"cannot replace {path.name} ({e.strerror}); nothing written.")
    finally:
        try:
            if tmp is not None and not swapped:
                remove_temporary(tmp, path)
        finally:
            if handle is not None:
                handle.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# The signals an import catches while it writes (SIGHUP is POSIX only)
CAUGHT = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name))


def catch_signals(swapped):
    """Have SIGTERM, SIGHUP and SIGINT raise a Refusal (so clean-up runs) while `swapped` is
    empty, and do nothing once it is not; {signal: previous handler}."""
    def interrupted(signum, frame):
        if not swapped:
            raise Refusal(f"stopped by signal {signum}; nothing written.")
    previous = {}
    for sig in CAUGHT:
        try:
            previous[sig] = signal.signal(sig, interrupted)
        except ValueError:                            # not the main thread: leave the handlers alone
            pass
    return previous


@contextlib.contextmanager
def signals_held():
    """Hold back the caught signals inside the block (POSIX), so that none lands between a step
    and the record that it was taken; they are delivered when it ends."""
    if not hasattr(signal, "pthread_sigmask"):        # Windows: no signal masks
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, CAUGHT)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def remove_temporary(tmp, path):
    """Remove the temporary file of a write that did not happen (it may already be gone)."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError as e:
        raise Refusal(f"cannot remove the temporary file {tmp.name} ({e.strerror}); {path.name} not changed.")


# ---------------------------------------------------------------- views

COLUMNS = ("id", "ask", "form", "unblocks", "from", "party", "stage", "applies", "waits_on",
           "in_your_role", "note", "assumed", "answer")


class Answers(NamedTuple):
    """The routing answers a view uses, and where each came from."""
    tokens: dict          # id -> [tokens]
    texts: dict           # id -> text as given, for answers not recorded in the file
    origin: dict          # id -> 'profile KEY' or the CSV's name, for answers not recorded
    title: str
    given: set            # IDs answered in the CSV, routing or not


def gather_answers(doc, profile=None, csv_path=None):
    """A profile's assumptions, under the answers recorded in the file, under a CSV's answers."""
    tokens, texts, origin, sources, given_ids = {}, {}, {}, [], set()
    if profile:
        p = doc.profiles[profile]
        for iid, toks in p.assumes.items():
            tokens[iid], texts[iid], origin[iid] = toks, ", ".join(f"`{t}`" for t in toks), f"profile {profile}"
        sources.append(f"profile `{profile}`")
    for iid, toks in doc.recorded().items():
        tokens[iid] = toks
        texts.pop(iid, None)
        origin.pop(iid, None)
    if doc.recorded():
        sources.append("the answers recorded")
    if csv_path:
        given, given_ids = answers_in_csv(doc, csv_path)
        for iid, text in given.items():
            if doc.items[iid].declared and not same_answer(doc.items[iid], text):
                tokens[iid], texts[iid], origin[iid] = BACKTICKED.findall(text), text, csv_path
        sources.append(f"the answers in {csv_path}")
    return Answers(tokens, texts, origin, " and ".join(sources) or "nothing recorded yet", given_ids)


def answers_in_csv(doc, path):
    """({id: text as import would record it}, {ids answered}) of a CSV; nothing is written."""
    rows, problems = read_csv(path)
    found, more = known_rows(doc, rows) if not problems else ([], [])
    problems += more
    given = {}
    for line, item, cell in found:
        if len(problems) > MAX_PROBLEMS:
            break
        text, messages = format_answer(item, cell)
        problems += [Problem(line, m) for m in messages]
        given[item.id] = text
    if problems:
        raise Refusal(csv_report(path, problems))
    return given, set(given)


def csv_report(path, problems):
    """One 'path:line: message' per problem, sorted, at most MAX_PROBLEMS_SHOWN of them."""
    problems = sorted(problems)
    out = [f"{path}:{p.line}: {p.message}" if p.line else f"{path}: {p.message}"
           for p in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS:                  # collecting stopped there
        out.append(f"{path}: and more problems")
    elif len(problems) > MAX_PROBLEMS_SHOWN:
        out.append(f"{path}: and {len(problems) - MAX_PROBLEMS_SHOWN} more problems")
    return "\n".join(out)


def item_record(doc, item, waits, answers, role):
    """One item as a flat record. `answer` holds only what is recorded in the file."""
    return {"id": item.id, "ask": item.ask, "form": item.get("Form"), "unblocks": item.get("Unblocks"),
            "from": item.source, "party": item.party, "stage": item.stage,
            "applies": applies_text(doc, item), "waits_on": " ".join(waits),
            "in_your_role": item.get(role.label) if role else "", "note": item.get("Note"),
            "assumed": (f"{answers.texts[item.id]} ({answers.origin[item.id]})"
                        if item.id in answers.texts else ""),
            "answer": item.get("Answer")}


def spreadsheet_safe(value):
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def render(records, columns, fmt, markdown, preamble=None):
    """Records as CSV, JSON or Markdown; `preamble` (role and rule) heads every format."""
    if fmt == "json":
        body = records if preamble is None else {**preamble, "items": records}
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if preamble:
            writer.writerow([f"# {preamble_line(preamble)}"])
        writer.writerow(columns)
        writer.writerows([[spreadsheet_safe(r.get(c, "")) for c in columns] for r in records])
        return out.getvalue()
    return markdown(records)


def preamble_line(preamble):
    return (f"Role: {preamble['role']}. Answer an item written for someone else with {preamble['rule']} "
            f"(routing: {preamble['answers']}).")


def counted(n, noun, plural=""):
    """'1 item', '3 items'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def cmd_items(doc, args):
    """`items`: the items that apply, in working order, filtered by party, involvement or stage."""
    answers = gather_answers(doc, args.profile, args.answers)
    role = role_of(doc, answers.tokens)
    rows = [r for r in applicable(doc, answers.tokens) if r.applies is not False]
    picked = [r for r in rows if (not args.party or r.item.party == args.party)
              and (not args.involving or r.item.involves(args.involving))
              and (not args.stage or r.item.stage == args.stage)]
    records = [item_record(doc, r.item, r.waits, answers, role) for r in picked]
    preamble = {"role": role.key, "rule": role.rule, "answers": answers.title} if role else None
    note = ""
    if args.party and not picked:
        involved = sum(1 for r in rows if r.item.involves(args.party) and (not args.stage or r.item.stage == args.stage))
        note = (f"No item that applies is accountable to `{args.party}`"
                + (f"; {counted(involved, 'item')} {'names' if involved == 1 else 'name'} it as a contributor: "
                   f"use --involving {args.party}."
                   if involved else ", and none names it."))

    def markdown(recs):
        filters = "".join(f", {label} `{value}`" for label, value in
                          (("party", args.party), ("involving", args.involving), ("stage", args.stage)) if value)
        waiting = sum(1 for r in recs if r["waits_on"])
        out = [f"# Items that apply, given {answers.title}{filters}", ""]
        if preamble:
            out += [f"Your role: **{role.key}**. Answer an item written for someone else with {role.rule}", ""]
        if not answers.tokens:
            out += [f"Nothing is recorded yet: {counted(len(recs), 'item')} may apply and {waiting} wait on the "
                    "blockers. Answer those first (`items --stage blocker`), or pick a profile (`profiles`).", ""]
        else:
            out += [f"{counted(len(recs), 'item')}, {waiting} of them waiting on a routing answer.", ""]
        if note:
            out += [note, ""]
        for r in recs:
            out.append(f"- [{'x' if r['answer'] else ' '}] **{r['id']}** {r['ask']}")
            out += [f"  - **{label}:** {r[key]}" for label, key in (("Form", "form"), ("Unblocks", "unblocks"))
                    if r[key]]
            out.append(f"  - `{r['stage']}` · {r['from']}" + (f" · if `{r['applies']}`" if r["applies"] != "always" else ""))
            out += [f"  - **{label}:** {r[key]}" for label, key in
                    (("In your role", "in_your_role"), ("Note", "note"), ("Waits on", "waits_on"),
                     ("Assumed, not recorded", "assumed"), ("Answer", "answer")) if r[key]]
        return "\n".join(out) + "\n"
    return Output(render(records, COLUMNS, args.format, markdown, preamble), 0, note if args.format != "md" else "")


def cmd_profiles(doc, args):
    """`profiles`: each profile with its item count; --show KEY: its answers and first items."""
    if args.show:
        p = doc.profiles[args.show]
        yes, _, first = profile_view(doc, p)
        role = role_of(doc, p.assumes)
        record = {"profile": p.key, "for": p.who, "items": len(yes), "role": role.key if role else "",
                  "assumes": {iid: toks for iid, toks in p.assumes.items()},
                  "first": [{"id": it.id, "ask": it.ask, "party": it.party} for it in first]}

        def show_md(rec):
            out = [f"# Profile `{p.key}`: {p.who}", "", f"{counted(len(yes), 'item')} apply. Role: "
                   f"**{record['role']}**: {role.rule if role else ''}", "", "## Assumed routing answers", ""]
            out += [f"- {iid} " + ", ".join(f"`{t}`" for t in toks) for iid, toks in p.assumes.items()]
            out += ["", f"## First items to answer (after the blockers; at most {FIRST_ITEMS})", ""]
            out += [f"{k}. {it['id']}: {it['ask']} ({it['party']})" for k, it in enumerate(rec['first'], 1)]
            out += ["", f"Print the whole list: `python3 tools/checklist.py items --profile {p.key}`"]
            return "\n".join(out) + "\n"
        if args.format == "csv":
            rows = [{"profile": p.key, "kind": "assumes", "id": iid, "value": ", ".join(t)}
                    for iid, t in p.assumes.items()]
            rows += [{"profile": p.key, "kind": "first", "id": it["id"], "value": it["ask"]} for it in record["first"]]
            return render(rows, ("profile", "kind", "id", "value"), "csv", None), 0
        return (json.dumps(record, indent=2, ensure_ascii=False) + "\n" if args.format == "json"
                else show_md(record)), 0
    records = []
    for p in doc.profiles.values():
        yes, undecided, _ = profile_view(doc, p)
        role = role_of(doc, p.assumes)
        records.append({"profile": p.key, "items": len(yes), "role": role.key if role else "", "for": p.who})

    def markdown(rows):
        width = max((len(r["profile"]) for r in rows), default=7)
        return "".join(f"{r['profile']:<{width}}  {r['items']:>3} items  {r['for']}\n" for r in rows)
    return render(records, ("profile", "items", "role", "for"), args.format, markdown), 0


STATES = ("answered", "not needed", "open", "waiting")


def item_state(item, verdict, given=()):
    """'waiting', 'open', 'not needed' or 'answered'; `given` holds IDs answered in a CSV."""
    if verdict is None:
        return "waiting"
    if item.id in given:
        return "answered"
    answer = item.get("Answer")
    if not answer:
        return "open"
    return "not needed" if is_not_needed(answer) else "answered"


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
    """`status`: progress by stage and party, open blockers, and the next items that apply."""
    answers = gather_answers(doc, args.profile, args.answers)
    rows = applicable(doc, answers.tokens)
    records = [{"id": r.item.id, "ask": r.item.ask, "stage": r.item.stage, "party": r.item.party,
                "state": item_state(r.item, r.applies, answers.given), "waits_on": " ".join(r.waits)}
               for r in rows if r.applies is not False]
    excluded = sum(1 for r in rows if r.applies is False)
    role = role_of(doc, answers.tokens)

    def markdown(recs):
        given_ids = ", ".join(f"{i} " + ", ".join(f"`{t}`" for t in toks) for i, toks in answers.tokens.items())
        verdicts = {r.item.id: r.applies for r in rows}
        missing = [i for i in doc.routing() if i not in answers.tokens and verdicts.get(i) is not False]
        blockers = [r for r in recs if r["stage"] == "blocker" and r["state"] in ("open", "waiting")]
        upcoming = [r for r in recs if r["stage"] != "blocker" and r["state"] == "open"
                    and r["id"] not in answers.tokens][:5]
        out = [f"# Progress of {doc.path}, given {answers.title}", "",
               f"Routing answers: {given_ids or 'none'}. Still to answer: {', '.join(missing) or 'none'}.",
               f"Role: {role.key if role else 'none'}. "
               f"{counted(len(recs), 'item')} apply or may apply; {excluded} do not apply to these answers."
               + (" Waiting: the item's condition needs a routing answer not yet given."
                  if any(r["state"] == "waiting" for r in recs) else ""), "",
               count_table(recs, "stage", doc.stages), "", count_table(recs, "party", doc.parties), "",
               "## Open blockers, in order", ""]
        out += [f"{k}. {r['id']}: {r['ask']} ({r['party']}" +
                (f"; waits on {r['waits_on']})" if r["waits_on"] else ")") for k, r in enumerate(blockers, 1)]
        out += ([] if blockers else ["None."]) + ["", "## Next to answer", ""]
        out += [f"{k}. {r['id']}: {r['ask']} ({r['party']}, `{r['stage']}`)" for k, r in enumerate(upcoming, 1)]
        return "\n".join(out + ([] if upcoming else ["Nothing open beyond the blockers."])) + "\n"
    return render(records, ("id", "ask", "stage", "party", "state", "waits_on"), args.format, markdown), 0


def cmd_stats(doc, args):
    """`stats`: words as rendered, per item and in all, and the longest items."""
    per = {iid: item_words(doc, it) for iid, it in doc.items.items() if not it.void}
    counts = sorted(per.values())
    total = sum(words(line) for line in doc.lines)
    longest = sorted(per.items(), key=lambda kv: -kv[1])[:10]
    record = {"words": total, "items": len(per), "item_median": statistics.median(counts) if counts else 0,
              "item_p90": counts[int(0.9 * (len(counts) - 1))] if counts else 0,
              "item_max": counts[-1] if counts else 0, "longest": [{"id": i, "words": w} for i, w in longest]}
    if args.format == "json":
        return json.dumps(record, indent=2) + "\n", 0
    if args.format == "csv":
        rows = [{"id": iid, "words": w} for iid, w in per.items()]
        return render(rows, ("id", "words"), "csv", None), 0
    out = [f"{doc.path}: {record['words']:,} words as rendered; {record['items']} items, "
           f"median {record['item_median']:g} words, 90th percentile {record['item_p90']}, "
           f"longest {record['item_max']} (limit {MAX_ITEM_WORDS}).", "Longest items: "
           + ", ".join(f"{r['id']} {r['words']}" for r in record["longest"]) + "."]
    return "\n".join(out) + "\n", 0


def cmd_check(doc, args):
    """`check`: every rule over the document; exit 1 on any defect. --list-rules: the rule codes."""
    if args.list_rules:
        rows = [{"code": code, "rule": fn.__name__, "description": text}
                for fn in RULES for code, text in fn.codes.items()]
        if args.format == "json":
            return json.dumps(rows, indent=2) + "\n", 0
        width = max(len(r["code"]) for r in rows)
        return "".join(f"{r['code']:<{width}}  {r['description']}\n" for r in rows), 0
    defects = run_rules(doc)
    if args.format == "json":
        return json.dumps([d._asdict() for d in defects], indent=2) + "\n", 1 if defects else 0
    if defects:
        return "".join(f"{doc.path}:{d.line}: [{d.code}] {d.message}\n" for d in defects), 1
    return (f"{doc.path}: OK ({len(doc.items)} items, {len(doc.groups)} groups, "
            f"{len(doc.profiles)} profiles)\n"), 0


def cmd_import(doc, args):
    """`import`: record the answers of a CSV, refusing the whole file on any problem."""
    rows, problems = read_csv(args.answers)
    changes, more = plan_answers(doc, rows, args.replace) if not problems else ({}, [])
    problems += more
    if problems:
        many = counted(len(problems), "problem") if len(problems) <= MAX_PROBLEMS else f"more than {MAX_PROBLEMS} problems"
        raise Refusal(f"{csv_report(args.answers, problems)}\n{many}; {doc.path} not changed.")
    if not changes:
        return f"{doc.path}: nothing to record (no new answers).\n", 0
    new_text = apply_answers(doc.raw.decode("utf-8"), doc, changes)
    new_doc = parse(new_text, doc.path)
    defects = run_rules(new_doc)
    if defects:
        owner = {}
        for iid, (_, line) in changes.items():
            item = new_doc.items.get(iid)
            if item:
                owner.update({item.line: line, item.line_of("Answer"): line})
        raise Refusal("\n".join(f"{args.answers}:{owner[d.line]}: this answer would break the document "
                                f"([{d.code}] {d.message})" if d.line in owner else
                                f"{doc.path}:{d.line}: [{d.code}] {d.message}" for d in defects)
                      + f"\n{doc.path} not changed" + ("" if all(d.line in owner for d in defects) else
                                                        f": it fails its own check; run 'check' and fix it first") + ".")
    write_atomically(doc.real_path, doc.raw, new_text)
    verdicts = {r.item.id: r.applies for r in applicable(new_doc, new_doc.recorded())}
    late = sorted(iid for iid in changes if verdicts.get(iid) is False)
    note = (f" Note: {', '.join(late)} {'does' if len(late) == 1 else 'do'} not apply to the routing "
            "answers recorded." if late else "")
    return f"{doc.path}: recorded {counted(len(changes), 'answer')}: {', '.join(sorted(changes))}.{note}\n", 0


# ---------------------------------------------------------------- form

FORM_TEMPLATE = Path(__file__).resolve().parent / "form.html"
CONTEXT = "Outside context"
CONTEXT_BULLET = re.compile(r'^- <a id="(?P<anchor>ctx-[a-z0-9-]+)"></a>(?P<text>.*)$')
AS_OF = re.compile(r"\bas of (\d{1,2} [A-Z][a-z]+ \d{4})")
PLACEHOLDERS = re.compile(r"\{\{(title|data)\}\}")


def tree_json(tree):
    """A condition tree as JSON: {"always": true}, {"test": ID, "part", "op", "values"}, {"not": node},
    {"all": [...]}, {"any": [...]}; None (a malformed condition) stays None."""
    if tree is None:
        return None
    if isinstance(tree, Always):
        return {"always": True}
    if isinstance(tree, Test):
        return {"test": tree.id, "part": tree.part, "op": tree.op, "values": list(tree.values)}
    if isinstance(tree, Not):
        return {"not": tree_json(tree.node)}
    return {"all" if isinstance(tree, All) else "any": [tree_json(node) for node in tree.nodes]}


def token_labels(form, tokens):
    """{token: the words in parentheses after it in the Form}, e.g. `public` (serving the public)."""
    labels = {}
    for token in tokens:
        start = form.find(f"`{token}` (")
        if start < 0:
            continue
        depth, first = 0, start + len(token) + 4
        for k in range(first, len(form)):
            depth += {"(": 1, ")": -1}.get(form[k], 0)
            if depth < 0:
                labels[token] = form[first:k].strip()
                break
    return labels


def outside_context(doc):
    """The dating sentence of 'Outside context', its date, and its anchored bullets in file order:
    [{anchor, as_of, lines: [(depth, Markdown)]}]; a bullet's own 'as of' date overrides the section's."""
    sec = doc.section(CONTEXT)
    if not sec:
        return {"dating": "", "date": "", "bullets": []}
    intro, bullets = [], []
    for n in range(sec[0] + 1, sec[1]):
        line = doc.lines[n - 1]
        m = CONTEXT_BULLET.match(line)
        if m:
            bullets.append({"anchor": m.group("anchor"), "lines": [(0, m.group("text").strip())]})
        elif bullets and line.startswith("  ") and line.strip():
            depth = (len(line) - len(line.lstrip(" "))) // 2
            bullets[-1]["lines"].append((depth, re.sub(r"^[-*+]\s+", "", line.strip())))
        elif not bullets and line.strip():
            intro.append(line.strip())
    dating = next((s for s in re.split(r"(?<=\.)\s+", " ".join(intro)) if AS_OF.search(s)), "")
    date = AS_OF.search(dating).group(1) if dating else ""
    for b in bullets:
        own = AS_OF.search(" ".join(md for _, md in b["lines"]))
        b["as_of"] = own.group(1) if own else date
    return {"dating": dating, "date": date, "bullets": bullets}


def every_role_rules(doc):
    """The bullets under the role table that hold in every role (Markdown)."""
    sec = doc.section(ROLES)
    return [doc.lines[n - 1][2:].strip() for n in range(sec[0], sec[1])
            if doc.lines[n - 1].startswith("- ")] if sec else []


def form_item(doc, item, given, assumed):
    """One item as the form's page needs it."""
    declared = item.declared
    links = re.findall(r"\]\(#(ctx-[a-z0-9-]+)\)", item.get("Note") + " " + item.get("Form"))
    return {"id": item.id, "anchor": item.anchor or item.id.lower(), "ask": item.ask,
            "form": item.get("Form"), "unblocks": item.get("Unblocks"), "note": item.get("Note"),
            "source": item.source, "party": item.party, "stage": item.stage,
            "applies": applies_text(doc, item), "tree": tree_json(item_tree(doc, item)),
            "declared": declared and {"kind": declared.kind, "values": declared.values, "parts": declared.parts,
                                      "labels": token_labels(item.get("Form"), declared.values + declared.parts)},
            "role_lines": {label: item.get(label) for label in doc.role_labels() if item.get(label)},
            "recorded": item.get("Answer"), "given": given.get(item.id, ""),
            "assumed": assumed.get(item.id), "context": unique(links)}


def form_data(doc, args):
    """Everything the page shows and checks, as one JSON-ready dict."""
    from datetime import date
    profile = doc.profiles.get(args.profile) if args.profile else None
    given = answers_in_csv(doc, args.answers)[0] if args.answers else {}
    recorded = doc.recorded()
    assumed = {iid: toks for iid, toks in (profile.assumes.items() if profile else ())
               if iid in doc.routing() and iid not in recorded}
    command = "python3 tools/checklist.py form" + "".join(
        f" --{name} {value}" for name, value in (("profile", args.profile), ("party", args.party),
                                                   ("answers", args.answers)) if value)
    title = next((t for _, level, t in doc.headings if level == 1), doc.path)
    return {"title": title, "source": doc.path, "command": command,
            "page_title": "Answers" + "".join(f", {k} {v}" for k, v in (("profile", args.profile),
                                                                         ("party", args.party)) if v) + f": {title}",
            "generated": date.today().isoformat(),
            "profile": profile and {"key": profile.key, "who": profile.who},
            "party": args.party or "", "answers_file": args.answers or "",
            "csv_name": "answers" + "".join(f"-{v}" for v in (args.profile, args.party) if v) + ".csv",
            "stages": doc.stages, "parties": doc.parties,
            "roles": [{"key": r.key, "label": r.label, "rule": r.rule, "tree": tree_or_none(doc, r.condition)}
                      for r in doc.roles],
            "every_role": every_role_rules(doc),
            "items": [form_item(doc, it, given, assumed) for it in working_order(doc)],
            "void": {iid: it.ask for iid, it in doc.items.items() if it.void},
            "context": outside_context(doc),
            "limits": {"max_answer_chars": MAX_ANSWER_CHARS, "max_csv_bytes": MAX_CSV_BYTES,
                       "max_csv_rows": MAX_CSV_ROWS, "max_problems": MAX_PROBLEMS,
                       "first_items": FIRST_ITEMS, "max_problems_shown": MAX_PROBLEMS_SHOWN},
            "confidential": CONFIDENTIAL}


def tree_or_none(doc, condition):
    """A role's condition as a JSON tree, or None if it does not parse."""
    try:
        return tree_json(parse_condition(condition, name_trees(doc)))
    except ConditionError:
        return None


def render_form(data, template):
    """The page: the template with its title and one JSON block filled in ('<' escaped as \\u003c,
    so no '</script>' or '<!--' can end the block)."""
    block = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    title = data["page_title"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    fill = {"title": title, "data": block}
    return PLACEHOLDERS.sub(lambda m: fill[m.group(1)], template)


def cmd_form(doc, args):
    """`form`: one self-contained HTML page to answer the items that apply, in a browser."""
    try:
        template = FORM_TEMPLATE.read_text(encoding="utf-8")
    except OSError as e:
        raise Refusal(f"{FORM_TEMPLATE}: cannot read the page template: {e.strerror}", 2)
    page = render_form(form_data(doc, args), template)
    if not args.output:
        return Output(page)
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            out.write(page)
    except OSError as e:
        raise Refusal(f"{args.output}: cannot write: {e.strerror}", 2)
    return Output("", 0, f"{args.output}: written; open it in a browser")


# ---------------------------------------------------------------- command line

def load(path):
    """Parse the checklist (README.md by default), keeping its bytes and real path for import."""
    shown_path = path or "README.md"
    try:
        real = Path(path or DEFAULT_FILE).resolve()
        if not stat.S_ISREG(real.stat().st_mode):
            raise Refusal(f"{shown_path}: not a regular file", 2)
        raw = real.read_bytes()
    except (OSError, RuntimeError) as e:              # RuntimeError: a symbolic link loop (Python < 3.13)
        raise Refusal(f"{shown_path}: cannot read: {getattr(e, 'strerror', None) or 'a symbolic link loop'}", 2)
    try:
        doc = parse(raw.decode("utf-8"), shown_path)
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise Refusal(f"{shown_path}:{line}: not UTF-8 text", 2)
    doc.raw, doc.real_path = raw, real
    return doc


# A control character a terminal acts on: C0 but tab and newline (ESC among them), DEL, and C1
TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text):
    """The text with every control character a terminal would act on written as \\uXXXX."""
    return TERMINAL_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class Parser(argparse.ArgumentParser):
    """argparse, with its error messages (which quote the arguments) made safe for a terminal."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {terminal_safe(message)}\n")


def nonempty(value):
    """An option's value, which may not be empty (an empty one is a usage error)."""
    if not value:
        raise argparse.ArgumentTypeError("may not be empty")
    return value


@functools.lru_cache(maxsize=None)
def build_parser():
    """The argparse parser: one subcommand per view, shared --file, --format and routing options.
    Built once, as argparse looks up its message translations while it builds."""
    parser = Parser(
        prog="checklist.py", description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 done; 1 defects found or input refused (nothing written); "
               "2 could not run as asked. Python 3.8 or later, standard library only.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--file", type=nonempty, help="the checklist (default: README.md next to tools/)")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=("md", "csv", "json"), default="md",
                     help="Markdown for people (default), CSV for a spreadsheet, JSON for programs")
    route = argparse.ArgumentParser(add_help=False)
    route.add_argument("--profile", metavar="KEY", type=nonempty,
                       help="start from this profile's assumed routing answers")
    route.add_argument("--answers", metavar="CSV", type=nonempty, help="route with the answers in this CSV (as 'import' "
                       "reads it) over those recorded and any profile; nothing is written")
    check_p = sub.add_parser("check", parents=[common], help="check the document; exit 1 on any defect")
    check_p.add_argument("--list-rules", action="store_true", help="list the rule codes and what each checks")
    check_p.add_argument("--format", choices=("md", "json"), default="md", help="text lines (default) or JSON")
    prof = sub.add_parser("profiles", parents=[common, fmt], help="the profiles and their item counts")
    prof.add_argument("--show", metavar="KEY", type=nonempty, help="one profile's assumed answers, role and first items")
    items = sub.add_parser("items", parents=[common, fmt, route], help="the items that apply, in working order")
    who = items.add_mutually_exclusive_group()
    who.add_argument("--party", type=nonempty, help="only items this party is accountable for (the first party named)")
    who.add_argument("--involving", type=nonempty,
                     help="only items that name this party at all, as accountable or contributor")
    items.add_argument("--stage", type=nonempty, help="only items of this stage")
    sub.add_parser("status", parents=[common, fmt, route], help="progress, given the answers recorded so far")
    sub.add_parser("stats", parents=[common, fmt], help="words per item and in all, as rendered")
    imp = sub.add_parser("import", parents=[common], help="record the answers of a CSV in the checklist")
    imp.add_argument("answers", type=nonempty,
                     help="a CSV with 'id' and 'answer' columns (as 'items --format csv' writes)")
    imp.add_argument("--replace", action="store_true", help="overwrite answers already recorded")
    form = sub.add_parser("form", parents=[common, route], help="one self-contained HTML page to answer the items "
                          "in a browser, with live routing, checks as you type and a CSV that 'import' reads")
    form.add_argument("--party", type=nonempty,
                      help="only items this party is accountable for (routing items always show)")
    form.add_argument("-o", "--output", metavar="FILE", type=nonempty,
                      help="write the page to FILE (default: standard output)")
    return parser


def main(argv=None, out=None, err=None):
    """Run one command; print its output or its refusal; return the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:                 # argparse has printed its message
        return e.code if isinstance(e.code, int) else 2
    commands = {"check": cmd_check, "profiles": cmd_profiles, "items": cmd_items,
                "status": cmd_status, "stats": cmd_stats, "import": cmd_import,
                "form": cmd_form}
    try:
        doc = load(args.file)
        for option, known in (("profile", doc.profiles), ("show", doc.profiles), ("party", doc.parties),
                              ("involving", doc.parties), ("stage", doc.stages)):
            value = getattr(args, option, None)
            if value and value not in known:
                raise Refusal(f"unknown --{option} '{shown(value)}'; choose from: {', '.join(known)}", 2)
        result = Output(*commands[args.command](doc, args))
    except Refusal as e:
        err.write(terminal_safe(str(e).rstrip("\n")) + "\n")
        return e.code
    except KeyboardInterrupt:
        err.write("interrupted; nothing written.\n")
        return 1
    markdown = args.command != "form" and getattr(args, "format", "md") == "md"
    out.write(terminal_safe(result.text) if markdown else result.text)
    if result.note:
        err.write(terminal_safe(result.note) + "\n")
    return result.code


if __name__ == "__main__":
    sys.exit(main())
