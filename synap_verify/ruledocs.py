"""The docs' rule tables, generated from :mod:`synap_verify.rules` so a rule is written in one place.

Each family's table sits in its file under docs/ between ``<!-- rules:<family> -->`` and
``<!-- /rules:<family> -->``, and docs/troubleshooting.md holds the index of every rule (``rules:index``);
``python -m synap_verify.ruledocs`` rewrites the blocks, ``--check`` lists the stale files
(``tests/test_rules.py`` fails on them).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from synap_verify.errors import SynapError
from synap_verify.rules import FAMILIES, RULES, family

INDEX_DOC = "troubleshooting.md"  # where a reader looks up a finding's id


def _begin(name: str) -> str:
    title = FAMILIES[name].title if name in FAMILIES else "every rule, what to do, where it is documented"
    return (f"<!-- rules:{name}: {title}. Generated from synap_verify/rules.py by "
            f"`python -m synap_verify.ruledocs`; edit there. -->")


def _end(name: str) -> str:
    return f"<!-- /rules:{name} -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(name: str) -> str:
    """The family's table, each id carrying the anchor its :attr:`Rule.doc` points at."""
    rows = ["| rule | fires when | why it matters | fix |", "|---|---|---|---|"]
    rows += [f'| <a id="{r.id.lower()}"></a>`{r.id}` | {_cell(r.when)} | {_cell(r.why)} | {_cell(r.fix)} |'
             for r in family(name)]
    return "\n".join([_begin(name), *rows, _end(name)])


def render_index() -> str:
    """Every rule id with its fix and a link to its entry, for looking up a finding."""
    rows = ["| rule | family | fix |", "|---|---|---|"]
    rows += [f"| [`{r.id}`]({r.doc.removeprefix('docs/')}) | {r.family} | {_cell(r.fix)} |" for r in RULES.values()]
    return "\n".join([_begin("index"), *rows, _end("index")])


def _blocks(doc: str) -> list[str]:
    return [f.name for f in FAMILIES.values() if f.doc == doc] + (["index"] if doc == INDEX_DOC else [])


def render_doc(text: str, doc: str) -> str:
    """``text`` (a file under docs/) with each of its families' blocks replaced by the current table.

    A family documented in ``doc`` whose markers are missing is an error: a rule table that has no place
    in its file would silently never be written.
    """
    for name in _blocks(doc):
        pattern = re.compile(rf"^<!-- rules:{re.escape(name)}[:\s].*?^<!-- /rules:{re.escape(name)} -->$",
                             re.MULTILINE | re.DOTALL)
        match = pattern.search(text)
        if match is None:
            raise SynapError(f"docs/{doc} has no block for the {name} rules: add the lines "
                             f"'<!-- rules:{name} -->' and '{_end(name)}' where the table belongs")
        block = render_table(name) if name in FAMILIES else render_index()
        text = text[:match.start()] + block + text[match.end():]
    return text


def stale_docs(docs: Path, write: bool = False) -> list[str]:
    """The files under ``docs`` whose rule tables differ from the registry (rewritten when ``write``)."""
    stale = []
    for doc in sorted({f.doc for f in FAMILIES.values()} | {INDEX_DOC}):
        path = docs / doc
        text = path.read_text()
        current = render_doc(text, doc)
        if current != text:
            stale.append(doc)
            if write:
                path.write_text(current)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synap_verify.ruledocs",
                                     description="Regenerate the rule tables in docs/ from synap_verify/rules.py.")
    parser.add_argument("--docs", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    parser.add_argument("--check", action="store_true", help="only list the stale files; exit 1 if any")
    args = parser.parse_args(argv)
    try:
        stale = stale_docs(args.docs, write=not args.check)
    except (SynapError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for doc in stale:
        print(f"{'stale' if args.check else 'rewrote'}: docs/{doc}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
