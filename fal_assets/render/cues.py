"""What a prompt asks of the local renderer: colours bound to body parts, pose, view,
framing, background, hair, accessory, build and body kind (human or robot).

Parsing is deliberately small and predictable: a colour (``#RRGGBB``, ``#RGB`` or a
colour name such as ``hot pink`` / ``dark blonde``) binds to the *last* part word of
the phrase that follows it ("dark gray armor panels" -> trim), else to the nearest
part word before it in the same clause ("hair #C8A24A" -> hair). Colours joined by
"and" or "/" share the binding of the one that follows ("pink/purple neon glow").
Hex colours that bind to nothing are handed out in order (outfit, accent, hair, trim,
eyes); bare colour names that bind to nothing are ignored.

Who the character is (hair, accessory, build, body kind) is read from the prompt's
*identity text* (``identity_text``): the prompt without its trigger word, background,
``Pose:`` / ``View:`` clauses and other clauses that only say what the figure does or
how it is framed. Poses and views of one character therefore share one identity.
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass, field

from PIL import ImageColor

RGB = tuple[int, int, int]

PARTS = ("hair", "skin", "outfit", "trim", "accent", "eyes", "gear")
"""Colour slots of the figure. ``gear`` colours the accessory (sword, scarf, pack)."""

UNBOUND_ORDER = ("outfit", "accent", "hair", "trim", "eyes")

_PART_WORDS: dict[str, str] = {}
for _part, _words in {
    "hair": "hair ponytail ponytails braid braids bun buns pigtails twintails bangs fringe mohawk locks mane",
    "skin": "skin face complexion",
    "outfit": "outfit bodysuit suit armor armour jacket shirt dress tunic robe uniform coat clothes clothing "
    "hoodie jumpsuit costume top vest kimono gi catsuit body robot droid android chassis shell casing hull",
    "trim": "panels panel pants trousers leggings shorts skirt boots boot shoes shoe gloves glove gauntlets "
    "belt pads plates greaves trim sleeves",
    "accent": "lines line accents accent glow circuits circuit stripes stripe highlights details piping "
    "markings runes lights emblem logo",
    "eyes": "eyes eye visor goggles goggle glasses lenses lens shades",
    "gear": "katana sword blade scabbard scarf cape cloak backpack pack headphones antenna bulb beacon lamp",
}.items():
    for _w in _words.split():
        _PART_WORDS[_w] = _part

# "body panels" are the body (outfit), not trim: a trim word right after one of these
_OUTFIT_BEFORE_TRIM = {"body", "robot", "droid", "android", "chassis", "shell", "casing", "hull"}

# Colour words Pillow's CSS table lacks; skin words only count before "skin".
_EXTRA_COLOURS: dict[str, RGB] = {
    "blonde": (230, 200, 120), "blond": (230, 200, 120), "darkblonde": (176, 141, 87),
    "dirtyblonde": (176, 141, 87), "platinum": (229, 228, 226), "brunette": (94, 64, 44),
    "auburn": (145, 56, 40), "ginger": (196, 98, 45), "copper": (184, 115, 51),
    "charcoal": (54, 69, 79), "graphite": (65, 66, 76), "emerald": (46, 160, 100),
    "ruby": (190, 20, 60), "sapphire": (15, 82, 186), "mint": (152, 230, 190),
    "cream": (255, 246, 214), "rose": (255, 102, 153), "amber": (255, 180, 0),
    "burgundy": (128, 0, 32), "mauve": (180, 130, 180), "lilac": (200, 162, 200),
    "peach": (255, 203, 164), "caramel": (196, 142, 72), "bronze": (205, 127, 50),
    "rust": (183, 65, 14), "neonpink": (255, 20, 147), "neongreen": (57, 255, 20),
    "neonblue": (31, 81, 255), "grey": (128, 128, 128),
}
_SKIN_TONES: dict[str, RGB] = {
    "fair": (246, 215, 195), "pale": (243, 220, 208), "light": (241, 204, 177),
    "tan": (210, 160, 115), "olive": (190, 150, 105), "brown": (150, 100, 70),
    "dark": (110, 72, 50), "deep": (95, 62, 44),
}
_MODIFIERS = {"dark", "light", "pale", "deep", "bright", "neon", "hot", "pastel", "soft", "vivid", "dirty", "strawberry"}
_IGNORED_COLOUR_WORDS = {"tan", "snow", "linen", "peru", "tomato", "chocolate", "bisque", "moccasin", "wheat", "plum"}
_STOP_WORDS = {
    "on", "with", "in", "of", "for", "at", "to", "from", "under", "over", "across", "covering",
    "sheathed", "or", "but", "wearing", "has", "have", "while", "plus", "that", "which", "and", "the", "a",
}
_HARD_STOPS = {",", ".", ";", "!", "?", "\n", "(", ")"}
_BACKWARD_SKIP = {":", "=", "-", "is", "are", "colour", "color", "coloured", "colored", "in"}

_TOKEN_RE = re.compile(r"#[0-9a-f]{6}\b|#[0-9a-f]{3}\b|[a-z][a-z0-9_']*|\n|[^\sa-z0-9]")

POSES = ("idle", "walk", "run", "jump", "wave", "crouch", "kneel", "sit", "sit_cross", "lie", "attack", "kick", "victory", "fist_pump", "akimbo")
_POSE_PATTERNS = {
    "akimbo": r"hands? on (?:her |his |its |their |the )?hips?|arms? akimbo|akimbo",
    "fist_pump": r"(?:one |a |her |his |its |their )?fists? (?:raised|up|pumped|thrust up|in the air|held high)|fist[- ]pump\w*"
    r"|raises? (?:a|one|her|his|its|their) fist",
    "victory": r"victory|arms? (?:raised|up|in the air)|raised arms|hands? up|cheer\w*|celebrat\w*|triumph\w*",
    "wave": r"wav(?:e|es|ing)|hello|greeting|salut\w*",
    "jump": r"jump\w*|airborne|leap\w*|mid-?air|hop(?:s|ped|ping)?|bounc(?:e|es|ed|ing)|spring(?:s|ing)? (?:up|into the air)",
    "kick": r"kick\w*",
    "attack": r"attack\w*|slash\w*|punch\w*|strik(?:e|es|ing)|lung(?:e|es|ing)|fighting stance|combat stance"
    r"|swing(?:s|ing)? (?:an? |the |its |his |her |their )?(?:sword|katana|blade|axe|hammer|weapon|club|bat)",
    "run": r"run|runs|running|sprint\w*|dash(?:es|ing)?|jog\w*|(?:dynamic )?action pose|mid-motion|in motion",
    "walk": r"walk\w*|stroll\w*|march(?:es|ing)?|strid(?:e|es|ing)|wander(?:s|ing)?|tiptoe\w*",
    "lie": r"lying|lies (?:down|flat|on)|lie (?:down|flat|on)|laid (?:down|out|flat)|asleep|sleep(?:s|ing)?|napping"
    r"|reclin\w*|sprawl\w*",
    "kneel": r"kneel\w*|knelt|on one knee|on (?:its|his|her|their|both) knees",
    "crouch": r"crouch\w*|squat\w*",
    "sit": r"sit|sits|sitting|seated",
}
_CAMERA_PATTERNS = {
    "low": r"low[- ]angle|from below|worm'?s[- ]eye|looking up at",
    "high": r"high[- ]angle|from (?:slightly )?above|top[- ]down|bird'?s[- ]eye|overhead|looking down at",
}
_FACE_CLOSE_UP = r"close[- ]?up of (?:the |its |his |her |their )?(?:[a-z]+ )?face|face close[- ]?up|headshot|extreme close[- ]?up"
_ACTION_WORDS = (
    r"stand(?:s|ing)?|idle|neutral pose|[at][- ]pose|at rest|in place|on the spot"
    r"|full[- ]body|head to toe|full[- ]length|close[- ]?up|\bportrait\b|headshot|\bbust\b|upper body|head and shoulders"
    r"|facing (?:left|right|the camera|the viewer|forward|away)|to the (?:left|right)|looking (?:left|right|at|up|down|back)"
)
_LABELLED_CLAUSE = re.compile(r"\b(?:pose|view|action|framing|camera|shot|motion)\s*[:=]\s*.*?(?:\.(?=\s|$)|;|\n|$)", re.S)
_LEADING_TRIGGER = re.compile(r"^\s*(?:[a-z0-9]+(?:[_-][a-z0-9]+)+|[a-z]*\d[a-z0-9]*)\s*(?:,|$)")
_CLAUSE_SPLIT = re.compile(r"[,;!?\n()]|\.(?=\s|$)|:(?=\s)")
_ROBOT = r"\b(?:robot\w*|androids?|droids?|mechs?|mecha|automatons?|bots?)\b"
_ARMS_SPREAD = (
    r"arms? (?:spread|outstretched|stretched out|out wide|wide open|open wide|flung wide|out to the sides?|wide)"
    r"|(?:spread|spreading|outstretched|opens?|opening|flings?|flinging) (?:out )?(?:both |its |his |her |their )?arms"
)
_HOLD_VERB = re.compile(
    r"\b(?:hold\w*|wield\w*|grip(?:s|ping)?|brandish\w*|tighten\w*|using|uses|swing\w*|raising|raises|with (?:an? |the |its |his |her |their ))"
    r"[^,.;]*?\b(?:wrench|spanner|katana|sword|blade)\b|\b(?:katana|sword|blade|wrench|spanner) (?:drawn|raised|in hand|held)"
)
_NOT_HELD = re.compile(r"sheathed|scabbard|\bbelt\b|holster|on (?:its |his |her |their |the )?back\b|around|at (?:its |his |her |their )?(?:hip|side|waist)")
_VIEW_PATTERNS = {
    "back": r"back view|from behind|rear view|facing away|back to the (?:camera|viewer)",
    "side": r"side view|profile|from the side|side-on",
    "three_quarter": r"three[- ]quarters?(?: view)?|3/4",
    "front": r"front view|facing (?:the )?(?:camera|viewer|forward)|front-facing|from the front",
}
_HAIR_STYLES = {
    "ponytail": r"ponytail|pony tail",
    "twintails": r"pigtails|twin ?tails|twintails",
    "bun": r"bun|top knot",
    "braid": r"braid",
    "spiky": r"spiky|spikes|mohawk",
    "long": r"long hair|long \w+ hair|flowing hair",
    "bob": r"bob|bob cut",
    "bald": r"bald|shaved head",
    "short": r"short hair|short \w+ hair|short \w+ \w+ hair|cropped hair",
}
_ACCESSORIES = {
    "sword": r"katana|sword|blade",
    "wrench": r"wrench|spanner",
    "cape": r"cape|cloak",
    "scarf": r"scarf",
    "backpack": r"backpack",
    "headphones": r"headphones|headset",
}
_BACKGROUND_WORD = r"(?:background|backdrop|bg)"
_COLOUR_PHRASE = r"(#[0-9a-f]{6}|#[0-9a-f]{3}|(?:[a-z]+[ -]){0,2}[a-z]+)"


_ACTION_RE = re.compile(
    r"(?<![\w-])(?:"
    + "|".join(f"(?:{p})" for p in (*_POSE_PATTERNS.values(), *_VIEW_PATTERNS.values(), *_CAMERA_PATTERNS.values(), _ACTION_WORDS))
    + r")(?![\w])"
)
"""A clause that says what the figure does or how it is framed (no part of who it is)."""


@dataclass(frozen=True)
class Cues:
    """Everything the renderer reads from one prompt."""

    colours: dict[str, RGB] = field(default_factory=dict)
    """Part -> colour the prompt binds to it (first hex mention wins, then first name)."""
    extra_colours: dict[str, tuple[RGB, ...]] = field(default_factory=dict)
    unbound_hex: tuple[RGB, ...] = ()
    pose: str = "idle"
    pose_explicit: bool = False
    view: str | None = None
    facing: int = 1
    close_up: bool = False
    face_only: bool = False
    """A close-up of the face alone ("close-up of the face"), not head and shoulders."""
    camera: str | None = None
    """"low" (from below) or "high" (from above); None: at eye level."""
    background: RGB | None = None
    """None: not mentioned (white is used). See ``transparent``."""
    transparent: bool = False
    hair_style: str | None = None
    accessory: str | None = None
    heads: float | None = None
    build: float | None = None
    visor: bool = False
    gloves: bool = False
    armored: bool = False
    body: str | None = None
    """"robot" when the identity text says robot/android/droid/mech; None: not said (human)."""
    belt: bool = False
    expression: str = "calm"
    arms: str | None = None
    """"spread" for "arms spread wide" in the pose; None: the pose's own arms."""
    holding: bool = False
    """The pose holds its tool or weapon ("with its wrench", "katana drawn")."""
    recolour: tuple[tuple[str | None, RGB, RGB], ...] = ()
    """``(part, from, to)`` for "change the glow from X to Y" (edits); part may be None."""
    text: str = ""
    identity: str = ""
    """Who the character is, as text (see ``identity_text``): the same for every pose of one character."""

    def mentions(self, word: str) -> bool:
        """Whether ``word`` (a trigger word) appears in the prompt as a whole word."""
        word = word.strip().lower()
        if not word:
            return False
        return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", self.text) is not None


def parse_colour(text: str) -> RGB | None:
    """``#FF1493``, ``#f19``, ``hot pink``, ``dark blonde`` -> RGB; None if not a colour."""
    text = text.strip().lower()
    if text.startswith("#"):
        try:
            return ImageColor.getrgb(text)[:3]  # type: ignore[return-value]
        except ValueError:
            return None
    words = [w for w in re.split(r"[\s\-_]+", text) if w]
    return _colour_from_words(words)


def _colour_from_words(words: list[str]) -> RGB | None:
    if not words:
        return None
    if len(words) >= 2 and words[-2] in ("dark", "light") and words[-1] in ("gray", "grey"):
        words = [*words[:-2], words[-2], "gray"]  # CSS darkgray is lighter than gray: use the modifier
        return _modify((128, 128, 128), words[:-1])
    joined = "".join(words)
    for name in (joined, "".join(words[-2:]), words[-1]):
        base = _EXTRA_COLOURS.get(name)
        if base is None and name in ImageColor.colormap:
            base = ImageColor.getrgb(name)[:3]  # type: ignore[assignment]
        if base is not None:
            used = len(words) if name == joined else (2 if name == "".join(words[-2:]) and len(words) >= 2 else 1)
            return _modify(base, words[: len(words) - used])
    return None


def _modify(rgb: RGB, modifiers: list[str]) -> RGB:
    h, l, s = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    for m in modifiers:
        if m in ("dark", "deep"):
            l *= 0.62
        elif m in ("light", "pale", "pastel", "soft"):
            l = l + (1 - l) * 0.45
            s *= 0.8 if m != "light" else 1.0
        elif m in ("bright", "neon", "hot", "vivid"):
            s = min(1.0, s * 1.3 + 0.1)
            l = min(0.6, max(l, 0.5))
        elif m == "dirty":
            l *= 0.8
            s *= 0.8
    r, g, b = colorsys.hls_to_rgb(h, l, s)
    return (round(r * 255), round(g * 255), round(b * 255))


@dataclass
class _Mention:
    start: int  # token index of the first token
    end: int  # token index after the last token
    rgb: RGB
    is_hex: bool
    part: str | None = None


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def _is_colour_word(tok: str) -> bool:
    return (tok in ImageColor.colormap and tok not in _IGNORED_COLOUR_WORDS) or tok in _EXTRA_COLOURS


def _find_mentions(toks: list[str]) -> list[_Mention]:
    mentions: list[_Mention] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.startswith("#") and len(tok) in (4, 7):
            rgb = parse_colour(tok)
            if rgb is not None:
                mentions.append(_Mention(i, i + 1, rgb, True))
            i += 1
            continue
        # skin tone words directly before "skin"
        if tok in _SKIN_TONES and i + 1 < len(toks) and toks[i + 1] in ("skin", "complexion"):
            mentions.append(_Mention(i, i + 1, _SKIN_TONES[tok], False))
            i += 1
            continue
        # [modifiers] colour-word [colour-word] (two-word CSS names like "hot pink")
        j = i
        while j < len(toks) and toks[j] in _MODIFIERS and not _is_colour_word(toks[j]):
            j += 1
        if j < len(toks) and (_is_colour_word(toks[j]) or (j + 1 < len(toks) and _is_colour_word(toks[j] + toks[j + 1]))):
            end = j + 1
            if end < len(toks) and _is_colour_word(toks[j] + toks[end]):
                end += 1
            rgb = _colour_from_words(toks[i:end])
            if rgb is not None:
                mentions.append(_Mention(i, end, rgb, False))
                i = end
                continue
        i += 1
    # "hot pink (#FF1493)": the hex in brackets right after a name is the same colour
    merged: list[_Mention] = []
    for m in mentions:
        if (
            merged
            and m.is_hex
            and not merged[-1].is_hex
            and m.start - merged[-1].end <= 1
            and all(t == "(" for t in toks[merged[-1].end : m.start])
        ):
            prev = merged[-1]
            merged[-1] = _Mention(prev.start, m.end + (1 if m.end < len(toks) and toks[m.end] == ")" else 0), m.rgb, True)
            continue
        merged.append(m)
    return merged


def _bind(toks: list[str], mentions: list[_Mention]) -> None:
    starts = {m.start: k for k, m in enumerate(mentions)}
    ends = {m.end - 1 for m in mentions}
    for k in range(len(mentions) - 1, -1, -1):  # right to left so "A and B thing" can inherit
        m = mentions[k]
        i = m.end
        while i < len(toks) and toks[i] in ("and", "/", "or", "&", "-", "\n"):
            i += 1
        if i > m.end and i in starts:  # "pink/purple glow": shares the next colour's part
            m.part = mentions[starts[i]].part
            continue
        last_part = None
        i = m.end
        while i < len(toks) and i not in starts and toks[i] not in _HARD_STOPS and toks[i] not in _STOP_WORDS:
            last_part = _part_at(toks, i) or last_part
            i += 1
        if last_part is None:  # "hair #C8A24A", "eyes: glowing #00FFFF"
            i, skipped = m.start - 1, 0
            while i >= 0 and toks[i] not in _HARD_STOPS and i not in ends and skipped <= 1:
                last_part = _part_at(toks, i)
                if last_part:
                    break
                if toks[i] not in _BACKWARD_SKIP:
                    skipped += 1
                i -= 1
        m.part = last_part


def _part_at(toks: list[str], i: int) -> str | None:
    part = _part_of(toks[i])
    if part == "trim" and i > 0 and toks[i - 1] in _OUTFIT_BEFORE_TRIM:
        return "outfit"
    return part


def _part_of(tok: str) -> str | None:
    return _PART_WORDS.get(tok) or (_PART_WORDS.get(tok[:-1]) if tok.endswith("s") else None)


def _background(text: str) -> tuple[str, RGB | None, bool]:
    """Remove the background phrase; return (rest, colour, transparent)."""
    transparent_re = re.compile(
        rf"transparent {_BACKGROUND_WORD}|{_BACKGROUND_WORD}\s*[:=]?\s*transparent|no {_BACKGROUND_WORD}|alpha {_BACKGROUND_WORD}"
    )
    m = transparent_re.search(text)
    if m:
        return text[: m.start()] + text[m.end() :], None, True
    if re.search(r"green ?screen|chroma ?key", text):
        return text, (0, 177, 64), False
    colour_first = re.compile(
        rf"(?:on (?:an? |the )?)?(?:(?:plain|solid|flat|simple|clean|uniform|pure)\s+)*{_COLOUR_PHRASE}\s*(?:\(\s*(#[0-9a-f]{{6}}|#[0-9a-f]{{3}})\s*\)\s*)?(?:colou?red\s+)?{_BACKGROUND_WORD}\b"
    )
    for m in colour_first.finditer(text):
        words = m.group(1).replace("-", " ").split()
        for cut in range(len(words)):  # the longest tail that is a colour: "a plain light gray"
            rgb = parse_colour(m.group(2) or " ".join(words[cut:]))
            if rgb is not None:
                start = m.start(1) + len(" ".join(words[:cut])) if cut else m.start()
                return text[:start] + text[m.end() :], rgb, False
    colour_after = re.compile(rf"{_BACKGROUND_WORD}\s*(?:colou?r)?\s*(?:[:=]|is|of)?\s*{_COLOUR_PHRASE}")
    for m in colour_after.finditer(text):
        words = m.group(1).replace("-", " ").split()
        for cut in range(len(words), 0, -1):
            rgb = parse_colour(" ".join(words[:cut]))
            if rgb is not None:
                return text[: m.start()] + text[m.end() :], rgb, False
    return text, None, False


def _first_listed(patterns: dict[str, str], text: str) -> str | None:
    """The first pattern (in dict order) found anywhere in ``text``."""
    for name, pattern in patterns.items():
        if re.search(rf"(?<![\w-])(?:{pattern})(?![\w])", text):
            return name
    return None


def _first_match(patterns: dict[str, str], text: str) -> tuple[str | None, int]:
    best, where = None, len(text) + 1
    for name, pattern in patterns.items():
        m = re.search(rf"(?<![\w-])(?:{pattern})(?![\w])", text)
        if m and m.start() < where:
            best, where = name, m.start()
    return best, where


def _recolour_pairs(text: str) -> tuple[tuple[str | None, RGB, RGB], ...]:
    """``(part or None, from, to)`` for "the glow colour from pink to cyan", "replace X with Y"."""
    pairs = []
    for m in re.finditer(rf"from {_COLOUR_PHRASE} (?:to|into) {_COLOUR_PHRASE}|replace (?:the )?{_COLOUR_PHRASE} with {_COLOUR_PHRASE}", text):
        src = _tail_colour(m.group(1) or m.group(3))
        dst = _head_colour(m.group(2) or m.group(4))
        if src and dst:
            clause = re.split(r"[,.;:!?\n]", text[: m.start()])[-1]
            named = [p for p in (_part_of(t) for t in _tokens(clause)) if p]
            pairs.append((named[-1] if named else None, src, dst))
    return tuple(pairs)


def _tail_colour(phrase: str) -> RGB | None:
    words = phrase.split()
    for cut in range(len(words)):
        rgb = parse_colour(" ".join(words[cut:]))
        if rgb:
            return rgb
    return None


def _head_colour(phrase: str) -> RGB | None:
    words = re.split(r"[\s/]+", phrase)
    for cut in range(len(words), 0, -1):
        rgb = parse_colour(" ".join(words[:cut]))
        if rgb:
            return rgb
    return None


def parse_prompt(prompt: str | None) -> Cues:
    """Read the renderer's cues from a prompt (see the module docstring for the rules)."""
    text = (prompt or "").lower()
    rest, background, transparent = _background(text)
    recolour = _recolour_pairs(rest)
    colour_text = re.sub(rf"(?:from {_COLOUR_PHRASE} (?:to|into)|replace (?:the )?{_COLOUR_PHRASE} with) {_COLOUR_PHRASE}(?:/[a-z]+)*", " ", rest)

    toks = _tokens(colour_text)
    mentions = _find_mentions(toks)
    _bind(toks, mentions)
    colours: dict[str, RGB] = {}
    extra: dict[str, list[RGB]] = {}
    for m in sorted(mentions, key=lambda m: (not m.is_hex, m.start)):
        if m.part is None:
            continue
        if m.part not in colours:
            colours[m.part] = m.rgb
        elif m.rgb != colours[m.part]:
            extra.setdefault(m.part, []).append(m.rgb)
    unbound = tuple(m.rgb for m in mentions if m.part is None and m.is_hex)

    pose_match = re.search(r"\bpose\s*[:=-]\s*(.*)", rest, re.S)
    pose_text = pose_match.group(1) if pose_match else rest
    pose, _ = _first_match(_POSE_PATTERNS, pose_text)
    if pose is None and pose_match:
        pose, _ = _first_match(_POSE_PATTERNS, rest)
    if pose == "sit" and re.search(r"cross[- ]legged|legs crossed|crossed legs", pose_text):
        pose = "sit_cross"
    view, _ = _first_match(_VIEW_PATTERNS, rest)

    identity = _identity(rest)
    traits = _traits(identity)
    action = _action_text(rest)

    expression = "calm"
    if re.search(r"\b(?:asleep|sleep(?:s|ing)?|eyes? (?:closed|shut)|closed (?:eyes|(?:curved )?lines)|napping|dozing)\b", rest):
        expression = "sleep"
    elif re.search(r"\b(?:smil\w*|happy|excited|grin\w*|laugh\w*|cheerful|joy\w*)\b", rest):
        expression = "happy"
    elif re.search(r"\b(?:angry|determined|fierce|serious|focused|intense)\b", rest):
        expression = "fierce"
    elif re.search(r"\b(?:surpris\w*|shock\w*|astonish\w*|amazed|gasp\w*)\b|wide open mouth", rest):
        expression = "surprised"
    elif re.search(r"\b(?:worried|anxious|nervous|sad|scared|afraid|frightened)\b", rest):
        expression = "worried"

    close_up = bool(re.search(r"close[- ]?up|\bportrait\b|headshot|\bbust\b|head and shoulders|upper body", rest)) and not re.search(
        r"full[- ]body|head to toe|full[- ]length", rest
    )
    return Cues(
        colours=colours,
        extra_colours={k: tuple(v) for k, v in extra.items()},
        unbound_hex=unbound,
        pose=pose or "idle",
        pose_explicit=pose is not None,
        view=view,
        facing=-1 if re.search(r"facing left|looking left|to the left|faces left|\bleft (?:side|profile)|from the (?:front )?left|left[- ]facing", rest) else 1,
        close_up=close_up,
        face_only=close_up and bool(re.search(_FACE_CLOSE_UP, rest)),
        camera=_first_match(_CAMERA_PATTERNS, rest)[0],
        background=background,
        transparent=transparent,
        expression=expression,
        arms="spread" if re.search(rf"(?<![\w-])(?:{_ARMS_SPREAD})(?![\w])", action) else None,
        holding=any(_HOLD_VERB.search(c) and not _NOT_HELD.search(c) for c in _CLAUSE_SPLIT.split(action)),
        recolour=recolour,
        text=text,
        identity=identity,
        **traits,
    )


def identity_text(prompt: str | None) -> str:
    """Who a prompt draws, as normalised text: the prompt without its leading trigger word
    (``rivet_bot, ...``), background, ``Pose:``/``View:`` clauses and the clauses that only
    say what the figure does or how it is framed. Every pose and view prompt of one
    character gives the same text, so it keys everything the seed must not change."""
    rest, _, _ = _background((prompt or "").lower())
    return _identity(rest)


def _identity(rest: str) -> str:
    body = _LABELLED_CLAUSE.sub(" ", rest)
    m = _LEADING_TRIGGER.match(body)
    if m:
        body = body[m.end() :]
    clauses = (" ".join(c.split()) for c in _CLAUSE_SPLIT.split(body))
    return ", ".join(c for c in clauses if c and re.search(r"[a-z0-9#]", c) and not _ACTION_RE.search(c))


def _action_text(rest: str) -> str:
    """The ``Pose:`` (else ``View:``) clause, else the whole prompt."""
    for label in ("pose", "view"):
        m = re.search(rf"\b{label}\s*[:=]\s*(.*?)(?:\.(?=\s|$)|;|\n|$)", rest, re.S)
        if m:
            return m.group(1)
    return rest


def _traits(identity: str) -> dict:
    """Hair, accessory, proportions, body kind and worn things, from the identity text."""
    heads = None
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:-|\s)?heads?[\s-]*(?:tall|high)", identity)
    if m:
        heads = min(8.0, max(2.5, float(m.group(1))))
    elif re.search(r"\bchibi\b", identity):
        heads = 3.0
    build = None
    limbs = r"(?!\s+(?:[a-z-]+\s+)?(?:arms?|legs?|limbs?|fingers?|lines?|antennae?|neck|waist|stripes?|tails?)\b)"
    if re.search(rf"\b(?:stocky|muscular|bulky|burly|chubby|broad|heavy|brawny|chunky|stout){limbs}\b", identity):
        build = 1.2
    elif re.search(rf"\b(?:slender|slim|thin|petite|lanky|skinny|willowy){limbs}\b", identity):
        build = 0.88
    return {
        "hair_style": _first_listed(_HAIR_STYLES, identity),
        "accessory": _first_match(_ACCESSORIES, identity)[0],
        "heads": heads,
        "build": build,
        "visor": bool(re.search(r"\b(?:visor|goggles?|glasses|shades|lenses)\b", identity)),
        "gloves": bool(re.search(r"\b(?:gloves?|gauntlets?)\b", identity)),
        "armored": bool(re.search(r"\b(?:armou?r\w*|panels?|pads|plates|tactical|mech\w*)\b", identity)),
        "body": "robot" if re.search(_ROBOT, identity) else None,
        "belt": bool(re.search(r"\bbelts?\b", identity)),
    }


def luminance(rgb: RGB) -> float:
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b
