"""Prompts built from a character spec; pure functions, same inputs -> same text.

Order follows the FLUX guidance (earlier tokens weigh more): Subject (trigger word
first when a LoRA is used, the full description, colours bound to named parts) ->
Action (the pose or view) -> Style -> Context (the background). No negative phrasing:
every clause says what to draw.
"""

from __future__ import annotations

import json

from fal_assets.spec import CharacterSpec

FULL_BODY = "full body visible head to toe"


def _clean(text: str) -> str:
    """One line, single spaces, no trailing clause punctuation."""
    return " ".join(text.split()).rstrip(" .,;:")


def _sentence(text: str) -> str:
    """A sentence: first letter upper case, ending with a full stop."""
    text = _clean(text)
    text = text[:1].upper() + text[1:]
    return text if text.endswith(("!", "?")) else f"{text}."


def palette_phrase(spec: CharacterSpec) -> str:
    """Each colour bound to its part: ``armor lines #FF1493, visor glow #C04DFF``."""
    return ", ".join(f"{part.replace('_', ' ').strip()} {hex_code}" for part, hex_code in spec.palette.items())


def _subject(spec: CharacterSpec, lora: bool) -> list[str]:
    description = _sentence(spec.description)
    parts = [f"{spec.trigger_word}, {description}" if lora else description]
    if spec.palette:
        parts.append(_sentence(f"Colors: {palette_phrase(spec)}"))
    return parts


def _action(text: str) -> str:
    text = _clean(text)
    return text if FULL_BODY in text.lower() else f"{text}, {FULL_BODY}"


def pose_prompt(spec: CharacterSpec, pose: str, *, lora: bool = False, structured: bool = False) -> str:
    """The prompt for one pose image: Subject -> Action -> Style -> Context.

    With ``lora`` the trigger word comes first. With ``structured`` the same content
    as a FLUX.2 JSON prompt (subjects, style, color_palette, composition, scene).
    """
    action = _action(spec.pose(pose).description)
    if structured:
        return _structured(spec, action, lora)
    return " ".join(
        [
            *_subject(spec, lora),
            _sentence(f"Pose: {action}"),
            _sentence(f"Style: {spec.style}"),
            _sentence(spec.background),
        ]
    )


def _structured(spec: CharacterSpec, action: str, lora: bool) -> str:
    description = " ".join(_subject(spec, lora))
    prompt = {
        "subjects": [
            {
                "type": "character",
                "description": description,
                "pose": action,
                "position": "center",
            }
        ],
        "style": _clean(spec.style),
        "color_palette": list(spec.palette.values()),
        "composition": f"single character centered, {FULL_BODY}",
        "scene": _clean(spec.background),
    }
    return json.dumps(prompt, ensure_ascii=False)


def reference_prompt(spec: CharacterSpec, view: str) -> str:
    """The prompt for one reference/dataset image: the full description in ``view``."""
    return " ".join(
        [
            *_subject(spec, lora=False),
            _sentence(f"View: {_clean(spec.view(view))}"),
            _sentence(f"Style: {spec.style}"),
            _sentence(spec.background),
        ]
    )


def caption(spec: CharacterSpec, view: str) -> str:
    """The dataset caption (.txt beside the image): trigger word, then what varies."""
    return f"{spec.trigger_word}, {_clean(spec.view(view))}, {_clean(spec.background)}"
