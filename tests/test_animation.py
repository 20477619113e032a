"""Animation frames through the journal on the local backend: requests, estimates,
refusals, chains, pinned seeds, reruns at $0, budgets, video sampling; and the motion
the offline renderer draws."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fal_assets import animation as an
from fal_assets.budget import Budget
from fal_assets.errors import BudgetExceeded, InvalidInput
from fal_assets.generate import Request, Settings, generate_all
from fal_assets.prompts import pose_prompt
from fal_assets.render import render_image
from fal_assets.render.motion import cycle_of, motion_of, pose_at
from fal_assets.spec import load_spec

SPEC = textwrap.dedent(
    """\
    name: knight
    trigger_word: knight_char
    description: a small knight in silver armor with a red plume on the helmet, short brown hair
    style: flat vector game art
    palette:
      plume: "#CC2200"
    models: {pose: fal-ai/flux-2-pro}
    poses:
      idle: standing with the sword lowered
      run: running to the right mid-stride
    animations:
      run: {frames: 4, fps: 12, motion: one full running stride}
      idle: {frames: 3, fps: 6, motion: breathing gently, chain: false}
      dash: {pose: run, frames: 4, fps: 10, motion: one full running stride, method: video}
    """
)


@pytest.fixture
def knight(tmp_path):
    path = tmp_path / "knight.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return load_spec(path)


@pytest.fixture
def bases(knight, tmp_path):
    out = {}
    for name in knight.animations:
        pose = knight.animation_pose(name)
        path = tmp_path / "poses" / f"{pose}.png"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            render_image({"prompt": pose_prompt(knight, pose), "seed": 3, "image_size": {"width": 384, "height": 512}}).save(path)
        out[name] = path
    return out


def run_frames(knight, bases, tmp_path, names, settings, **kwargs):
    sent: list[Request] = []

    def generate(requests):
        sent.extend(requests)
        return generate_all(requests, settings)

    folders = {n: tmp_path / "frames" / n for n in names}
    return an.animation_frames(knight, names, bases, None, folders, generate, **kwargs), sent


def test_requests_pin_a_seed_per_frame_and_chain_the_previous_frame(knight, bases, tmp_path):
    settings = Settings(store_root=tmp_path / "store")
    made, sent = run_frames(knight, bases, tmp_path, ["run"], settings)
    run = made["run"]
    assert [len(r.files) for r in sent] == [1, 2, 2, 2]  # frame 0: the base pose; then base + previous frame
    assert all(r.endpoint == "fal-ai/flux-2/flash/edit" for r in sent)  # no LoRA in this spec
    assert [r.arguments["seed"] for r in sent] == [knight.seed_for_frame("run", i) for i in range(4)]
    assert sent[2].files["image_urls.1"] == run.folder / "001.png"
    assert "frame 3 of 4 of a looping cycle, cycle phase 0.500" in sent[2].arguments["prompt"]
    assert [f.path.name for f in run.frames] == ["000.png", "001.png", "002.png", "003.png"]
    assert [f.seed for f in run.frames] == [knight.seed_for_frame("run", i) for i in range(4)]
    # local: billed $0, estimated at fal's price: 2 inputs + 1 output at 1 MP each (1 input for frame 0)
    assert run.cost_usd == 0 and run.estimated_usd == pytest.approx(0.005 * (2 + 3 * 3))
    assert run.estimated_usd == an.estimate_animation(knight, "run", bases["run"]).total_usd
    manifest = (run.folder / an.FRAMES_MANIFEST).read_text()
    assert '"estimated_usd": 0.055' in manifest and '"seed": ' in manifest


def test_frames_differ_and_a_loop_closes(knight, bases, tmp_path):
    made, _ = run_frames(knight, bases, tmp_path, ["run"], Settings(store_root=tmp_path / "store"))
    frames = [np.asarray(Image.open(p).convert("L"), dtype=np.float32) for p in made["run"].paths]
    steps = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
    assert min(steps) > 0.5  # the figure moves between frames
    assert np.abs(frames[-1] - frames[0]).mean() < 2.5 * max(steps)  # the frame after the last is the first again


def test_rerun_is_all_journal_hits_and_costs_nothing(knight, bases, tmp_path):
    settings = Settings(store_root=tmp_path / "store")
    first, _ = run_frames(knight, bases, tmp_path, ["run", "idle"], settings)
    again, sent = run_frames(knight, bases, tmp_path, ["run", "idle"], settings)
    for name in ("run", "idle"):
        assert again[name].cache_hits == len(again[name].generations)
        assert [f.path.read_bytes() for f in again[name].frames] == [f.path.read_bytes() for f in first[name].frames]
    with an.journal_lookup(settings) as lookup:
        assert an.to_pay(knight, "run", bases["run"], None, lookup=lookup) == 0
        assert an.to_pay(knight, "idle", bases["idle"], None, lookup=lookup) == 0
    assert an.to_pay(knight, "run", bases["run"], None) == pytest.approx(0.055)


def test_unchained_frames_go_out_in_one_wave(knight, bases, tmp_path):
    waves = []
    settings = Settings(store_root=tmp_path / "store")

    def generate(requests):
        waves.append([r.labels["frame"] for r in requests])
        return generate_all(requests, settings)

    an.animation_frames(knight, ["run", "idle"], bases, None, {n: tmp_path / n for n in ("run", "idle")}, generate)
    # wave 0 holds run's frame 0 and all of idle's frames; the run chain then goes one frame a wave
    assert waves == [["000", "000", "001", "002"], ["001"], ["002"], ["003"]]


def test_video_is_one_request_sampled_evenly(knight, bases, tmp_path):
    made, sent = run_frames(knight, bases, tmp_path, ["dash"], Settings(store_root=tmp_path / "store"))
    dash = made["dash"]
    (request,) = sent
    assert request.endpoint == an.VIDEO_ENDPOINT and request.arguments["duration"] == "5"
    assert set(request.files) == {"image_url", "tail_image_url"}  # a loop ends on its base pose
    assert len(dash.frames) == 4 and dash.clip.suffix == ".mp4"
    assert dash.estimated_usd == pytest.approx(0.35)
    assert [f.estimated_usd for f in dash.frames] == [pytest.approx(0.0875)] * 4  # the clip's cost shared by its frames
    sizes = {Image.open(p).size for p in dash.paths}
    assert len(sizes) == 1
    frames = [np.asarray(Image.open(p).convert("L"), dtype=np.float32) for p in dash.paths]
    assert min(np.abs(a - b).mean() for a, b in zip(frames, frames[1:])) > 0.5


def test_sample_frames_loop_and_one_shot(tmp_path):
    from fal_assets.render.motion import encode_mp4

    shades = [Image.new("RGB", (64, 48), (v, v, v)) for v in range(0, 250, 10)]  # 25 frames, 1 s at 24 fps
    clip = tmp_path / "c.mp4"
    clip.write_bytes(encode_mp4(shades, 24))
    looped = [round(np.asarray(im).mean() / 10) for im in an.sample_frames(clip, 4, loop=True)]
    once = [round(np.asarray(im).mean() / 10) for im in an.sample_frames(clip, 5, loop=False)]
    assert looped == [0, 6, 12, 18]  # never the last frame (the first again)
    assert once == [0, 6, 12, 18, 24]


def test_unpriced_endpoint_is_refused_before_anything_is_sent(knight, bases, tmp_path, monkeypatch):
    monkeypatch.delenv("FAL_ASSETS_PRICES", raising=False)
    lora_spec = tmp_path / "lora.yaml"
    lora_spec.write_text(SPEC.replace("models: {pose: fal-ai/flux-2-pro}\n", ""), encoding="utf-8")
    spec = load_spec(lora_spec)
    assert an.endpoint_for(spec, "run") == an.KEYFRAMES_LORA_ENDPOINT
    made, sent = run_frames(spec, bases, tmp_path, ["run", "idle"], Settings(store_root=tmp_path / "store"))
    assert sent == []
    for name in ("run", "idle"):
        assert isinstance(made[name], InvalidInput)
        (line,) = made[name].lines()
        assert "no price is known for fal-ai/flux-2/lora/edit" in line and "FAL_ASSETS_PRICES" in line


def test_a_price_you_supply_lets_lora_keyframes_through(knight, bases, tmp_path, monkeypatch):
    from fal_assets.pricing import load_prices

    prices = tmp_path / "prices.yaml"
    prices.write_text(textwrap.dedent("""\
        prices:
          fal-ai/flux-2/lora/edit:
            unit: megapixel
            price: 0.021
            billed_on: [input, output]
            source: my fal invoice
            checked: 2026-12-08
        """), encoding="utf-8")
    monkeypatch.setenv("FAL_ASSETS_PRICES", str(prices))
    load_prices.cache_clear() if hasattr(load_prices, "cache_clear") else None
    lora_spec = tmp_path / "lora.yaml"
    lora_spec.write_text(SPEC.replace("models: {pose: fal-ai/flux-2-pro}\n", ""), encoding="utf-8")
    spec = load_spec(lora_spec)
    estimate = an.estimate_animation(spec, "run", bases["run"], tmp_path / "weights.safetensors")
    assert estimate.endpoint == "fal-ai/flux-2/lora/edit"
    assert estimate.total_usd == pytest.approx(0.021 * (2 + 3 * 3))
    weights = tmp_path / "weights.safetensors"
    request = an.frame_request(spec, "run", 1, bases["run"], bases["run"], weights)
    assert request.arguments["loras"] == [{"path": "", "scale": 1.0}] and request.files["loras.0.path"] == weights
    assert request.arguments["prompt"].startswith("knight_char, ")


def test_budget_preflight_refuses_the_whole_batch_first(knight, bases, tmp_path):
    settings = Settings(backend="fal", store_root=tmp_path / "store", budget=Budget(per_run_usd=0.05), run_id="r1")
    sent = []
    with pytest.raises(BudgetExceeded, match=r"would cost \$0.0550.*cap \$0.05; nothing was sent"):
        an.animation_frames(knight, ["run"], bases, None, {"run": tmp_path / "run"}, lambda rs: sent.extend(rs) or [],
                            preflight=an.budget_preflight(settings))
    assert sent == []
    an.budget_preflight(Settings(backend="fal", store_root=tmp_path / "s2", budget=Budget(per_run_usd=0.06), run_id="r2"))(0.055, "ok")


def test_endpoint_problems_name_the_field(tmp_path):
    path = tmp_path / "k.yaml"
    path.write_text(SPEC.replace("method: video}", "method: video, endpoint: fal-ai/flux-2/flash/edit}")
                    .replace("chain: false}", "endpoint: fal-ai/kling-video/v2.1/standard/image-to-video}"), encoding="utf-8")
    problems = an.endpoint_problems(load_spec(path))
    assert [p.field for p in problems] == ["animations.idle.endpoint", "animations.dash.endpoint"]
    assert "not an edit endpoint" in problems[0].message and "not video" in problems[1].message


def test_versions_fps_restales_only_the_exports(knight, tmp_path):
    def with_(old, new):
        path = tmp_path / f"v{abs(hash(new))}.yaml"
        path.write_text(SPEC.replace(old, new), encoding="utf-8")
        return load_spec(path)

    faster = with_("{frames: 4, fps: 12,", "{frames: 4, fps: 24,")
    other_motion = with_("{frames: 4, fps: 12, motion: one full running stride}", "{frames: 4, fps: 12, motion: a slow jog}")
    assert an.frames_version(faster, "run") == an.frames_version(knight, "run")
    assert an.export_version(faster, "run") != an.export_version(knight, "run")
    assert an.frames_version(other_motion, "run") != an.frames_version(knight, "run")
    assert an.frames_version(other_motion, "idle") == an.frames_version(knight, "idle")


# --------------------------------------------------------------------------- the renderer's motion


def test_motion_clause_is_read():
    m = motion_of("knight. Pose: running. Motion: one full running stride, frame 3 of 8 of a looping cycle, cycle phase 0.250. Style: x.")
    assert (m.cycle, m.phase, m.frame, m.frames) == ("run", 0.25, 3, 8)
    assert motion_of("a knight standing. Style: flat.") is None
    assert cycle_of("breathing gently") == "idle" and cycle_of("hops twice") == "jump" and cycle_of("twirls", "wave") == "wave"
    assert cycle_of("spins slowly", "attack") == "sway" and cycle_of("spins slowly") == "idle"


@pytest.mark.parametrize("cycle", ["run", "walk", "idle", "wave", "jump", "sway"])
def test_cycles_are_periodic(cycle):
    assert pose_at(cycle, 0.0, "idle") == pose_at(cycle, 1.0, "idle")
    assert pose_at(cycle, 0.25, "idle") != pose_at(cycle, 0.75, "idle") or cycle in ("idle",)


def test_motion_frames_are_deterministic_and_keep_who_is_drawn():
    from fal_assets.render import look_for

    base = "knight_char, a small knight in silver armor. Pose: running to the right. Motion: one full running stride, frame {i} of 8 of a looping cycle, cycle phase {p}. Style: flat."
    prompts = [base.format(i=i + 1, p=f"{i / 8:.3f}") for i in range(8)]
    looks = {str(look_for({"prompt": p, "seed": 10 + i}).identity()) for i, p in enumerate(prompts)}
    assert len(looks) == 1  # the phase and the seed never change who is drawn
    one = render_image({"prompt": prompts[2], "seed": 7, "image_size": {"width": 256, "height": 320}})
    two = render_image({"prompt": prompts[2], "seed": 7, "image_size": {"width": 256, "height": 320}})
    assert one.tobytes() == two.tobytes()


def test_refresh_needed_fps_restales_only_the_sheet_motion_its_frames(knight, tmp_path):
    def variant(old, new):
        path = tmp_path / f"r{abs(hash(new))}.yaml"
        path.write_text(SPEC.replace(old, new), encoding="utf-8")
        return load_spec(path)

    made = {n: an.frames_version(knight, n) for n in knight.animations}
    exported = {n: an.export_version(knight, n) for n in knight.animations}
    assert an.refresh_needed(knight, made, exported) == an.AnimationRefresh()
    faster = variant("{frames: 4, fps: 12,", "{frames: 4, fps: 24,")
    found = an.refresh_needed(faster, made, exported)
    assert found.frames == () and found.sheet and "run: the sheet exported version" in found.reasons[0]
    slower_motion = variant("fps: 12, motion: one full running stride}", "fps: 12, motion: a slow heavy jog}")
    found = an.refresh_needed(slower_motion, made, exported)
    assert found.frames == ("run",) and found.sheet
    fewer = variant("frames: 3, fps: 6", "frames: 5, fps: 6")
    assert an.refresh_needed(fewer, made, exported).frames == ("idle",)
    assert an.refresh_needed(knight, {}, None) == an.AnimationRefresh(
        ("run", "idle", "dash"), True, ("run: animation_frames never materialized", "idle: animation_frames never materialized",
                                        "dash: animation_frames never materialized", "animated_sheet never materialized"))
