#!/usr/bin/env python3
"""The checklist's own program: Python 3.8 or later, standard library only.

    python3 tools/checklist.py check    [--list-rules] [--format md|json] [--file PATH]
    python3 tools/checklist.py profiles [--show KEY] [--format md|csv|json] [--file PATH]
    python3 tools/checklist.py items    [--profile KEY] [--answers CSV] [--party P | --involving P]
                                        [--stage S] [--group PREFIX] [--format md|csv|json] [--file PATH]
    python3 tools/checklist.py status   [--profile KEY] [--answers CSV] [--format md|csv|json] [--file PATH]
    python3 tools/checklist.py stats    [--format md|csv|json] [--file PATH]
    python3 tools/checklist.py import   ANSWERS.csv [--replace] [--file PATH]
    python3 tools/checklist.py form     [--profile KEY] [--party P | --involving P] [--answers CSV] [--file PATH]
                                        [-o FILE]

Exit codes: 0 done; 1 the checklist has defects (check) or holds what looks like a key (items,
status and form then print nothing), or the input was refused and nothing was written (import,
--answers; a CSV that cannot be read is refused input); 2 the command could not run as asked:
a usage error (an unknown option, profile, party, stage or group, an empty value),
a checklist that cannot be read, or an output that cannot be written (a full disk, a closed stdout, a
hand edit saved during an import that could not be put back: the message names the file that keeps it).
A view whose reader has closed the pipe ends quietly with its usual code; an import that has
recorded its answers exits 0 even if its report cannot be printed (and says so on stderr); once the
file is replaced, SIGTERM, SIGHUP and SIGINT are ignored until the report is printed.
Output is UTF-8, whatever the locale; CSV starts with a byte-order mark, as Excel needs.

Shape: checklist_core.py (next to this file) reads the document and judges text: the model, `parse()`,
conditions and routing, answer validation (with answer_text.py, the secret filter), and the rules, each
declaring its codes; this file writes and prints: import (CSV reading, planning, atomic writing), the
views (`items`, `profiles`, `status`, `stats`, `check`), the answer form (`form`, whose page is
tools/form.html), and `main()`, a thin argparse layer and the only place that prints or exits. The default file is README.md next to tools/.
"""
import signal
import sys

if __name__ == "__main__":      # Ctrl-C while the program loads: a word and code 1, not a traceback (main() restores it)
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit("interrupted; nothing written."))

import argparse  # noqa: E402  (the imports take a tenth of a second; the line above covers them)
import bisect
import contextlib
import copy
import csv
import errno
import functools
import glob
import io
import json
import os
import re
import select
import shutil
import stat
import statistics
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

try:
    import fcntl                       # POSIX: a lock the kernel drops when its process dies
except ImportError:                    # pragma: no cover (Windows)
    fcntl = None

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checklist_core import *  # noqa: E402,F401,F403  the model, parser, conditions, validation and rules

# ---------------------------------------------------------------- import

def read_csv(path):
    """([CsvRow], [Problem]) from a CSV with 'id' and 'answer' columns, and perhaps a 'recorded' one (an export's).

    Leading rows whose first cell starts with '#' (the role line of an export) are skipped; the
    delimiter is the first of , ; TAB whose header holds both columns, or the one a first line such as
    'sep=;' names (Excel writes one). '-' is standard input (a pipe or a file, read as /dev/stdin)."""
    path = "/dev/stdin" if path == "-" and os.path.exists("/dev/stdin") else path
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISFIFO(mode):
            raw = read_fifo(path)
        elif stat.S_ISREG(mode):
            with open(path, "rb") as f:
                raw = f.read(MAX_CSV_BYTES + 1)
        else:
            return [], [Problem(0, "not a regular file")]
    except TimeoutError as e:                         # a FIFO that stopped giving data
        return [], [Problem(0, str(e))]
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
    text = without_empty_tail(text)
    if text.count("\n") > MAX_CSV_LINES:
        return [], [Problem(0, f"more than {MAX_CSV_LINES:,} lines, more rows than a spreadsheet holds: delete the "
                               "empty ones")]
    named = EXCEL_SEPARATOR.match(text)
    for delimiter in (named.group(1),) if named else (",", ";", "\t"):
        rows, problems = csv_rows(text, delimiter, skip=1 if named else 0)
        if rows is not None:
            return rows, problems
    return [], [Problem(1 + bool(named), "no 'id' and 'answer' columns in the header line (export one with: "
                                         "items --format csv)" + header_below(text, named))]


HEADER_SEARCH = 10                     # lines where a header below a title row is looked for


def header_below(text, named):
    """What a refusal adds where one of the first HEADER_SEARCH lines below the header line is a header (a title row
    above it): '; line N has them: ...'; else ''."""
    for number, line in enumerate(text.split("\n", HEADER_SEARCH)[:HEADER_SEARCH], 1):
        for delimiter in (",", ";", "\t") if number > 1 + bool(named) else ():
            try:
                names = [header_name(cell) for cell in next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))]
            except (csv.Error, StopIteration):
                continue
            if "id" in names and "answer" in names:
                return f"; line {number} has them: delete the lines above it, or start each with '#'"
    return ""


# What a sheet's empty rows at its end hold: blanks and separators (Excel can save ',,,' down to its last row)
EMPTY_TAIL = " \t\r\n,;|"


def without_empty_tail(text):
    """The text without the lines at its end that hold only blanks and separators (EMPTY_TAIL), in linear time: they
    hold no answer, and reading a million of them row by row took seconds."""
    end = text.find("\n", len(text.rstrip(EMPTY_TAIL)))
    return text if end < 0 else text[:end + 1]


# Excel's first line that names the separator: 'sep=;' (any of , ; TAB |)
EXCEL_SEPARATOR = re.compile(r"sep=([,;\t|])[ \t]*(?:\r\n|\r|\n|$)", re.I)


def read_fifo(path):
    """What a FIFO gives up to its end of data, or up to one byte over the size limit. A TimeoutError
    if it gives nothing for FIFO_WAIT seconds first, or has not ended FIFO_DEADLINE seconds after the
    start (a trickle of data): a pause is never taken for the end of the data, which would cut a cell
    short or drop the rows after it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks, size, deadline = [], 0, time.monotonic() + FIFO_DEADLINE
    try:
        while size <= MAX_CSV_BYTES:
            wait = min(FIFO_WAIT, deadline - time.monotonic())
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                if wait < FIFO_WAIT:
                    raise TimeoutError(f"the input took more than {FIFO_DEADLINE:g} s in all; nothing recorded")
                raise TimeoutError(f"the input stopped for {FIFO_WAIT:g} s before its end; nothing recorded"
                                   if chunks else f"no data for {FIFO_WAIT:g} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


# What a value in an unnamed first column may be: the row numbers pandas (to_csv) or R (write.csv) write
ROW_NUMBERS = ", or delete the column of row numbers a program wrote"
# A row that starts a second sheet: a byte-order mark before it, or the header again (two files joined with 'cat')
SECOND_SHEET = ("a byte-order mark or the header again starts this row, as where two files were joined: import each "
                "file on its own, or delete what was joined")
# What a character after a closing quote may be: a space a person typed ('"Room 2, rack B" ')
AFTER_QUOTE = " (a space or text after a closing quote: remove it, or put the whole cell in quotes)"

# The start of csv's message for a cell over its field limit (csv.field_size_limit(), 131,072 characters)
CSV_FIELD_LIMIT_ERROR = "field larger than field limit"


def csv_rows(text, delimiter, skip=0):
    """The rows read with `delimiter` after the first `skip` lines (blank lines and one '#' row, an export's, before
    the header skipped too: another '#' row there, or text beside the export's, is refused, as its text would
    be lost), or (None, []) if its header lacks 'id' or 'answer' (as a person reads the names: header_name). Reading
    stops after MAX_CSV_ROWS rows or MAX_PROBLEMS problems."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True, strict=True)
    rows, problems, start, header, comments, crowded = [], [], 1, None, [], []
    try:
        for row in reader:
            if reader.line_num <= skip or not "".join(row).strip() or comment_row(row):
                comments += [start] if reader.line_num > skip and comment_row(row) else []
                crowded += [start] if reader.line_num > skip and crowded_hint(row) else []
                start = reader.line_num + 1
                continue
            header = [cell.strip().lower() for cell in row]
            break
        names = [header_name(cell) for cell in header or ()]
        if "id" not in names or "answer" not in names:
            return None, []
        odd = header_problem(header, names)
        if odd:
            return [], [Problem(start, odd)]
        if len(comments) > 1:
            return [], [Problem(comments[1], "a second '#' row, which import would skip: write a comment in an answer "
                                             "cell (a routing item: after its answers and ';'), or delete the row")]
        if crowded:
            return [], [Problem(crowded[0], CROWDED_HINT)]
        repeated = sorted({name for name in COLUMN_NAMES + SHEET_COLUMNS if header.count(name) > 1})
        if repeated:
            return [], [Problem(start, f"the header names {' and '.join(repr(r) for r in repeated)} more than once")]
        # any column whose name starts with 'recorded' ('recorded answer', 'Recorded at export') is the export's
        # 'recorded' one, renamed: never left unread, as that would switch off the check of plan_answers
        recorded_cols = [k for k, name in enumerate(names) if name.startswith("recorded")]
        if len(recorded_cols) > 1:
            listed = ", ".join(f"'{shown(header[k])}'" for k in recorded_cols)
            return [], [Problem(start, f"the header names more than one column that reads 'recorded' "
                                       f"({listed}); keep one")]
        if not recorded_cols and set(EXPORT_ONLY) <= set(names):
            return [], [Problem(start, "the header has an export's columns but not its 'recorded' column; keep that "
                                       "column as exported (import compares it with the answer recorded now), or "
                                       "export again")]
        id_col, answer_col = header.index("id"), header.index("answer")
        recorded_col = recorded_cols[0] if recorded_cols else None
        sheet_cols = {name: names.index(name) for name in SHEET_COLUMNS if name in names}
        named = [bool(name) for name in header]
        unread = [bool(name) and name not in EXPORT_COLUMNS and not name.startswith("recorded") for name in names]
        start = reader.line_num + 1
        for row in reader:
            if not any(cell.strip() for cell in row):
                pass                                  # a blank line
            elif len(rows) + len(problems) == MAX_CSV_ROWS:
                problems.append(Problem(start, f"more than {MAX_CSV_ROWS:,} rows; split the file"))
                break
            elif row[0].startswith("\ufeff") or row[0].strip().lower() == header[0] and \
                    [(row[k] if k < len(row) else "").strip().lower() for k in range(len(header))] == header:
                problems.append(Problem(start, SECOND_SHEET))
            elif any(cell.strip() for cell in row[len(header):]):
                problems.append(Problem(start, f"more cells than the header has columns ({len(row)} for "
                                               f"{len(header)}): put the answer in quotes if it contains '{delimiter}'"))
            elif any(not named[k] and cell.strip() for k, cell in enumerate(row[:len(header)])):
                column = next(k for k, cell in enumerate(row) if not named[k] and cell.strip()) + 1
                problems.append(Problem(start, f"a value in column {column}, which the header leaves unnamed: "
                                               f"put the answer in quotes if it contains '{delimiter}'"
                                               + (ROW_NUMBERS if column == 1 else "")))
            elif any(unread[k] and cell.strip() for k, cell in enumerate(row[:len(header)])):   # the row's own cells
                column = next(k for k, cell in enumerate(row) if unread[k] and cell.strip())
                problems.append(Problem(start, UNREAD_MESSAGE.format(header_shown(header[column]))))
            else:
                cell = lambda k: row[k] if k < len(row) else ""         # a short row's missing cells are empty
                rows.append(CsvRow(start, cell(id_col), cell(answer_col),
                                   None if recorded_col is None else cell(recorded_col),
                                   {name: cell(k) for name, k in sheet_cols.items()}))
            if len(problems) > MAX_PROBLEMS:
                break
            start = reader.line_num + 1
    except csv.Error as e:
        if header is None:                            # no header with this delimiter
            return None, []
        lines = text.split("\n", start)              # the row that failed, from its first line
        joined = len(lines) >= start and lines[start - 1].startswith("\ufeff")
        problems.append(Problem(start, SECOND_SHEET if joined else long_cell(csv.field_size_limit())
                                if str(e).startswith(CSV_FIELD_LIMIT_ERROR)
                                else f"not valid CSV: {e}" + (AFTER_QUOTE if "expected after '\"'" in str(e) else "")))
    return rows, problems


CROWDED_HINT = ("text beside the export's '#' row, which import skips: type each answer in the 'answer' column of its "
                "item's row")


def crowded_hint(row):
    """True if an export's '#' row (its cell that starts with SHEET_HINT) has text in another cell too."""
    filled = [cell.strip() for cell in row if cell.strip()]
    return len(filled) > 1 and any(cell.startswith("# " + SHEET_HINT) for cell in filled)


def comment_row(row):
    """True if a row before the header is a comment: its first cell starts with '#', or its only filled one does, or
    one starts as an export's '#' row does (that row, after its columns were moved)."""
    filled = [cell.strip() for cell in row if cell.strip()]
    return bool(row) and row[0].lstrip().startswith("#") or len(filled) == 1 and filled[0].startswith("#") or \
        any(cell.startswith("# " + SHEET_HINT) for cell in filled)


def long_cell(limit):
    """The problem of a row with a cell over the csv module's field limit: the answer cap, not a CSV syntax error."""
    return (f"a cell in this row is longer than {limit:,} characters, and an answer may hold at most "
            f"{MAX_ANSWER_CHARS:,}: keep long text (a log, notes) in a file and give its name")


# LOOKALIKES (checklist_core.py) in lower case, for header names
HEADER_LOOKALIKES = str.maketrans({c: latin.lower() for latin, others in LOOKALIKE_LETTERS.items() for c in others})


def header_name(cell):
    """A header name as a person reads it: NFKD, in lower case, without invisible characters or accents, and
    with letters of other scripts that look Latin read as Latin: 'аnswer' (Cyrillic 'а'), 'answer\u200b' and
    'ＡＮＳＷＥＲ' all read 'answer'."""
    folded = unicodedata.normalize("NFKD", cell).lower()
    return "".join(c for c in folded if unicodedata.category(c) not in UNSEEN).translate(HEADER_LOOKALIKES).strip()


# The columns import reads: 'recorded' (an export's) holds the answer recorded when the sheet was made
COLUMN_NAMES = ("id", "answer", "recorded")
# The columns an export writes besides those import reads: a cell there that no export writes is refused
# (edited_column), and so is a row that fills any other column (a person's 'comment', 'notes', 'memo'), as its text
# would not be recorded (UNREAD_MESSAGE)
SHEET_COLUMNS = ("ask", "form", "unblocks", "from", "party", "stage", "applies", "waits_on", "in_your_role", "note",
                 "assumed")
EXPORT_COLUMNS = frozenset(COLUMN_NAMES + SHEET_COLUMNS)
UNREAD_MESSAGE = ("the '{}' column is not recorded: write a comment in the answer cell (a routing item: after its answers "
                  "and ';', as \"`c`; the team knows Python\"), or leave the column empty")
EXPORT_ONLY = ("ask", "form", "unblocks")         # columns only an export has: its 'recorded' column must stay


def header_problem(header, names):
    """Why a header cannot be read as written (None if it can): a name with an invisible character, or one
    that reads as an export's column ('id', 'answer', 'note': header_name) without being spelled so in plain letters;
    the program would not take such a column for the one it looks like, and the sheet would show two."""
    for cell, name in zip(header, names):
        bad = hidden_characters(cell)
        if bad:
            codes = ", ".join(f"U+{ord(c):04X}" for c in bad[:3])
            return f"the header name '{shown(cell)}' holds an invisible character ({codes}); retype it as plain text"
        if name in EXPORT_COLUMNS and cell != name:
            return f"the header name '{shown(cell)}' reads '{name}' but is not spelled in plain letters; retype it"
    return None


def known_rows(doc, rows):
    """([(line, item, answer)] for rows (CsvRow) with an answer, [Problem]) ; unknown or repeated IDs are problems
    (an unknown one is shown cut short if it may be a key: id_shown), and so is a row with no answer whose 'recorded'
    cell (read-only) holds one where none is recorded: an answer typed in the wrong column. (Where one is recorded, a
    different cell is what a sheet returned late holds, or an edit: its blank row records nothing, and import says so:
    left_out.) So is a cell of another column that no export writes (edited_column): its text would be lost; and an
    answer that repeats its row's own text (own_text), another item's longer text (sheet_texts), or, in PASTED_ROWS
    rows or more, its row's own From, party or stage (own_echo: a column pasted into 'answer')."""
    seen, found, problems, plain, echoes = {}, [], [], link_rewriter(doc, name=SHEET_NAME), []
    others = None                                     # sheet_texts, read when a row has an answer
    for line, raw_id, cell, recorded, sheet in rows:
        if len(problems) > MAX_PROBLEMS:
            break
        raw = id_cell(raw_id)
        iid = raw.upper() if raw.isascii() else None
        lettered = LETTERED.fullmatch(raw)
        if lettered and lettered.group(1).upper() in doc.items:
            problems.append(Problem(line, "answer lettered parts inside the item's one answer: "
                                          f"{lettered.group(1).upper()},\"({lettered.group(2).lower()}) ...\""))
        elif iid not in doc.items:
            problems.append(Problem(line, f"'{id_shown(raw)}' is not an item of the checklist"))
        elif iid in seen:
            problems.append(Problem(line, f"{iid} appears twice (first at line {seen[iid]})"))
        else:
            seen[iid] = line
            item = doc.items[iid]
            allowed, key = sheet_cells(doc, item, plain), sheet_key(cell)
            key = "" if item.declared else key
            edited = edited_column(doc, item, sheet or {}, allowed)
            repeated = "id" if key and key.upper() == iid else own_text(key, allowed)
            others = sheet_texts(doc, plain) if others is None and key else others
            if edited:
                problems.append(Problem(line, EDITED_MESSAGE.format(iid, edited)))
            elif cell.strip() and repeated:
                problems.append(Problem(line, OWN_TEXT_MESSAGE.format(iid, repeated)))
            elif key and key.lower() in others:
                other = others[key.lower()]
                problems.append(Problem(line, OTHER_TEXT_MESSAGE.format(iid, other[1], other[0])))
            elif cell.strip():
                echo = key and own_echo(key, allowed)
                (echoes if echo else found).append((line, item, cell.strip(), echo))
            elif recorded and recorded.strip() and not item.get("Answer"):
                problems.append(Problem(line, f"{iid}: the recorded column is read-only; type the answer in 'answer'"))
    if len(echoes) >= PASTED_ROWS:
        problems += [Problem(line, PASTED_MESSAGE.format(item.id, echo, len(echoes))) for line, item, _, echo in echoes]
        echoes = []
    return [row[:3] for row in sorted(found + echoes, key=lambda row: row[0])], problems


EDITED_MESSAGE = ("{}: the '{}' column is not recorded, and this cell is not what an export writes there: move your "
                  "text to the answer cell (a routing item: after its answers and ';'), or clear the cell; a sheet "
                  "exported from another version of the checklist: export again")
OWN_TEXT_MESSAGE = "{}: the answer cell holds the item's own '{}' text; type the answer itself"
OTHER_TEXT_MESSAGE = "{}: the answer cell holds the '{}' text of {} (pasted a row off?); type the answer itself"
PASTED_MESSAGE = ("{}: the answer cell holds the row's own '{}' text, as {} rows do (a column pasted into 'answer'?); "
                  "type the answer itself")
# What a sheet's link made plain names as its file (link_rewriter): not the file's name, so that a sheet made from a
# copy ('README (1).md') reads as one made from the checklist, and no text typed where the name was passes for it
SHEET_NAME = "the checklist"


def sheet_key(text):
    """A cell as compared with what an export writes: without an export's apostrophe, in NFC, and with its spaces and
    line breaks as single spaces."""
    return " ".join(unicodedata.normalize("NFC", sheet_value(text)).split())


def sheet_match(key, texts):
    """True if a cell's key is one of the texts (sheet_cells) as sheet_key reads them."""
    return key in map(sheet_key, texts)


def sheet_assumptions(doc, item):
    """What an export's 'assumed' cell can hold for an item: each profile's assumption, as item_record writes it."""
    return [f"{', '.join(f'`{t}`' for t in p.assumes[item.id])} (profile {key})"
            for key, p in doc.profiles.items() if item.id in p.assumes]


def sheet_cells(doc, item, plain):
    """{column: [texts]}: what an export can write for an item in the columns import does not read ('waits_on':
    the routing items its condition names, any of which may be waited on), each text as `plain` makes it
    (link_rewriter); none for a void item. A routing answer given in a CSV (items --answers) is no assumption an
    export writes in a sheet."""
    if item.void:
        return {}
    lines = [(role.label, item.get(role.label)) for role in doc.roles if item.get(role.label)]
    tree = item_tree(doc, item)
    cells = {"waits_on": sorted({test.id for test in tests_in(tree)}) if tree is not None else [], "ask": [item.ask], "form": [item.get("Form")], "unblocks": [item.get("Unblocks")], "from": [item.source],
             "party": [item.party], "stage": [item.stage], "applies": [applies_text(doc, item)],
             "in_your_role": [line for _, line in lines] + [f"{label}: {line}" for label, line in lines],
             "note": [item.get("Note")], "assumed": sheet_assumptions(doc, item)}
    return {column: [plain(text) for text in texts] for column, texts in cells.items()}


def edited_column(doc, item, cells, allowed):
    """The first column of `cells` ({column: cell}) that holds text no export writes for the item (`allowed`:
    sheet_cells), or None: in 'waits_on', IDs of items its condition names; elsewhere, the item's own text or a
    profile's assumption."""
    for column in SHEET_COLUMNS:
        key = sheet_key(cells.get(column) or "")
        if column == "waits_on":
            if not set(key.split()) <= set(allowed.get(column, ())):
                return column
        elif key and not sheet_match(key, allowed.get(column, ())):
            return column
    return None


OWN_COLUMNS = ("ask", "form", "unblocks", "applies", "in_your_role", "note")
OTHER_COLUMNS = ("ask", "form", "unblocks", "applies", "in_your_role", "note")
OTHER_TEXT = 20                   # another item's text this long, pasted as an answer, is refused (a row off)


# A row's short texts that an answer may be (one item's answer 'counsel'), unless PASTED_ROWS rows or more each repeat
# one of their own: a column pasted into 'answer' (known_rows)
ECHO_COLUMNS = ("from", "party", "stage")
PASTED_ROWS = 3


def own_echo(key, allowed):
    """The short column (ECHO_COLUMNS) whose text an answer cell repeats (in any case), or None."""
    return next((column for column in ECHO_COLUMNS if echoes(key, allowed.get(column, ()))), None)


def echoes(key, texts):
    """True if a cell's key is one of the texts as sheet_key reads them, case aside (an answer typed over its own
    column's text)."""
    return key.lower() in (sheet_key(text).lower() for text in texts if text)


def own_text(key, allowed):
    """The column whose text (sheet_cells) an answer cell repeats, or None. (Not asked of a routing item, whose answer
    must be among its declared ones: 'requester' is one of REQ-8's, and also its From.)"""
    return next((column for column in OWN_COLUMNS if echoes(key, allowed.get(column, ()))), None)


def sheet_texts(doc, plain):
    """{text as sheet_key reads it, in lower case: (ID, column)} of every item's longer texts (OTHER_COLUMNS, OTHER_TEXT
    characters at least), the first in working order where two items share one: an answer pasted a row off repeats
    one; and the rules a sheet's first row carries (sheet_rules), as (SHEET_FIRST_ROW, 'rule')."""
    texts = {}
    for item in working_order(doc):
        cells = sheet_cells(doc, item, plain)
        for column in OTHER_COLUMNS:
            for text in cells.get(column, ()):
                if len(text) >= OTHER_TEXT:
                    texts.setdefault(sheet_key(text).lower(), (item.id, column))
    for rule in sheet_rules(doc, plain):
        texts.setdefault(sheet_key(rule).lower(), (SHEET_FIRST_ROW, "rule"))
    return texts


SHEET_FIRST_ROW = "the sheet's first row"


def sheet_rules(doc, plain):
    """The rules an export's first row can carry, as it writes them: each role's, those of every role, the contact
    rule (preamble_line)."""
    return [plain(rule).replace("**", "") for rule in [role.rule for role in doc.roles] + every_role_rules(doc) +
            [contact_rule(doc)] if rule]


def id_cell(raw):
    """An id cell as read: without outer spaces, nor the apostrophe a spreadsheet may put before text ("'RES-4")."""
    raw = raw.strip()
    return raw[1:].strip() if raw.startswith("'") else raw


ID_SHOWN = 16                     # an id cell longer than this, or one that looks like a key, is shown cut to ID_CUT
ID_CUT = 8


def id_shown(raw):
    """An id cell that is no item, as a message shows it: escaped (shown), and cut to its first ID_CUT characters
    and '…' if it is longer than ID_SHOWN, or to as few as a password's refusal shows (masked) if it looks like secret
    material, so that a key or PIN typed there is never echoed (its first VALUE_REACH characters judged: a cell of
    100,000 took seconds)."""
    if secret_in(raw[:VALUE_REACH]):
        return shown(raw[:min(3, len(raw) // 3)], None) + "…"
    return shown(raw[:ID_CUT], None) + "…" if len(raw) > ID_SHOWN else shown(raw)


def header_shown(name):
    """A column's name that is not recorded, as a message shows it: words (and a column's number: 'Unnamed: 1') as
    written; anything else masked (masked), so that a passphrase typed as a header ('otter-meadow-57') is never echoed."""
    return shown(name) if HEADER_WORDS.fullmatch(name) else masked(name)[1:].replace("' (", " (", 1)


HEADER_WORDS = re.compile(r"[^\W\d_]{1,30}(?:[ _:-]+[^\W\d_]{1,30}){0,5}(?:[ _:]+[0-9]{1,3})?")


def formatted_rows(found):
    """([(line, item, text to record)] for the answers format_answer accepts, [Problem] for the rest)."""
    accepted, problems = [], []
    for line, item, cell in found:
        if len(problems) > MAX_PROBLEMS:
            break
        text, messages = format_answer(item, cell)
        problems += [Problem(line, m) for m in messages]
        if not messages:
            accepted.append((line, item, text))
    return accepted, problems


def plan_answers(doc, rows, replace):
    """({id: (text to record, csv line)}, [Problem]) for CSV rows; the same answer again is a no-op. A row whose
    'recorded' cell (an export's) is not the answer recorded now is stale, and refused: with --replace it would
    bring back an answer since replaced, or replace one its reader never saw. An empty 'recorded' cell is stale
    only under --replace (without it, an answer recorded since is refused anyway); and --replace replaces only an
    answer that the row's 'recorded' cell names: a sheet without that column (a packet whose column was renamed or
    deleted, or one typed by hand) replaces nothing."""
    found, problems = known_rows(doc, rows)
    accepted, more = formatted_rows(found)
    problems += more
    sheet = {row.line: row.recorded for row in rows if row.recorded is not None}
    changes = {}
    for line, item, text in accepted:
        existing = item.get("Answer")
        if same_answer(item, text):
            continue
        if line in sheet and (sheet[line].strip() or replace) and not recorded_matches(item, sheet[line]):
            problems.append(Problem(line, stale_message(item, sheet[line])))
            continue
        if existing and not replace:                  # an empty 'recorded' cell: the sheet predates that answer
            how = "put that answer in its 'recorded' cell and use --replace" if line in sheet else "use --replace"
            problems.append(Problem(line, f"{item.id} already has a different answer "
                                          f"('{recorded_shown(existing)}'); {how} to overwrite it"))
            continue
        if existing and line not in sheet:            # --replace replaces only an answer its row names
            problems.append(Problem(line, f"{item.id} already has a different answer; to replace it, put that "
                                          "answer in a 'recorded' column (an export has one: items --format csv), "
                                          "so that no answer is replaced unseen"))
            continue
        changes[item.id] = (text, line)
    return changes, problems


def recorded_matches(item, cell):
    """True if a sheet's 'recorded' cell holds the item's answer as recorded now (both may be empty), compared as
    import compares an answer with the recorded one (NFC, outer spaces, and a routing answer as format_answer
    writes it: same_answer)."""
    cell, existing = unicodedata.normalize("NFC", sheet_value(cell)).strip(), item.get("Answer")
    if not cell or not existing:
        return not cell and not existing
    if cell == existing:
        return True
    text, problems = format_answer(item, cell)
    return not problems and same_answer(item, text)


def recorded_shown(answer):
    """A recorded answer as a message quotes it: whole, unless it looks like secret material (a hand edit may have
    put one there), then only its start, as masked() shows a password."""
    return shown(answer[:min(3, len(answer) // 3)]) + "…" if secret_in(answer) else shown(answer)


def stale_message(item, cell):
    """Why a row whose 'recorded' cell is not the answer recorded now is refused, and what to do. An empty or
    missing cell, where an answer is recorded, may be a hand-made sheet's: nothing is said about an export."""
    existing = item.get("Answer")
    if existing and not cell.strip():
        return (f"{item.id}: its 'recorded' cell does not match the answer recorded now "
                f"('{recorded_shown(existing)}'); put "
                "that answer in its 'recorded' cell to replace it")
    if not existing:
        return (f"{item.id}'s recorded answer changed since this sheet was exported (now: none); export again, "
                "or clear its 'recorded' cell to record this answer anyway")
    return (f"{item.id}'s recorded answer changed since this sheet was exported "
            f"(now: '{recorded_shown(existing)}'); "
            "export again, or put that answer in its 'recorded' cell to replace it anyway")


def apply_answers(text, doc, changes):
    """The text with each changed item's Answer line set and its box ticked, unless the answer is provisional;
    every line keeps its ending."""
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
        box = "- [ ]" if provisional(item, BACKTICKED.findall(changes[iid][0])) else "- [x]"   # pending stays open
        lines[item.line - 1] = re.sub(r"^- \[[ xX]\]", box, lines[item.line - 1])
    return "\n".join(lines)


class Changed(Refusal):
    """The checklist changed between reading it and writing it (another import wrote first): cmd_import reads it again
    and records the answers anew."""


LOCK_WAIT = 10          # seconds an import waits for another to finish writing the checklist
IMPORT_ATTEMPTS = 100   # times an import starts again on a checklist other imports changed meanwhile (one each)


def write_atomically(path, original, text):
    """Replace `path` with `text` only if it still holds the bytes `original` (else Changed).

    The file is locked (flock) while it is compared and replaced, so a second import waits (up to
    LOCK_WAIT seconds) rather than interleaves; the kernel drops the lock if the process dies. The text goes to a
    temporary file in the same folder (write_temporary), which gets the file's owner, mode and extended
    attributes (keep_owner_and_attributes), and is moved over `path` by swap(), which
    checks once more that nobody else has changed it. Until then a signal (SIGTERM, SIGHUP, SIGINT)
    stops the import and nothing is written; once it has run, the file is written and these signals are
    ignored until the process ends, so that the import reports what it recorded and exits 0. An OSError on the way becomes a Refusal. Returns the names of older copies of the file that interrupted
    imports left beside it (remove_leftovers)."""
    swapped, name = [], shown(path.name, None)          # [True] once os.replace has run
    tmp, handle, previous = None, None, catch_signals(swapped)
    try:
        if not (path.stat().st_mode & 0o222 and os.access(path, os.W_OK)):
            raise Refusal(f"{name} is read-only; nothing written.")
        handle = open(path, "rb")
        if fcntl is not None:
            locked(handle, name)
        if path.read_bytes() != original:
            raise Changed(f"{name} changed while importing; nothing written. Run the import again.")
        kept = remove_leftovers(path)
        try:
            tmp = write_temporary(path, text)
        except OSError as e:
            raise Refusal(f"{name}: cannot write a temporary file next to it ({e.strerror}); nothing written.")
        keep_owner_and_attributes(path, tmp)
        swap(path, tmp, original, handle, swapped)
        return kept
    except OSError as e:                              # from copymode, replace, or reading the file again
        raise Refusal(f"cannot replace {name} ({e.strerror}); nothing written.")
    finally:
        try:
            if tmp is not None and not swapped:
                remove_temporary(tmp, path)
        finally:
            if handle is not None:
                handle.close()
            for sig, handler in previous.items():     # once swapped, ignored by the kernel: Python's own handlers
                signal.signal(sig, signal.SIG_IGN if swapped else handler)   # give way to the default at exit


def locked(handle, name):
    """Lock the open file (flock), waiting while another import holds the lock, up to LOCK_WAIT seconds."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise Refusal(f"{name}: another import has been writing it for {LOCK_WAIT} s; nothing written. Try again.")
            time.sleep(0.02)


BACKUP_NAME = re.compile(r"\.[0-9a-f]{12}\.tmp")     # after '.NAME': a backup as swap() names it


def remove_leftovers(path):
    """Remove the temporary files that an import killed before its swap left next to `path`
    ('.NAME.checklist-RANDOM.tmp', eight of tempfile's characters, as write_temporary names them), and a backup that
    one killed inside swap() left ('.NAME.<12 hex digits>.tmp') where it is `path` itself or holds its bytes; the names
    of the other backups (an older text, or a hand edit swap() named in a message), which are kept. Called while `path`
    is locked, when no other import can be writing one; a file of the user's is never touched."""
    own = re.compile(re.escape(f".{path.name}.checklist-") + r"[a-z0-9_]{8}\.tmp")
    for old in path.parent.glob(glob.escape(f".{path.name}.") + "*.tmp"):
        if not (own.fullmatch(old.name) or BACKUP_NAME.fullmatch(old.name[len(path.name) + 1:])) or \
                not old.is_file() or old.is_symlink():
            continue
        with contextlib.suppress(OSError):
            if own.fullmatch(old.name) or os.path.samefile(old, path) or old.read_bytes() == path.read_bytes():
                old.unlink()
    return older_copies(path)


def older_copies(path):
    """The names of the backups beside `path` ('.NAME.<12 hex digits>.tmp', as swap() names them) that hold other
    bytes than it: older copies that interrupted imports left (see remove_leftovers)."""
    names = []
    for old in sorted(path.parent.glob(glob.escape(f".{path.name}.") + "*.tmp")):
        with contextlib.suppress(OSError):
            if BACKUP_NAME.fullmatch(old.name[len(path.name) + 1:]) and old.is_file() and not old.is_symlink() and \
                    old.read_bytes() != path.read_bytes():
                names.append(old.name)
    return names


def older_copies_note(names):
    """A report's note naming the older copies of the checklist left beside it, or ''."""
    return "".join(f" Note: {shown(name, None)}, beside it, is an older copy that an interrupted import left; compare "
                   "and delete it." for name in names)


def keep_owner_and_attributes(path, tmp):
    """Give the new file `tmp` what `path` has: its owner and group (where this process may: as root, a file of
    another user stays that user's), its mode, and its extended attributes where the system has them (ACLs,
    labels; each copied if it can be, skipped if not). An OSError from the mode is raised."""
    st = os.stat(path)
    if hasattr(os, "chown") and (st.st_uid, st.st_gid) != (os.stat(tmp).st_uid, os.stat(tmp).st_gid):
        with contextlib.suppress(OSError):
            os.chown(tmp, st.st_uid, st.st_gid)
    shutil.copymode(path, tmp)                        # after chown, which may clear set-id bits
    if hasattr(os, "listxattr"):
        try:
            names = os.listxattr(path)
        except OSError:
            names = []
        for attribute in names:
            with contextlib.suppress(OSError):
                os.setxattr(tmp, attribute, os.getxattr(path, attribute))


def write_temporary(path, text):
    """A new file next to `path` ('.NAME.checklist-RANDOM.tmp', mode 0600) holding `text` as UTF-8, flushed to disk;
    its Path. If writing fails, the file is removed and the error raised."""
    out = tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", dir=path.parent,
                                      prefix=f".{path.name}.checklist-", suffix=".tmp",
                                      delete=False)
    tmp = Path(out.name)
    try:
        with out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:                             # a full disk, or a signal's Refusal
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def swap(path, tmp, original, handle, swapped):
    """Move `tmp` over `path` (os.replace), the locked file `handle` holds open, unless someone has changed
    `path` since it was read as `original`: a hand edit saved meanwhile is kept and the import refused.

    With the signals held: check that `path` is still the locked file (its inode) and holds `original`;
    hard-link it to a backup name; rename `tmp` over it; then compare the backup (the file just replaced)
    with `original`. If they differ, an edit landed between the check and the rename: the backup is put
    back and the import refused. The backup is removed otherwise; one that a kill left, the next import removes or
    names (remove_leftovers).

    The window that remains: an editor that saves by renaming its own file over `path` between the hard
    link and the rename (microseconds apart) is not seen, and its edit is replaced; so is an edit written
    into the old file after the comparison (it lands in the backup, which is removed). Where the folder
    takes no hard links (some network and FAT file systems) the comparison after the rename is skipped,
    and the window spans the check and the rename."""
    changed = f"{shown(path.name, None)} changed during the import; nothing recorded; run import again."
    with signals_held():
        if os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino or path.read_bytes() != original:
            raise Refusal(changed)
        backup = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            os.link(path, backup)
        except OSError:
            backup = None                             # no hard links here: no comparison after the rename
        try:
            os.replace(tmp, path)
        except OSError:
            if backup is not None:
                backup.unlink(missing_ok=True)
            raise
        swapped.append(True)
        if backup is None:
            return
        try:
            edited = backup.read_bytes() != original
        except OSError:
            edited = False                            # cannot tell: the answers stay recorded
        if not edited:
            with contextlib.suppress(OSError):
                backup.unlink()
            return
        try:
            os.replace(backup, path)                  # the hand edit back in place; this import's text is gone
        except OSError as e:
            raise Refusal(f"{shown(path.name, None)} changed during the import and the answers were written over "
                          f"the change, which is kept in {shown(backup.name, None)} ({e.strerror}); compare the two.",
                          code=2)
        raise Refusal(changed)


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
        raise Refusal(f"cannot remove the temporary file {shown(tmp.name, None)} ({e.strerror}); "
                      f"{shown(path.name, None)} not changed.")


# ---------------------------------------------------------------- views

BOLD_LINE = re.compile(r"^\*\*([^*].*?)\*\*$")   # a paragraph that is one bold sentence, as Start here's contact rule
REQUESTER = "requester"           # the party that asked for the work, whose routing answers decide the role
COUNTRIES = "REQ-3"               # the blocker that names the countries; counsel answers per country of it
COLUMNS = ("id", "ask", "form", "unblocks", "from", "party", "stage", "applies", "waits_on",
           "in_your_role", "note", "assumed", "answer")
CSV_COLUMNS = COLUMNS[:-1] + ("recorded", "answer")


class Answers(NamedTuple):
    """The answers a view uses, and where each came from."""
    tokens: dict          # id -> [tokens], the routing answers
    texts: dict           # id -> text as given, for routing answers not recorded in the file
    origin: dict          # id -> 'profile KEY' or the CSV's name, for routing answers not recorded
    title: str
    given: dict           # id -> text as import would record it, for every answer in the CSV, routing or not
    csv: str = ""         # the CSV's name, as shown


def gather_answers(doc, profile=None, csv_path=None):
    """A profile's assumptions, under the answers recorded in the file, under a CSV's answers."""
    tokens, texts, origin, sources, given = {}, {}, {}, [], {}
    if profile:
        p = doc.profiles[profile]
        for iid, toks in p.assumes.items():
            tokens[iid], texts[iid], origin[iid] = toks, ", ".join(f"`{t}`" for t in toks), f"profile {profile}"
        sources.append(f"profile `{profile}`")
    for iid, toks in doc.recorded().items():
        tokens[iid] = toks
        texts.pop(iid, None)
        origin.pop(iid, None)
    if any("Answer" in item.fields for item in doc.items.values()):
        sources.append("the answers recorded")
    name = csv_name(csv_path) if csv_path else ""
    if csv_path:
        given = answers_in_csv(doc, csv_path)
        for iid, text in given.items():
            if doc.items[iid].declared and not same_answer(doc.items[iid], text):
                tokens[iid], texts[iid], origin[iid] = BACKTICKED.findall(text), text, name
        sources.append(f"the answers in {name}")
    return Answers(tokens, texts, origin, " and ".join(sources) or "nothing recorded yet", given, name)


def csv_name(path):
    """The --answers CSV as packets and pages name it: its path, or 'a CSV' where the name itself looks like a
    secret ('door code 5829.csv'), which would travel with every packet."""
    return "a CSV" if secret_in(os.path.basename(str(path))) else shown(path, None)


def answers_in_csv(doc, path, stale=None):
    """{id: text as import would record it} of a CSV; nothing is written. The ids of the rows whose 'recorded'
    cell (an export's) is not the answer recorded now, even none (recorded_matches), are added to `stale` if given."""
    rows, problems = read_csv(path)
    found, more = known_rows(doc, rows) if not problems else ([], [])
    accepted, refused = formatted_rows(found)
    problems += more + [Problem(p.line, without_token(p.message)) for p in refused]
    given = {item.id: text for _, item, text in accepted}
    if problems:
        raise Refusal(csv_report(path, problems))
    if stale is not None:
        sheet = {row.line: row.recorded for row in rows if row.recorded is not None}
        stale.update(item.id for line, item, _ in accepted if line in sheet and not recorded_matches(item, sheet[line]))
    return given


def without_token(message):
    """A labelled-password refusal as the views give it (items, status, form --answers): the kind of secret, not the
    judged token (which import's message, text_problems, names by its first three characters)."""
    if not message.endswith(f" looks like a password; {CONFIDENTIAL}"):
        return message
    return f"{message.partition(':')[0]}: this looks like {LABELLED_PASSWORD}; {CONFIDENTIAL}"


def known_answer(item, answers):
    """(text, origin) of the answer known for an item: given in the CSV, recorded in the file, or assumed
    by the profile, in that order of precedence; origin 'given in FILE', 'recorded' or 'assumed by profile KEY'.
    None if there is none."""
    given = answers.given.get(item.id)
    if given and not same_answer(item, given):
        return given, f"given in {answers.csv}"
    if item.get("Answer"):
        return item.get("Answer"), "recorded"
    if item.id in answers.texts:                      # what is left there is a profile's assumption
        return answers.texts[item.id], f"assumed by {answers.origin[item.id]}"
    return None


def answers_so_far(doc, answers):
    """The answers known to the blockers and routing items that may apply, in working order: [{id, answer, origin,
    provisional}] (see known_answer). They travel with every packet: counsel answers per country of REQ-3,
    and an item such as EXP-12 applies because of a routing answer (REQ-12) its reader should see."""
    out, excluded = [], {r.item.id for r in applicable(doc, answers.tokens) if r.applies is False}
    for item in working_order(doc):
        known = (item.stage == "blocker" or item.declared) and item.id not in excluded and known_answer(item, answers)
        if known:
            out.append({"id": item.id, "answer": known[0], "origin": known[1],
                        "provisional": provisional(item, BACKTICKED.findall(known[0]))})
    return out


def so_far_lines(entries):
    """The answers so far as one line each: 'REQ-3 Germany (recorded)', '... (recorded; provisional)'."""
    return [f"{e['id']} {e['answer']} ({e['origin']}{'; provisional' if e['provisional'] else ''})" for e in entries]


def so_far_md(entries):
    """The 'Answers so far' list of a Markdown view (nothing if none is known)."""
    return ["Answers so far:", ""] + [f"- {line}" for line in so_far_lines(entries)] + [""] if entries else []


def csv_report(path, problems):
    """One 'path:line: message' per problem, sorted, at most MAX_PROBLEMS_SHOWN of them."""
    problems, path = sorted(problems), shown(path, None)
    out = [f"{path}:{p.line}: {p.message}" if p.line else f"{path}: {p.message}"
           for p in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS:                  # collecting stopped there
        out.append(f"{path}: and more problems")
    elif len(problems) > MAX_PROBLEMS_SHOWN:
        out.append(f"{path}: and {len(problems) - MAX_PROBLEMS_SHOWN} more problems")
    return "\n".join(out)


def item_record(doc, item, waits, answers, roles):
    """One item as a flat record. `answer` holds only what is recorded in the file."""
    return {"id": item.id, "ask": item.ask, "form": item.get("Form"), "unblocks": item.get("Unblocks"),
            "from": item.source, "party": item.party, "stage": item.stage,
            "applies": applies_text(doc, item), "waits_on": " ".join(waits),
            "in_your_role": role_line(item, roles), "note": item.get("Note"),
            "assumed": (f"{answers.texts[item.id]} ({answers.origin[item.id]})"
                        if item.id in answers.texts else ""),
            "answer": item.get("Answer")}


def spreadsheet_safe(value):
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def render(records, columns, fmt, markdown, preamble=None, first_row=""):
    """Records as CSV (after a byte-order mark, which import skips), JSON or Markdown; `preamble` (role, rule,
    answers so far) heads JSON, `first_row` CSV: one '#' row, which import skips."""
    if fmt == "json":
        body = records if preamble is None else {**preamble, "items": records}
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        out.write("\ufeff")                           # a byte-order mark: Excel reads the file as UTF-8
        writer = csv.writer(out, lineterminator="\n")
        if first_row:
            writer.writerow([f"# {first_row}"])
        writer.writerow(columns)
        writer.writerows([[spreadsheet_safe(r.get(c, "")) for c in columns] for r in records])
        return out.getvalue()
    return markdown(records)


def also_fits(keys):
    """' (also fits: running-network; ...)' for the other roles that fit, given by key."""
    return f" (also fits: {', '.join(keys)}; an item with no line for your role may show theirs)" if keys else ""


SHEET_HINT = "Type answers in the 'answer' column; import reads no other."


def preamble_line(whose, preamble, entries, plain):
    """The first row of a CSV packet: the role, its rule and the answers so far, in plain text."""
    line = (f"{whose}: {preamble['role']}{also_fits(preamble['also'])}. Answer an item written for someone else "
            f"with {plain(preamble['rule'])} "
            f"(routing: {preamble['answers']}).")
    line += "".join(f" {plain(rule).replace('**', '')}" for rule in preamble["rules"])
    return line + (f" Answers so far: {'; '.join(so_far_lines(entries))}." if entries else "")


def contact_rule(doc):
    """The contact rule of 'Start here' (Markdown): its one-sentence bold paragraph that names EXP-1; '' if none."""
    sec = doc.section(START)
    found = [m.group(1) for n in range(sec[0], sec[1]) for m in [BOLD_LINE.match(doc.lines[n - 1])]
             if m and "EXP-1" in m.group(1)] if sec else []
    return found[0] if found else ""


def shared_rules(doc, verdicts):
    """The rules every packet carries (Markdown): those that hold in every role, and the contact rule while
    EXP-1 may apply."""
    rule = contact_rule(doc) if verdicts.get("EXP-1") is not False else ""
    return every_role_rules(doc) + ([rule] if rule else [])


def counted(n, noun, plural=""):
    """'1 item', '3 items'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def cmd_items(doc, args):
    """`items`: the items that apply, in working order, filtered by party, involvement or stage; headed by the
    role and the answers so far, and in Markdown followed by the outside facts the items cite."""
    answers = gather_answers(doc, args.profile, args.answers)
    roles = roles_of(doc, answers.tokens)
    role = roles[0] if roles else None
    verdicts = applicable(doc, answers.tokens)
    rows = [r for r in verdicts if r.applies is not False]
    picked = [r for r in rows if (not args.party or r.item.party == args.party)
              and (not args.involving or r.item.involves(args.involving))
              and (not args.stage or r.item.stage == args.stage)
              and (not args.group or r.item.id.split("-")[0] == args.group)]
    records = [item_record(doc, r.item, r.waits, answers, roles) for r in picked]
    so_far = answers_so_far(doc, answers)
    rules = shared_rules(doc, {r.item.id: r.applies for r in verdicts})
    preamble = {"role": role.key, "also": [r.key for r in roles[1:]], "rule": role.rule,
                "answers": answers.title, "rules": rules,
                "context": {e["id"]: {k: e[k] for k in ("answer", "origin", "provisional")} for e in so_far}} \
        if role else None
    sent_to = args.party or args.involving
    whose = "Requester's role" if sent_to and sent_to != REQUESTER else ""
    note = ""
    if args.party and not picked:
        involved = sum(1 for r in rows if r.item.involves(args.party) and (not args.stage or r.item.stage == args.stage))
        note = (f"No item that applies is accountable to `{args.party}`"
                + (f"; {counted(involved, 'item')} {'names' if involved == 1 else 'name'} it as a contributor: "
                   f"use --involving {args.party}."
                   if involved else ", and none names it."))
    if args.format == "csv":                          # no Markdown links in cells; import reads id, answer, recorded
        plain = link_rewriter(doc, name=SHEET_NAME)
        # what is recorded goes in its own column and `answer` starts empty: a sheet returned late, or with
        # --replace, can then only record what its reader typed, never bring back an answer since replaced; and
        # import refuses a row whose `recorded` cell is no longer the answer recorded (plan_answers). A routing
        # answer given in --answers is in the first row only: 'assumed' holds a profile's, which import can check
        records = [{**{k: v if k == "id" else plain(v) for k, v in r.items() if k != "answer"},
                    "assumed": plain(r["assumed"]) if answers.origin.get(r["id"], "").startswith("profile ") else "",
                    "recorded": r["answer"], "answer": ""} for r in records]
        first = SHEET_HINT + (f" {preamble_line(whose or 'Role', preamble, so_far, plain)}" if preamble else "")
        return Output(render(records, CSV_COLUMNS, "csv", None, first_row=first), 0, note)

    def markdown(recs):
        filters = "".join(f", {label} `{value}`" for label, value in
                          (("party", args.party), ("involving", args.involving), ("stage", args.stage),
                           ("group", args.group)) if value)
        waiting = sum(1 for r in recs if r["waits_on"])
        context = outside_context(doc)
        countries = known_answer(doc.items[COUNTRIES], answers) if COUNTRIES in doc.items else None
        facts = cited_context(r[k] for r in recs for k in ("ask", "form", "unblocks", "in_your_role", "note")) \
            | country_anchors(context, countries[0] if countries else "")
        bullets = [b for b in context["bullets"] if b["anchor"] in facts]
        intros = [(g, group_intro(doc, g)) for g in unique(r["id"].split("-")[0] for r in recs)]
        cited = cited_elsewhere(doc, recs, [text for _, text in intros]
                                + ([role.rule, *(rules or [])] if preamble else []))
        plain = link_rewriter(doc, {doc.items[i].anchor for i in [r["id"] for r in recs] + cited}
                              | {b["anchor"] for b in bullets})
        out = [f"# Items that apply, given {answers.title}{filters}", ""]
        if preamble:
            out += [f"{whose or 'Your role'}: **{role.key}**{also_fits(preamble['also'])}. Answer an item written for someone "
                    f"else with {plain(role.rule)}", ""]
        out += so_far_md(so_far)
        if not answers.tokens:
            out += [f"Nothing is recorded yet: {counted(len(recs), 'item')} may apply and {waiting} wait on the "
                    "blockers. Answer those first (`items --stage blocker`), or pick a profile (`profiles`).", ""]
        else:
            named = f"; the items they name but do not list ({len(cited)}) are at the end" if cited else ""
            out += [f"{counted(len(recs), 'item')}, {waiting} of them waiting on a routing answer{named}.", ""]
        if note:
            out += [note, ""]
        if preamble and rules:
            out += ["Rules for every role:", ""] + [f"- {plain(r)}" for r in rules] + [""]
        if any(text for _, text in intros):
            out += ["Group notes:", ""] + [f"- **{g}:** {plain(text)}" for g, text in intros if text] + [""]
        for r in recs:
            item = doc.items[r["id"]]
            held = provisional(item, BACKTICKED.findall(r["answer"]))
            assumed_held = provisional(item, BACKTICKED.findall(answers.texts.get(item.id, "")))
            out.append(f"- [{'x' if r['answer'] and not held else ' '}] <a id=\"{item.anchor}\"></a>"
                       f"**{r['id']}** {plain(r['ask'])}")
            out += [f"  - **{label}:** {plain(r[key])}" for label, key in (("Form", "form"), ("Unblocks", "unblocks"))
                    if r[key]]
            out.append(f"  - `{r['stage']}` · {r['from']}" + (f" · if `{r['applies']}`" if r["applies"] != "always" else ""))
            out += [f"  - **{label}:** {plain(r[key])}" for label, key in
                    (("In your role", "in_your_role"), ("Note", "note"), ("Waits on", "waits_on"),
                     (("Assumed, not recorded" if answers.origin.get(item.id, "").startswith("profile ") else
                       "Given, not recorded") + (" (provisional)" if assumed_held else ""), "assumed"),
                     ("Answer (provisional)" if held else "Answer", "answer")) if r[key]]
        return "\n".join(out + cited_md(doc, cited, plain) + outside_facts_md(context, bullets, plain)) + "\n"
    return Output(render(records, COLUMNS, args.format, markdown, preamble), 0, note if args.format != "md" else "")


def link_targets(doc):
    """{anchor: (item ID, "") or ("", title of the heading it names or of the section it is in)}, read once."""
    if doc._targets:
        return doc._targets
    targets, seen = doc._targets, {}
    for _, _, title in doc.headings:
        slug = slugify(title)
        targets.setdefault(f"{slug}-{seen[slug]}" if slug in seen else slug, ("", title))
        seen[slug] = seen.get(slug, 0) + 1
    targets.update({item.anchor: (iid, "") for iid, item in doc.items.items() if item.anchor})
    for n, line in doc.live():
        for anchor in HTML_ANCHOR.findall(line):
            if anchor not in targets:
                targets[anchor] = ("", next((t for t, (first, end) in doc.sections.items() if first <= n < end), ""))
    return targets


def link_rewriter(doc, kept=(), name=None):
    """A function that rewrites the Markdown links to this document in a text for a packet read outside it:
    a link to an anchor in `kept` (one the packet holds) stays; one to an item becomes its ID; any other becomes
    its text and the section it leads to: 'defaults (README.md, "Engineering's proposed defaults ...")', with
    `name` for the file's if given."""
    targets, name, kept = link_targets(doc), name or Path(doc.path).name, set(kept)

    def plain(m):
        text, anchor = m.group(1), unquote(m.group(2))
        if anchor in kept:
            return m.group(0)
        iid, title = targets.get(anchor, ("", ""))
        if iid:
            return iid if text == iid else f"{text} ({iid})"
        return f'{text} ({name}, "{title}")' if title else text
    return lambda text: LINK.sub(plain, text)


def cited_context(texts):
    """The Outside-context anchors ('ctx-...') that the texts link to."""
    return {anchor for text in texts for anchor in CONTEXT_LINK.findall(text)}


def country_anchors(context, text):
    """The Outside-context bullets whose country (the bold label up to its first '.' or ',': 'United States')
    the text names, as a whole word in any letter case."""
    return {b["anchor"] for b in context["bullets"]
            if b["country"] and re.search(rf"(?<!\w){re.escape(b['country'])}(?!\w)", text, re.I)}


def cited_elsewhere(doc, records, more=()):
    """The IDs of items that the records' asks, Forms, role lines and Notes, or the packet's other texts
    (`more`: its role rule, rules and group notes), name but that are not among them (as when an answer drops
    a group an item still points to), in working order. Unblocks are left out: they name what waits on an
    item, not what it needs."""
    listed, targets = {r["id"] for r in records}, link_targets(doc)
    texts = [r[k] for r in records for k in ("ask", "form", "in_your_role", "note")] + list(more)
    named = set().union(*(ids_in(LINK.sub(r"\1", text)) for text in texts))  # '[DEL-3](#del-3) to [DEL-5](#del-5)'
    named |= {targets.get(unquote(anchor), ("", ""))[0] for text in texts for _, anchor in LINK.findall(text)}
    unlisted = named - listed
    return [it.id for it in working_order(doc) if it.id in unlisted]


def cited_md(doc, ids, plain):
    """The section of a Markdown packet that gives, for each item it names but does not list, its ask and Form."""
    if not ids:
        return []
    out = ["", "## Items named above but not in this list", "",
           "Another party's, or not applying to these answers; given so that the references above can be read.", ""]
    for iid in ids:
        item = doc.items[iid]
        form = f" Form: {plain(item.get('Form'))}" if item.get("Form") else ""
        out.append(f'- <a id="{item.anchor}"></a>**{iid}** {plain(item.ask)}{form}')
    return out


def outside_facts_md(context, bullets, plain):
    """The closing section of a Markdown packet: the Outside-context bullets it cites, as in the README
    (with their anchors), each with its as-of date where its first line does not give it."""
    if not bullets:
        return []
    out = ["", "## Outside facts these items cite", ""] + ([plain(context["dating"]), ""] if context["dating"] else [])
    for b in bullets:
        head = b["lines"][0][1]
        dated = f" (as of {b['as_of']})" if b["as_of"] and f"as of {b['as_of']}" not in head else ""
        out.append(f'- <a id="{b["anchor"]}"></a>{plain(head)}{dated}')
        out += ["  " * depth + f"- {plain(text)}" for depth, text in b["lines"][1:]]
    return out


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


def item_state(item, verdict, given=None):
    """'answered' or 'not needed' for an item with an answer, given in a CSV (`given`: {id: text}) or recorded,
    whatever its condition; 'open' for one without, or with a provisional routing answer only; 'waiting' for one
    without an answer whose condition waits on a routing answer."""
    answer = (given or {}).get(item.id) or item.get("Answer")
    if not answer:
        return "waiting" if verdict is None else "open"
    if provisional(item, BACKTICKED.findall(answer)):
        return "open"
    return "not needed" if is_not_needed(answer) else "answered"


def provisional_note(item, answers):
    """'; recorded `pending`' or '; `pending` given in FILE' for an item whose answer is provisional, else ''."""
    known = known_answer(item, answers)
    if not known or known[1].startswith("assumed") or not provisional(item, BACKTICKED.findall(known[0])):
        return ""
    tokens = ", ".join(f"`{t}`" for t in BACKTICKED.findall(known[0]))
    return f"; recorded {tokens}" if known[1] == "recorded" else f"; {tokens} {known[1]}"


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
        assumed = [i for i, origin in answers.origin.items() if origin.startswith("profile ")]
        unanswered = missing + [i for i in assumed if i not in missing]
        blockers = [r for r in recs if r["stage"] == "blocker" and r["state"] in ("open", "waiting")]
        upcoming = [r for r in recs if r["stage"] != "blocker" and r["state"] == "open"
                    and r["id"] not in answers.tokens][:5]
        out = [f"# Progress of {doc.path}, given {answers.title}", "",
               f"Routing answers: {given_ids or 'none'}. Routing items not answered: {', '.join(unanswered) or 'none'}"
               + ("." if not assumed else " (each assumed by the profile)." if set(assumed) >= set(unanswered) else
                  f" (assumed by the profile: {', '.join(assumed)})."),
               f"Role: {role.key if role else 'none'}. "
               f"{counted(len(recs), 'item')} apply or may apply; {excluded} do not apply to these answers."
               + (" Waiting: the item's condition needs a routing answer not yet given."
                  if any(r["state"] == "waiting" for r in recs) else ""), ""]
        out += so_far_md(answers_so_far(doc, answers))
        out += [count_table(recs, "stage", doc.stages), "", count_table(recs, "party", doc.parties), "",
                "## Open blockers, in order", ""]
        out += [f"{k}. {r['id']}: {r['ask']} ({r['party']}{provisional_note(doc.items[r['id']], answers)}" +
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
    """`import`: record the answers of a CSV, refusing the whole file on any problem. Where another import changed the
    checklist meanwhile, the answers are planned again on the checklist as it now is, as if this import had started
    after that one (up to IMPORT_ATTEMPTS times)."""
    rows, problems = read_csv(args.answers)
    for attempt in range(1, IMPORT_ATTEMPTS + 1):
        try:
            return import_rows(doc, args, rows, list(problems))
        except Changed:
            if attempt == IMPORT_ATTEMPTS:
                raise
            doc = load(args.file)


def import_rows(doc, args, rows, problems):
    """cmd_import() on the checklist as read once."""
    whole = all(p.line for p in problems) and len(rows) + len(problems) < MAX_CSV_ROWS   # not cut short at a cap
    changes, more = plan_answers(doc, rows, args.replace) if whole else ({}, [])   # every row's problem in one run
    problems += more
    if problems:
        many = counted(len(problems), "problem") if len(problems) <= MAX_PROBLEMS else f"more than {MAX_PROBLEMS} problems"
        raise Refusal(f"{csv_report(args.answers, problems)}\n{many}; {doc.path} not changed."
                      f"{older_copies_note(older_copies(doc.real_path))}")
    left = left_out(doc, rows)
    if not changes:
        return f"{doc.path}: nothing to record (no new answers).{left}{older_copies_note(older_copies(doc.real_path))}\n", 0
    new_text = apply_answers(doc.raw.decode("utf-8"), doc, changes)
    new_doc = parsed(new_text, doc.path)
    defects = run_rules(new_doc)
    if defects:
        raise Refusal(breakage_report(doc, new_doc, defects, changes, shown(args.answers, None)))
    kept = write_atomically(doc.real_path, doc.raw, new_text)
    args.recorded = sorted(changes)                   # from here on an interrupt must not say "nothing written"
    verdicts = {r.item.id: r.applies for r in applicable(new_doc, new_doc.recorded())}
    late = sorted(iid for iid in changes if verdicts.get(iid) is False)
    note = (f" Note: {', '.join(late)} {'does' if len(late) == 1 else 'do'} not apply to the routing "
            "answers recorded." if late else "")
    note += left + older_copies_note(kept)
    return f"{doc.path}: recorded {counted(len(changes), 'answer')}: {', '.join(sorted(changes))}.{note}\n", 0


def left_out(doc, rows):
    """' Left out: ...' naming the rows with no answer whose 'recorded' cell is not the answer recorded now: a sheet
    exported before the answer changed, or that cell edited in place of 'answer'; nothing is recorded for them."""
    ids = sorted({iid for row in rows if not row.answer.strip() and row.recorded and row.recorded.strip()
                  for iid in [id_cell(row.id).upper()] if iid.isascii() and doc.items.get(iid) and
                  doc.items[iid].get("Answer") and not recorded_matches(doc.items[iid], row.recorded)})
    return (f" Left out: {', '.join(ids)}: {'its' if len(ids) == 1 else 'their'} 'recorded' cell is not the answer "
            "recorded now and the answer cell is empty (a sheet exported before the answer changed; to change an "
            "answer, type it in 'answer')." if ids else "")


def breakage_report(doc, new_doc, defects, changes, answers):
    """Why an import that would leave the checklist with `defects` is refused. A defect the document had before
    (the same code and message, on the line that became this one) is the document's: it is shown at its line now,
    with 'already has problems here; run check first' if it is on an answered item's lines, and then the new ones
    on that item's lines, which follow from them, are left out. A new one on another answered item's first or
    Answer line is blamed on the CSV row that answers it; any other is shown at its line in the document as it
    would be."""
    inserted = sorted(doc.items[iid].end for iid in changes if "Answer" not in doc.items[iid].fields)

    def moved(n):                                     # the line an old line becomes: Answer lines go in above it
        return n + bisect.bisect_left(inserted, n)
    before = {(moved(d.line), d.code, d.message): d.line for d in run_rules(doc)}
    was_at = {n for n, _, _ in before}
    owner, here, troubled = {}, set(), set()
    for iid, (_, line) in changes.items():
        old, item = doc.items[iid], new_doc.items.get(iid)
        end = k = old.end                             # and indented lines after blank ones (item-continuation)
        while k < len(doc.lines) and (not doc.lines[k].strip() or doc.lines[k][:1] in (" ", "\t")):
            k += 1
            end = k if doc.lines[k - 1].strip() else end
        lines = {moved(n) for n in range(old.line, end + 1)} | ({item.line_of("Answer")} if item else set())
        here |= lines
        if lines & was_at:
            troubled |= lines
        elif item:
            owner.update({item.line: line, item.line_of("Answer"): line})
    out, kinds = [], set()
    for d in defects:
        was = before.get((d.line, d.code, d.message))
        if was:
            kinds.add("here" if d.line in here else "old")
            out.append(f"{doc.path}:{was}: [{d.code}] {d.message}")
        elif d.line in troubled:
            continue                                  # it follows from a problem the item has already
        elif d.line in owner:
            out.append(f"{answers}:{owner[d.line]}: this answer would break the document ([{d.code}] {d.message})")
        else:
            kinds.add("old")
            out.append(f"{doc.path}:{d.line}: [{d.code}] {d.message}")
    tail = (f": {doc.path} already has problems here; run 'check' first" if "here" in kinds else
            ": it fails its own check; run 'check' and fix it first" if kinds else "")
    return "\n".join(out) + f"\n{doc.path} not changed{tail}."


# ---------------------------------------------------------------- form

PROGRAM_DIR = Path(__file__).resolve().parent      # tools/: the program, whose files a page never overwrites
FORM_TEMPLATE = PROGRAM_DIR / "form.html"
# What a party's page carries for an answer to an item it does not show (withheld)
WITHHELD = "answered; see README.md"
WITHHELD_NOT_NEEDED = "not needed: see README.md"
CONTEXT = "Outside context"
CONTEXT_BULLET = re.compile(r'^- <a id="(?P<anchor>ctx-[a-z0-9-]+)"></a>(?P<text>.*)$')
CONTEXT_LINK = re.compile(r"\]\(#(ctx-[a-z0-9-]+)\)")
# A bullet's country: its bold label up to the first '.' or ',' ('**United States, export controls.**')
COUNTRY = re.compile(r"\*\*([^.,*]+)")
AS_OF = re.compile(r"\bas of (\d{1,2} [A-Z][a-z]+ \d{4})")
PLACEHOLDERS = re.compile(r"\{\{(title|data)\}\}")
# What the page tells a reader who may never have seen the checklist: each role in a manager's words
# (who answers in it, and how to answer an item written for someone else) and why the licence and
# export questions concern it. The README's own rule is shown where a role is missing here; the tests
# require every role of the README to be here.
ROLE_WORDS = {
    "investor": ("an investor", "an investor, lender, insurer or acquirer assessing a company that would take the licence or a sublicence",
                 "where an item is written for whoever builds or runs the network, answer with what the company "
                 "must show you before you commit, or write \u201cfor the company\u201d where only it can act; "
                 "funding a buyer, not a licensee, answer REQ-4 \u201ccustomer\u201d and read the buyer's answers "
                 "as what it must show you",
                 "The company you assess would take such a licence"),
    "authority": ("the authority", "the government or regulator deciding whether a domestic company may take the licence or use its products",
                  "where an item is written for whoever builds or runs the network, answer with the condition you "
                  "would impose on a licensee or on a network using its products, or write \u201cfor the "
                  "licensee\u201d; where an item names the "
                  "regulator or a national authority, give your own answer",
                  "You decide whether a domestic company may take such a licence or use its products"),
    "evaluator": ("an evaluator", "the laboratory that examines a licensee's code and hardware",
                  "for network items, answer with the configuration and targets under test (REQ-13); for licence "
                  "and delivery items, with what the licensee's agreement or your legal powers provide; write "
                  "\u201cnot needed\u201d where an item names a body you are",
                  "The code and hardware you examine are made under such a licence"),
    "buyer": ("a buyer", "the organisation that buys this network by tender",
              "where an item is written for whoever builds the network, answer with what the tender must require "
              "of bidders (bidders propose the rest); for parts you build yourself, as a builder would; "
              "for licence items, with what you require of your supplier; "
              "after the contract is awarded, with the winning bidder's or the operator's answer",
              "A bidder's equipment may be made under such a licence"),
    "supplier": ("a supplier", "a company that would make or supply parts, products or services for a licensee",
                 "where an item is written for whoever builds the network, answer with what your customer, the "
                 "licensee, specifies, as received; give your own answer where the choice is yours; write "
                 "\u201cfor the licensee\u201d where only it can act; in REQ-2, \u201cbuild\u201d only what you make "
                 "to its designs, \u201coperate\u201d its units you run or test; SIMs or credentials only: "
                 "\u201ccore=buy\u201d",
                 "Your customer would hold such a licence"),
    "software-maker": ("a software maker", "a company or university that sells, licenses or publishes 5G software, without hardware",
                       "answer with what your software must support, offer or let its operator set; for hardware "
                       "and radio items, with what the software needs from them, or write \u201cfor the customer\u201d",
                       "Your software might draw on licensed material"),
    "maker": ("a maker", "a company that makes equipment or software for sale",
              "answer with the product requirement: what the product must support, offer, accept or report",
              "Your product might be made under such a licence"),
    "running-network": ("the operator of a running network", "the organisation whose network already runs",
                        "answer with the value as configured today, or the change you want, saying which",
                        "Equipment or software in your network might be made under such a licence"),
    "simulator": ("a simulator team", "the team that builds a simulator",
                  "answer with the range of values the simulator must model; for parts you build, with "
                  "engineering's proposed default, accepted or changed",
                  "A simulator might draw on licensed material"),
    "lab": ("a laboratory", "a laboratory with no network operator",
            "accept or change the default that engineering proposes for each item",
            "The laboratory's work might use licensed material"),
    "builder": ("the builder", "whoever builds the system",
                "answer with the value the system must meet",
                "The work might use material licensed under it"),
}
LICENCE_NOT_USED = ("Your work uses nothing licensed under Huawei's offer (LIC-1 `no`): nothing is asked of a "
                    "licensor, though patent, export and publication rules for your own work may apply.")
LICENCE_WHY = ("This checklist starts from Huawei's 2019 offer to license its 5G network technology to one "
               "Western company. {why}, so the first questions settle whether licensed material is involved "
               "(LIC-1) and whether dealing with the licensor is lawful (EXP-1).")
# The page holds the part of these sections a reader needs; a link to one lands there.
SECTION_STANDINS = ((CONTEXT, "context-all"), (ROLES, "brief-who"), (START, "brief-first"))
BARE_PARTIES = ("counsel", "engineering")      # named without 'the'
CONFIDENTIAL_ON_PAGE = ("send confidential material through a confidential channel and record only a pointer "
                        "(ID, date, recipient), as the brief says")


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
    """{token: the words in parentheses after it in the Form, as plain text (links as their text, no bold or
    code marks)}, e.g. `public` (serving the public)."""
    labels = {}
    for token in tokens:
        start = form.find(f"`{token}` (")
        if start < 0:
            continue
        depth, first = 0, start + len(token) + 4
        for k in range(first, len(form)):
            depth += {"(": 1, ")": -1}.get(form[k], 0)
            if depth < 0:
                labels[token] = re.sub(r"\*\*|`", "", LINK.sub(r"\1", form[first:k].strip()))
                break
    return labels


def outside_context(doc):
    """The dating sentence of 'Outside context', its date, and its anchored bullets in file order:
    [{anchor, as_of, country, lines: [(depth, Markdown)]}]; a bullet's own 'as of' date overrides the section's."""
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
        country = COUNTRY.match(b["lines"][0][1])
        b["country"] = country.group(1).strip() if country else ""
    return {"dating": dating, "date": date, "bullets": bullets}


def every_role_rules(doc):
    """The bullets under the role table that hold in every role (Markdown)."""
    sec = doc.section(ROLES)
    return [doc.lines[n - 1][2:].strip() for n in range(sec[0], sec[1])
            if doc.lines[n - 1].startswith("- ")] if sec else []


def role_words(role):
    """A role in a manager's words for the brief, or None where ROLE_WORDS lacks it."""
    words = ROLE_WORDS.get(role.key)
    return words and dict(zip(("as", "who", "rule"), words[:3]), why=LICENCE_WHY.format(why=words[3]))


def column_words(doc, header):
    """{key: its meaning} from the How-to table headed `header` (Stage, Party): the meaning up to its first
    ';' or '(' , links as their text."""
    words = {}
    for r in table(doc, HOWTO, header):
        key = code_cell(r.cells[0])
        if key and len(r.cells) > 1:
            words[key] = re.split(r"[;(]", LINK.sub(r"\1", r.cells[1]).strip(), maxsplit=1)[0].rstrip()
    return words


def section_standins(doc):
    """{README heading anchor: the id of the part of the page that stands in for that section}."""
    return {slugify(title): page_id for _, level, title in doc.headings if level == 2
            for prefix, page_id in SECTION_STANDINS if title.startswith(prefix)}


def on_party_page(item, args):
    """True if a page for --party or --involving (or for all) shows `item`, or carries its answer by design: the
    party's items (those naming it, with --involving), routing items and blockers, whose answers travel with every
    packet (answers_so_far)."""
    party = args.party or args.involving
    return (not party or item.declared is not None or item.stage == "blocker" or
            (item.involves(party) if args.involving else item.party == party))


def withheld(text):
    """An answer of an item a party's page does not show, as the page carries it (WITHHELD): its state kept
    ('not needed' or answered), never its words, so that a page forwarded to counsel holds no other party's answers."""
    return text and (WITHHELD_NOT_NEEDED if is_not_needed(text) else WITHHELD)


def form_item(doc, item, given, assumed, stale=(), withheld_answers=False):
    """One item as the form's page needs it. An answer of the --answers CSV that differs from the one recorded in
    the file, or whose row's 'recorded' cell is not the answer recorded now (`stale`: an export made before the
    answer was replaced or retracted), is no answer on the page (`given_instead`): the page shows the recorded one,
    if any, and names the other, which goes into the page's CSV only if typed in, so that an old CSV never stands
    for a newer answer, or for none, untouched. With `withheld_answers` (an item a party's page does not show), its
    answers are carried only as their state (withheld)."""
    declared = item.declared
    text = given.get(item.id, "")
    instead = bool(text and (item.get("Answer") or item.id in stale) and not same_answer(item, text))
    hide = withheld if withheld_answers else (lambda answer: answer)
    links = CONTEXT_LINK.findall(item.get("Note") + " " + item.get("Form"))
    plain, identity = link_rewriter(doc, name=SHEET_NAME), (lambda text: text)
    raw = sheet_cells(doc, item, identity)
    return {"id": item.id, "anchor": item.anchor or item.id.lower(), "ask": item.ask,
            "form": item.get("Form"), "unblocks": item.get("Unblocks"), "note": item.get("Note"),
            "source": item.source, "party": item.party, "stage": item.stage,
            "tree": tree_json(item_tree(doc, item)),
            "declared": declared and {"kind": declared.kind, "values": declared.values, "parts": declared.parts,
                                      "labels": token_labels(item.get("Form"), declared.values + declared.parts)},
            "role_lines": {label: item.get(label) for label in sorted(doc.role_labels()) if item.get(label)},
            "recorded": hide(item.get("Answer")), "given": "" if instead else hide(text),
            "given_instead": hide(text) if instead else "",
            "assumed": assumed.get(item.id), "context": unique(links),
            "sheet_assumed": raw.get("assumed", []),              # and below, what the page cannot derive itself
            "sheet": {column: texts for column, texts in sheet_cells(doc, item, plain).items()
                      if texts != raw[column] or column == "applies"}}


def form_data(doc, args):
    """Everything the page shows and checks, as one JSON-ready dict."""
    from datetime import date
    profile = doc.profiles.get(args.profile) if args.profile else None
    stale = set()
    given = answers_in_csv(doc, args.answers, stale) if args.answers else {}
    recorded = doc.recorded()
    assumed = {iid: toks for iid, toks in (profile.assumes.items() if profile else ())
               if iid in doc.routing() and iid not in recorded}
    party = args.party or args.involving
    command = "python3 tools/checklist.py form" + "".join(
        f" --{name} {shown(value, None)}" for name, value in (("profile", args.profile), ("party", args.party),
                                                               ("involving", args.involving)) if value) + \
        (f" --answers {csv_name(args.answers)}" if args.answers else "")
    title = next((t for _, level, t in doc.headings if level == 1), doc.path)
    return {"title": title, "source": doc.path, "command": command,
            "page_title": "Answers" + "".join(f", {k} {v}" for k, v in (("profile", args.profile),
                                                                         ("involving" if args.involving else "party",
                                                                          party)) if v) + f": {title}",
            "generated": date.today().isoformat(),
            "profile": profile and {"key": profile.key, "who": profile.who},
            "party": party or "", "involving": bool(args.involving), "answers_file": csv_name(args.answers) if args.answers else "", "requester": REQUESTER,
            "countries_item": COUNTRIES,
            "party_name": party and (party if party in BARE_PARTIES else f"the {party}"),
            "licence_why": LICENCE_WHY.format(why=ROLE_WORDS["builder"][3]),
            "csv_name": "answers" + "".join(f"-{v}" for v in (args.profile, party) if v) + ".csv",
            "stages": doc.stages, "parties": doc.parties,
            "stage_words": column_words(doc, "Stage"), "party_words": column_words(doc, "Party"),
            "standins": section_standins(doc),
            "roles": [{"key": r.key, "label": r.label, "rule": r.rule, "tree": tree_or_none(doc, r.condition),
                       "words": role_words(r)} for r in doc.roles],
            "every_role": every_role_rules(doc), "contact_rule": contact_rule(doc),
            "sheet_rules": sheet_rules(doc, link_rewriter(doc, name=SHEET_NAME)),
            "licence_not_used": LICENCE_NOT_USED,
            "items": [form_item(doc, it, given, assumed, stale, withheld_answers=not on_party_page(it, args))
                      for it in working_order(doc)],
            "void": {iid: it.ask for iid, it in doc.items.items() if it.void},
            "context": outside_context(doc),
            "limits": {"max_answer_chars": MAX_ANSWER_CHARS, "max_csv_bytes": MAX_CSV_BYTES,
                       "max_csv_rows": MAX_CSV_ROWS, "max_csv_lines": MAX_CSV_LINES, "max_problems": MAX_PROBLEMS,
                       "first_items": FIRST_ITEMS, "max_problems_shown": MAX_PROBLEMS_SHOWN,
                       "id_shown": ID_SHOWN, "id_cut": ID_CUT},
            "lookalikes": FOLDED,
            "confidential": CONFIDENTIAL, "confidential_on_page": CONFIDENTIAL_ON_PAGE,
            "entities": sorted(ENTITY_NAMES)}


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
        raise Refusal(f"{shown(FORM_TEMPLATE, None)}: cannot read the page template: {e.strerror}", 2)
    missing = [m for m in ("{{title}}", "{{data}}") if m not in template]
    if missing:
        raise Refusal(f"{shown(FORM_TEMPLATE, None)}: the page template lacks {' and '.join(missing)} (was a page "
                      "written over it?); restore it, for example with 'git checkout tools/form.html'", 2)
    if args.output == "-":                            # the usual name for standard output
        args.output = None
    if args.output:
        refuse_output(doc, args)
    page = render_form(form_data(doc, args), template)
    if not args.output:
        return Output(page)
    done = write_page(args.output, page)
    return Output("", 0, f"{shown(args.output, None)}: {done}")


def write_page(output, page):
    """Write the page to `output` by way of a temporary file in its folder, moved over it (os.replace): a
    failed or interrupted write leaves an older page there whole. A symbolic link is followed and kept; the
    page keeps an older page's mode, or gets the mode of a new file. An `output` that exists and is not a
    regular file (/dev/null, /dev/stdout, a named pipe) is written in place (write_in_place), never replaced.
    What was done, for the note: 'written; open it in a browser', 'written' in place, or BROKEN_PIPE."""
    try:
        special = not stat.S_ISREG(os.stat(output).st_mode)
    except (OSError, ValueError):
        special = False                               # a new file, or one open() reports on
    if special:
        return write_in_place(output, page)
    tmp = None
    try:
        target = Path(output).resolve()
        tmp = write_temporary(target, page)
        if target.exists():
            shutil.copymode(target, tmp)
        else:
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, target)
        tmp = None
        return "written; open it in a browser"
    except (OSError, RuntimeError) as e:              # RuntimeError: a symbolic link loop (Python < 3.13)
        raise Refusal(f"{shown(output, None)}: cannot write: {getattr(e, 'strerror', None) or 'a symbolic link loop'}",
                      2)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


def write_in_place(output, page):
    """Write the page into `output`, an existing file that is not a regular one, with no temporary file and no
    rename: a device such as /dev/null, /dev/stdout, or a named pipe, whose reader it waits for up to FIFO_WAIT
    seconds, and then for each part it takes up to FIFO_WAIT seconds and FIFO_DEADLINE in all (to_pipe). 'written',
    or BROKEN_PIPE if the reader has stopped reading (as a view ends then: quietly)."""
    name, fifo = shown(output, None), False
    deadline = time.monotonic() + FIFO_WAIT
    try:
        fifo = stat.S_ISFIFO(os.stat(output).st_mode)
        while True:
            try:
                fd = os.open(output, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0))   # a pipe's open does not wait
                break
            except OSError as e:
                if not fifo or e.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)                      # a named pipe with no reader yet
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):   # a named pipe, or /dev/stdout that is a pipe
                return to_pipe(fd, page.encode("utf-8"), name)
            if fcntl is not None:
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            with open(fd, "w", encoding="utf-8", newline="", closefd=False) as out:
                out.write(page)
        except BrokenPipeError:
            return BROKEN_PIPE
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
        return "written"
    except OSError as e:
        reason = f"no reader for {FIFO_WAIT:g} s" if e.errno == errno.ENXIO and fifo else e.strerror
        raise Refusal(f"{name}: cannot write: {reason}", 2)


def to_pipe(fd, data, name):
    """Write `data` to a pipe opened without blocking, as its reader takes it: each part within FIFO_WAIT seconds, all
    within FIFO_DEADLINE (a reader that opened the pipe and never reads does not hold the program). 'written'."""
    deadline, view, done = time.monotonic() + FIFO_DEADLINE, memoryview(data), 0
    while done < len(data):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([], [fd], [], min(FIFO_WAIT, left))[1]:
            raise Refusal(f"{name}: cannot write: the reader took {done:,} of {len(data):,} bytes, then stopped "
                          f"reading; nothing more written", 2)
        with contextlib.suppress(BlockingIOError):
            done += os.write(fd, view[done:done + 65536])
    return "written"


def refuse_output(doc, args):
    """Refuse (exit 2) an -o that is the checklist, the --answers CSV, the page template or a file of
    the program (tools/*.py), a block device, or a regular file that exists and is not a page it wrote (.html, .htm,
    and form_page):
    the page never overwrites what it was made from, or anything else."""
    name = shown(args.output, None)
    made_from = [("the checklist", doc.real_path), ("the --answers CSV", args.answers),
                 ("the page template, which every page is made from", FORM_TEMPLATE)]
    made_from += [(f"a file of the program ({PROGRAM_DIR.name}/{path.name})", path)
                  for path in sorted(PROGRAM_DIR.glob("*.py"))]
    for what, path in made_from:
        if path and same_file(args.output, path):
            raise Refusal(f"{name} is {what}; write the page to another file", 2)
    with contextlib.suppress(OSError, ValueError):
        if stat.S_ISBLK(os.stat(args.output).st_mode):
            raise Refusal(f"{name} is a block device (a disk); write the page to a file", 2)
    try:
        target = Path(args.output).resolve()
        exists = target.is_file()
    except (OSError, RuntimeError):                   # RuntimeError: a symbolic link loop (Python < 3.13)
        return                                        # open() reports it
    if exists and not os.stat(target).st_mode & stat.S_IWUSR:
        raise Refusal(f"{name} is write-protected; make it writable or write the page to another file", 2)
    if exists and (target.suffix.lower() not in (".html", ".htm") or not form_page(target)):
        raise Refusal(f"{name} exists and is not a page 'form' wrote; write the page to a new file or over an old "
                      "page", 2)


# What every page 'form' writes carries in its head (tools/form.html), and where
FORM_MARK, FORM_MARK_REACH = b'<meta name="generator" content="tools/checklist.py form">', 2048


def form_page(path):
    """True if a file is empty or is a page 'form' wrote (FORM_MARK near its start): a CSV saved under a page's name,
    or another program's HTML report, is neither."""
    try:
        with open(path, "rb") as f:
            start = f.read(FORM_MARK_REACH)
    except OSError:
        return True                                   # open() for writing reports it
    return not start.strip() or FORM_MARK in start


def same_file(a, b):
    """True if paths a and b name the same file (symbolic links followed)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------- command line

@functools.lru_cache(maxsize=4)
def parsed_text(text):
    """parse(), once per text: a process that reads the same text again (import reads back what it wrote; the tests call
    main() hundreds of times) reuses the model, which nothing changes after parsing."""
    return parse(text)


@functools.lru_cache(maxsize=4)
def text_defects(text):
    """run_rules() once per text: the views warn when the file fails its own check (a file cut short, say)."""
    return tuple(run_rules(parsed_text(text)))


def parsed(text, path):
    """The model of the text, as a copy of its own (the file's name, bytes and real path are set on it)."""
    doc = copy.copy(parsed_text(text))
    doc.path = path
    return doc


def load(path):
    """Parse the checklist (README.md by default), keeping its bytes and real path for import."""
    shown_path = shown(path or "README.md", None)
    try:
        real = Path(path or DEFAULT_FILE).resolve()
        if not stat.S_ISREG(real.stat().st_mode):
            raise Refusal(f"{shown_path}: not a regular file", 2)
        if real.stat().st_size > MAX_DOC_BYTES:
            raise Refusal(f"{shown_path}: larger than {MAX_DOC_BYTES // 2**20} MiB; is this the checklist?", 2)
        raw = real.read_bytes()
    except (OSError, RuntimeError) as e:              # RuntimeError: a symbolic link loop (Python < 3.13)
        raise Refusal(f"{shown_path}: cannot read: {getattr(e, 'strerror', None) or 'a symbolic link loop'}", 2)
    try:
        doc = parsed(raw.decode("utf-8"), shown_path)
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
    """argparse, with its error messages (which quote the arguments) made safe for a terminal, and a hint where a file's
    name starts with '-' (read as an option): `given` holds the arguments being parsed."""
    given = ()

    def error(self, message):
        self.print_usage(sys.stderr)
        dashed = next((a for a in Parser.given if a.startswith("-") and a.lower().endswith((".csv", ".md", ".html"))), None)
        hint = f" (a file whose name starts with '-': write ./{dashed})" if dashed else ""
        self.exit(2, f"{self.prog}: error: {terminal_safe(message + hint)}\n")


class Once(argparse.Action):
    """Stores an option's value; the same option given twice is a usage error, as the last would silently win."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("given_once", set())
        if self.dest in given:
            raise argparse.ArgumentError(self, "given twice; give it once")
        given.add(self.dest)
        setattr(namespace, self.dest, values)


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
        prog="checklist.py", description=(__doc__ or "").split("\n\n")[0],   # no docstring under python -OO
        epilog="Exit codes: 0 done; 1 defects found or input refused (nothing written); "
               "2 could not run as asked. Python 3.8 or later, standard library only.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--file", type=nonempty, action=Once, help="the checklist (default: README.md next to tools/)")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=("md", "csv", "json"), default="md", action=Once,
                     help="Markdown for people (default), CSV for a spreadsheet, JSON for programs")
    route = argparse.ArgumentParser(add_help=False)
    route.add_argument("--profile", metavar="KEY", type=nonempty, action=Once,
                       help="start from this profile's assumed routing answers")
    route.add_argument("--answers", metavar="CSV", type=nonempty, action=Once, help="route with the answers in this CSV (as 'import' "
                       "reads it) over those recorded and any profile; nothing is written")
    check_p = sub.add_parser("check", parents=[common], help="check the document; exit 1 on any defect")
    check_p.add_argument("--list-rules", action="store_true", help="list the rule codes and what each checks")
    check_p.add_argument("--format", choices=("md", "json"), default="md", action=Once, help="text lines (default) or JSON")
    prof = sub.add_parser("profiles", parents=[common, fmt], help="the profiles and their item counts")
    prof.add_argument("--show", metavar="KEY", type=nonempty, action=Once, help="one profile's assumed answers, role and first items")
    items = sub.add_parser("items", parents=[common, fmt, route], help="the items that apply, in working order")
    who = items.add_mutually_exclusive_group()
    who.add_argument("--party", type=nonempty, action=Once, help="only items this party is accountable for (the first party named)")
    who.add_argument("--involving", type=nonempty, action=Once,
                     help="only items that name this party at all, as accountable or contributor")
    items.add_argument("--stage", type=nonempty, action=Once, help="only items of this stage")
    items.add_argument("--group", metavar="PREFIX", type=nonempty, action=Once,
                       help="only items of this group, by ID prefix (such as EXP)")
    sub.add_parser("status", parents=[common, fmt, route], help="progress, given the answers recorded so far")
    sub.add_parser("stats", parents=[common, fmt], help="words per item and in all, as rendered")
    imp = sub.add_parser("import", parents=[common], help="record the answers of a CSV in the checklist")
    imp.add_argument("answers", type=nonempty, action=Once,
                     help="a CSV with 'id' and 'answer' columns (as 'items --format csv' writes); '-': standard input")
    imp.add_argument("--replace", action="store_true",
                     help="overwrite answers already recorded, each named in its row's 'recorded' cell")
    form = sub.add_parser("form", parents=[common, route], help="one self-contained HTML page to answer the items "
                          "in a browser, with live routing, checks as you type and a CSV that 'import' reads")
    form_who = form.add_mutually_exclusive_group()
    form_who.add_argument("--party", type=nonempty, action=Once,
                          help="only items this party is accountable for (routing items always show)")
    form_who.add_argument("--involving", type=nonempty, action=Once,
                          help="only items that name this party at all, as accountable or contributor")
    form.add_argument("-o", "--output", metavar="FILE", type=nonempty, action=Once,
                      help="write the page to FILE (default: standard output)")
    return parser


def main(argv=None, out=None, err=None):
    """Run one command; print its output or its refusal; return the exit code (see emit_result for an
    output that cannot be written)."""
    if out is None and err is None:
        utf8_streams()
    out, err = out or sys.stdout, err or sys.stderr
    try:
        Parser.given = tuple(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
    except SystemExit as e:                 # argparse has printed its message
        return e.code if isinstance(e.code, int) else 2
    except OSError:                         # --help or a usage message into a closed pipe or a full disk
        silence(sys.stdout)
        silence(sys.stderr)
        return 2
    except KeyboardInterrupt:
        emit(err, "interrupted; nothing written.\n")
        return 1
    commands = {"check": cmd_check, "profiles": cmd_profiles, "items": cmd_items,
                "status": cmd_status, "stats": cmd_stats, "import": cmd_import,
                "form": cmd_form}
    try:
        doc = load(args.file)
        if not doc.items and args.command != "check":
            raise Refusal(f"{shown(doc.path, None)}: no checklist items found; is this the checklist? "
                          "'check' says what is wrong with it.", 2)
        for option, known in (("profile", doc.profiles), ("show", doc.profiles), ("party", doc.parties),
                              ("involving", doc.parties), ("stage", doc.stages), ("group", doc.groups)):
            value = getattr(args, option, None)
            if option == "group" and value and value.isascii() and value.upper() in known:
                value = args.group = value.upper()                    # 'hw' names HW, as IDs are read
            if value and value not in known:
                raise Refusal(f"unknown --{option} '{id_shown(value)}'; choose from: {', '.join(known)}", 2)
        if args.command in ("items", "status", "form", "profiles", "stats"):   # views copy the file's text: never a key
            found = next(iter(secrets(doc)), None) or next(recorded_secrets(doc), None)
            if found:
                raise Refusal(f"{shown(doc.path, None)}:{found.line}: [{found.code}] {found.message}; nothing printed. "
                              "Remove it, then run 'check'.", 1)
            failing = text_defects(doc.raw.decode("utf-8"))
            if failing:
                emit(err, terminal_safe(f"{shown(doc.path, None)}: warning: this file fails its own check "
                                        f"({counted(len(failing), 'defect')}, the first on line {failing[0].line}); "
                                        "'check' lists them, and what follows may be incomplete.") + "\n")
        result = Output(*commands[args.command](doc, args))
    except Refusal as e:
        emit(err, terminal_safe(str(e).rstrip("\n")) + "\n")
        return e.code
    except KeyboardInterrupt:
        recorded = getattr(args, "recorded", None)
        if recorded:
            emit(err, f"interrupted after {shown(doc.path, None)} was written: recorded {', '.join(recorded)}.\n")
            return 0
        emit(err, "interrupted; nothing written.\n")
        return 1
    # every format is written with its control characters escaped, as Markdown always was: a CSV or JSON view of a
    # file someone sent cannot drive the terminal (JSON reads the same: '\u001b' is its escape of ESC)
    return emit_result(args.command, result, terminal_safe(result.text) if args.command != "form" else result.text,
                       out, err)


def emit_result(command, result, text, out, err):
    """Print a command's text and note; its exit code. If standard output cannot take the text (a closed
    pipe or stdout, a full disk), nothing is raised: a reader that has gone (a broken pipe) gets the usual
    code quietly, another failure a line on stderr and code 2; but an import that has written its answers
    says so on stderr and keeps code 0, as its answers are recorded."""
    failure = emit(out, text)
    if failure is None:
        if result.note:
            emit(err, terminal_safe(result.note) + "\n")
        return result.code
    if command == "import" and result.code == 0:
        emit(err, terminal_safe(f"{result.text.strip()} The report could not be printed on standard output "
                                f"({failure}).") + "\n")
        return 0
    if failure == BROKEN_PIPE:
        return result.code
    emit(err, f"cannot write to standard output: {failure}\n")
    return 2


BROKEN_PIPE = "the reader has closed the pipe"


def emit(stream, text):
    """Write and flush `text`; None, or why it could not be written (BROKEN_PIPE for a closed pipe). A
    stream that failed is pointed at the null device, so that Python's own flush at exit cannot fail."""
    try:
        if stream is None:                  # the process started with this stream closed ('>&-')
            return "it is closed"
        stream.write(text)
        stream.flush()
        return None
    except BrokenPipeError:
        silence(stream)
        return BROKEN_PIPE
    except (OSError, ValueError) as e:      # ValueError: a stream already closed
        silence(stream)
        return getattr(e, "strerror", None) or str(e)


def silence(stream):
    """Point a standard stream's file descriptor at the null device (what it still buffers goes nowhere)."""
    if stream is not None and stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, stream.fileno())
            os.close(null)


def utf8_streams():
    """Have standard output and error write UTF-8, whatever the locale says (a Windows code page cannot
    hold every answer); a character that still cannot be written is escaped, never an error."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)   # from here on main() says what was written
    sys.exit(main())
