"""Reading files and values a user hands us, with bounds checked before parsing.

Every limit is checked before the parser that could blow up on it runs: the size
before reading (a 50 MB spec), text before decoding (a binary file), nesting before
a recursive parser (``[[[[...`` is a RecursionError in ``json`` and in PyYAML's
composer), and YAML alias expansion before anything is built from the nodes (a
"billion laughs" bomb is a few hundred bytes). Each refusal is one ``Problem`` that
names the file and the limit.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidInput, Problem

KB = 1024
MB = 1024 * KB
#: Largest file of each kind read (a spec is a few KB; ours are 2-3 KB).
MAX_TEXT_BYTES = {"character spec": 1 * MB, "request": 1 * MB, "prices file": 1 * MB}
#: Deepest nesting of lists and mappings in YAML or JSON (a spec needs 5).
MAX_DEPTH = 20
#: Most YAML nodes after aliases are expanded (a spec has a few hundred).
MAX_NODES = 100_000


def _size(n: int) -> str:
    return f"{n / MB:.3g} MB" if n >= MB else f"{n / KB:.3g} KB"


def read_text(path: str | os.PathLike, kind: str, *, where: str | None = None, limit: int | None = None) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes (default: by ``kind``)."""
    path = Path(path)
    where = where or str(path)
    limit = limit or MAX_TEXT_BYTES.get(kind, 1 * MB)

    def problem(message: str) -> InvalidInput:
        return InvalidInput([Problem(where, "", message)])

    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise problem(f"is a folder; give a {kind}")
        if not stat.S_ISREG(info.st_mode):
            raise problem(f"is not a regular file (a device, pipe or socket); give a {kind}")
        if info.st_size > limit:
            raise problem(f"is {_size(info.st_size)}, larger than a {kind} may be ({_size(limit)})")
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)  # /proc files report size 0: read no more than the limit
    except OSError as exc:
        raise problem(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise problem(f"is larger than a {kind} may be ({_size(limit)})")
    return decode(raw, kind, where)


def decode(raw: bytes, kind: str, where: str) -> str:
    """``raw`` as UTF-8 text, or one line saying it is binary or not UTF-8."""
    nul = raw.find(b"\0")
    if nul >= 0:
        raise InvalidInput([Problem(where, "", f"is not a text file (binary data at byte {nul}); a {kind} is UTF-8 text")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput([Problem(where, "", f"is not UTF-8 text (byte {exc.start}); save it as UTF-8")]) from None


# --------------------------------------------------------------------------- JSON

_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text (strings skipped), without parsing."""
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def load_json(text: str, where: str, field: str = "") -> Any:
    """Parse JSON text after checking its nesting; errors are one ``Problem``."""
    if json_depth(text) > MAX_DEPTH:
        raise InvalidInput([Problem(where, field, f"nests deeper than {MAX_DEPTH} levels of lists and objects")])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput([Problem(where, field or f"line {exc.lineno}", f"not valid JSON: {exc.msg}")]) from None


# --------------------------------------------------------------------------- YAML

#: libyaml is fast; PyYAML's own parser (iterative too) reads what libyaml refuses
#: (libyaml stops at its own depth limit with a vaguer error) so the line says our limit.
_EVENT_LOADERS = tuple(dict.fromkeys([getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader]))


def check_yaml(text: str, where: str) -> None:
    """Refuse YAML nested deeper than ``MAX_DEPTH`` or holding more than ``MAX_NODES``
    nodes once aliases are expanded, from its event stream (nothing is built).

    A syntax error ends the check quietly: the parser that follows reports it.
    """
    for loader in _EVENT_LOADERS:
        try:
            _check_events(yaml.parse(text, Loader=loader), where)
            return
        except yaml.YAMLError:
            continue


def _check_events(events, where: str) -> None:
    sizes: dict[str, int] = {}
    open_nodes: list[list] = [[None, 0]]  # [anchor, nodes so far] per open collection

    def refuse(event, message: str) -> InvalidInput:
        line = event.start_mark.line + 1 if event.start_mark else "?"
        return InvalidInput([Problem(where, "", message.format(line=line))])

    for event in events:
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            open_nodes.append([event.anchor, 0])
            if len(open_nodes) - 1 > MAX_DEPTH:
                raise refuse(event, f"nests deeper than {MAX_DEPTH} levels of lists and mappings (line {{line}})")
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, count = open_nodes.pop()
            added = count + 1
        elif isinstance(event, yaml.ScalarEvent):
            anchor, added = event.anchor, 1
        elif isinstance(event, yaml.AliasEvent):
            anchor, added = None, sizes.get(event.anchor, 1)
        else:
            continue
        if anchor is not None:
            sizes[anchor] = added
        open_nodes[-1][1] += added
        if sum(n for _, n in open_nodes) > MAX_NODES:
            raise refuse(event, f"expands to more than {MAX_NODES:,} values once its aliases (*name) are filled in "
                                "(line {line}); write the values out or use fewer aliases")


def load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` after ``check_yaml``; a syntax error is one ``Problem``."""
    check_yaml(text, where)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml_error(where, exc) from None


def yaml_error(where: str, exc: Exception) -> InvalidInput:
    """A YAML parse error as one line: where, the line and column, what is wrong."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(filter(None, [exc.context, exc.problem])) or "syntax error"
        return InvalidInput([Problem(where, "", f"invalid YAML{at}: {what}")])
    return InvalidInput([Problem(where, "", f"invalid YAML: {' '.join(str(exc).split())}")])
