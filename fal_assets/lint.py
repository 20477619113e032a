"""Prompt linter for FLUX prompts; pure functions.

Rules (codes):
  negative-phrasing  "no X", "without Y", "not", "never", "don't", "avoid": FLUX takes
                     no negative prompts; describe what you want instead
  weight-syntax      (word:1.5), word++, ((word)), [word]: no effect on FLUX
  placeholder        an unsubstituted [trigger] placeholder
  untied-hex         a hex code with no object next to it ("use #FF0000 somewhere")
  missing-trigger    a LoRA is used but the trigger word is absent
  trigger-not-first  the trigger word is present but does not lead the prompt
  kontext-pose       a kontext endpoint asked to change a pose, proportions or expression
  empty-prompt       nothing to draw
Spec-level (``lint_spec``): kontext-model, background-in-description, few-views.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterator, Literal

from fal_assets.prompts import pose_prompt
from fal_assets.spec import CharacterSpec

Severity = Literal["warning", "error"]


@dataclass(frozen=True)
class LintFinding:
    """One finding: ``code``, what to do (``message``), the offending ``excerpt``,
    its ``span`` (start, end) in the prompt when known, and ``where`` (a spec field)."""

    code: str
    message: str
    severity: Severity
    excerpt: str = ""
    span: tuple[int, int] | None = None
    where: str = ""

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        excerpt = f" ({self.excerpt!r})" if self.excerpt else ""
        return f"{where}{self.severity} {self.code}{excerpt}: {self.message}"


_NEGATIVE = re.compile(
    r"""\b(?:
        no(?![-.'’])\s+[\w-]+           # no shadows  (not: no-nonsense, No. 5)
      | without\s+[\w-]+
      | not\b(?:\s+[\w-]+)?
      | never\b(?:\s+[\w-]+)?
      | cannot\b(?:\s+[\w-]+)?
      | \w+n['’]t\b(?:\s+[\w-]+)?        # don't, doesn't, isn't, can't, won't
      | dont\b(?:\s+[\w-]+)?
      | avoid(?:s|ed|ing)?\b(?:\s+[\w-]+)?
      | exclud(?:e|es|ed|ing)\b(?:\s+[\w-]+)?
      | negative\s+prompt
    )""",
    re.IGNORECASE | re.VERBOSE,
)

_WEIGHT = re.compile(
    r"""\([^()]*:\s*-?\d+(?:\.\d+)?\s*\)   # (word:1.5)
      | \(\([^()]*\)\)                     # ((word))
      | (?:\w+|\))(?:\+\+|--)(?!\w)        # word++, (word)++, word--
      | \[[^\[\]]+\]                       # [word]
    """,
    re.VERBOSE,
)

_HEX = re.compile(r"(?<![\w#&])#[0-9A-Fa-f]{6}(?![0-9A-Za-z_])")
_CLAUSE_END = re.compile(r"[.;:!?,\n]")
_WORD = re.compile(r"[A-Za-z][A-Za-z-]*")
# Words that do not name an object a colour can belong to.
_NOT_OBJECTS = frozenset(
    """
    a an the and or of in on at to for with by from as is are be its it this that these those
    use using used apply applied add make set put paint painted colored coloured
    somewhere anywhere everywhere something some any all every main primary secondary tertiary
    color colors colour colours hex code codes tone tones shade shades hue hues tint tints
    palette accent accents highlight highlights glow glowing neon bright dark light deep pale
    hot soft vivid muted pastel warm cool rich saturated
    red pink magenta purple violet blue cyan teal green lime yellow gold golden orange brown
    black white gray grey silver beige cream navy maroon crimson scarlet
    """.split()
)
_HEX_WINDOW = 4

_KONTEXT_BANNED = re.compile(
    r"""\b(?:
        pose[sd]? | posing | stance | proportions? | body\s+shape | heads?\s+tall
      | (?:facial\s+)?expressions? | smil(?:e|es|ing) | frown(?:s|ing)? | grin(?:s|ning)?
      | (?:sitting|sit\s+down|crouch(?:es|ing)?|kneel(?:s|ing)?|jump(?:s|ing)?|running|lying\s+down)
      | arms?\s+raised | raise[sd]?\s+(?:her|his|their|its|the|both)\s+(?:arms?|hands?|legs?)
      | (?:make|turn)\s+(?:her|him|them|it)\s+(?:taller|shorter|thinner|run|jump|sit|crouch|kneel|stand|wave|dance|walk)
    )\b""",
    re.IGNORECASE | re.VERBOSE,
)


def lint_prompt(
    prompt: str,
    *,
    endpoint: str | None = None,
    trigger_word: str | None = None,
    lora: bool = False,
) -> list[LintFinding]:
    """Findings for one prompt (plain text or a FLUX.2 JSON prompt), in text order."""
    if not prompt.strip():
        return [LintFinding("empty-prompt", "the prompt is empty; describe the subject, action, style and context", "error")]
    leaves = _json_leaves(prompt)
    if leaves is None:
        texts: list[tuple[str, bool]] = [(prompt, True)]
    else:
        texts = [(text, not path.startswith("color_palette")) for path, text in leaves]
    findings: list[LintFinding] = []
    for text, check_hex in texts:
        findings += _text_findings(text, prompt, leaves is None, check_hex)
        if endpoint and "kontext" in endpoint.lower():
            findings += _kontext(text, prompt, leaves is None)
    if lora:
        if leaves is None:
            findings += _trigger(prompt, prompt, trigger_word)
        else:
            # In a JSON prompt the trigger word leads the first subject's description.
            descriptions = [text for path, text in leaves if re.fullmatch(r"subjects\.\d+\.description", path)]
            lead = descriptions[0] if descriptions else (leaves[0][1] if leaves else "")
            findings += _trigger(" ".join(text for _, text in leaves), lead, trigger_word)
    return findings


def _span(match: re.Match, prompt: str, direct: bool) -> tuple[int, int] | None:
    if direct:
        return match.span()
    start = prompt.find(match.group(0))
    return (start, start + len(match.group(0))) if start >= 0 else None


def _text_findings(text: str, prompt: str, direct: bool, check_hex: bool) -> Iterator[LintFinding]:
    for m in _NEGATIVE.finditer(text):
        yield LintFinding(
            "negative-phrasing",
            "FLUX takes no negative prompts and may draw what is named; describe what you want instead "
            "(e.g. 'bare hands' rather than 'no gloves')",
            "warning",
            m.group(0),
            _span(m, prompt, direct),
        )
    for m in _WEIGHT.finditer(text):
        if m.group(0).strip("[] ").lower() in ("trigger", "trigger_word", "trigger word"):
            yield LintFinding(
                "placeholder",
                "unsubstituted trigger placeholder; put the character's trigger word there",
                "error",
                m.group(0),
                _span(m, prompt, direct),
            )
            continue
        yield LintFinding(
            "weight-syntax",
            "emphasis syntax has no effect on FLUX; put important words earlier or describe them more precisely",
            "warning",
            m.group(0),
            _span(m, prompt, direct),
        )
    if check_hex:
        for m in _HEX.finditer(text):
            if not _hex_is_tied(text, m):
                yield LintFinding(
                    "untied-hex",
                    "a hex colour needs the object it belongs to (e.g. 'armor lines #FF1493'); "
                    "a loose hex code gives inconsistent colours",
                    "warning",
                    m.group(0),
                    _span(m, prompt, direct),
                )


def _hex_is_tied(text: str, match: re.Match) -> bool:
    start, end = match.span()
    clause_start = max((m.end() for m in _CLAUSE_END.finditer(text, 0, start)), default=0)
    after = _CLAUSE_END.search(text, end)
    clause_end = after.start() if after else len(text)
    before_words = _WORD.findall(text[clause_start:start])[-_HEX_WINDOW:]
    after_words = _WORD.findall(text[end:clause_end])[:_HEX_WINDOW]
    return any(len(w) >= 3 and w.lower() not in _NOT_OBJECTS for w in before_words + after_words)


def _kontext(text: str, prompt: str, direct: bool) -> Iterator[LintFinding]:
    for m in _KONTEXT_BANNED.finditer(text):
        yield LintFinding(
            "kontext-pose",
            "kontext edits an image (background, colour, lighting) and is never for poses, proportions "
            "or expressions; generate the pose from the full description with a text-to-image endpoint "
            "(e.g. fal-ai/flux-2/lora with the character LoRA)",
            "error",
            m.group(0),
            _span(m, prompt, direct),
        )


def _trigger(text: str, lead: str, trigger_word: str | None) -> list[LintFinding]:
    """The trigger word must be in ``text`` and lead ``lead`` (the prompt, or a JSON subject)."""
    if not trigger_word:
        return [LintFinding("missing-trigger", "a LoRA is used but no trigger word is known; pass the spec's trigger word", "error")]
    pattern = re.compile(rf"(?<![\w-]){re.escape(trigger_word)}(?![\w-])")
    if pattern.search(text) is None:
        return [
            LintFinding(
                "missing-trigger",
                f"a LoRA is used but the trigger word {trigger_word!r} is missing; start the prompt with it",
                "error",
                trigger_word,
            )
        ]
    m = pattern.search(lead)
    if m is None or lead[: m.start()].strip(" \t\n\"'{[:,"):
        return [
            LintFinding(
                "trigger-not-first",
                f"put the trigger word {trigger_word!r} first: FLUX weighs earlier words more",
                "warning",
                trigger_word,
                m.span() if m is not None and lead is text else None,
            )
        ]
    return []


def _json_leaves(prompt: str) -> list[tuple[str, str]] | None:
    """(dotted path, text) of every string in a JSON-object prompt, in order; None if not JSON."""
    if not prompt.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(prompt)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    leaves: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            leaves.append((path, value))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}")

    walk(data, "")
    return leaves


def lint_spec(spec: CharacterSpec) -> list[LintFinding]:
    """Findings for a spec: each text field on its own, then every full pose prompt.

    A finding that comes from a shared field (description, style, ...) is reported
    once, against that field, rather than once per pose.
    """
    findings: list[LintFinding] = []
    for stage in ("reference", "pose"):
        endpoint = getattr(spec.models, stage)
        if "kontext" in endpoint.lower():
            findings.append(
                LintFinding(
                    "kontext-model",
                    "kontext edits images and is never for generating poses or references; "
                    "use a text-to-image endpoint (fal-ai/flux-2-pro, fal-ai/flux-2/lora)",
                    "error",
                    endpoint,
                    where=f"models.{stage}",
                )
            )
    if re.search(r"\bbackgrounds?\b", spec.description, re.IGNORECASE):
        findings.append(
            LintFinding(
                "background-in-description",
                "the description mentions a background; put it in the background field so it comes last (context) in every prompt",
                "warning",
                "background",
                where="description",
            )
        )
    if len(spec.views) < 9 and spec.references_dir is None:
        findings.append(
            LintFinding(
                "few-views",
                f"{len(spec.views)} views make {len(spec.views)} training images; a LoRA wants 9-50 varied images "
                "(add views or a references_dir)",
                "warning",
                where="views",
            )
        )
    fields = {"description": spec.description, "style": spec.style, "background": spec.background}
    fields |= {f"poses.{name}.description": pose.description for name, pose in spec.poses.items()}
    fields |= {f"views.{name}": text for name, text in spec.views.items()}
    seen: set[tuple[str, str]] = set()
    for where, text in fields.items():
        for f in lint_prompt(text):
            findings.append(_at(f, where))
            seen.add((f.code, f.excerpt.lower()))
    for name in spec.poses:
        prompt = pose_prompt(spec, name, lora=spec.uses_lora)
        for f in lint_prompt(prompt, endpoint=spec.models.pose, trigger_word=spec.trigger_word, lora=spec.uses_lora):
            if (f.code, f.excerpt.lower()) not in seen:
                findings.append(_at(f, f"poses.{name}"))
    return findings


def _at(finding: LintFinding, where: str) -> LintFinding:
    return LintFinding(finding.code, finding.message, finding.severity, finding.excerpt, finding.span, where)
