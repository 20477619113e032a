"""The robot variant of the figure: the same posed skeleton (``figure``) dressed as a
small robot: a boxy head with a face screen, an antenna with a bulb, a rounded box
body, thin jointed metal arms with three-fingered grippers and stubby legs.

Colour roles: ``outfit`` is the body shell, ``skin`` the face screen, ``eyes`` the
glowing eyes, ``gear`` the antenna bulb (and worn gear), ``trim`` the belt, ``accent``
the indicator lights; limbs are bare metal.
"""

from __future__ import annotations

import math

import numpy as np

from .drawing import LIGHT, OUTLINE, RGB, Drawing, capsule, ellipse, lighten, mix, rounded_rect, shade
from .figure import JOINT, STEEL, Look, _gear, _head_local, _held_sword, _Painter, _Skeleton, _skeleton, held_wrench, wrench
from .poses import PoseSpec


CUBE_WIDTH = {"front": 1.0, "back": 1.0, "three_quarter": 1.2, "side": 0.95}
"""How wide the boxy head and body look from each view (a cube is widest seen corner-on)."""


def robot_dims(look: Look) -> dict[str, float]:
    """Sizes in head units (the head box is 1 unit tall); ``heads`` sets the body below it."""
    below = max(1.2, look.heads - 1.1)
    sw = 0.56 * look.build * look.shoulder
    return {
        "rx": 0.6 * look.head_scale,
        "ry": 0.5 * look.head_scale,
        "neck": 0.24,
        "torso": 0.46 * below,
        "sw": sw,
        "ww": sw,
        "hw": sw * 0.92,
        "upper": 0.2 * below * look.limb,
        "fore": 0.19 * below * look.limb,
        "thigh": 0.15 * below * look.leg,
        "shin": 0.15 * below * look.leg,
        "arm_r": 0.05 * look.build,
        "leg_r": 0.13 * look.build,
        "hand": 0.07,
        "tool": 1.2,
    }


def _to_world(sk: _Skeleton, pts) -> np.ndarray:
    """Body coordinates (x across, y down from the chest) to drawing coordinates."""
    pts = np.asarray(pts, float)
    return sk.chest + pts[:, :1] * sk.side - pts[:, 1:2] * sk.up


def _dot(p: _Painter, c, r: float, colour: RGB) -> None:
    p.d.poly(ellipse(c, r, r, n=12), colour)


def _torso(p: _Painter, sk: _Skeleton, dm, view: str, held: str | None) -> None:
    col = p.look.colours
    shell = col["outfit"]
    sw, tl = dm["sw"] * CUBE_WIDTH[view], dm["torso"]
    top, bottom = -0.12, tl + 0.12
    cy, hh = (top + bottom) / 2, (bottom - top) / 2
    box = rounded_rect((0, cy), sw, hh, 0.2)
    if view in ("front", "back"):
        lit = rounded_rect((-0.05 * sw, cy - 0.04), sw * 0.86, hh * 0.88, 0.17)
        p.shape(_to_world(sk, box), shell, _to_world(sk, lit))
    else:  # the box turned: its side face in shade, its front face towards +x
        p.shape(_to_world(sk, box), shade(shell, 0.8))
        fw = sw * (0.7 if view == "three_quarter" else 0.2)
        front = rounded_rect((sw - fw, cy), fw, hh, min(0.2, fw))
        lit = rounded_rect((sw - fw * 1.04, cy - 0.04), fw * 0.86, hh * 0.88, min(0.17, fw * 0.8))
        p.shape(_to_world(sk, front), shell, _to_world(sk, lit))
    face = {"front": 0.0, "three_quarter": 0.22, "side": 0.8, "back": 0.0}[view] * sw
    bolt = shade(shell, 0.6)
    if view == "back":
        for k in range(3):  # vents
            y = 0.16 + 0.1 * k
            p.d.line(_to_world(sk, [(-0.45 * sw, y), (0.45 * sw, y)]), shade(shell, 0.7), 0.04)
    else:
        pw = sw * (0.5 if view == "front" else 0.4 if view == "three_quarter" else 0.12)
        panel = rounded_rect((face, 0.24 * tl), pw, 0.16 * tl + 0.04, 0.06)
        p.shape(_to_world(sk, panel), shade(shell, 0.82))
        for k, light in enumerate((col["accent"], col["gear"], col["eyes"])[: 3 if view != "side" else 1]):
            x = face + (k - 1) * 0.32 * pw if view != "side" else face
            _dot(p, _to_world(sk, [(x, 0.24 * tl)])[0], 0.045, light)
            _dot(p, _to_world(sk, [(x - 0.012, 0.24 * tl - 0.012)])[0], 0.016, lighten(light, 0.6))
    for x in (-0.78, 0.78):
        if view in ("front", "back") or x > 0:
            _dot(p, _to_world(sk, [(x * sw, top + 0.1)])[0], 0.028, bolt)
    if p.look.belt:
        y0, y1 = 0.6 * tl, 0.6 * tl + 0.15
        band = np.array([(-sw * 1.03, y0), (sw * 1.03, y0), (sw * 1.03, y1), (-sw * 1.03, y1)])
        p.shape(_to_world(sk, band), col["trim"])
        if view != "back":
            buckle = rounded_rect((face, (y0 + y1) / 2), 0.09, 0.085, 0.03)
            p.shape(_to_world(sk, buckle), STEEL)
        if p.look.accessory == "wrench" and held != "wrench":
            x = sw * (0.62 if view in ("front", "back") else 0.1)
            top_pt = _to_world(sk, [(x, (y0 + y1) / 2)])[0]
            wrench(p, top_pt, -sk.up * 0.92 + sk.side * 0.39, 0.52 * dm["tool"])


def _head(p: _Painter, sk: _Skeleton, dm, view: str, mood: str) -> None:
    col = p.look.colours
    shell, screen, eyes = col["outfit"], col["skin"], col["eyes"]
    rx, ry = dm["rx"] * CUBE_WIDTH[view], dm["ry"]
    hl = lambda pts: _head_local(sk, pts)  # noqa: E731
    # antenna behind the head box, with its bulb
    base, tip = (0.0, -ry), (0.05 * rx, -ry - 0.36)
    p.d.line(hl([base, tip]), OUTLINE, 0.05 + 2 * p.ow)
    p.d.line(hl([base, tip]), STEEL, 0.05)
    bulb = gear_bulb = col["gear"]
    if mood == "sleep":
        bulb = mix(gear_bulb, (60, 60, 70), 0.55)  # dimmed
    centre = hl([tip])[0]
    if mood != "sleep":
        p.d.poly(ellipse(centre, 0.17, 0.17, n=20), mix(bulb, (255, 255, 255), 0.55))
    p.blob(centre, 0.1, 0.1, bulb)
    _dot(p, centre + LIGHT * 0.035, 0.028, lighten(bulb, 0.7 if mood != "sleep" else 0.25))
    # ear discs
    ears = {"front": (-1.0, 1.0), "back": (-1.0, 1.0), "three_quarter": (-1.0,), "side": ()}[view]
    for x in ears:
        p.blob(hl([(x * rx, 0.05)])[0], 0.09, 0.16, JOINT)
    box = rounded_rect((0, 0), rx, ry, 0.17)
    if view in ("front", "back"):
        lit = rounded_rect((-0.05 * rx, -0.05 * ry), rx * 0.88, ry * 0.86, 0.15)
        p.shape(hl(box), shell, hl(lit))
    else:  # turned: the side face in shade, the front face towards +x
        p.shape(hl(box), shade(shell, 0.8))
        fw = rx * (0.7 if view == "three_quarter" else 0.16)
        p.shape(hl(rounded_rect((rx - fw, 0), fw, ry, min(0.17, fw))), shell,
                hl(rounded_rect((rx - fw * 1.05, -0.05 * ry), fw * 0.86, ry * 0.86, min(0.15, fw * 0.8))))
    p.blob(hl([base])[0], 0.07, 0.04, JOINT)
    if view == "back":
        for k in range(3):
            y = -0.1 + 0.14 * k
            p.d.line(hl([(-0.4 * rx, y), (0.4 * rx, y)]), shade(shell, 0.7), 0.04)
        return
    if view == "side":  # the ear disc seen face-on
        p.blob(hl([(-0.12 * rx, 0.04)])[0], 0.13, 0.13, STEEL)
        p.d.poly(hl(ellipse((-0.12 * rx, 0.04), 0.05, 0.05, n=12)), JOINT)
    sx, sw = {"front": (0.0, 0.76), "three_quarter": (0.24, 0.62), "side": (0.9, 0.09)}[view]
    sx, sw = sx * rx, sw * rx
    sh = 0.64 * ry
    p.d.poly(hl(rounded_rect((sx, 0.04), sw + p.ow, sh + p.ow, 0.12)), OUTLINE)
    p.d.poly(hl(rounded_rect((sx, 0.04), sw, sh, 0.1)), screen)
    p.d.line(hl([(sx - 0.7 * sw, 0.04 - 0.55 * sh), (sx - 0.35 * sw, 0.04 - 0.75 * sh)]), lighten(screen, 0.22), 0.035)
    # eyes
    if view == "front":
        xs = [(sx - 0.42 * sw, 1.0), (sx + 0.42 * sw, 1.0)]
    elif view == "three_quarter":
        xs = [(sx - 0.4 * sw, 0.8), (sx + 0.45 * sw, 1.0)]
    else:
        xs = [(sx, 0.45)]
    glow = mix(screen, eyes, 0.35)
    for x, k in xs:
        w, h = 0.09 * k, 0.14
        if mood == "surprised":  # wide round eyes
            w, h = w * 1.3, h * 1.12
        c = (x, 0.02)
        if mood == "sleep":  # two closed curved lines
            p.d.line(hl(ellipse((x, -0.01), w * 1.25, 0.07, a0=15, a1=165, n=12)), mix(eyes, screen, 0.3), 0.045)
            continue
        if mood == "happy":  # curved up into a happy shape
            p.d.line(hl(ellipse((x, 0.07), w * 1.3, 0.12, a0=195, a1=345, n=12)), glow, 0.11)
            p.d.line(hl(ellipse((x, 0.07), w * 1.3, 0.12, a0=195, a1=345, n=12)), eyes, 0.05)
            continue
        p.d.poly(hl(ellipse(c, w * 1.55, h * 1.3, n=20)), glow)
        p.d.poly(hl(ellipse(c, w, h, n=20)), eyes)
        p.d.poly(hl(ellipse((x - 0.3 * w, -0.04), 0.3 * w, 0.3 * w, n=10)), lighten(eyes, 0.7))
        if mood in ("fierce", "worried"):  # a slanted lid in screen colour
            inner = 1 if x < sx else -1
            if mood == "worried":
                inner = -inner
            lid = np.array([(x - 1.8 * w, -0.2), (x + 1.8 * w, -0.2), (x + 1.8 * w, -0.02 + 0.08 * inner), (x - 1.8 * w, -0.02 - 0.08 * inner)])
            p.d.poly(hl(lid), screen)


def _gripper(p: _Painter, hand, fore, closed: bool, far: bool) -> None:
    metal = shade(STEEL, 0.86) if far else STEEL
    base = math.degrees(math.atan2(fore[0], fore[1]))
    spread = 14 if closed else 32
    for a, length in ((0, 0.1), (spread, 0.13), (-spread, 0.13)):
        d0 = np.array([math.sin(math.radians(base + a)), math.cos(math.radians(base + a))])
        bend = -a * 1.4 if a else 0
        d1 = np.array([math.sin(math.radians(base + a + bend)), math.cos(math.radians(base + a + bend))])
        knuckle = hand + d0 * length
        p.limb(hand, knuckle, 0.03, 0.027, metal)
        p.limb(knuckle, knuckle + d1 * 0.06, 0.027, 0.018, metal)
    p.blob(hand, 0.062, 0.062, JOINT, far=far)


def _arm(p: _Painter, sk: _Skeleton, dm, key: str, far: bool, closed: bool) -> None:
    s, e, h = sk.shoulders[key], sk.elbows[key], sk.hands[key]
    r = dm["arm_r"]
    metal = STEEL
    p.blob(s, r * 1.9, r * 1.9, JOINT, far=far)
    p.limb(s, e, r, r, metal, far)
    p.limb(e, h, r, r * 0.9, metal, far)
    p.blob(e, r * 1.45, r * 1.45, JOINT, far=far)
    fore = (h - e) / max(float(np.hypot(*(h - e))), 1e-9)
    _gripper(p, h, fore, closed, far)


def _leg(p: _Painter, sk: _Skeleton, dm, key: str, far: bool, facing_side: bool) -> None:
    hip, knee, ankle = sk.hips[key], sk.knees[key], sk.ankles[key]
    r = dm["leg_r"]
    shell = p.look.colours["outfit"]
    p.limb(hip, knee, r, r * 0.92, STEEL, far)
    p.limb(knee, ankle, r * 0.92, r * 0.85, STEEL, far)
    p.blob(knee, r * 1.02, r * 0.7, JOINT, far=far)
    foot_c = ankle + (np.array([0.07, 0.06]) if facing_side else np.array([0.0, 0.06]))
    hw = 0.21 if facing_side else 0.17
    foot = rounded_rect(foot_c, hw, 0.085, 0.07)
    colour = shade(shell, 0.86) if far else shell
    p.shape(foot, colour, rounded_rect(foot_c - [0.02, 0.02], hw * 0.85, 0.06, 0.05))


def draw_robot(look: Look, pose: PoseSpec, view: str, mood: str, held: str | None) -> Drawing:
    """The robot in ``pose`` seen from ``view`` (head units, pelvis at the origin)."""
    dm = robot_dims(look)
    sk = _skeleton(look, pose, view, dm)
    d = Drawing()
    p = _Painter(look, d)
    side_view = view in ("side", "three_quarter")
    closed = pose.hands != "open" or held is not None
    if view != "back":
        _gear(p, sk, dm, view, pose.flow, "back")
    if side_view:
        _arm(p, sk, dm, "b", True, pose.hands != "open")
        _leg(p, sk, dm, "b", True, True)
    else:
        _leg(p, sk, dm, "b", False, False)
        _leg(p, sk, dm, "a", False, False)
    head_c = sk.head
    p.d.poly(capsule(sk.chest, head_c, 0.1 + p.ow, 0.1 + p.ow), OUTLINE)
    p.d.poly(capsule(sk.chest, head_c, 0.1, 0.1), JOINT)
    _torso(p, sk, dm, view, held)
    if side_view:
        _leg(p, sk, dm, "a", False, True)
    if view == "back":
        _gear(p, sk, dm, view, pose.flow, "back")
    _gear(p, sk, dm, view, pose.flow, "neck")
    _head(p, sk, dm, view, mood)
    _gear(p, sk, dm, view, pose.flow, "head")
    if not side_view:
        _arm(p, sk, dm, "b", False, pose.hands != "open")
    if held == "sword":
        _held_sword(p, sk, "a")
    elif held == "wrench":
        held_wrench(p, sk, "a", 0.5 * dm["tool"])
    _arm(p, sk, dm, "a", False, closed)
    top = _head_local(sk, [(0.05 * dm["rx"], -dm["ry"] - 0.36 - 0.17)])[0]
    hp = _head_local(sk, [(0, -dm["ry"])])[0]
    d.head_top, d.head_x = float(min(top[1], hp[1])) - d.ow, float(sk.head[0])
    d.chest = float(sk.chest[1] + 0.55 * dm["torso"])
    d.chin = float(_head_local(sk, [(0, dm["ry"])])[0][1]) + 0.08
    return d
