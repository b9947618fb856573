#!/usr/bin/env python3
"""Writes harp(7) from harp.7.in, putting the table of docs/configuration.md in place of the
line @ENVIRONMENT@, so the page and the document never disagree. Usage:
    mkman.py harp.7.in configuration.md > harp.7"""
import re
import sys
import textwrap


def text(md):
    """Markdown cell text as roff text: no backticks or emphasis, roff escapes."""
    md = md.replace("\\", "\\e")
    md = re.sub(r"`([^`]*)`", r"\1", md)
    md = re.sub(r"\*\*([^*]*)\*\*", r"\1", md)
    return md.replace("\\e|", "|")


def lines(s):
    """Each sentence on its own lines (roff's rule), wrapped at 78 columns."""
    out = []
    for sentence in re.split(r"(?<=[.:;]) (?=[A-Z])", s):
        for line in textwrap.wrap(sentence, 78, break_on_hyphens=False, break_long_words=False):
            out.append("\\&" + line if line[0] in ".'" else line)
    return out


def environment(md):
    out = [".Bl -tag -width Ds"]
    for row in md.splitlines():
        if not row.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        names, default, accepted = cells[0], cells[1], cells[2]
        ev = [n for n in re.findall(r"`([^`]*)`", names)]
        head = ".It Ev " + " , ".join(ev) if ev else ".It " + text(names)
        out.append(head)
        body = "Default: " + text(default) + "."
        if accepted:
            body += " " + text(accepted)
            if not body.endswith("."):
                body += "."
        out.extend(lines(body))
    out.append(".El")
    return "\n".join(out)


def main():
    page = open(sys.argv[1], encoding="utf-8").read()
    md = open(sys.argv[2], encoding="utf-8").read()
    sys.stdout.write(page.replace("@ENVIRONMENT@", environment(md)))


if __name__ == "__main__":
    main()
