#!/usr/bin/env python3
"""Consistency checker for the checklist README (Python 3 standard library only).

Usage: python3 .ci/check_readme.py [PATH]    (default: README.md at the repo root)
Prints `PATH:LINE: [rule] message` per defect and exits 1, or
`PATH: OK (N items, M groups)` and exits 0.
Rules: structure, item-format, duplicate-id, undeclared-prefix, wrong-group,
missing-field, unknown-field, bad-stage, undefined-id, blocker-list, anchor,
reference, placeholder, ci-named.
"""
import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

FIELDS = {"Form", "Unblocks", "From", "Stage", "Note", "Answer"}
REQUIRED = ("Form", "Unblocks", "From", "Stage")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ITEM = re.compile(r"^- \[[ xX]\] \*\*([A-Z]{2,4})-([1-9][0-9]*)\*\* \S")
LINK_BULLET = re.compile(r"^- \[[^\]]*\][(\[]")     # "- [text](#x)" is a link, not an item
LOOSE_ID = re.compile(r"\b([A-Z]{2,4})-([1-9][0-9]*)\b")   # salvage an ID from a malformed item
ID_TOKEN = re.compile(r"\b([A-Z]{2,4})-(\d+)\b")
FIELD = re.compile(r"^  - (?:\*\*([A-Za-z]+):\*\*|\*\*([A-Za-z]+)\*\*:|([A-Za-z]+):)(.*)$")
GROUP = re.compile(r"\(([A-Z]{2,4})\)$")
SPEC = re.compile(r"\b(TS|TR)[ \u00a0](\d{2}\.\d{3}(?:-\d+)?)\b")
PLACEHOLDER = re.compile(r"\b(TODO|FIXME|XXX)\b")
LINK = re.compile(r"\]\(#([^)\s]+)\)")
HTML_ANCHOR = re.compile(r"""<a\s+(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)


def slugify(text):
    """GitHub heading anchor (without the -N suffix for repeats)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [text](url) -> text
    text = re.sub(r"<[^>]+>", "", text)                      # inline HTML tags
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)          # _emphasis_ markers only
    text = text.strip().lower()
    keep = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return keep.replace(" ", "-")


def fenced_lines(lines):
    """One flag per line: True if the line is part of a fenced code block."""
    flags, fence = [], None
    for line in lines:
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
            flags.append(fence is not None)
        else:
            flags.append(True)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip().strip(fence[0]):
                fence = None
    return flags


class Result:
    def __init__(self):
        self.defects, self.items, self.groups = [], {}, {}

    def bad(self, line, rule, message):
        self.defects.append((line, rule, message))


def analyse(text):
    lines = text.replace("\r\n", "\n").split("\n")
    fenced = fenced_lines(lines)
    live = [(n, line) for n, line in enumerate(lines, 1) if not fenced[n - 1]]
    res = Result()
    bad = res.bad

    # Headings and level-2 sections (a section runs to the next level-1/2 heading).
    headings = []
    for n, line in live:
        m = HEADING.match(line)
        if m:
            headings.append((n, len(m.group(1)), m.group(2).strip()))
    bounds = [n for n, lvl, _ in headings if lvl <= 2] + [len(lines) + 1]

    def section(pred):
        for n, lvl, title in headings:
            if lvl == 2 and pred(title):
                return n, next(b for b in bounds if b > n)
        return None

    def inside(n, sec):
        return sec is not None and sec[0] <= n < sec[1]

    # Stage values: the `Stage` table in "## How to use this checklist".
    howto = section(lambda t: t == "How to use this checklist")
    stages, table = set(), []
    for n, line in live + [(0, "")]:
        if inside(n, howto) and line.strip().startswith("|"):
            table.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if table and table[0][0].strip("* ") == "Stage":
            for row in table[2:]:
                m = re.fullmatch(r"`([^`]+)`", row[0])
                if m:
                    stages.add(m.group(1).strip())
        table = []
    if not stages:
        bad(howto[0] if howto else 1, "structure",
            "no Stage table (first header cell `Stage`, backticked values) "
            "under '## How to use this checklist'")

    # Group prefixes: "### Name (ABC)" headings inside "## The checklist".
    checklist = section(lambda t: t == "The checklist")
    for n, lvl, title in headings:
        m = GROUP.search(title)
        if lvl == 3 and inside(n, checklist) and m:
            res.groups.setdefault(m.group(1), n)
    groups = res.groups
    if not checklist:
        bad(1, "structure", "no '## The checklist' section")
    elif not groups:
        bad(checklist[0], "structure", "no group headings like '### Name (ABC)'")

    # Items and their fields.
    head_at = {n: (lvl, title) for n, lvl, title in headings}
    item_lines, group = set(), None
    for n, line in live:
        if n in head_at:
            lvl, title = head_at[n]
            if lvl <= 2:
                group = None
            elif lvl == 3 and inside(n, checklist) and GROUP.search(title):
                group = GROUP.search(title).group(1)
            continue
        if not line.startswith("- [") or LINK_BULLET.match(line):
            continue
        item_lines.add(n)
        m = ITEM.match(line)
        if not m:
            bad(n, "item-format", "item must look like '- [ ] **ABC-1** text'")
            m = LOOSE_ID.search(line)
            if not m:
                continue
        pfx, iid = m.group(1), f"{m.group(1)}-{m.group(2)}"
        if iid in res.items:
            bad(n, "duplicate-id", f"{iid} is already defined at line {res.items[iid]['line']}")
        if groups and pfx not in groups:
            bad(n, "undeclared-prefix", f"{iid}: no '### ... ({pfx})' group heading declares {pfx}")
        elif groups and pfx != group:
            where = (f"under the ({group}) group" if group else "outside any group") \
                if inside(n, checklist) else "outside '## The checklist'"
            bad(n, "wrong-group", f"{iid} sits {where}; it belongs under line {groups[pfx]}")
        found, k = {}, n
        while k < len(lines) and lines[k].startswith("  "):
            f = None if fenced[k] else FIELD.match(lines[k])
            if f:
                label, value = f.group(1) or f.group(2) or f.group(3), f.group(4).strip()
                if label not in FIELDS:
                    bad(k + 1, "unknown-field", f"{iid}: unknown field '{label}'")
                elif label in found and label in REQUIRED:
                    bad(k + 1, "missing-field", f"{iid}: {label} appears more than once")
                elif label not in found:
                    found[label] = (value, k + 1)
                    if not value and label in REQUIRED:
                        bad(k + 1, "missing-field", f"{iid}: {label} is empty")
            elif not fenced[k] and lines[k].startswith("  - "):
                bad(k + 1, "unknown-field", f"{iid}: sub-bullet is not a '**Label:** text' field")
            k += 1
        for label in REQUIRED:
            if label not in found:
                bad(n, "missing-field", f"{iid}: no {label} field")
        value, stage_line = found.get("Stage", ("", n))
        word = value.split()[0].strip("`*.,;:") if value.split() else ""
        if word and stages and word not in stages:
            bad(stage_line, "bad-stage", f"{iid}: Stage '{word}' is not one of {sorted(stages)}")
        res.items.setdefault(iid, {"line": n, "stage": word})

    # IDs mentioned outside item first lines must exist; collect Start-here mentions.
    start = section(lambda t: t.startswith("Start here"))
    mentions = {}
    for n, line in live:
        if n in item_lines:
            continue
        for iid in dict.fromkeys(m.group(0) for m in ID_TOKEN.finditer(line)
                                 if m.group(1) in groups):
            if iid not in res.items:
                bad(n, "undefined-id", f"{iid} is not a checklist item")
            elif inside(n, start):
                mentions.setdefault(iid, n)

    # Start-here list == blocker items.
    blockers = {iid for iid, it in res.items.items() if it["stage"] == "blocker"}
    for iid in blockers - mentions.keys():
        bad(res.items[iid]["line"], "blocker-list",
            f"{iid} has Stage blocker but is not listed under '## Start here'")
    for iid in mentions.keys() - blockers:
        bad(mentions[iid], "blocker-list",
            f"{iid} is listed under '## Start here' but its Stage is not blocker")

    # Internal links resolve to heading anchors (repeats get -1, -2, ...) or <a id>.
    anchors, seen = set(), {}
    for n, lvl, title in headings:
        slug = slugify(title)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    for n, line in live:
        anchors.update(HTML_ANCHOR.findall(line))
    for n, line in live:
        for m in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            if unquote(m.group(1)) not in anchors:
                bad(n, "anchor", f"#{m.group(1)} matches no heading or <a id>")

    # 3GPP numbers cited outside "## References" must be listed in it.
    refs = section(lambda t: t == "References")
    listed = {f"{m.group(1)} {m.group(2)}" for n, line in live if inside(n, refs)
              for m in SPEC.finditer(line)}
    for n, line in live:
        for m in ([] if inside(n, refs) else SPEC.finditer(line)):
            spec = f"{m.group(1)} {m.group(2)}"
            if spec not in listed:
                listed.add(spec)  # report once, at the first occurrence
                bad(n, "reference", f"{spec} is cited but not listed under '## References'")

    for n, line in live:
        for word in dict.fromkeys(PLACEHOLDER.findall(line)):
            bad(n, "placeholder", f"placeholder '{word}' left in the text")
    # Deliberately counted anywhere, fenced blocks included: `bash .ci/run` is usually a code block.
    if ".ci/run" not in text:
        bad(1, "ci-named", "the document never mentions .ci/run")
    res.defects.sort()
    return res


def check(text):
    """Return the defects in `text` as sorted (line, rule, message) tuples."""
    return analyse(text).defects


def main(argv):
    if len(argv) > 1:
        shown, path = argv[1], Path(argv[1])
    else:
        shown, path = "README.md", Path(__file__).resolve().parent.parent / "README.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        print(f"{shown}: cannot read: {e.strerror}", file=sys.stderr)
        return 2
    res = analyse(text)
    for line, rule, message in res.defects:
        print(f"{shown}:{line}: [{rule}] {message}")
    if res.defects:
        return 1
    print(f"{shown}: OK ({len(res.items)} items, {len(res.groups)} groups)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
