"""Motion for the offline renderer: a figure's skeleton moved through one cycle.

A frame prompt of an animation carries a ``Motion:`` clause (``Motion: one full running
stride; frame 3 of 8 of a looping cycle, cycle phase 0.250.``). The renderer reads the
cycle from the motion text (run, walk, idle, wave, jump; else a gentle sway around the
base pose) and the phase, and draws the base pose's figure with the joint angles of
that phase. Every cycle is periodic in its phase, so a loop's last frame leads back to
its first. An image-to-video request draws the same cycle over the clip's length.

    motion_of(prompt) -> Motion | None
    pose_at(cycle, phase, base) -> PoseSpec (one frame's joint angles)
    render_clip(arguments, inputs, fps=...) -> mp4 bytes
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from PIL import Image

from .poses import POSE_TABLE, PoseSpec

CYCLES = ("run", "walk", "idle", "wave", "jump", "sway")
LOCAL_VIDEO_FPS = 12
"""Frame rate of the clips the local renderer draws (Kling's own rate is not on fal's pages;
frames are sampled by time, so any rate works; 12 keeps an offline clip to a few seconds)."""
LOCAL_VIDEO_SHORT_SIDE = 720
"""Short side of a local clip in px (a 720p clip with the input's aspect ratio)."""
MOTION_JITTER = 0.15
"""How much of the seed's limb jitter a motion frame keeps: seeds stay pinned, the cycle stays smooth."""

_MOTION = re.compile(r"\bmotion\s*:\s*(.*?)(?:;|\.(?=\s|$)|\n|$)", re.S)
_FRAME = re.compile(r"\bframe (\d+) of (\d+)\b")
_PHASE = re.compile(r"\bcycle phase (\d+(?:\.\d+)?)\b")
_CYCLE_WORDS = (
    ("run", r"\brun\w*|\bsprint\w*|\bdash\w*|\bjog\w*"),
    ("walk", r"\bwalk\w*|\bstep cycle|\bstrid\w*|\bmarch\w*"),
    ("wave", r"\bwav(?:e|es|ing)\b"),
    ("jump", r"\bjump\w*|\bhop\w*|\bleap\w*|\bbounc\w*"),
    ("idle", r"\bidle\b|\bbreath\w*|\bstanding\b|\bat rest\b|\bsway\w*|\bbob\w*"),
)


@dataclass(frozen=True)
class Motion:
    """What one frame prompt asks: the cycle, where in it (0 <= phase < 1), the text."""

    cycle: str
    phase: float
    text: str
    frame: int | None = None
    frames: int | None = None


def cycle_of(text: str, base_pose: str = "idle") -> str:
    """The cycle a motion text names (first word wins), else the one its base pose implies."""
    text = text.lower()
    found = [(m.start(), cycle) for cycle, pattern in _CYCLE_WORDS for m in [re.search(pattern, text)] if m]
    if found:
        return min(found)[1]
    return {"run": "run", "walk": "walk", "idle": "idle", "wave": "wave", "jump": "jump"}.get(base_pose, "sway")


def motion_of(prompt: str | None, base_pose: str = "idle") -> Motion | None:
    """The motion a prompt asks for, or None (a still picture)."""
    text = (prompt or "").lower()
    m = _MOTION.search(text)
    if not m:
        return None
    motion_text = m.group(1).strip()
    frame = _FRAME.search(text)
    phase = _PHASE.search(text)
    if phase:
        value = float(phase.group(1)) % 1.0
    elif frame:
        index, count = int(frame.group(1)), max(1, int(frame.group(2)))
        value = ((index - 1) / count) % 1.0
    else:
        value = 0.0
    return Motion(
        cycle=cycle_of(motion_text, base_pose),
        phase=value,
        text=motion_text,
        frame=int(frame.group(1)) if frame else None,
        frames=int(frame.group(2)) if frame else None,
    )


def _leg(thigh: float, bend: float) -> tuple[float, float]:
    return (thigh, thigh - bend)  # the shin folds back behind the thigh


def _arm(upper: float, bend: float) -> tuple[float, float]:
    return (upper, upper + bend)  # the forearm folds forward


def pose_at(cycle: str, phase: float, base: PoseSpec | str = "idle") -> PoseSpec:
    """The joint angles of ``cycle`` at ``phase`` (0..1, periodic), built on ``base``."""
    base = POSE_TABLE.get(base, POSE_TABLE["idle"]) if isinstance(base, str) else base
    turn = 2 * math.pi * (phase % 1.0)
    s, c = math.sin(turn), math.cos(turn)
    if cycle == "run":
        return replace(
            POSE_TABLE["run"],
            leg_a=_leg(10 + 42 * s, 22 + 58 * max(0.0, c)),
            leg_b=_leg(10 - 42 * s, 22 + 58 * max(0.0, -c)),
            arm_a=_arm(-42 * s, 84),
            arm_b=_arm(42 * s, 84),
            lift=0.06 * abs(s),
        )
    if cycle == "walk":
        return replace(
            POSE_TABLE["walk"],
            view=base.view if base.view in ("side", "three_quarter") else "three_quarter",
            leg_a=_leg(3 + 24 * s, 6 + 30 * max(0.0, c)),
            leg_b=_leg(3 - 24 * s, 6 + 30 * max(0.0, -c)),
            arm_a=_arm(-22 * s, 14),
            arm_b=_arm(22 * s, 14),
            lift=0.015 * abs(c),
        )
    if cycle == "wave":
        waving = POSE_TABLE["wave"] if base is POSE_TABLE["idle"] else base
        upper, fore = waving.arm_a
        return replace(waving, arm_a=(upper + 6 * s, fore + 24 * s), tilt=waving.tilt + 2 * s)
    if cycle == "jump":
        air = max(0.0, s)  # up and down over the first half, a crouch to spring from in the second
        squat = max(0.0, -s)
        return replace(
            base,
            leg_a=_leg(base.leg_a[0] + 50 * air + 35 * squat, 70 * air + 70 * squat),
            leg_b=_leg(base.leg_b[0] - 20 * air - 35 * squat, 60 * air + 70 * squat),
            arm_a=_arm(base.arm_a[0] + 120 * air, 10),
            arm_b=_arm(base.arm_b[0] - 120 * air, -10),
            lift=0.9 * air,
            lean=base.lean + 4 * air,
        )
    if cycle == "idle":
        return replace(
            base,
            arm_a=(base.arm_a[0] + 3 * s, base.arm_a[1] + 5 * s),
            arm_b=(base.arm_b[0] - 3 * s, base.arm_b[1] - 5 * s),
            lean=base.lean + 1.2 * s,
            tilt=base.tilt + 2.5 * c,
            lift=0.008 * (1 + c),
        )
    # sway: any other motion, a gentle swing around the base pose
    return replace(
        base,
        arm_a=(base.arm_a[0] + 7 * s, base.arm_a[1] + 9 * s),
        arm_b=(base.arm_b[0] - 7 * s, base.arm_b[1] - 9 * s),
        leg_a=(base.leg_a[0] + 3 * s, base.leg_a[1] + 3 * s),
        leg_b=(base.leg_b[0] - 3 * s, base.leg_b[1] - 3 * s),
        lean=base.lean + 2 * s,
        tilt=base.tilt + 2 * c,
    )


def clip_size(width: int, height: int, short_side: int = LOCAL_VIDEO_SHORT_SIDE) -> tuple[int, int]:
    """The local clip's size: the input's aspect ratio at ``short_side`` (even sides, for yuv420p)."""
    f = short_side / min(width, height)
    return (max(2, round(width * f / 2) * 2), max(2, round(height * f / 2) * 2))


def render_clip(
    arguments: Mapping[str, Any],
    inputs: Sequence[Image.Image],
    *,
    loras=(),
    fps: int = LOCAL_VIDEO_FPS,
    short_side: int = LOCAL_VIDEO_SHORT_SIDE,
) -> tuple[bytes, tuple[int, int], int]:
    """An image-to-video request drawn offline: the character of the first input in the
    prompt's motion, one cycle over the clip's ``duration`` (an mp4, H.264). Returns the
    bytes, the size and the frame count."""
    from .cues import parse_prompt
    from .engine import draw_character, motion_pose, redraw_source, resolve_seed

    seconds = int(str(arguments.get("duration") or "5").rstrip("s"))
    source = inputs[0].convert("RGB")
    size = clip_size(*source.size, short_side=short_side)
    cues = parse_prompt(arguments.get("prompt"))
    look, background = redraw_source(source, cues, seed=resolve_seed(arguments), loras=loras)
    count = max(2, seconds * fps)
    frames = []
    for k in range(count):
        phase = k / (count - 1)  # the clip ends where it began (tail_image_url pins that on Kling)
        frame = draw_character(look, cues, size, background, motion_pose(cues, phase))
        frames.append(frame.convert("RGB"))
    return encode_mp4(frames, fps), size, count


def encode_mp4(frames: Sequence[Image.Image], fps: int) -> bytes:
    """H.264 in an mp4 (what Kling returns), one thread so the bytes are reproducible."""
    av = import_av()
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "14", "preset": "veryfast"}
        stream.thread_count = 1
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def import_av():
    """PyAV (``pip install av``), imported when a clip is made or read."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a dependency
        from ..errors import FalAssetsError

        raise FalAssetsError("video needs PyAV: pip install av (the project's dependency 'av')") from exc
    return av
