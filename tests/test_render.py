"""The local renderer: determinism, sizes, prompt cues, identity, poses, robots, LoRA training and use, edits."""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile

import numpy as np
import pytest
from samples import GLITCH
from PIL import Image

from fal_assets.errors import InvalidInput
from fal_assets.render import (
    DEFAULT_SEED,
    LORA_FORMAT,
    RENDERER_ID,
    RENDERER_INFO,
    identity_text,
    load_lora,
    look_for,
    parse_prompt,
    render_image,
    render_request,
    train_lora,
)
from fal_assets.render.palette import figure_of

ZORP = "zorp_char, hair #E0B040, outfit #2060C0, hot pink (#FF1493) circuit lines, gray boots #606870, plain white background"
SMALL = {"width": 192, "height": 256}

# characters/rivet.yaml's description and palette, in the shape prompts.pose_prompt gives
RIVET = (
    "Small boxy repair robot about knee height, a rounded cube body on two short stubby legs, two thin jointed arms "
    "ending in three-fingered grippers, a square screen face showing two simple glowing oval eyes, a single antenna "
    "topped with a round bulb, and a leather tool belt with a wrench around its middle. Colors: body panels #F2A541, "
    "screen face #1B2A41, eye glow #5CE1E6, antenna bulb #FF5A5F, tool belt #6B4226."
)
RIVET_STYLE = "Style: stylized 3D game art, soft rounded shapes. Plain white background."
RIVET_POSES = {
    "idle": "standing still with arms at its sides, eyes looking at the viewer",
    "walk": "walking to the right mid-step, arms swinging gently",
    "jump": "hopping into the air with both legs tucked under the body, arms spread wide",
    "repair": "kneeling on one leg, tightening a bolt on the floor with its wrench",
    "sleep": "lying on its back with eyes shown as two closed curved lines, antenna bulb dimmed",
    "wave": "standing and waving with one gripper raised high, eyes curved into a happy shape",
}


def rivet(action: str, label: str = "Pose", trigger: bool = True) -> str:
    """A rivet prompt: the pose prompt (trigger word first) or a reference prompt (``View:``)."""
    return f"{'rivet_bot, ' if trigger else ''}{RIVET} {label}: {action}, full body visible head to toe. {RIVET_STYLE}"


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def count_near(image: Image.Image, colour, tol: int = 8) -> int:
    return int((np.abs(rgb(image) - np.array(colour)).max(axis=2) <= tol).sum())


def border(image: Image.Image) -> np.ndarray:
    a = np.asarray(image)
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def bbox(image: Image.Image) -> tuple[int, int, int, int]:
    box = figure_of(image, max_side=None).bbox
    assert box is not None, "no figure drawn"
    return box


def dataset_zip(prompt: str, poses: list[str], captions: str | None = None, size=(256, 256)) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, pose in enumerate(poses):
            image = render_image({"prompt": f"{prompt}, {pose}", "image_size": {"width": size[0], "height": size[1]}, "seed": i})
            archive.writestr(f"img_{i:02d}.png", png(image))
            if captions is not None:
                archive.writestr(f"img_{i:02d}.txt", f"{captions}, {pose}")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def zorp_lora() -> tuple[bytes, dict]:
    poses = ["standing", "running", "jumping", "waving", "crouching", "side view standing"]
    return train_lora(dataset_zip(ZORP, poses, captions="zorp_char, cartoon girl"), steps=1000, learning_rate=5e-5)


# ---------------------------------------------------------------- prompt cues
def test_seed_000_glitch_prompt_binds_colours_to_parts():
    cues = parse_prompt(GLITCH + "\nPose: excited, arms raised, big smile")
    assert cues.colours["accent"] == (255, 20, 147)  # "Hot pink (#FF1493) ... circuit lines"
    assert cues.colours["outfit"] == (0, 0, 0)  # "Black tactical bodysuit"
    assert cues.colours["trim"] == (79, 79, 79)  # "dark gray armor panels"
    assert cues.colours["hair"] == (176, 141, 87)  # "dark blonde hair"
    assert (cues.pose, cues.background, cues.hair_style, cues.accessory) == ("victory", (255, 255, 255), "ponytail", "sword")
    assert cues.visor and cues.armored and cues.heads == 5.0
    assert cues.view is None  # "sheathed on back" is not a back view


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("hair #C8A24A, running", {"hair": (200, 162, 74)}),
        ("eyes: #00FFFF", {"eyes": (0, 255, 255)}),
        ("red scarf, blue jacket and white gloves", {"gear": (255, 0, 0), "outfit": (0, 0, 255), "trim": (255, 255, 255)}),
    ],
)
def test_colours_bind_to_the_part_they_describe(prompt, expected):
    assert parse_prompt(prompt).colours == expected


@pytest.mark.parametrize(
    "prompt, pose, view",
    [
        ("standing idle", "idle", None),
        ("sprinting, side view", "run", "side"),
        ("airborne, three-quarter view", "jump", "three_quarter"),
        ("standing and waving hello", "wave", None),
        ("crouching low", "crouch", None),
        ("sitting on the floor, back view", "sit", "back"),
        ("sword slash attack", "attack", None),
        ("high kick", "kick", None),
        ("victory pose, arms raised", "victory", None),
        ("hopping into the air with both legs tucked under the body", "jump", None),
        ("bouncing on the spot", "jump", None),
        ("lying on its back, antenna bulb dimmed", "lie", None),
        ("fast asleep on the floor", "lie", None),
        ("kneeling on one leg, tightening a bolt", "kneel", None),
        ("walking to the right mid-step, arms swinging gently", "walk", None),
        ("swinging the sword in an arc", "attack", None),
        ("standing tall with one fist raised high in triumph, other hand on her hip", "fist_pump", None),
        ("sitting on the ground with her legs crossed", "sit_cross", None),
        ("standing confidently with hands on hips", "akimbo", None),
        ("dynamic action pose mid-motion", "run", None),
    ],
)
def test_pose_and_view_words(prompt, pose, view):
    cues = parse_prompt(prompt)
    assert (cues.pose, cues.view) == (pose, view)


def test_background_cues():
    assert parse_prompt("plain light blue background").background == (173, 216, 230)
    assert parse_prompt("on a #102030 background").background == (16, 32, 48)
    assert parse_prompt("character, transparent background").transparent
    assert parse_prompt("a knight").background is None
    # colours in the background phrase do not colour the figure
    assert parse_prompt("plain black background").colours == {}


def test_unbound_hex_codes_are_handed_out_in_order():
    cues = parse_prompt("palette #112233 #445566 #778899")
    assert cues.unbound_hex == ((17, 34, 51), (68, 85, 102), (119, 136, 153))
    image = render_image({"prompt": "palette #CC2200 #00AA44", "image_size": SMALL, "seed": 1})
    assert count_near(image, (204, 34, 0), 2) > 200  # outfit
    assert count_near(image, (0, 170, 68), 2) > 10  # accent


# ---------------------------------------------------------------- images
def test_same_arguments_give_byte_identical_png():
    args = {"prompt": GLITCH + " Pose: running", "image_size": SMALL, "seed": 1234, "output_format": "png"}
    first = render_request("fal-ai/flux-2-pro", args)
    second = render_request("fal-ai/flux-2-pro", dict(args))
    assert first == second
    assert first[0][1] == "image/png"


def test_no_seed_means_the_default_seed():
    a = render_image({"prompt": "a hero", "image_size": SMALL})
    b = render_image({"prompt": "a hero", "image_size": SMALL, "seed": DEFAULT_SEED})
    assert png(a) == png(b)


def test_another_seed_changes_the_picture_visibly():
    a = rgb(render_image({"prompt": GLITCH, "image_size": SMALL, "seed": 1}))
    b = rgb(render_image({"prompt": GLITCH, "image_size": SMALL, "seed": 2}))
    changed = (np.abs(a - b).max(axis=2) > 40).mean()
    assert changed > 0.02, f"only {changed:.1%} of pixels changed"  # the limbs move; who it is does not


# ---------------------------------------------------------------- identity
def test_identity_text_drops_trigger_pose_view_and_background():
    pose = identity_text(rivet(RIVET_POSES["jump"]))
    reference = identity_text(rivet("three-quarter view from the front left, standing", label="View", trigger=False))
    assert pose == reference  # the dataset's references and the LoRA's poses are one character
    assert "rivet_bot" not in pose and "hopping" not in pose and "background" not in pose
    assert "boxy repair robot" in pose and "#f2a541" in pose
    assert identity_text("a hero, running, side view") == identity_text("a hero, sword slash attack") == "a hero"
    assert identity_text("a hero, standing, close-up portrait") == identity_text("a hero, lying down, seen from above") == "a hero"
    assert identity_text("a hero in red") != identity_text("a knight in red")


@pytest.mark.parametrize("prompt", [RIVET, GLITCH, "a young hero in a blue jacket", "zorp_char, a cartoon girl"])
def test_seed_and_pose_never_change_who_is_drawn(prompt):
    actions = ["standing", "running to the right", "hopping up", "kneeling on one knee", "lying down asleep", "waving, big smile"]
    looks = [look_for({"prompt": f"{prompt} Pose: {action}.", "seed": seed}, index=index)
             for action in actions for seed in (1, 2, 7, 1234, 2**40) for index in (0, 1)]
    first = looks[0].identity()
    for look in looks[1:]:
        assert look.identity() == first
    assert len({look.jitter for look in looks}) == 5 * 2  # what the seed and index may still move


def test_hair_is_the_same_in_every_seed_when_the_prompt_names_none():
    hair = (140, 60, 30)
    counts = []
    for seed in range(6):
        image = render_image({"prompt": f"a young hero, hair {'#8C3C1E'}, blue jacket, standing", "image_size": SMALL, "seed": seed})
        counts.append(count_near(image, hair, 4))
    assert min(counts) > 100 and max(counts) < 1.25 * min(counts), counts  # one hair style, not one per seed


# ---------------------------------------------------------------- robots
def test_a_robot_prompt_draws_a_robot_with_its_colour_roles():
    look = look_for({"prompt": rivet(RIVET_POSES["idle"]), "seed": 7})
    assert (look.body, look.hair_style, look.accessory, look.belt) == ("robot", "none", "wrench", True)
    assert look.colours["outfit"] == (242, 165, 65)  # "body panels": the shell, not trim
    assert look.colours["skin"] == (27, 42, 65)  # "screen face"
    assert look.colours["eyes"] == (92, 225, 230)  # "eye glow"
    assert look.colours["gear"] == (255, 90, 95)  # "antenna bulb"
    assert look.colours["trim"] == (107, 66, 38)  # "tool belt"
    image = render_image({"prompt": rivet(RIVET_POSES["idle"]), "image_size": SMALL, "seed": 7})
    for colour, least in (((242, 165, 65), 600), ((27, 42, 65), 150), ((92, 225, 230), 20), ((255, 90, 95), 10)):
        assert count_near(image, colour, 6) >= least, colour
    assert count_near(image, (241, 194, 160), 10) == 0  # no skin: a screen face
    for word in ("android", "droid", "mech", "little robot"):
        assert look_for({"prompt": f"a {word}, standing"}).body == "robot", word
    assert look_for({"prompt": GLITCH}).body == "human"


def test_a_lora_learns_the_robot_body_from_its_captions():
    data, _ = train_lora(dataset_zip("a small blue robot", ["standing", "waving"], captions="bot_x, a small robot"), steps=1000, learning_rate=5e-5)
    lora = load_lora(data)
    assert lora.traits == {"body": "robot"}
    assert look_for({"prompt": "bot_x, waving"}, loras=[(lora, 1.0)]).body == "robot"
    assert look_for({"prompt": "bot_x, waving"}).body == "human"


def test_robot_and_human_identity_hold_through_a_trained_lora(zorp_lora):
    views = ["front view, standing", "back view", "side view", "three-quarter view", "waving", "jumping"]
    data, _ = train_lora(dataset_zip(rivet("", label="View", trigger=False).replace("View: ,", "View:"), views,
                                     captions="rivet_bot"), steps=1000, learning_rate=5e-5)
    lora = load_lora(data)
    plain = look_for({"prompt": rivet(RIVET_POSES["repair"]), "seed": 1})
    with_lora = look_for({"prompt": rivet(RIVET_POSES["repair"]), "seed": 1}, loras=[(lora, 1.0)])
    for part in ("outfit", "skin", "eyes", "gear", "trim", "accent"):  # learned roles do not swap the robot's colours
        assert max(abs(a - b) for a, b in zip(plain.colours[part], with_lora.colours[part])) <= 16, part
    assert with_lora.identity() == look_for({"prompt": rivet(RIVET_POSES["wave"]), "seed": 99}, loras=[(lora, 1.0)]).identity()
    zorp = load_lora(zorp_lora[0])
    plain = look_for({"prompt": ZORP + ", running", "seed": 3})
    with_lora = look_for({"prompt": ZORP + ", running", "seed": 3}, loras=[(zorp, 1.0)])
    for part in ("hair", "outfit", "trim", "accent", "skin"):
        assert max(abs(a - b) for a, b in zip(plain.colours[part], with_lora.colours[part])) <= 16, part


# ---------------------------------------------------------------- poses
def _size(box):
    return box[2] - box[0], box[3] - box[1]


def test_rivet_poses_read_as_asked():
    base = {"image_size": {"width": 400, "height": 400}, "seed": 7}
    boxes = {name: bbox(render_image({**base, "prompt": rivet(action)})) for name, action in RIVET_POSES.items()}
    assert {name: parse_prompt(rivet(a)).pose for name, a in RIVET_POSES.items()} == {
        "idle": "idle", "walk": "walk", "jump": "jump", "repair": "kneel", "sleep": "lie", "wave": "wave"}
    assert boxes["jump"][3] < boxes["idle"][3] - 20  # hopping: off the ground
    width, height = _size(boxes["sleep"])
    assert width > 1.4 * height  # lying: horizontal
    assert abs(boxes["sleep"][3] - boxes["idle"][3]) <= 3 and boxes["sleep"][0] > 0 and boxes["sleep"][2] < 400
    assert _size(boxes["repair"])[1] < 0.95 * _size(boxes["idle"])[1]  # kneeling: lower (the legs are stubby)
    assert parse_prompt(rivet(RIVET_POSES["jump"])).arms == "spread"
    assert parse_prompt(rivet(RIVET_POSES["repair"])).holding
    assert not parse_prompt(rivet(RIVET_POSES["idle"])).holding  # the wrench stays on the belt
    assert parse_prompt(rivet(RIVET_POSES["sleep"])).expression == "sleep"


def test_a_lying_human_fits_the_canvas_on_the_ground():
    image = render_image({"prompt": GLITCH + " Pose: lying on her back, asleep", "image_size": {"width": 300, "height": 400}, "seed": 3})
    idle = bbox(render_image({"prompt": GLITCH + " Pose: standing", "image_size": {"width": 300, "height": 400}, "seed": 3}))
    box = bbox(image)
    assert _size(box)[0] > 2 * _size(box)[1]
    assert abs(box[3] - idle[3]) <= 3
    assert set(map(tuple, border(image))) == {(255, 255, 255)}


def test_index_gives_a_different_image():
    args = {"prompt": "a hero", "image_size": SMALL, "seed": 5}
    assert png(render_image(args, index=0)) != png(render_image(args, index=1))


@pytest.mark.parametrize(
    "image_size, expected",
    [
        ("square_hd", (1024, 1024)),
        ("square", (1024, 1024)),
        ("portrait_4_3", (768, 1024)),
        ("portrait_16_9", (576, 1024)),
        ("landscape_4_3", (1024, 768)),
        ("landscape_16_9", (1024, 576)),
        (None, (1024, 768)),
        ({"width": 300, "height": 120}, (300, 120)),
        ("200x333", (200, 333)),
    ],
)
def test_size_follows_image_size(image_size, expected):
    args = {"prompt": "a hero, kick", "seed": 3}
    if image_size is not None:
        args["image_size"] = image_size
    image = render_image(args)
    assert image.size == expected
    assert set(map(tuple, border(image))) == {(255, 255, 255)}  # never cut at the border


def test_num_images_and_output_formats():
    files = render_request("fal-ai/flux-2/flash", {"prompt": "a hero", "image_size": SMALL, "num_images": 3, "output_format": "webp"})
    assert [ct for _, ct in files] == ["image/webp"] * 3
    assert len({data for data, _ in files}) == 3
    for data, _ in files:
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "WEBP" and image.size == (192, 256)
    (data, ct), = render_request("fal-ai/flux-2-pro", {"prompt": "a hero", "image_size": SMALL})
    assert ct == "image/jpeg"  # the endpoint's default output format (catalog)
    assert Image.open(io.BytesIO(data)).format == "JPEG"


def test_background_is_the_requested_flat_colour():
    image = render_image({"prompt": "a hero, plain light blue background", "image_size": SMALL, "seed": 9})
    assert set(map(tuple, border(image))) == {(173, 216, 230)}
    image = render_image({"prompt": "a hero, running", "image_size": SMALL, "seed": 9})
    assert set(map(tuple, border(image))) == {(255, 255, 255)}


def test_transparent_background_and_jpeg_flattening():
    args = {"prompt": "a hero, transparent background", "image_size": SMALL, "seed": 4}
    image = render_image(args)
    assert image.mode == "RGBA"
    assert border(image)[:, 3].max() == 0
    assert np.asarray(image)[..., 3].max() == 255
    (data, ct), = render_request("fal-ai/flux/dev", {**args, "output_format": "jpeg"})
    flat = Image.open(io.BytesIO(data))
    assert ct == "image/jpeg" and flat.mode == "RGB"
    assert np.abs(border(flat).astype(int) - 255).max() <= 3


def test_figure_wears_the_prompt_hex_colours():
    prompt = "hair #C8A24A, bodysuit #2E8B57, glowing #FF1493 circuit lines, boots #5A4FCF, eyes #00CED1"
    image = render_image({"prompt": prompt, "image_size": {"width": 384, "height": 512}, "seed": 11})
    for colour, least in (((200, 162, 74), 300), ((46, 139, 87), 1500), ((255, 20, 147), 100), ((90, 79, 207), 300), ((0, 206, 209), 10)):
        assert count_near(image, colour, 6) >= least, colour


def test_jump_is_off_the_ground_and_crouch_is_lower_and_wider():
    base = {"image_size": {"width": 300, "height": 400}, "seed": 21}
    idle = bbox(render_image({**base, "prompt": GLITCH + " Pose: standing"}))
    jump = bbox(render_image({**base, "prompt": GLITCH + " Pose: jumping"}))
    crouch = bbox(render_image({**base, "prompt": GLITCH + " Pose: crouching"}))
    assert jump[3] < idle[3] - 10  # feet off the baseline
    assert crouch[3] - crouch[1] < (idle[3] - idle[1]) * 0.85
    assert crouch[2] - crouch[0] > idle[2] - idle[0]
    assert abs(crouch[3] - idle[3]) <= 3  # both stand on the same ground line


@pytest.mark.parametrize("size", [(144, 256), (256, 144), (200, 200)])
def test_every_pose_and_view_fits_the_canvas(size):
    seen = set()
    poses = ("standing", "running", "jumping", "waving", "crouching", "sitting", "attack", "kick", "arms raised",
             "walking", "hopping, arms spread wide", "kneeling", "lying down", "sitting cross-legged", "hands on hips", "one fist raised")
    for who in (GLITCH, RIVET):
        for pose in poses:
            for view in (", front view", ", side view", ", back view"):
                image = render_image({"prompt": f"{who} Pose: {pose}{view}", "image_size": {"width": size[0], "height": size[1]}, "seed": 8})
                assert set(map(tuple, border(image))) == {(255, 255, 255)}, (pose, view)
                x0, y0, x1, y1 = bbox(image)
                least = 0.36 if pose == "lying down" else 0.4  # drawn at the standing figure's scale
                assert (y1 - y0) > least * size[1] or (x1 - x0) > least * size[0], (pose, view)
                seen.add(png(image))
    assert len(seen) == 2 * len(poses) * 3


def test_close_up_fills_the_frame_with_the_head():
    image = render_image({"prompt": "close-up portrait, hair #C8A24A", "image_size": SMALL, "seed": 2})
    x0, y0, x1, y1 = bbox(image)
    assert y1 == image.height  # cropped at the chest
    assert count_near(image, (200, 162, 74), 4) > 0.05 * image.width * image.height


@pytest.mark.parametrize("prompt", [GLITCH + " Pose: running", rivet(RIVET_POSES["repair"])])
def test_a_1024_image_renders_fast(prompt):
    args = {"prompt": prompt, "image_size": "square_hd", "seed": 1}
    render_image(args)
    best = min(_timed(lambda: render_image(args)) for _ in range(3))
    assert best < 1.0, f"{best:.2f} s"  # about 0.15 s on one core; generous for busy CI machines


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(InvalidInput, match="arguments.seed"):
        render_image({"prompt": "x", "seed": "42"})
    with pytest.raises(InvalidInput, match="output_format"):
        render_request("fal-ai/flux/dev", {"prompt": "x", "image_size": SMALL, "output_format": "gif"})
    with pytest.raises(InvalidInput, match="image_size.width"):
        render_image({"prompt": "x", "image_size": {"width": 0, "height": 10}})
    with pytest.raises(InvalidInput, match="decoded input images"):
        render_request("fal-ai/flux-2/flash/edit", {"prompt": "x", "image_urls": ["https://x/y.png"]})


# ---------------------------------------------------------------- LoRA
def test_train_lora_recovers_palette_parts_and_trigger(zorp_lora):
    import safetensors.numpy

    data, config = zorp_lora
    tensors = safetensors.numpy.load(data)
    assert tensors["palette"].dtype == np.float32 and tensors["palette"].shape[1] == 3
    assert tensors["weights"].shape == (tensors["palette"].shape[0],)
    assert tensors["proportions"].shape == (3,)
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8 : 8 + n])["__metadata__"]
    assert meta["format"] == LORA_FORMAT and meta["renderer"] == RENDERER_ID
    assert (meta["trigger_word"], meta["steps"], meta["image_count"]) == ("zorp_char", "1000", "6")

    palette = tensors["palette"] * 255
    for colour in ((224, 176, 64), (32, 96, 192), (255, 20, 147), (96, 104, 112)):
        assert np.abs(palette - colour).max(axis=1).min() <= 10, colour
    lora = load_lora(data)
    expected = {"hair": (224, 176, 64), "outfit": (32, 96, 192), "accent": (255, 20, 147), "trim": (96, 104, 112)}
    for part, colour in expected.items():
        assert max(abs(a - b) for a, b in zip(lora.parts[part], colour)) <= 10, part
    assert lora.trigger_word == "zorp_char" and lora.strength > 0.99
    assert config["trigger_word"] == "zorp_char" and config["image_count"] == 6
    json.dumps(config)  # the config_file is JSON


def test_train_lora_is_deterministic_and_takes_the_trigger_word_given():
    dataset = dataset_zip(ZORP, ["standing", "waving"])
    a, _ = train_lora(dataset, steps=200, learning_rate=1e-4, trigger_word="ZRP")
    b, _ = train_lora(dataset, steps=200, learning_rate=1e-4, trigger_word="ZRP")
    assert a == b
    assert load_lora(a).trigger_word == "ZRP"
    _, config = train_lora(dataset, steps=10, learning_rate=5e-5, default_caption="zorp_char, a girl")
    assert config["trigger_word"] == "zorp_char" and config["strength"] < 0.1  # barely trained


def test_lora_with_trigger_word_draws_the_learned_character(zorp_lora):
    lora = load_lora(zorp_lora[0])
    args = {"prompt": "zorp_char, standing, white background", "image_size": SMALL, "seed": 77}
    with_lora = render_image(args, loras=[(lora, 1.0)])
    without = render_image(args)
    outfit = lora.parts["outfit"]
    assert count_near(with_lora, outfit, 8) > 1000
    assert count_near(without, outfit, 8) < 10  # at most a few resampling fringe pixels
    assert count_near(with_lora, lora.parts["hair"], 8) > 100
    untriggered = render_image({**args, "prompt": "a girl, standing, white background"}, loras=[(lora, 1.0)])
    assert count_near(untriggered, outfit, 8) < count_near(with_lora, outfit, 8) / 10
    assert png(render_image(args, loras=[(lora, 0.0)])) == png(without)


def test_lora_learns_traits_from_captions():
    from fal_assets.render.engine import resolve_look

    dataset = dataset_zip(GLITCH, ["standing", "running", "waving"], captions="glitch_char, girl, high ponytail, goggles, katana")
    data, config = train_lora(dataset, steps=1000, learning_rate=5e-5)
    lora = load_lora(data)
    assert lora.traits == {"hair_style": "ponytail", "accessory": "sword", "visor": "1"}
    assert config["traits"] == lora.traits
    look = resolve_look(parse_prompt("glitch_char, running"), 123, 0, [(lora, 1.0)])
    assert (look.hair_style, look.accessory, look.visor) == ("ponytail", "sword", True)
    look = resolve_look(parse_prompt("glitch_char, bald, running"), 123, 0, [(lora, 1.0)])
    assert look.hair_style == "bald"  # the prompt wins over the LoRA
    plain = resolve_look(parse_prompt("a girl running"), 123, 0, [(lora, 1.0)])  # untriggered: too weak
    assert plain.visor is False


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"this is not a zip", "not a zip archive"),
        (b"", "not a zip archive"),
    ],
)
def test_invalid_dataset_zip_is_a_clear_error(payload, message):
    with pytest.raises(InvalidInput, match=message):
        train_lora(payload, steps=100, learning_rate=1e-4)


def test_dataset_without_images_or_with_a_broken_image():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(InvalidInput, match="holds no images"):
        train_lora(buffer.getvalue(), steps=100, learning_rate=1e-4)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("broken.png", b"\x89PNG not really")
    with pytest.raises(InvalidInput, match="broken.png"):
        train_lora(buffer.getvalue(), steps=100, learning_rate=1e-4)
    with pytest.raises(InvalidInput, match="steps"):
        train_lora(dataset_zip(ZORP, ["standing"]), steps=0, learning_rate=1e-4)


def test_load_lora_rejects_other_files():
    import safetensors.numpy

    with pytest.raises(InvalidInput, match="not a safetensors file"):
        load_lora(b"garbage")
    foreign = safetensors.numpy.save({"lora_A": np.zeros((2, 2), np.float32)}, metadata={"format": "pt"})
    with pytest.raises(InvalidInput, match="format 'pt'"):
        load_lora(foreign)


# ---------------------------------------------------------------- edits
def test_edit_recolours_and_swaps_background_keeping_the_composition():
    source = render_image({"prompt": ZORP + ", standing", "image_size": {"width": 240, "height": 320}, "seed": 1})
    args = {"prompt": "make the outfit #00C060, plain black background", "image_urls": ["data:image/png;base64,"], "output_format": "png"}
    (data, ct), = render_request("fal-ai/flux-2/flash/edit", args, inputs=[source])
    edited = Image.open(io.BytesIO(data))
    assert ct == "image/png" and edited.size == source.size  # match_input
    assert set(map(tuple, border(edited.convert("RGB")))) == {(0, 0, 0)}
    before, after = figure_of(source, max_side=None).mask, figure_of(edited, max_side=None).mask
    assert (before & after).sum() / (before | after).sum() > 0.95
    assert count_near(source, (32, 96, 192), 6) > 1000 and count_near(edited, (32, 96, 192), 6) == 0
    assert count_near(edited, (0, 192, 96), 6) > 1000
    assert count_near(edited, (224, 176, 64), 6) > 100  # the hair is untouched


def test_edit_named_recolour_and_requested_size():
    source = render_image({"prompt": ZORP + ", standing", "image_size": {"width": 240, "height": 320}, "seed": 1})
    edited = render_image({"prompt": "Change the neon glow color from pink to cyan", "image_size": {"width": 480, "height": 640}}, inputs=[source])
    assert edited.size == (480, 640)
    assert count_near(edited, (255, 20, 147), 10) < count_near(edited, (0, 255, 255), 10) / 5
    assert count_near(edited, (242, 195, 160), 8) > 100  # skin is not "pink"


def test_edit_asking_for_a_pose_redraws_the_same_character():
    source = render_image({"prompt": ZORP + ", standing", "image_size": {"width": 240, "height": 320}, "seed": 1})
    edited = render_image({"prompt": "same character, jumping", "seed": 1}, inputs=[source])
    assert edited.size == source.size
    assert count_near(edited, (32, 96, 192), 10) > 500 and count_near(edited, (224, 176, 64), 10) > 50
    assert bbox(edited)[3] < bbox(source)[3]


def test_renderer_label():
    assert RENDERER_INFO == {"backend": "local", "renderer": RENDERER_ID}
    assert RENDERER_ID == "fal-assets-local/2"  # /2: identity from the prompt, not the seed; robots; more poses
