"""The checklist's core, imported by checklist.py: everything that reads the document and judges
text, and nothing that writes a file or prints. Python 3.8 or later, standard library only.

Shape, in file order: format (section titles and the document's regexes); model (`Item`, `Role`, `Profile`,
`Doc` and small named tuples); `parse()`, which reads the Markdown once into a Doc; conditions
(`parse_condition`, `evaluate`) and routing (`applicable`, `role_of`, `roles_of`, `profile_view`); answer
validation (`text_problems`, `answer_problems`, `format_answer`; what a text may hold, the secret filter
among it, is answer_text.py's); rules, each declaring its codes with
`@rule(...)`; and the word count that `stats` and the length rule share. To add a rule: write a
function of a Doc that yields `Defect`s, register it with `@rule("its-code: what it reports")`, and
add a one-defect case to the tests; `check --list-rules` lists every code.
"""
import collections
import functools
import heapq
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional, Tuple
from urllib.parse import unquote

from answer_text import *  # noqa: F401,F403  hidden characters, shown(), masked(), the secret filter

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
MAX_DOC_BYTES = 4 * 1024 * 1024                # the checklist itself is about 0.2 MiB
MAX_CSV_ROWS = 10_000
MAX_CSV_LINES = 1_048_576              # a spreadsheet's rows, after the empty ones at the end are dropped
FIFO_WAIT = 10                         # seconds a CSV that is a FIFO may take to give its data
FIFO_DEADLINE = 30                     # seconds a CSV that is a FIFO may take in all (a trickle)
MAX_NESTING = 50
MAX_PROBLEMS = 200                     # refused input: problems collected, and shown
MAX_PROBLEMS_SHOWN = 50
FIRST_ITEMS = 7
# Routing answers that hold off rather than decide: an answer made only of these (those its item declares:
# `pending` for EXP-1, `undecided` for REQ-4 or LIC-1) routes the list as given, but its item stays open.
# tools/form.html holds the same list.
PROVISIONAL = ("pending", "undecided")
COMMANDS = ("python3 tools/checklist.py items --profile", "bash .ci/run")

# A heading, matched on the line without its trailing spaces (linear time): '## Title', '### Name (ABC) ##'
HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*))?")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*(\w*)")
# An item's first line:  - [ ] <a id="lic-4"></a>**LIC-4** The rights granted for each licensed item.
ITEM = re.compile(r'^- \[(?P<box>[ xX])\] (?:<a id="(?P<anchor>[^"]*)"></a>)?'
                  r'\*\*(?P<id>[A-Z]{2,4}-[1-9][0-9]*)\*\* (?P<ask>\S.*)$')
ITEM_START = re.compile(r"^- \[(?![^\]]*\][(\[])")     # a task-list bullet, not "- [text](#link)"
INDENTED_ITEM = re.compile(r"^[ \t]+- \[[ xX]\] (?:<a id=|\*\*[A-Z]{2,4}-[0-9])")   # an item's line indented
INDENTED_ITEM_MESSAGE = "an item's line starts at the margin: remove the spaces or tab before '- ['"
# A field line:          - **Form:** a list of ...
FIELD = re.compile(r"^  - \*\*(?P<label>[A-Za-z][A-Za-z ]*):\*\*[ \t]*(?P<value>.*)$")
# The meta line:         - `design` · counsel, with licensor · if `licensed and holder`
META = re.compile(r"^  - `(?P<stage>[^`]*)`(?: · (?P<source>[^·`]+?))?(?: · if `(?P<cond>[^`]*)`)?[ \t]*$")
# A line that starts a block of its own, so it cannot continue the item above it: a list item, heading or quote
NEW_BLOCK = re.compile(r"(?:[-*+]|\d{1,9}[.)]|#{1,6}|>)(?:[ \t]|$)")
# A field line in a loose shape: '- Answer: 4', '**Form**:', ' * Note :' (its label words one space apart, so that no two
# parts of the pattern can take the same spaces: linear time on a long line of spaces)
LOOSE_FIELD = re.compile(r"^\s*(?:[-*+]\s*)?(?:\*\*)?(?P<label>[A-Za-z]+(?: [A-Za-z]+)*)(?:\*\*)?\s*:")
LOOSE_ID = re.compile(r"\b([A-Z]{2,4}-[1-9][0-9]*)\b")
ID_TOKEN = re.compile(r"\b[A-Z]{2,4}-\d+\b")
GROUP = re.compile(r"\(([A-Z]{2,4})\)$")
SPEC = re.compile(r"\b(TS|TR)[ \u00a0](\d{2}\.\d{3}(?:-\d+)?)\b")
PLACEHOLDER = re.compile(r"\b(TODO|FIXME|XXX|TBD)\b")
LINK = re.compile(r"\[([^\]\[]*)\]\(#([^)\s\[]+)\)")     # no '[' in its text or target: linear time
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


class CsvRow(NamedTuple):
    """A row of an answers CSV: its line, its id and answer cells, its 'recorded' cell (None where the sheet has no
    such column: a sheet typed by hand), and {column: cell} of the other columns an export writes that it has."""
    line: int
    id: str
    answer: str
    recorded: Optional[str] = None
    sheet: Optional[dict] = None


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
    _names: Optional[tuple] = None                   # caches: the named conditions as (name, text) pairs,
    _trees: dict = field(default_factory=dict)       # item condition trees,
    _order: list = field(default_factory=list)       # the working order,
    _verdicts: dict = field(default_factory=dict)    # the verdicts for each set of answers,
    _targets: dict = field(default_factory=dict)     # and what each anchor names (checklist.py's link_targets)
    _live: Optional[list] = None                     # and the lines outside code fences

    def live(self):
        """[(number, line)] of the lines outside code fences, found once (the rules read them again and again)."""
        if self._live is None:
            self._live = [(n, line) for n, line in enumerate(self.lines, 1) if not self.fenced[n - 1]]
        return self._live

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
        return {iid: expand_others(BACKTICKED.findall(self.items[iid].get("Answer")), routing[iid])
                for iid in routing if self.items[iid].get("Answer")}

    def role_labels(self):
        return {role.label for role in self.roles}


def unique(values):
    """The values in their order, each once."""
    return list(dict.fromkeys(values))


# ---------------------------------------------------------------- parsing

def slugify(text):
    """GitHub heading anchor (without the -N suffix for repeats)."""
    text = re.sub(r"!?\[([^\]\[]*)\]\([^)\[]*\)", r"\1", text)        # no '[' inside: linear time
    text = re.sub(r"<[^<>]+>", "", text)
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
    for profile in doc.profiles.values():             # `others=` read as the parts it stands for
        profile.assumes = {iid: expand_others(tokens, doc.items[iid].declared if iid in doc.items else None)
                           for iid, tokens in profile.assumes.items()}
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
        elif n not in under_items and INDENTED_ITEM.match(line) and doc.inside(n, CHECKLIST):
            doc.problems.append(Defect(n, "item-format", INDENTED_ITEM_MESSAGE))
    for n, line in doc.live():
        if (FIELD.match(line) or META.match(line)) and n not in under_items and doc.inside(n, CHECKLIST):
            doc.problems.append(Defect(n, "item-format", "field line is not under an item "
                                                         "(a blank line or other text separates them)"))
    for item in doc.items.values():
        after = item.end                              # 0-based: the line right after the item's block
        if after < len(doc.lines) and doc.lines[after].strip() and not doc.fenced[after] \
                and not NEW_BLOCK.match(doc.lines[after]):
            doc.problems.append(Defect(after + 1, "item-format",
                                       "a line right after an item continues it; leave a blank line before it"))


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
        elif INDENTED_ITEM.match(text):                # another item's line, indented
            doc.problems.append(Defect(number, "item-format", INDENTED_ITEM_MESSAGE))
        else:                                         # any other line of the block: indented, so it continues the item
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


def named_conditions(doc):
    """The document's named conditions as a tuple of (name, text) pairs (the key of condition_tree's cache)."""
    if doc._names is None:
        doc._names = tuple((name, text) for name, (text, _) in doc.names.items())
    return doc._names


def name_trees(doc):
    """{name: tree} of the named conditions that parse (names may not use names); not to be changed (shared)."""
    return named_trees(named_conditions(doc))


@functools.lru_cache(maxsize=64)
def named_trees(named):
    """name_trees() for (name, text) pairs, parsed once for each set of them."""
    trees = {}
    for name, text in named:
        try:
            trees[name] = parse_condition(text)
        except ConditionError:
            continue
    return trees


@functools.lru_cache(maxsize=4096)
def condition_tree(text, named):
    """parse_condition(text) with the named conditions `named` ((name, text) pairs), parsed once for each pair of
    them (the trees are tuples, which nothing changes); a ConditionError each time."""
    return parse_condition(text, named_trees(named))


def item_tree(doc, item):
    """The item's full condition (its group's and its own), or None if either is malformed."""
    if item.id not in doc._trees:
        named = named_conditions(doc)
        parts = []
        try:
            group = doc.preambles.get(item.group)
            if group:
                parts.append(condition_tree(group.value, named))
            if item.condition:
                parts.append(condition_tree(item.condition, named))
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


def ids_in(text):
    """The item IDs a text names, with 'ABC-2 to ABC-5' expanded (see bad_ranges for the rest)."""
    ids = set(ID_TOKEN.findall(text))
    for pa, na, pb, nb in RANGE.findall(text):
        if pa == pb and 0 <= int(nb) - int(na) <= LONGEST_RANGE:
            ids.update(f"{pa}-{k}" for k in range(int(na), int(nb) + 1))
    return ids


def unblocked_ids(item):
    """IDs in an item's Unblocks."""
    return ids_in(item.get("Unblocks"))


def group_intro(doc, prefix):
    """The first paragraph between a group's heading and its first item, its condition line left out ('' if none)."""
    start = doc.groups.get(prefix)
    first = min((it.line for it in doc.items.values() if it.group == prefix), default=None)
    if not start or not first:
        return ""
    paragraph = []
    for n in range(start + 1, first):
        line = doc.lines[n - 1].strip()
        if doc.fenced[n - 1] or line.startswith("**Applies to this group:**"):
            continue
        if not line and paragraph:                    # the first paragraph only: a list or table would garble
            break
        if line:
            paragraph.append(line)
    return " ".join(paragraph)


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
            for other in (i for i in unblocked_ids(it) if i in ids and i != it.id):
                if doc.items[other].stage == it.stage != "blocker":
                    waits_for[other].add(it.id)
        # Kahn's algorithm, the first item in that order whose blockers are placed next (a heap of positions); in
        # a cycle, the first item not yet placed
        position = {it.id: k for k, it in enumerate(items)}
        left = {iid: len(waits) for iid, waits in waits_for.items()}
        waiting = {it.id: [] for it in items}
        for iid, waits in waits_for.items():
            for blocker in waits:
                waiting[blocker].append(iid)
        ready = [k for k, it in enumerate(items) if not left[it.id]]
        heapq.heapify(ready)
        placed, first = [False] * len(items), 0
        while len(doc._order) < len(items):
            if ready:
                k = heapq.heappop(ready)
            else:
                while placed[first]:
                    first += 1
                k = first
            placed[k] = True
            doc._order.append(items[k])
            for iid in waiting[items[k].id]:
                left[iid] -= 1
                if not left[iid] and not placed[position[iid]]:
                    heapq.heappush(ready, position[iid])
    return doc._order


def applicable(doc, answers):
    """[Verdict] for every non-void item, in working order; computed once for each set of answers."""
    key = tuple(sorted((iid, tuple(tokens)) for iid, tokens in answers.items()))
    if key not in doc._verdicts:
        doc._verdicts[key] = verdicts(doc, answers)
    return list(doc._verdicts[key])


def verdicts(doc, answers):
    """applicable(), the first time for its answers."""
    out = []
    for item in working_order(doc):
        tree = item_tree(doc, item)
        verdict = evaluate(tree, answers) if tree is not None else None
        waits = tuple(sorted({t.id for t in tests_in(tree) if t.id not in answers})) \
            if tree is not None and verdict is None else ()
        out.append(Verdict(item, verdict, waits))
    return out


def provisional(item, tokens):
    """True if a routing answer's tokens are all PROVISIONAL ones its item declares: it routes, but is not final."""
    declared = item.declared
    return bool(declared and tokens) and all(t in PROVISIONAL and t in declared.values for t in tokens)


def roles_of(doc, answers):
    """The roles that fit, in table order: the first is the requester's role, the others lend their lines to
    items that have none for it; the last role (the default, which fits everyone) only when no other does.
    An answer to an item that does not apply (REQ-17 once REQ-1 is not a network) decides no role."""
    applying = {r.item.id for r in applicable(doc, answers) if r.applies is not False}
    answers = {iid: tokens for iid, tokens in answers.items() if iid in applying}
    named, out = named_conditions(doc), []
    for role in doc.roles:
        try:
            if evaluate(condition_tree(role.condition, named), answers):
                out.append(role)
        except ConditionError:
            continue
    return [r for r in out if r is not doc.roles[-1]] or doc.roles[-1:]


def role_of(doc, answers):
    """The requester's role: the first of roles_of()."""
    roles = roles_of(doc, answers)
    return roles[0] if roles else None


def role_line(item, roles):
    """The item's line for the first of `roles` that has one; prefixed 'Label: ' when that is not the
    requester's own role. '' if none has one."""
    for k, role in enumerate(roles):
        if item.get(role.label):
            return item.get(role.label) if k == 0 else f"{role.label}: {item.get(role.label)}"
    return ""


def profile_view(doc, profile):
    """(applying items, undecided items, first items to answer) for a profile's answers."""
    rows = applicable(doc, profile.assumes)
    yes = [r.item for r in rows if r.applies]
    undecided = [r for r in rows if r.applies is None]
    first = [it for it in yes if it.stage != "blocker" and it.id not in profile.assumes][:FIRST_ITEMS]
    return yes, undecided, first


# ---------------------------------------------------------------- answer validation

def reason_letters(reason):
    """The letters and digits a reader sees in a reason."""
    return re.sub(r"[\W_]", "", substance(reason))


def unmarked(text):
    """NFKC text without Markdown emphasis, strikethrough or code marks, or math ('$', '{', '}' and LaTeX
    commands; a LaTeX space is a space), as 'not needed' is matched: '~~not needed~~', '$\\text{not needed}$'
    and '$not\\ needed$' read 'not needed'."""
    text = MATH_SPACE.sub(" ", unicodedata.normalize("NFKC", text))
    return re.sub(r"\\[A-Za-z]+|[*_`~${}]", "", text)


def struck(text):
    """True if the text holds a pair of single '~' that GitHub renders as struck-through text ('~France~'):
    one that can open (left-flanking, as CommonMark says) and a later one that can close (right-flanking)."""
    opened = False
    for m in TILDE.finditer(text):
        k = m.start()
        before, after = text[k - 1] if k else " ", text[k + 1] if k + 1 < len(text) else " "
        if opened and not before.isspace() and (not punctuation(before) or after.isspace() or punctuation(after)):
            return True
        if not after.isspace() and (not punctuation(after) or before.isspace() or punctuation(before)):
            opened = True
    return False


def punctuation(c):
    """True for ASCII punctuation or a Unicode punctuation character (as CommonMark's flanking rules read it)."""
    return c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" or unicodedata.category(c).startswith("P")


def math_markup(text):
    """True if the text holds GitHub math: '$$', a command that hides or recolours text, or a LaTeX command
    between two '$' signs ('$\\text{x}$'). A '$' amount alone is no math."""
    return "$$" in text or bool(HIDING_COMMAND.search(text)) or \
        any(LATEX_COMMAND.search(m.group(1)) for m in MATH.finditer(text))


def secret_problem(text):
    """The refusal of a text that seems to hold secret material (secret_found), naming the token by its start, or None."""
    found = secret_found(text)
    if not found:
        return None
    what, token, label = found
    token, label = (as_typed(token, text) if token else token), (as_typed(label, text) if label else label)
    if what == PASSWORD_SHAPED:
        return f"{masked(token)} looks like a password; {CONFIDENTIAL}"
    if what == NEAR_CREDENTIAL:                       # a name spelled with digits or symbols may be the password
        letters = "".join(c for c in label if unicodedata.category(c)[0] != "M")   # 'कोड', its vowel sign apart
        near = f"near '{shown(label)}'" if WORDS_ONLY.fullmatch(letters) else "near a password's name"
        return (f"{masked(token)} {near} looks like a password or key; {CONFIDENTIAL} "
                "(a name or number that is no secret: say so in other words, as 'Ubuntu 22' or 'rotated yearly')")
    if token:
        return f"{masked(token)} after '{shown(label)}' looks like a password; {CONFIDENTIAL}"
    return f"this looks like {what}; {CONFIDENTIAL}"


def text_problems(value):
    """Why a recorded or imported answer's text is not acceptable (the same rules for both); its length is counted as it
    is recorded (NFC)."""
    if len(value) > MAX_ANSWER_CHARS or len(unicodedata.normalize("NFC", value)) > MAX_ANSWER_CHARS:
        return [f"the answer is longer than {MAX_ANSWER_CHARS:,} characters: keep it elsewhere and "
                "record a pointer to it"]
    if LINE_BREAK.search(value):
        return [LINE_BREAK_MESSAGE]
    bad = hidden_characters(value)
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad[:3])
        return [f"the answer holds an invisible or control character ({codes}); retype it as plain text"]
    text = value.strip()
    if not substance(text):
        return ["the answer is empty"]
    if not LETTER_OR_DIGIT.search(text):
        return ["the answer has no letter or digit; write it in words"]
    secret = secret_problem(text)
    if secret:
        return [secret]
    problems = []
    if text.startswith(FORMULA_START) and not PHONE_START.match(text):
        problems.append(f"the answer starts with '{text[0]}', which a spreadsheet runs as a formula; "
                        "begin it with a word")
    elif re.match(r"(#+|[*|])(\s|$)", text):      # '>' and '1.' stay text after '**Answer:**' (a ranked list)
        problems.append("the answer may not start with a list, heading or table marker")
    if HTML_TAG.search(AUTOLINK.sub("", text)):
        problems.append("the answer may not contain HTML (a link may be written <https://...>)")
    elif any(not SAFE_AUTOLINK.match(link.group()) for link in AUTOLINK.finditer(text)):
        problems.append("the answer may link only to http, https or mailto addresses (<https://...>)")
    if any(entity(m) for m in ENTITY.finditer(text)):
        problems.append("the answer may not contain HTML entities")
    if MD_LINK.search(text):
        problems.append("the answer may not contain a Markdown link or image (a link may be written <https://...>)")
    if "**" in text:
        problems.append("the answer may not contain bold text ('**')")
    if "~~" in text:
        problems.append("the answer may not contain struck-through text ('~~')")
    elif "~" in text and struck(text):
        problems.append("the answer may not contain struck-through text ('~text~')")
    if math_markup(text):
        problems.append("the answer may not contain math: '$$', '\\color', '\\phantom', or a '\\' command "
                        "between '$' signs")
    if MOJIBAKE.search(text):
        problems.append("the answer looks garbled by a wrong encoding ('\u00c3\u00a9' for '\u00e9'): retype it, or save the "
                        "sheet as 'CSV UTF-8'")
    if ID_LOOKALIKE.search(text):
        problems.append("write item IDs with an ASCII hyphen")
    if text.count("`") % 2:
        problems.append("the answer has an unmatched backtick")
    m = NOT_NEEDED.match(unmarked(text))
    reason = reason_letters(m.group("reason")) if m else ""
    if m and (len(reason) < 3 or PLACEHOLDER_REASON.fullmatch(reason) or put_off(m.group("reason"))):
        problems.append("'not needed' must give its reason, for example 'not needed: we run no radios'")
    if NOT_APPLICABLE.fullmatch(unmarked(text)):
        problems.append(f"'{shown(text)}' is not an answer: write 'not needed:' and the reason instead")
    return problems


def is_not_needed(value):
    """True if the answer says 'not needed' (its reason is text_problems' business)."""
    return bool(NOT_NEEDED.match(unmarked(value.strip())))


# The token of a one-value-per-part answer that sets every part not named elsewhere in it: `others=out`
OTHERS = "others"


def part_of(token):
    """The part a `part=value` token names (what stands before its first '='; the whole token without one)."""
    return token.split("=", 1)[0]


def others_problems(iid, tokens, declared):
    """Messages for the `others=` tokens of a one-value-per-part answer: a value not declared, given more than once,
    or given where every part is named already."""
    others = [t for t in tokens if part_of(t) == OTHERS]
    problems = [f"{iid}: '{shown(t)}' needs a value of {declared.values}"
                for t in unique(others) if t.split("=", 1)[1:] not in [[v] for v in declared.values]]
    if len(others) > 1:
        problems.append(f"{iid}: '{OTHERS}=' is given {len(others)} times; give it once")
    named = {part_of(t) for t in tokens}
    if others and all(p in named for p in declared.parts):
        problems.append(f"{iid}: '{OTHERS}=' leaves no part to set: every part of {declared.parts} is named")
    return problems


def expand_others(tokens, declared):
    """A one-value-per-part answer's tokens with `others=VALUE` replaced by `part=VALUE` for every part not named
    in it (a part named wins), in the parts' order; the tokens unchanged for another item, without `others=`,
    or where others_problems() refuses it (so that answer_problems reports it)."""
    if not declared or declared.kind != "parts" or not any(part_of(t) == OTHERS for t in tokens) \
            or others_problems("", tokens, declared):
        return tokens
    value = next(t.split("=", 1)[1] for t in tokens if part_of(t) == OTHERS)
    named = {part_of(t) for t in tokens}
    out = [t for t in tokens if part_of(t) != OTHERS] + [f"{p}={value}" for p in declared.parts if p not in named]
    order = {p: k for k, p in enumerate(declared.parts)}
    return sorted(out, key=lambda t: order.get(part_of(t), len(order)))


def answer_problems(iid, tokens, declared):
    """Messages for a routing answer (list of tokens) that its item does not accept."""
    if not tokens:
        return [f"{iid} needs one of {declared.values}"]
    parts = declared.kind == "parts"
    counts = collections.Counter(tokens)                        # counted once: linear in a hand-edited answer
    problems = [f"{iid}: '{shown(t)}' is given twice" for t in unique(tokens)
                if counts[t] > 1 and not (parts and part_of(t) == OTHERS)]   # others_problems() reports those
    if parts:
        refused = others_problems(iid, tokens, declared)
        problems += refused
        tokens = [t for t in tokens if part_of(t) != OTHERS] if refused else expand_others(tokens, declared)
        pairs = [t.split("=", 1) if "=" in t else [t, None] for t in tokens]
        problems += [f"{iid}: {token_shown(t)} is not part=value with a part of {declared.parts} "
                     f"and a value of {declared.values}"
                     for t, (p, v) in zip(tokens, pairs) if p not in declared.parts or v not in declared.values]
        named = [p for p, _ in pairs]
        problems += [f"{iid}: part '{p}' is answered {named.count(p)} times"
                     for p in declared.parts if named.count(p) > 1]
        missing = [p for p in declared.parts if p not in named]
        if missing and not refused:
            problems.append(f"{iid}: no value for part(s) {', '.join(missing)}")
        return problems
    problems += [f"{iid}: {token_shown(t)} is not an answer of {iid} {declared.values}"
                 for t in unique(tokens) if t not in declared.values]
    if declared.kind == "one" and len(unique(tokens)) > 1:
        problems.append(f"{iid} takes exactly one answer")
    return problems


def token_shown(token):
    """A routing token as a refusal shows it: quoted, or PASSWORD_LIKE if it looks like a password (H15-8), or
    DIGITS_LIKE if it holds two digits or more (a code: '5829#', 'PIN5829', a passphrase: 'litti-chokha-31')."""
    if len(token) >= SECRET_VALUE_LENGTH and secret_value(token, False, True):
        return PASSWORD_LIKE
    return DIGITS_LIKE if len(re.findall("[0-9]", token)) >= 2 else f"'{shown(token)}'"


DIGITS_LIKE = "a token with digits"


def canonical(token, declared):
    """The declared spelling of a token typed in any letter case ('Teaching' -> 'teaching')."""
    words = declared.values + declared.parts + ([OTHERS] if declared.kind == "parts" else [])
    spelled = {v.lower(): v for v in words}
    if "=" in token:
        part, value = token.split("=", 1)
        return f"{spelled.get(part.lower(), part)}={spelled.get(value.lower(), value)}"
    return spelled.get(token.lower(), token)


def sheet_value(cell):
    """A CSV cell without the apostrophe an export puts before a formula's sign ("'+44 20 7946 0958"), or a sheet keeps
    before a number typed as text ("'4 servers", LibreOffice); not one that is part of a word ("'90s-era plan")."""
    text = cell.strip()
    return text[1:] if text.startswith("'") and (text[1:].startswith(FORMULA_START) or SHEET_NUMBER.match(text)) else cell


SHEET_NUMBER = re.compile(r"'[0-9]+(?![^\W_])")      # "'4 servers", "'2026-03-01"; not "'90s"


# What separates a routing cell's tokens: commas (the fullwidth and ideographic ones Chinese and Japanese keyboards
# type too) and spaces
TOKEN_SPLIT = re.compile(r"[,\uff0c\u3001\s]+")
# What a spreadsheet shows for a formula that refers to an empty cell (a zero as number, amount in a currency,
# accounting or fraction format, percentage, time or duration; day 0 as a long date; '(blank)'), or for a checkbox,
# in several languages: no answer anyone typed, alone in a cell
SHEET_CURRENCY = (r"(?:[$\u00a3\u20ac\u00a5\u20b9\u20ba\u20bd\u20a9\u20aa\u0e3f\u20ab\u20b1\u20a6]|r|kr|z\u0142|k\u010d|ft|"
                  r"lei|fr\.|chf|usd|eur|gbp|jpy|cny|inr|zar|sek|nok|dkk|pln|czk|huf|ron|try|rub|brl|aud|cad|nzd|mxn|"
                  r"krw|sgd|hkd)")
SHEET_VALUE = re.compile(r"#?(?:true|false|verdadero|falso|verdadeiro|wahr|falsch|vrai|faux|vero|waar|onwaar|sant|"
                         r"falskt|sand|falsk|sann|usann|tosi|ep\u00e4tosi|pravda|nepravda|igaz|hamis|do\u011fru|"
                         r"yanl[\u0131i]\u015f|adev\u0103rat|fals|\u03b1\u03bb\u03b7\u03b8[\u03b5\u03ad][\u03c3\u03c2]|"
                         r"\u03c8\u03b5\u03c5\u03b4[\u03b5\u03ad][\u03c3\u03c2]|"
                         r"\u0438\u0441\u0442\u0438\u043d\u0430|\u043b\u043e\u0436\u044c|prawda|fa\u0142sz)#?|"
                         r"(?:true|false)\(\)|(?:un)?checked|x|tick(?:ed)?|"
                         rf"{SHEET_CURRENCY}?\s?(?:0+(?:[.,]0+)?|\(0+(?:[.,]0+)?\)|0(?:\s0)?/0)\s?(?:%|{SHEET_CURRENCY})?|"
                         r"0?0:00(?::00(?:[.,]0+)?)?(?:\s?[ap]\.?m\.?)?|12:00(?::00)?\s?a\.?m\.?|0?0h00|"
                         r"0\s+days?\s+0?0:00:00(?:[.,]0+)?|1/0/(?:19)?00|"
                         r"(?:1899-12-30|12/30/1899|30[/.]12[/.]1899)\s+0?0:00(?::00)?|[a-z]{3}-0?0|"
                         r"1904-01-01|1970-01-01(?:[t\s]00:00(?::00(?:[.,]0+)?)?z?)?|0?1[./]0?1[./]1970(?:\s+0?0:00(?::00)?)?|"
                         r"(?:[^\W\d_]+,?\s+)?(?:[^\W\d_]+\s+0|0\.?\s+(?:de\s+)?[^\W\d_]+),?\s+(?:de\s+)?1900|"
                         r"1900/0?1/0?0|1900\u5e740?1\u67080?0\u65e5|\u660e\u6cbb33\u5e740?1\u67080?0\u65e5|"
                         r"0000-00-00(?:[t\s]00:00:00)?|0001-01-01(?:[t\s]00:00:00(?:[.,]0+)?(?:\s?[+-]0000)?(?:\s?utc|z)?)?|"
                         r"1601-01-01(?:[t\s]00:00:00)?|invalid\s+date|nan-nan-nan|"
                         r"(?:1900-01-01|01[./]01[./]1900|1753-01-01|9999-12-31|31[./]12[./]9999|12/31/9999)(?:[t\s]00:00(?::00)?)?|"
                         r"(?=.*1970)(?:[a-z]{3},?\s+)?(?:[a-z]{3}\s+0?1|0?1\s+[a-z]{3}),?\s+(?:1970\s+)?(?:0?0:00(?::00)?\s*)?"
                         r"(?:(?:utc|gmt)(?:[+-]0000)?\s*)?(?:1970)?(?:\s*\([^()]*\))?|"
                         r"\((?:blank|empty)\)|undefined|nat|error", re.I)
# A date to which a spreadsheet added a midnight time ('2026-03-14 00:00:00', 'Mar 14, 2026, 12:00:00 AM'): a time
# nobody gave
MIDNIGHT = re.compile(r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}[/.][0-9]{1,2}[/.][0-9]{2,4}|[a-z]{3}\s[0-9]{1,2},\s[0-9]{4},?)"
                      r"[t\s]+(?:0?0:00(?::00(?:[.,]0+)?)?(?:\s?a\.?m\.?)?|12:00:00\s?a\.?m\.?)(?:z|[+-]00:?00)?", re.I)
# A range or fraction a spreadsheet turned into a date and shows so ('3-4' as '04-Mar', '4/3' as '4-mars'): what was
# typed is lost
RANGE_MONTHS = (r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|m\u00e4r|mrz|mai|okt|dez|janv|f\u00e9vr|mars|avr|juin|"
                r"juil|ao\u00fbt|d\u00e9c|ene|abr|ago|dic|gen|mag|giu|lug|set|ott|\u044f\u043d\u0432|\u0444\u0435\u0432|"
                r"\u043c\u0430\u0440|\u0430\u043f\u0440|\u043c\u0430\u0439|\u0438\u044e\u043d|\u0438\u044e\u043b|"
                r"\u0430\u0432\u0433|\u0441\u0435\u043d|\u043e\u043a\u0442|\u043d\u043e\u044f|\u0434\u0435\u043a)")
# A date a spreadsheet keeps as its day number (Excel's serial for 1998 to 2099: '46096' is 2026-03-15), where the Form
# asks for dates
DATE_SERIAL = re.compile(r"(?:3[6-9]|[4-6][0-9]|7[0-2])[0-9]{3}(?:\.[0-9]+)?")
DATE_FORM = re.compile(r"(?<![^\W_])dates?(?![^\W_])", re.I)
RANGE_DATE = re.compile(r"[0-9]{1,2}(?:[-.]|\.\s)" + RANGE_MONTHS + r"\.?|" + RANGE_MONTHS + r"\.?-[0-9]{1,2}", re.I)
# A long number a spreadsheet shows in scientific notation ('8.9441E+19', an ICCID), or saves cut to 15 digits and
# zeros ('89441000012345600000'): its digits are lost
SHORTENED_NUMBER = re.compile(r"[0-9](?:[.,][0-9]+)?E\+[0-9]{1,3}|[1-9][0-9]{14}0+", re.I)


def format_answer(item, cell):
    """(text to record, problems) for an answer addressed to `item` (from a CSV cell)."""
    if item.void:
        return None, [f"{item.id} is withdrawn (void): {item.ask}"]
    cell = unicodedata.normalize("NFC", sheet_value(cell))
    declared = item.declared
    if not declared and put_off(cell):
        return None, [f"{item.id}: '{shown(cell.strip())}' is no answer: leave the cell empty until it is known, "
                      "or write 'not needed: <reason>'"]
    if not declared and SHEET_VALUE.fullmatch(cell.strip()):
        return None, [f"{item.id}: '{shown(cell.strip())}' alone may be a spreadsheet's own value (an empty cell a "
                      "formula refers to, a checkbox): write the answer in words, as '0 sites' or 'yes'"]
    if not declared and MIDNIGHT.fullmatch(cell.strip()):
        return None, [f"{item.id}: '{shown(cell.strip())}' is a date with a midnight time a spreadsheet added: write the "
                      "date alone, or format the column as text"]
    if not declared and RANGE_DATE.fullmatch(cell.strip()):
        return None, [f"{item.id}: '{shown(cell.strip())}' may be a range or fraction a spreadsheet turned into a date: "
                      "format the column as text and type it again"]
    if not declared and DATE_SERIAL.fullmatch(cell.strip()) and DATE_FORM.search(item.get("Form") or ""):
        return None, [f"{item.id}: '{shown(cell.strip())}' may be a date a spreadsheet stored as its day number: format the "
                      "column as text and type the date again"]
    if SHORTENED_NUMBER.fullmatch(cell.strip()):
        return None, [f"{item.id}: '{shown(cell.strip())}' is a long number a spreadsheet shortened: format the "
                      "column as text and type the number again"]
    if declared:                                      # 'lab/research': answers apart by '/', read as if by ','
        head, sep, tail = cell.partition(";")
        slashed = [part.strip() for part in head.split("/")]
        if len(slashed) > 1 and all(canonical(part.strip("`"), declared) in declared.values for part in slashed):
            cell = ", ".join(slashed) + sep + tail
    problems = [f"{item.id}: {m}" for m in text_problems(cell)]
    if problems or not declared:
        return (None if problems else cell.strip()), problems
    if is_not_needed(cell):
        return None, [f"{item.id} is a routing item: answer with {declared.values}, not 'not needed'"]
    tokens_part, _, comment = cell.partition(";")
    tokens_part = re.sub(r"\s*=\s*", "=", tokens_part.strip())
    tokens = [canonical(tok.strip("`"), declared) for tok in TOKEN_SPLIT.split(tokens_part) if tok.strip("`")]
    problems = answer_problems(item.id, tokens, declared)
    tokens = expand_others(tokens, declared)
    if "`" in comment:
        problems.append(f"{item.id}: the comment after ';' may not contain backticks")
    words = [w.strip("`#;") for w in TOKEN_SPLIT.split(comment.strip()) if w.strip("`#;")]
    if words and all(canonical(w, declared) in declared.values for w in words):   # 'research; teaching', 'lab;#research;'
        problems.append(f"{item.id}: '{shown(comment.strip())}' after ';' reads as answers; list answers with ',' and keep "
                        "';' for a comment")
    text = ", ".join(f"`{tok}`" for tok in tokens) + (f"; {comment.strip()}" if comment.strip() else "")
    return text, problems


def put_off(cell):
    """True if an answer only puts the answer off (PUT_OFF, PUT_OFF_WORLD: 'pending', 'tbd', 'n/a', '?'), or two such
    answers do ('N/A - TBD': cut where PUT_OFF_CUT finds a separator)."""
    def one(part):
        return bool(PUT_OFF.fullmatch(part) or PUT_OFF_WORLD.fullmatch(part.lower()))
    return len(cell) <= PUT_OFF_CHARS and (one(cell) or any(one(cell[:m.start()]) and one(cell[m.end():])
                                                              for m in PUT_OFF_CUT.finditer(cell)))


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


@rule("item-continuation: an indented paragraph after an item, which renders as part of the item")
def continuations(doc):
    """No indented text follows an item after a blank line: GitHub shows it as a paragraph of the item (of its
    last field, such as its Answer), but it is none of the item's fields, and import and the views never see it."""
    for item in doc.items.values():
        k = item.end                                  # 0-based: the line right after the item's block
        while k < len(doc.lines) and not doc.lines[k].strip():
            k += 1
        if not item.end < k < len(doc.lines):
            continue
        line = doc.lines[k]
        if FIELD.match(line) or META.match(line):
            continue                                  # item-format reports a field line cut off from its item
        if len(line[:len(line) - len(line.lstrip(" \t"))].expandtabs(4)) >= 2:      # a list item's content column
            last = FIELD.match(doc.lines[item.end - 1])
            yield Defect(k + 1, "item-continuation",
                         f"{item.id}: this indented text after a blank line renders as part of the item"
                         + (f" (of its {last.group('label')})" if last else "") + ", but is none of its fields; "
                         "unindent it or delete it")


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


# C0 and C1 control characters but tab (and line feed and carriage return, which line-ending judges)
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@rule("control-character: a line holds a control character (NUL, ESC, BEL and the like), which a terminal obeys")
def control_characters(doc):
    """No line holds a C0 or C1 control character but tab: an ESC sequence in a file someone sends can drive the
    terminal of whoever views it, and a NUL or BEL is no text."""
    for n, line in enumerate(doc.lines, 1):
        found = CONTROL_CHARACTER.findall(line)
        if found:
            codes = ", ".join(f"U+{ord(c):04X}" for c in list(dict.fromkeys(found))[:3])
            yield Defect(n, "control-character", f"a control character ({codes}) in the line; delete it")


@rule("invisible-character: a line holds an invisible, direction or separator character (U+200B, U+202E, U+2028 and "
      "the like), which hides or reorders text")
def invisible_characters(doc):
    """No line but a recorded Answer (the answer rule judges those) holds a character that shows nothing or reorders
    the text around it, as import refuses in answers (hidden_characters; tabs and control characters have rules of
    their own)."""
    answers = {item.fields["Answer"][1] for item in doc.items.values() if "Answer" in item.fields}
    for n, line in enumerate(doc.lines, 1):
        line = line[1:] if n == 1 and line.startswith("\ufeff") else line   # a byte-order mark, as Notepad saves
        found = [c for c in hidden_characters(line) if c != "\t" and not CONTROL_CHARACTER.match(c)] \
            if n not in answers and not line.isascii() else []
        if found:
            codes = ", ".join(f"U+{ord(c):04X}" for c in found[:3])
            yield Defect(n, "invisible-character", f"an invisible character ({codes}) in the line; delete it")


@rule("hidden-text: an HTML comment hides text from readers")
def hidden_text(doc):
    """No HTML comment (outside code, which shows it) hides text from readers."""
    for n, line in doc.live():
        if "<!--" in CODE_SPAN.sub("", line):
            yield Defect(n, "hidden-text", "an HTML comment hides text from readers; delete it or make it visible")


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


@rule("answer: a recorded Answer breaks import's rules, its box, or its routing item's answers as import reads them")
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
        held = provisional(item, BACKTICKED.findall(value))
        if item.ticked == held:
            yield Defect(item.line, "answer", f"{item.id}: a provisional answer (such as `pending`) leaves its box "
                         "unticked" if held else f"{item.id} has an Answer but its box is not ticked")
        problems = text_problems(value)
        for message in problems:
            if not message.endswith(CONFIDENTIAL):          # the secret rule reports those
                yield Defect(line, "answer", f"{item.id}: {message}")
        if not problems and not item.declared and put_off(value):     # as import refuses it ('TBD', '#REF!')
            yield Defect(line, "answer", f"{item.id}: '{shown(value.strip())}' is no answer: delete the Answer line "
                                         "until it is known, or write 'not needed: <reason>'")
        if item.id in routing:
            messages = answer_problems(item.id, BACKTICKED.findall(value), routing[item.id])
            if not problems:                          # and as import reads the Answer from an export of it
                messages += format_answer(item, value)[1]
            for message in unique(messages):
                yield Defect(line, "answer", message)


def recorded_secrets(doc):
    """The answer rule's defects for recorded answers that give a secret (text_problems' messages that send it to a
    confidential channel), also where another problem came first: an invisible character or a line break (judged
    without them), or a length over MAX_ANSWER_CHARS (not judged: UNJUDGED). The views refuse to copy such a file."""
    for item in doc.items.values():
        if "Answer" in item.fields:
            value, line = item.fields["Answer"]
            problems = text_problems(value)
            message = next((m for m in problems if CONFIDENTIAL in m), None)
            if not message and problems and max(len(value), len(unicodedata.normalize("NFC", value))) > MAX_ANSWER_CHARS:
                message = UNJUDGED
            elif not message and problems and (hidden_characters(value) or LINE_BREAK.search(value)):
                hidden = set(hidden_characters(value))
                seen = LINE_BREAK.sub(" ", "".join(c for c in value if c not in hidden)).strip()
                message = seen and secret_problem(seen)
            if message:
                yield Defect(line, "answer", f"{item.id}: {message}")


UNJUDGED = (f"the answer is longer than {MAX_ANSWER_CHARS:,} characters, more than is judged for secret material, "
            "so it is not copied")


@rule("secret: a line looks like key material")
def secrets(doc):
    """Nothing in the file looks like secret material; what the views copy (an item's ask and fields, a profile's or
    role's line, a group's heading and notes, the outside context) is judged as answers are (written_secret), the
    rest of the prose so too where a password's, code's, door's or alarm's name stands (prose_secret), an item's
    Answer line by the answer rule (text_problems); a line longer than an answer may be is named, not judged."""
    answers = {item.fields["Answer"].line for item in doc.items.values() if "Answer" in item.fields}
    written = {n for item in doc.items.values() for n in range(item.line, item.end + 1)} - answers
    written.update(n for profile in doc.profiles.values() for n in (profile.line, profile.assumes_line) if n)
    written.update([role.line for role in doc.roles] + [preamble.line for preamble in doc.preambles.values()])
    firsts = {}
    for item in doc.items.values():
        firsts.setdefault(item.group, item.line)
    written.update(n for prefix, start in doc.groups.items() for n in range(start, firsts.get(prefix, start)))
    context = next((n for n, line in enumerate(doc.lines, 1) if line.startswith('- <a id="ctx-')), None)
    if context:                                       # the outside context, which packets and pages copy
        written.update(range(context, next((n for n in range(context, len(doc.lines) + 1)
                                            if doc.lines[n - 1].startswith("#")), len(doc.lines) + 1)))
    def own_ids_out(line):                            # 'LIC-3 to LIC-5' names items, not a number; a table's
        if line.startswith("|"):                      # cells read as a label and its value ('| lab wifi | X is the key |')
            line = ": ".join(cell.strip() for cell in line.strip().strip("|").split("|"))
        return ID_TOKEN.sub(lambda m: " " if m.group() in doc.items else m.group(), line)
    for n, line in enumerate(doc.lines, 1):
        if len(line) > MAX_ANSWER_CHARS:                # an Answer line so long is the answer rule's (UNJUDGED)
            if n not in answers:
                yield Defect(n, "secret", f"this line is longer than {MAX_ANSWER_CHARS:,} characters, more than is "
                                          "judged for secret material: shorten it")
            continue
        what = written_secret(own_ids_out(line)) if n in written else \
            secret_in(line, near=False) if n in answers else prose_secret(own_ids_out(line))
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
        edges[item.id] = sorted(i for i in unblocked_ids(item) if i in doc.items and i != item.id)
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
    """Every standard cited by number is listed under References; not in an Answer, which is the respondent's
    text, not the document's citation."""
    refs = doc.section(REFERENCES)
    listed = {" ".join(m.groups()) for n, line in doc.live() if refs and refs[0] <= n < refs[1]
              for m in SPEC.finditer(line)}
    answers = {item.fields["Answer"].line for item in doc.items.values() if "Answer" in item.fields}
    for n, line in doc.live():
        if refs and refs[0] <= n < refs[1] or n in answers:
            continue
        for m in SPEC.finditer(line):
            spec = " ".join(m.groups())
            if spec not in listed:
                listed.add(spec)
                yield Defect(n, "reference", f"{spec} is cited but not listed under '## {REFERENCES}'")


@rule("placeholder: TODO, FIXME, XXX or TBD is left in the text",
      "commands: the document does not give its two commands")
def leftovers(doc):
    """No placeholder words remain outside the Answers (a respondent's 'dates TBD with the regulator' is an answer,
    as import and the page record it: H15-3), and the document gives the two commands of its last section."""
    answers = {item.fields["Answer"].line for item in doc.items.values() if "Answer" in item.fields}
    for n, line in doc.live():
        if n in answers:
            continue
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

# What a reader does not see of a line: empty anchors and the targets of links; then, in this order, a task
# box, a bullet, a heading's marks and a table's rule
EMPTY_ANCHOR = re.compile(r"<a [^<>]*></a>")
LINK_TARGET = re.compile(r"\[([^\]\[]*)\]\([^)\[]*\)")                # no '[' inside: linear time
LINE_MARKUP = tuple(map(re.compile, (r"^\s*- \[[ xX]\] ", r"^\s*[-*] ", r"^#+ ", r"^\|?[-:| ]+\|?$")))
# A word as counted: a run of non-space characters with a letter, digit or underscore in it (matched only from the
# run's start, so that a long run without one is read once: linear time)
WORD = re.compile(r"(?<!\S)\S*\w\S*")


def rendered(line):
    """A line as a reader sees it: anchors, link targets, emphasis, list and table markup removed."""
    line = LINK_TARGET.sub(r"\1", EMPTY_ANCHOR.sub("", line)).replace("**", "").replace("`", "")
    for markup in LINE_MARKUP:
        line = markup.sub("", line)
    return line.replace("|", " ")


def words(line):
    return len(WORD.findall(rendered(line)))


def item_words(doc, item):
    answer = item.line_of("Answer") if "Answer" in item.fields else 0
    return sum(words(doc.lines[k]) for k in range(item.line - 1, item.end) if k + 1 != answer)
