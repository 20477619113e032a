"""Pose table: joint angles per pose and how each view turns the body.

Angles are in degrees in the image plane: 0 points straight down, positive turns
towards +x (the way the figure faces). Limb ``a`` is the +x / near side one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PoseSpec:
    arm_a: tuple[float, float]
    arm_b: tuple[float, float]
    leg_a: tuple[float, float]
    leg_b: tuple[float, float]
    view: str
    lean: float = 0.0
    tilt: float = 0.0
    lift: float = 0.0
    hands: str = "open"  # open | fist | weapon
    flow: str = "down"  # where loose hair and capes stream: down | back | up | fan (lying: hair spread behind the head)
    mood: str | None = None
    rotate: float = 0.0  # the whole figure turned about the pelvis (-90: lying, head to the left)


POSE_TABLE: dict[str, PoseSpec] = {
    "idle": PoseSpec((13, 7), (-13, -7), (4, 2), (-4, -2), "front"),
    "walk": PoseSpec((-24, -10), (26, 44), (24, 4), (-22, -34), "three_quarter", lean=3),
    "run": PoseSpec((-48, 40), (42, 128), (52, -8), (-34, -82), "side", lean=12, hands="fist", flow="back"),
    "jump": PoseSpec((150, 168), (-55, -15), (82, -6), (38, -62), "three_quarter", lean=4, lift=0.9, hands="fist", flow="up", mood="happy"),
    "wave": PoseSpec((128, 168), (-13, -7), (5, 2), (-4, -2), "front", tilt=-6, mood="happy"),
    "crouch": PoseSpec((40, -30), (-40, 30), (70, -30), (-70, 30), "front", hands="fist"),
    "kneel": PoseSpec((52, 18), (22, 72), (86, -2), (-4, -96), "three_quarter", lean=14, hands="fist"),
    "lie": PoseSpec((14, 5), (-14, -5), (6, -2), (-6, 2), "front", tilt=72, flow="fan", rotate=-90),
    "sit_cross": PoseSpec((28, 62), (-28, -62), (74, -78), (-74, 78), "front", hands="open"),
    "sit": PoseSpec((72, 118), (-38, -18), (122, 22), (110, 12), "three_quarter", lean=-10),
    "attack": PoseSpec((86, 90), (-28, 75), (32, 4), (-36, -28), "side", lean=10, hands="weapon", flow="back", mood="fierce"),
    "kick": PoseSpec((-60, -28), (48, 125), (95, 92), (-10, -4), "side", lean=-18, hands="fist", flow="back", mood="fierce"),
    "victory": PoseSpec((150, 174), (-150, -174), (10, 4), (-10, -4), "front", tilt=0, hands="fist", mood="happy"),
    "fist_pump": PoseSpec((152, 176), (-52, 48), (8, 3), (-8, -3), "front", tilt=-4, hands="fist", mood="happy"),
    "akimbo": PoseSpec((50, -50), (-50, 50), (9, 4), (-9, -4), "front", hands="fist"),
}

MOOD_TILT = {"happy": -7.0, "fierce": 4.0, "surprised": -2.0, "worried": 8.0}
"""How an expression tilts the head (degrees) in poses that do not tilt it themselves."""

ARMS_SPREAD = ((98, 112), (-98, -112))
"""Arm angles (a, b) for "arms spread wide", in any pose."""

# view -> (torso width scale, shoulder/hip spread of side a, of side b, face shift)
VIEWS = {
    "front": (1.0, 1.0, -1.0, 0.0),
    "three_quarter": (0.86, 0.8, -0.55, 0.3),
    "side": (0.74, 0.14, -0.14, 0.62),
    "back": (1.0, 1.0, -1.0, 0.0),
}
