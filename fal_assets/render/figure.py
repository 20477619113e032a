"""The stylised figure: a skeleton posed by joint angles (``poses``), dressed in
outlined, cel-shaded parts (hair, head, visor, torso, limbs, boots, accessory) and
returned as a display list in head units (pelvis at the origin). Robots
(``Look.body == "robot"``) put other parts on the same skeleton (``robot``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .drawing import LIGHT, OUTLINE, RGB, Drawing, bezier, capsule, ellipse, lighten, ribbon, shade
from .drawing import direction as _dir
from .drawing import is_dark as _dark
from .poses import ARMS_SPREAD, MOOD_TILT, POSE_TABLE, VIEWS, PoseSpec

STEEL: RGB = (158, 166, 180)
"""Bare metal: a robot's limbs, held tools."""
JOINT: RGB = (96, 102, 118)


@dataclass(frozen=True)
class Look:
    """Who is drawn (colours per part, body kind, hair, accessory, proportions: the
    character's identity) and how this one picture varies (``expression``, ``jitter``)."""

    colours: dict[str, RGB]
    hair_style: str = "short"
    accessory: str | None = None
    heads: float = 5.0
    build: float = 1.0
    head_scale: float = 1.0
    shoulder: float = 1.0
    limb: float = 1.0
    leg: float = 1.0
    visor: bool = False
    gloves: bool = False
    armored: bool = False
    body: str = "human"  # human | robot
    belt: bool = True
    expression: str = "calm"
    jitter: tuple[float, ...] = (0.0,) * 8

    def identity(self) -> dict:
        """Everything that says who the character is: all but ``expression`` and ``jitter``."""
        return {k: v for k, v in self.__dict__.items() if k not in ("expression", "jitter")}


# ---------------------------------------------------------------- parts
class _Painter:
    def __init__(self, look: Look, d: Drawing):
        self.look, self.d, self.ow = look, d, d.ow

    def limb(self, p0, p1, r0, r1, colour: RGB, far: bool = False) -> None:
        c = shade(colour, 0.86) if far else colour
        self.d.poly(capsule(p0, p1, r0 + self.ow, r1 + self.ow), OUTLINE)
        if _dark(c):
            self.d.poly(capsule(p0, p1, r0, r1), c)
            off = LIGHT * 0.45 * min(r0, r1)
            self.d.poly(capsule(np.add(p0, off), np.add(p1, off), r0 * 0.3, r1 * 0.3), lighten(c, 0.16))
        else:
            self.d.poly(capsule(p0, p1, r0, r1), shade(c))
            off = LIGHT * 0.28 * min(r0, r1)
            self.d.poly(capsule(np.add(p0, off), np.add(p1, off), r0 * 0.74, r1 * 0.74), c)

    def blob(self, c, rx, ry, colour: RGB, rot: float = 0.0, far: bool = False) -> None:
        col = shade(colour, 0.86) if far else colour
        self.d.poly(ellipse(c, rx + self.ow, ry + self.ow, rot), OUTLINE)
        self.d.poly(ellipse(c, rx, ry, rot), col if _dark(col) else shade(col))
        if not _dark(col):
            self.d.poly(ellipse(np.add(c, LIGHT * 0.12 * min(rx, ry)), rx * 0.86, ry * 0.86, rot), col)

    def shape(self, pts: np.ndarray, colour: RGB, lit: np.ndarray | None = None) -> None:
        self.d.line(np.concatenate([pts, pts[:1]]), OUTLINE, 2 * self.ow)
        self.d.poly(pts, OUTLINE)
        if lit is None or _dark(colour):
            self.d.poly(pts, colour)
        else:
            self.d.poly(pts, shade(colour))
            self.d.poly(lit, colour)

    def stroke(self, pts, colour: RGB, width: float, dots: bool = True) -> None:
        self.d.line(np.asarray(pts), colour, width)
        if dots:
            for p in (pts[0], pts[-1]):
                self.d.poly(ellipse(p, width * 1.3, width * 1.3, n=12), colour)


@dataclass
class _Skeleton:
    pelvis: np.ndarray
    chest: np.ndarray
    up: np.ndarray
    side: np.ndarray
    head: np.ndarray
    head_rot: float
    shoulders: dict[str, np.ndarray]
    elbows: dict[str, np.ndarray]
    hands: dict[str, np.ndarray]
    hips: dict[str, np.ndarray]
    knees: dict[str, np.ndarray]
    ankles: dict[str, np.ndarray]


def _dims(look: Look) -> dict[str, float]:
    T, bw = look.heads, look.build
    below = T - 1.2
    sw = (0.36 + 0.045 * T) * bw * look.shoulder
    return {
        "rx": 0.44 * look.head_scale * (1 + 0.06 * max(0.0, 5 - T)),
        "ry": 0.5 * look.head_scale,
        "neck": 0.16,
        "torso": 0.38 * below,
        "sw": sw,
        "ww": sw * 0.72,
        "hw": sw * 0.84,
        "upper": 0.2 * below,
        "fore": 0.185 * below,
        "thigh": (0.62 * below * look.leg - 0.12) / 2,
        "shin": (0.62 * below * look.leg - 0.12) / 2,
        "arm_r": 0.125 * bw * look.limb,
        "leg_r": 0.185 * bw * look.limb,
        "hand": 0.11 + 0.01 * bw,
    }


def _skeleton(look: Look, pose: PoseSpec, view: str, dm: dict[str, float]) -> _Skeleton:
    j = look.jitter
    _, spread_a, spread_b, _ = VIEWS[view]
    lean = pose.lean + 2.5 * j[0]
    up = -_dir(-lean)  # unit vector from pelvis towards the chest
    side = np.array([-up[1], up[0]])  # +x across the body
    if side[0] < 0:
        side = -side
    pelvis = np.zeros(2)
    chest = pelvis + up * dm["torso"]
    neck_top = chest + up * dm["neck"]
    head_rot = lean + pose.tilt + 3 * j[1]
    head = neck_top + up * (dm["ry"] * 0.86)
    shoulders = {
        "a": chest + side * dm["sw"] * spread_a * 0.84 - up * 0.1,
        "b": chest + side * dm["sw"] * spread_b * 0.84 - up * 0.1,
    }
    hips = {
        "a": pelvis + side * dm["hw"] * spread_a * 0.5,
        "b": pelvis + side * dm["hw"] * spread_b * 0.5,
    }
    elbows, hands, knees, ankles = {}, {}, {}, {}
    for k, (key, limb) in enumerate((("a", pose.arm_a), ("b", pose.arm_b))):
        u_ang, l_ang = limb[0] + 4 * j[2 + k], limb[1] + 4 * j[4 + k]
        elbows[key] = shoulders[key] + _dir(u_ang) * dm["upper"]
        hands[key] = elbows[key] + _dir(l_ang) * dm["fore"]
    for k, (key, limb) in enumerate((("a", pose.leg_a), ("b", pose.leg_b))):
        t_ang, s_ang = limb[0] + 3 * j[6 + k], limb[1] + 3 * j[6 + k]
        knees[key] = hips[key] + _dir(t_ang) * dm["thigh"]
        ankles[key] = knees[key] + _dir(s_ang) * dm["shin"]
    return _Skeleton(pelvis, chest, up, side, head, head_rot, shoulders, elbows, hands, hips, knees, ankles)


def _torso(p: _Painter, sk: _Skeleton, dm, view: str, col: dict[str, RGB]) -> None:
    tw = VIEWS[view][0]
    sw, ww, hw, tl = dm["sw"] * tw, dm["ww"] * tw, dm["hw"] * tw, dm["torso"]
    local = np.array([
        (-sw * 0.78, -0.06), (-sw, 0.06), (-sw * 0.95, 0.3), (-ww, 0.55 * tl), (-hw, 0.9 * tl), (-hw * 0.92, tl + 0.12),
        (0.0, tl + 0.16), (hw * 0.92, tl + 0.12), (hw, 0.9 * tl), (ww, 0.55 * tl), (sw * 0.95, 0.3), (sw, 0.06), (sw * 0.78, -0.06),
        (0.0, -0.1),
    ])

    def to_world(pts):
        pts = np.asarray(pts, float)
        return sk.chest + pts[:, :1] * sk.side - pts[:, 1:2] * sk.up

    lit = local.copy()
    lit[lit[:, 0] > 0, 0] *= 0.62
    p.shape(to_world(local), col["outfit"], to_world(lit))
    if p.look.armored:  # chest plate
        plate = np.array([(-sw * 0.7, 0.12), (sw * 0.7, 0.12), (sw * 0.6, 0.5 * tl), (0, 0.6 * tl), (-sw * 0.6, 0.5 * tl)])
        plate_lit = plate.copy()
        plate_lit[plate_lit[:, 0] > 0, 0] *= 0.6
        p.shape(to_world(plate), col["trim"], to_world(plate_lit))
    # circuit lines / stripes in the accent colour
    w = 0.06
    p.stroke(to_world([(0.16 * sw, 0.2), (0.16 * sw, 0.42 * tl), (0.5 * sw, 0.52 * tl), (0.5 * sw, 0.72 * tl)]), col["accent"], w)
    p.stroke(to_world([(-0.22 * sw, 0.24), (-0.52 * sw, 0.36 * tl), (-0.52 * sw, 0.66 * tl)]), col["accent"], w)
    if not p.look.belt:
        return
    # belt with a buckle
    belt = np.array([(-hw * 0.98, 0.8 * tl), (hw * 0.98, 0.8 * tl), (hw * 1.0, 0.8 * tl + 0.13), (-hw * 1.0, 0.8 * tl + 0.13)])
    p.shape(to_world(belt), col["trim"])
    bx = 0.0 if view in ("front", "back") else 0.45 * hw
    if view != "back":
        p.d.poly(to_world([(bx - 0.08, 0.8 * tl + 0.02), (bx + 0.08, 0.8 * tl + 0.02), (bx + 0.08, 0.8 * tl + 0.11), (bx - 0.08, 0.8 * tl + 0.11)]), col["accent"])


def _arm(p: _Painter, sk: _Skeleton, dm, key: str, col, far: bool, hands: str) -> None:
    s, e, h = sk.shoulders[key], sk.elbows[key], sk.hands[key]
    r = dm["arm_r"]
    p.limb(s, e, r * 1.1, r * 0.92, col["outfit"], far)
    p.limb(e, h, r * 0.92, r * 0.8, col["outfit"], far)
    p.d.line(np.array([s + (e - s) * 0.2, e - (e - s) * 0.1]), shade(col["accent"], 0.86) if far else col["accent"], 0.04)
    fore = (h - e) / max(np.hypot(*(h - e)), 1e-9)
    p.limb(h - fore * 0.16, h - fore * 0.05, r * 0.9, r * 0.9, col["trim"], far)
    hand_col = col["trim"] if p.look.gloves else col["skin"]
    size = dm["hand"] * (0.95 if hands == "fist" else 1.05)
    p.blob(h + fore * 0.07, size, size * (0.9 if hands == "fist" else 1.1), hand_col, rot=-math.degrees(math.atan2(fore[0], fore[1])), far=far)
    if p.look.armored:
        up_dir = (e - s) / max(np.hypot(*(e - s)), 1e-9)
        p.blob(s + up_dir * 0.08, r * 1.75, r * 1.35, col["trim"], rot=-math.degrees(math.atan2(up_dir[0], up_dir[1])) + 90, far=far)


def _leg(p: _Painter, sk: _Skeleton, dm, key: str, col, far: bool, view: str, facing_side: bool) -> None:
    hip, knee, ankle = sk.hips[key], sk.knees[key], sk.ankles[key]
    r = dm["leg_r"]
    p.limb(hip, knee, r, r * 0.8, col["outfit"], far)
    p.limb(knee, ankle, r * 0.8, r * 0.62, col["outfit"], far)
    p.d.line(np.array([hip + (knee - hip) * 0.25, knee - (knee - hip) * 0.1]), shade(col["accent"], 0.86) if far else col["accent"], 0.04)
    shin = ankle - knee
    p.limb(knee + shin * 0.45, ankle, r * 0.76, r * 0.72, col["trim"], far)  # boot shaft
    if facing_side:
        toe = np.array([0.13, 0.06])
        p.blob(ankle + toe, 0.2, 0.1, col["trim"], rot=0, far=far)
    else:
        p.blob(ankle + np.array([0.0, 0.06]), 0.13, 0.1, col["trim"], far=far)
    if p.look.armored:
        p.blob(knee, r * 0.85, r * 0.75, col["trim"], far=far)


def _head_local(sk: _Skeleton, pts) -> np.ndarray:
    r = math.radians(sk.head_rot)
    m = np.array([[math.cos(r), math.sin(r)], [-math.sin(r), math.cos(r)]])
    return np.asarray(pts, float) @ m + sk.head


def _hair(p: _Painter, sk: _Skeleton, dm, view: str, flow: str, front: bool) -> None:
    look, col = p.look, p.look.colours["hair"]
    rx, ry = dm["rx"], dm["ry"]
    style = look.hair_style
    if style in ("bald", "none"):
        return
    if flow == "fan" and style != "long":  # lying: loose hair trails behind the head
        flow = "back"
    if not front:
        tails: list[tuple[np.ndarray, float]] = []
        back_x = {"front": 0.0, "three_quarter": -0.55, "side": -0.85, "back": 0.0}[view]
        if style in ("ponytail", "braid"):
            root = np.array([back_x * rx, -0.9 * ry if style == "ponytail" else 0.4 * ry])
            if view == "front":
                root = np.array([0.35 * rx, -0.95 * ry])
            end = {"down": (root[0] + (1.1 if view == "front" else -0.5) * rx, 1.6 * ry),
                   "back": (root[0] - 2.6 * rx, 0.2 * ry), "up": (root[0] - 1.2 * rx, -2.1 * ry)}[flow]
            ctrl = ((root[0] + end[0]) / 2 + (0.9 * rx if view == "front" else -0.7 * rx), root[1] - 0.3 * ry)
            tails.append((bezier(root, ctrl, end), 0.36))
        elif style == "twintails":
            for sgn in (-1, 1):
                root = np.array([sgn * 0.85 * rx, -0.55 * ry])
                end = {"down": (sgn * 1.6 * rx, 1.5 * ry), "back": (-2.2 * rx, 0.4 * ry + sgn * 0.3), "up": (sgn * 1.5 * rx, -1.6 * ry)}[flow]
                tails.append((bezier(root, (sgn * 1.7 * rx, -0.4 * ry), end), 0.3))
        elif style == "long" and flow == "fan":  # spread out on the ground behind the head
            band = np.array([(0.4 * rx, -1.0 * ry), (-1.6 * rx, -1.3 * ry), (-2.5 * rx, -0.2 * ry), (-2.2 * rx, 0.9 * ry), (-0.4 * rx, 1.0 * ry)])
            p.shape(_head_local(sk, band), shade(col, 0.86))
        elif style == "long":
            band = np.array([(-1.08 * rx, -0.2 * ry), (1.08 * rx, -0.2 * ry), (1.18 * rx, 2.6 * ry), (-1.18 * rx, 2.6 * ry)])
            if flow == "back":
                band[2:, 0] -= 0.9 * rx
            p.shape(_head_local(sk, band), shade(col, 0.86))
        elif style == "bun":
            p.blob(_head_local(sk, [(back_x * rx * 0.6, -1.02 * ry)])[0], 0.42 * rx, 0.38 * rx, col)
        for path, w in tails:
            band = _head_local(sk, ribbon(path, w, 0.05))
            p.shape(band, col, None)
            p.d.poly(_head_local(sk, ribbon(path[1:-3], w * 0.35, 0.02)) + LIGHT * 0.03, lighten(col, 0.22))
            tie = _head_local(sk, [path[0]])[0]
            p.blob(tie, 0.11, 0.11, shade(p.look.colours["trim"], 0.7))
        return
    # the cap over the head, with a fringe
    big_rx, big_ry = rx * 1.1, ry * 1.08
    top = ellipse((0, 0), big_rx, big_ry, a0=180, a1=360, n=24)
    if view == "back":
        cap = ellipse((0, 0.04), big_rx, big_ry * 1.02, n=40)
    else:
        shift = VIEWS[view][3]
        hang = 0.35 if style in ("bob", "long") else 0.05
        back_hang = {"front": hang, "three_quarter": max(hang, 0.4), "side": max(hang, 0.6)}[view]
        fringe = [(big_rx, hang * ry)]
        n_spikes = 4
        left = -big_rx
        right = big_rx * (1 - shift * 0.9)
        xs = np.linspace(right, left + shift * 0.4 * rx, n_spikes * 2 + 1)
        for i, x in enumerate(xs):
            fringe.append((x, (-0.05 if i % 2 else -0.32) * ry))
        fringe.append((-big_rx, back_hang * ry))
        cap = np.concatenate([[(-big_rx, back_hang * ry)], top, np.array(fringe)])
    if style == "spiky":
        spikes = []
        for k, a in enumerate(np.linspace(200, 340, 6)):
            base = np.array([math.cos(math.radians(a)), math.sin(math.radians(a))])
            spikes.append(np.array([base * [big_rx, big_ry] * 0.8 + base[::-1] * [0.12, -0.12], base * [big_rx, big_ry] * 1.45, base * [big_rx, big_ry] * 0.8 - base[::-1] * [0.12, -0.12]]))
        for sp in spikes:
            p.shape(_head_local(sk, sp), col)
    p.shape(_head_local(sk, cap), col)
    shine = ellipse((-0.25 * rx, -0.72 * ry), 0.45 * rx, 0.12 * ry, rot=-18, n=18)
    p.d.poly(_head_local(sk, shine), lighten(col, 0.28))


def _head(p: _Painter, sk: _Skeleton, dm, view: str, mood: str) -> None:
    rx, ry = dm["rx"], dm["ry"]
    skin = p.look.colours["skin"]
    p.d.poly(_head_local(sk, ellipse((0, 0), rx + p.ow, ry + p.ow)), OUTLINE)
    p.d.poly(_head_local(sk, ellipse((0, 0), rx, ry)), shade(skin, 0.84))
    p.d.poly(_head_local(sk, ellipse((-0.06 * rx, -0.03 * ry), rx * 0.93, ry * 0.96)), skin)
    if view == "back":
        return
    shift = VIEWS[view][3] * rx
    eyes_col = p.look.colours["eyes"]
    if p.look.visor:
        x0 = -0.98 * rx + (shift * 1.4 if view == "side" else shift * 0.6)
        x1 = 1.0 * rx + shift * 0.12
        band = np.array([(x0, -0.02 * ry), (x1, -0.06 * ry), (x1 + 0.02, 0.34 * ry), (x0 + 0.06, 0.34 * ry)])
        p.shape(_head_local(sk, band), eyes_col)
        glow = np.array([(x0 + 0.12, 0.04 * ry), (x1 - 0.08, 0.02 * ry)])
        p.d.line(_head_local(sk, glow), lighten(eyes_col, 0.55), 0.05)
    else:
        xs = [0.4 * rx + shift] if view == "side" else [-0.38 * rx + shift * 0.8, 0.38 * rx + shift]
        for i, x in enumerate(xs):
            w = 0.13 * rx * (0.7 if view == "three_quarter" and i == 0 else 1.0)
            if mood == "sleep":  # closed: a curved lash line
                p.d.line(_head_local(sk, ellipse((x, 0.12 * ry), w * 1.1, 0.1 * ry, a0=10, a1=170, n=10)), OUTLINE, 0.04)
                continue
            p.d.poly(_head_local(sk, ellipse((x, 0.16 * ry), w, 0.21 * ry, n=20)), OUTLINE)
            p.d.poly(_head_local(sk, ellipse((x, 0.19 * ry), w * 0.7, 0.14 * ry, n=16)), eyes_col)
            p.d.poly(_head_local(sk, ellipse((x - w * 0.3, 0.08 * ry), w * 0.32, w * 0.32, n=10)), (255, 255, 255))
            if mood == "fierce":
                p.d.line(_head_local(sk, [(x - w * 1.3, -0.1 * ry), (x + w * 1.2, 0.0)]), OUTLINE, 0.05)
            elif mood == "worried":
                inner = -1 if x > shift else 1
                p.d.line(_head_local(sk, [(x + inner * w * 1.2, -0.16 * ry), (x - inner * w * 1.2, -0.06 * ry)]), OUTLINE, 0.04)
    mx = 0.55 * rx if view == "side" else shift
    if mood == "happy":
        mouth = ellipse((mx, 0.5 * ry), 0.17 * rx, 0.13 * ry, a0=0, a1=180, n=12)
        p.d.poly(_head_local(sk, mouth), (120, 40, 60))
    elif mood == "surprised":  # a round open mouth
        p.d.poly(_head_local(sk, ellipse((mx, 0.56 * ry), 0.1 * rx + p.ow, 0.14 * ry + p.ow, n=16)), OUTLINE)
        p.d.poly(_head_local(sk, ellipse((mx, 0.56 * ry), 0.1 * rx, 0.14 * ry, n=16)), (120, 40, 60))
    elif mood in ("fierce", "worried"):  # turned down
        mouth = ellipse((mx, 0.6 * ry), 0.13 * rx, 0.08 * ry, a0=200, a1=340, n=10)
        p.d.line(_head_local(sk, mouth), OUTLINE, 0.04)
    else:
        mouth = ellipse((mx, 0.44 * ry), 0.13 * rx, 0.08 * ry, a0=20, a1=160, n=10)
        p.d.line(_head_local(sk, mouth), OUTLINE, 0.035)


def _gear(p: _Painter, sk: _Skeleton, dm, view: str, flow: str, stage: str) -> None:
    acc, col = p.look.accessory, p.look.colours
    if acc is None:
        return
    if flow == "fan":  # lying: capes and scarves lie along the body
        flow = "down"
    gear = col["gear"]
    tl = dm["torso"]
    if acc == "sword" and stage == "back":
        a = sk.chest - sk.side * (dm["sw"] + 0.12) + sk.up * 0.42
        b = sk.pelvis + sk.side * dm["hw"] * 0.6 + sk.up * 0.1
        p.limb(a + (b - a) * 0.28, b, 0.08, 0.07, gear)
        p.limb(a - (b - a) * 0.08, a + (b - a) * 0.26, 0.055, 0.055, OUTLINE)
        p.blob(a + (b - a) * 0.27, 0.12, 0.05, col["trim"], rot=math.degrees(math.atan2(*(b - a)[::-1])))
    elif acc == "backpack" and stage == "back":
        off = {"front": 0.0, "three_quarter": -0.2, "side": -0.34, "back": 0.0}[view]
        c = sk.chest - sk.up * (0.42 * tl) + sk.side * off
        p.blob(c, dm["sw"] * (0.95 if view in ("front", "back") else 0.7), 0.42 * tl + 0.1, gear, rot=0)
    elif acc == "cape" and stage == "back":
        sway = {"down": 0.15, "back": -1.4, "up": -0.6}[flow]
        cape = np.array([sk.chest + sk.side * dm["sw"] * 0.8, sk.chest - sk.side * dm["sw"] * 0.8,
                         sk.pelvis - sk.up * 1.5 - sk.side * (dm["sw"] * 1.2 - sway), sk.pelvis - sk.up * 1.6 + sk.side * (dm["sw"] * 1.2 + sway)])
        p.shape(cape, shade(gear, 0.9))
    elif acc == "scarf" and stage == "neck":
        neck = sk.chest + sk.up * 0.08
        p.limb(neck - sk.side * dm["sw"] * 0.55, neck + sk.side * dm["sw"] * 0.55, 0.12, 0.12, gear)
        tail_dir = {"down": np.array([0.35, 1.0]), "back": np.array([-1.0, 0.15]), "up": np.array([-0.7, -0.6])}[flow]
        start = neck + sk.side * dm["sw"] * 0.3
        p.shape(ribbon(bezier(start, start + tail_dir * 0.45 + [0.0, 0.1], start + tail_dir * 0.9), 0.2, 0.14), gear)
    elif acc == "wrench" and stage == "belt" and p.look.belt:
        x = dm["hw"] * VIEWS[view][0] * (0.62 if view in ("front", "back") else 0.2)
        top = sk.chest - sk.up * (0.84 * tl + 0.1) + sk.side * x
        wrench(p, top, -sk.up * 0.92 + sk.side * 0.39, 0.5 * dm.get("tool", 1.0))
    elif acc == "headphones" and stage == "head":
        band = _head_local(sk, ellipse((0, 0), dm["rx"] * 1.2, dm["ry"] * 1.16, a0=190, a1=350, n=16))
        p.d.line(band, OUTLINE, 0.12)
        p.d.line(band, gear, 0.06)
        ear_x = {"front": (-1.05, 1.05), "three_quarter": (-0.55,), "side": (-0.3,), "back": (-1.05, 1.05)}[view]
        for x in ear_x:
            p.blob(_head_local(sk, [(x * dm["rx"], 0.05)])[0], 0.13, 0.2, gear)


def _held_sword(p: _Painter, sk: _Skeleton, key: str) -> None:
    e, h = sk.elbows[key], sk.hands[key]
    d = (h - e) / max(np.hypot(*(h - e)), 1e-9)
    blade_dir = (d + np.array([0.0, -0.9])) / np.hypot(*(d + np.array([0.0, -0.9])))
    tip = h + blade_dir * 1.7
    p.limb(h + blade_dir * 0.15, tip, 0.06, 0.02, (216, 222, 233))
    p.blob(h + blade_dir * 0.12, 0.06, 0.16, p.look.colours["trim"], rot=-math.degrees(math.atan2(blade_dir[0], blade_dir[1])) + 90)


def wrench(p: _Painter, grip, direction, length: float) -> None:
    """A steel open-end wrench from ``grip`` along ``direction``."""
    d = np.asarray(direction, float) / max(float(np.hypot(*direction)), 1e-9)
    grip = np.asarray(grip, float)
    head = grip + d * length
    r = 0.075 * length / 0.5
    p.limb(grip - d * 0.04, head, r * 0.42, r * 0.42, STEEL)
    p.blob(grip - d * 0.04, r * 0.75, r * 0.75, STEEL)
    p.blob(head, r, r, STEEL)
    jaw = head + d * r * 0.55
    p.d.poly(capsule(head + d * r * 0.1, jaw + d * r, r * 0.34, r * 0.4), OUTLINE)


def held_wrench(p: _Painter, sk: _Skeleton, key: str, length: float) -> None:
    """The wrench in hand ``key``: across the forearm, pointing forwards and down."""
    e, h = sk.elbows[key], sk.hands[key]
    d = (h - e) / max(np.hypot(*(h - e)), 1e-9)
    perp = np.array([abs(d[1]), -d[0] * np.sign(d[1] or 1.0)])  # across the forearm, towards the front
    wrench(p, h + d * 0.05, perp + d * 0.8, length)


def draw_figure(
    look: Look, pose_name: str | PoseSpec, view: str | None = None, facing: int = 1, *, arms: str | None = None, holding: bool = False
) -> Drawing:
    """The figure in ``pose_name`` as a display list in head units (pelvis at the origin).

    ``arms="spread"`` spreads the arms wide in any pose; ``holding`` puts the character's
    sword or wrench in its near hand.
    """
    pose = POSE_TABLE[pose_name] if isinstance(pose_name, str) else pose_name  # a PoseSpec: one frame of a motion
    if arms == "spread":
        pose = replace(pose, arm_a=ARMS_SPREAD[0], arm_b=ARMS_SPREAD[1])
    view = view or pose.view
    mood = pose.mood or look.expression
    if look.expression != "calm":
        mood = look.expression
    if not pose.tilt and mood in MOOD_TILT:
        pose = replace(pose, tilt=MOOD_TILT[mood])
    held = look.accessory if look.accessory in ("sword", "wrench") and (pose.hands == "weapon" or holding) else None
    if look.body == "robot":
        from .robot import draw_robot

        d = draw_robot(look, pose, view, mood, held)
        return _finish(d, pose, facing)
    dm = _dims(look)
    sk = _skeleton(look, pose, view, dm)
    d = Drawing()
    p = _Painter(look, d)
    col = look.colours
    side_view = view in ("side", "three_quarter")
    hands = pose.hands
    hold_sword = held == "sword"

    if view != "back":
        _hair(p, sk, dm, view, pose.flow, front=False)
        _gear(p, sk, dm, view, pose.flow, "back")
    if side_view:
        _arm(p, sk, dm, "b", col, True, hands if hands != "weapon" else "fist")
        _leg(p, sk, dm, "b", col, True, view, True)
    else:
        _leg(p, sk, dm, "b", col, False, view, False)
        _leg(p, sk, dm, "a", col, False, view, False)
    p.limb(sk.chest, sk.chest + sk.up * (dm["neck"] + 0.1), 0.1, 0.1, col["skin"])
    _torso(p, sk, dm, view, col)
    if held != "wrench":
        _gear(p, sk, dm, view, pose.flow, "belt")
    if side_view:
        _leg(p, sk, dm, "a", col, False, view, True)
    if view == "back":
        _head(p, sk, dm, view, mood)
        _hair(p, sk, dm, view, pose.flow, front=True)
        _hair(p, sk, dm, view, pose.flow, front=False)
        _gear(p, sk, dm, view, pose.flow, "back")
    _gear(p, sk, dm, view, pose.flow, "neck")
    if view != "back":
        _head(p, sk, dm, view, mood)
        _hair(p, sk, dm, view, pose.flow, front=True)
    _gear(p, sk, dm, view, pose.flow, "head")
    if not side_view:
        _arm(p, sk, dm, "b", col, False, "fist" if hands == "weapon" else hands)
    if hold_sword:
        _held_sword(p, sk, "a")
    elif held == "wrench":
        held_wrench(p, sk, "a", 0.75)
    _arm(p, sk, dm, "a", col, False, "fist" if hands == "weapon" or held else hands)

    hp = _head_local(sk, [(0, -dm["ry"])])[0]
    d.head_top, d.head_x = float(hp[1]) - d.ow, float(sk.head[0])
    d.chest = float(sk.chest[1] + 0.55 * dm["torso"])
    d.chin = float(_head_local(sk, [(0, dm["ry"])])[0][1]) + 0.1
    return _finish(d, pose, facing)


def _finish(d: Drawing, pose: PoseSpec, facing: int) -> Drawing:
    d.lift = pose.lift
    if pose.rotate:
        d = d.rotated(pose.rotate)
    return d.mirrored() if facing < 0 else d
