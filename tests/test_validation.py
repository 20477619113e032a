"""Request validation: normalisation, one clear message per problem, request files."""

from __future__ import annotations

import pytest

from fal_assets.errors import InvalidInput
from fal_assets.validation import validate, validate_request

LORA = "https://cdn.example/glitch.safetensors"
IMG = "https://cdn.example/ref.png"


# -- accepted and normalised ------------------------------------------------------------


def test_returns_copy_without_defaults():
    args = {"prompt": "a cat"}
    out = validate("fal-ai/flux-2-flex", args)
    assert out == {"prompt": "a cat"}  # no defaults filled in
    assert out is not args


def test_size_text_becomes_width_height():
    out = validate("fal-ai/flux-2-pro", {"prompt": "p", "image_size": "1280x720"})
    assert out["image_size"] == {"width": 1280, "height": 720}


def test_presets_stay_names():
    assert validate("fal-ai/flux-2-pro", {"prompt": "p", "image_size": "portrait_4_3"})["image_size"] == "portrait_4_3"


def test_integral_floats_become_ints():
    out = validate(
        "fal-ai/flux-2-flex",
        {"prompt": "p", "num_inference_steps": 35.0, "seed": 42.0, "image_size": {"width": 768.0, "height": 1024}},
    )
    assert out["num_inference_steps"] == 35 and type(out["num_inference_steps"]) is int
    assert type(out["seed"]) is int
    assert out["image_size"] == {"width": 768, "height": 1024}
    assert all(type(v) is int for v in out["image_size"].values())


def test_numbers_keep_their_value():
    out = validate("fal-ai/flux-2-flex", {"prompt": "p", "guidance_scale": 5})
    assert out["guidance_scale"] == 5


def test_digit_enum_given_as_int_becomes_string():
    out = validate("fal-ai/flux-2-pro", {"prompt": "p", "safety_tolerance": 5})
    assert out["safety_tolerance"] == "5"


def test_key_order_is_irrelevant():
    a = {"prompt": "p", "seed": 1, "image_size": "square_hd", "output_format": "png"}
    b = dict(reversed(list(a.items())))
    assert validate("fal-ai/flux-2-pro", a) == validate("fal-ai/flux-2-pro", b)


def test_aliases_validate_like_their_endpoint():
    args = {"prompt": "p", "image_size": "square_hd", "num_images": 2}
    assert validate("fal-ai/flux-2-flash", args) == validate("fal-ai/flux-2/flash", args)


def test_loras_are_copied_and_checked():
    loras = [{"path": LORA, "scale": 1}, {"path": "owner/repo", "scale": 0.7}, {"path": LORA}]
    out = validate("fal-ai/flux-2/lora", {"prompt": "TOK", "loras": loras})
    assert out["loras"] == loras
    assert out["loras"][0] is not loras[0]


def test_empty_lora_list_is_fine():
    assert validate("fal-ai/flux-2/lora/edit", {"prompt": "p", "image_urls": [IMG], "loras": []})["loras"] == []


def test_bounds_are_inclusive():
    validate("fal-ai/flux-2/lora", {"prompt": "p", "image_size": {"width": 512, "height": 2048}})
    validate("fal-ai/flux-2-pro", {"prompt": "p", "image_size": {"width": 14142, "height": 64}})
    validate("fal-ai/flux-2-flex", {"prompt": "p", "guidance_scale": 1.5, "num_inference_steps": 50})
    validate("fal-ai/flux-lora", {"prompt": "p", "loras": [{"path": LORA, "scale": 4}]})
    validate("fal-ai/flux-2/lora/edit", {"prompt": "p", "image_urls": [IMG] * 3})


# -- the bad-input corpus: each request has one problem and one clear message -----------

BAD = [
    # (id, endpoint, arguments, field, texts the message must contain)
    ("pro-guidance", "fal-ai/flux-2-pro", {"prompt": "p", "guidance_scale": 3.5},
     "arguments.guidance_scale", ["zero-config", "fal-ai/flux-2-flex"]),
    ("pro-steps", "fal-ai/flux-2-pro", {"prompt": "p", "num_inference_steps": 28},
     "arguments.num_inference_steps", ["zero-config", "fal-ai/flux-2-flex"]),
    ("v11-guidance", "fal-ai/flux-pro/v1.1", {"prompt": "p", "guidance_scale": 3.5},
     "arguments.guidance_scale", ["zero-config", "fal-ai/flux/dev"]),
    ("pro-num-images", "fal-ai/flux-2-pro", {"prompt": "p", "num_images": 2},
     "arguments.num_images", ["does not take num_images", "one request per image"]),
    ("flex-guidance-high", "fal-ai/flux-2-flex", {"prompt": "p", "guidance_scale": 12},
     "arguments.guidance_scale", ["out of range", "1.5 to 10"]),
    ("flex-steps-low", "fal-ai/flux-2-flex", {"prompt": "p", "num_inference_steps": 1},
     "arguments.num_inference_steps", ["out of range", "2 to 50"]),
    ("steps-fraction", "fal-ai/flux/dev", {"prompt": "p", "num_inference_steps": 28.5},
     "arguments.num_inference_steps", ["not a whole number", "1 to 50"]),
    ("steps-text", "fal-ai/flux/dev", {"prompt": "p", "num_inference_steps": "28"},
     "arguments.num_inference_steps", ["must be a whole number", "string"]),
    ("guidance-bool", "fal-ai/flux/dev", {"prompt": "p", "guidance_scale": True},
     "arguments.guidance_scale", ["must be a number", "boolean"]),
    ("sync-mode-text", "fal-ai/flux/dev", {"prompt": "p", "sync_mode": "yes"},
     "arguments.sync_mode", ["true or false"]),
    ("format-gif", "fal-ai/flux-2-pro", {"prompt": "p", "output_format": "gif"},
     "arguments.output_format", ["'gif' is not allowed", "jpeg, png"]),
    ("webp-on-pro", "fal-ai/flux-2-pro", {"prompt": "p", "output_format": "webp"},
     "arguments.output_format", ["not allowed", "jpeg, png"]),
    ("safety-6-on-pro", "fal-ai/flux-2-pro", {"prompt": "p", "safety_tolerance": "6"},
     "arguments.safety_tolerance", ["not allowed", "1, 2, 3, 4, 5"]),
    ("acceleration", "fal-ai/flux-2/lora", {"prompt": "p", "acceleration": "turbo"},
     "arguments.acceleration", ["not allowed", "none, regular, high"]),
    ("preset-unknown", "fal-ai/flux-2-flex", {"prompt": "p", "image_size": "portrait_3_2"},
     "arguments.image_size", ["not a preset", "portrait_4_3", "landscape_16_9"]),
    ("lora-width-big", "fal-ai/flux-2/lora", {"prompt": "p", "image_size": {"width": 4096, "height": 1024}},
     "arguments.image_size.width", ["4096", "512 to 2048"]),
    ("lora-height-small", "fal-ai/flux-2/lora", {"prompt": "p", "image_size": "1024x256"},
     "arguments.image_size.height", ["256", "512 to 2048"]),
    ("pro-too-wide", "fal-ai/flux-2-pro", {"prompt": "p", "image_size": {"width": 15000, "height": 1000}},
     "arguments.image_size.width", ["15000", "at most 14142"]),
    ("size-missing-height", "fal-ai/flux-2-flex", {"prompt": "p", "image_size": {"width": 1000}},
     "arguments.image_size.height", ["required"]),
    ("size-extra-key", "fal-ai/flux-2-flex", {"prompt": "p", "image_size": {"width": 1000, "height": 800, "dpi": 72}},
     "arguments.image_size.dpi", ["width and height"]),
    ("too-many-loras", "fal-ai/flux-2/lora", {"prompt": "p", "loras": [{"path": LORA}] * 4},
     "arguments.loras", ["too many LoRAs", "at most 3"]),
    ("lora-scale-high", "fal-ai/flux-lora", {"prompt": "p", "loras": [{"path": LORA, "scale": 5}]},
     "arguments.loras[0].scale", ["out of range", "0 to 4"]),
    ("lora-scale-negative", "fal-ai/flux-2/lora", {"prompt": "p", "loras": [{"path": LORA, "scale": -1}]},
     "arguments.loras[0].scale", ["out of range", "0 to 4"]),
    ("lora-no-path", "fal-ai/flux-2/lora", {"prompt": "p", "loras": [{"path": LORA}, {"scale": 1.0}]},
     "arguments.loras[1].path", ["required", "LoRA file URL"]),
    ("lora-not-list", "fal-ai/flux-2/lora", {"prompt": "p", "loras": {"path": LORA, "scale": 1.0}},
     "arguments.loras", ["must be a list", "{path, scale}"]),
    ("lora-config-on-flux2-lora", "fal-ai/flux-2/lora", {"prompt": "p", "lora_config": {"path": LORA}},
     "arguments.lora_config", ["loras: [{path, scale}]", "at most 3"]),
    ("lora-config-on-dev", "fal-ai/flux/dev", {"prompt": "p", "lora_config": {"path": LORA, "scale": 1.0}},
     "arguments.lora_config", ["takes no LoRA", "fal-ai/flux-2/lora", "loras: [{path, scale}]", "at most 3", "fal-ai/flux-lora"]),
    ("loras-on-pro", "fal-ai/flux-2-pro", {"prompt": "p", "loras": [{"path": LORA}]},
     "arguments.loras", ["takes no LoRA", "fal-ai/flux-2/lora"]),
    ("kontext-image-urls", "fal-ai/flux-pro/kontext", {"prompt": "p", "image_urls": [IMG]},
     "arguments.image_urls", ["takes image_url", "one URL string"]),
    ("kontext-url-list", "fal-ai/flux-pro/kontext", {"prompt": "p", "image_url": [IMG]},
     "arguments.image_url", ["one image", "not a list"]),
    ("flex-edit-image-url", "fal-ai/flux-2-flex/edit", {"prompt": "p", "image_url": IMG},
     "arguments.image_url", ["takes image_urls", "list of URL strings"]),
    ("flex-image-urls", "fal-ai/flux-2-flex", {"prompt": "p", "image_urls": [IMG]},
     "arguments.image_urls", ["takes no input images", "fal-ai/flux-2-flex/edit"]),
    ("image-urls-string", "fal-ai/flux-2/flash/edit", {"prompt": "p", "image_urls": IMG},
     "arguments.image_urls", ["must be a list of URL strings"]),
    ("too-many-images", "fal-ai/flux-2/lora/edit", {"prompt": "p", "image_urls": [IMG] * 4},
     "arguments.image_urls", ["too many input images", "at most 3"]),
    ("no-images", "fal-ai/flux-2-flex/edit", {"prompt": "p", "image_urls": []},
     "arguments.image_urls", ["at least 1"]),
    ("image-url-empty", "fal-ai/flux-2-flex/edit", {"prompt": "p", "image_urls": [IMG, ""]},
     "arguments.image_urls[1]", ["must be a URL"]),
    ("edit-missing-images", "fal-ai/flux-2/flash/edit", {"prompt": "p"},
     "arguments.image_urls", ["is required", "list of URL strings"]),
    ("missing-prompt", "fal-ai/flux-2-pro", {"image_size": "square_hd"},
     "arguments.prompt", ["is required", "non-empty string"]),
    ("empty-prompt", "fal-ai/flux-2-flex", {"prompt": "   "},
     "arguments.prompt", ["must not be empty"]),
    ("prompt-not-text", "fal-ai/flux-2-flex", {"prompt": ["a", "b"]},
     "arguments.prompt", ["must be a non-empty string", "a list"]),
    ("kontext-image-size", "fal-ai/flux-pro/kontext", {"prompt": "p", "image_url": IMG, "image_size": "square_hd"},
     "arguments.image_size", ["aspect_ratio", "16:9"]),
    ("kontext-bad-ratio", "fal-ai/flux-pro/kontext", {"prompt": "p", "image_url": IMG, "aspect_ratio": "5:4"},
     "arguments.aspect_ratio", ["not allowed", "21:9", "9:21"]),
    ("kontext-lora-aspect", "fal-ai/flux-kontext-lora", {"prompt": "p", "image_url": IMG, "aspect_ratio": "1:1"},
     "arguments.aspect_ratio", ["resolution_mode", "match_input"]),
    ("trainer-no-data", "fal-ai/flux-2-trainer", {"steps": 1000},
     "arguments.image_data_url", ["is required"]),
    ("trainer-format", "fal-ai/flux-2-trainer", {"image_data_url": "u", "output_lora_format": "kohya"},
     "arguments.output_lora_format", ["not allowed", "fal, comfy"]),
    ("trainer-zero-lr", "fal-ai/flux-2-trainer", {"image_data_url": "u", "learning_rate": 0},
     "arguments.learning_rate", ["out of range", "> 0"]),
    ("trainer-zero-steps", "fal-ai/flux-2-trainer", {"image_data_url": "u", "steps": 0},
     "arguments.steps", ["out of range", ">= 1"]),
    ("typo", "fal-ai/flux-2/lora", {"prompt": "p", "num_imges": 2},
     "arguments.num_imges", ["did you mean num_images"]),
    ("klein-steps", "fal-ai/flux-2-klein/9b", {"prompt": "p", "num_inference_steps": 20},
     "arguments.num_inference_steps", ["out of range", "4 to 8"]),
    ("klein-unknown", "fal-ai/flux-2-klein/4b", {"prompt": "p", "output_format": "png"},
     "arguments.output_format", ["does not take", "incomplete", "catalog.yaml"]),
    ("nan", "fal-ai/flux-2-flex", {"prompt": "p", "guidance_scale": float("nan")},
     "arguments.guidance_scale", ["not a finite number"]),
    ("seed-above-2-32", "fal-ai/flux-2/lora", {"prompt": "p", "seed": 2**32},
     "arguments.seed", ["out of range", "0 to 4294967295"]),
    ("seed-huge", "fal-ai/flux-2-pro", {"prompt": "p", "seed": 10**30},
     "arguments.seed", ["out of range", "0 to 4294967295"]),
    ("seed-negative", "fal-ai/flux/dev", {"prompt": "p", "seed": -1},
     "arguments.seed", ["out of range", "0 to 4294967295"]),
]


@pytest.mark.parametrize("endpoint, arguments, field, texts", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_has_one_clear_message(endpoint, arguments, field, texts):
    with pytest.raises(InvalidInput) as err:
        validate(endpoint, arguments)
    problems = err.value.problems
    assert len(problems) == 1, err.value.lines()
    (problem,) = problems
    assert problem.where == endpoint
    assert problem.field == field
    for text in texts:
        assert text in problem.message, problem.message
    assert "\n" not in str(problem)


def test_unknown_endpoint():
    with pytest.raises(InvalidInput) as err:
        validate("fal-ai/flux-2-prp", {"prompt": "p"})
    (problem,) = err.value.problems
    assert problem.field == "endpoint"
    assert "fal-ai/flux-2-pro" in problem.message


def test_arguments_must_be_a_mapping():
    with pytest.raises(InvalidInput) as err:
        validate("fal-ai/flux-2-pro", ["prompt"])
    assert err.value.problems[0].field == "arguments"


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidInput) as err:
        validate(
            "fal-ai/flux-2-pro",
            {"prompt": "", "guidance_scale": 5, "num_inference_steps": 30, "image_size": "99x99999", "output_format": "bmp"},
        )
    fields = [p.field for p in err.value.problems]
    assert sorted(fields) == sorted(
        ["arguments.prompt", "arguments.guidance_scale", "arguments.num_inference_steps",
         "arguments.image_size.height", "arguments.output_format"]
    )
    assert len(str(err.value).splitlines()) == 5


def test_wrong_image_key_is_not_also_reported_missing():
    with pytest.raises(InvalidInput) as err:
        validate("fal-ai/flux-pro/kontext", {"prompt": "p", "image_urls": [IMG]})
    assert [p.field for p in err.value.problems] == ["arguments.image_urls"]


def test_zero_config_message_lists_same_family_first():
    with pytest.raises(InvalidInput) as err:
        validate("fal-ai/flux-2-pro", {"prompt": "p", "guidance_scale": 2})
    message = err.value.problems[0].message
    assert "fal-ai/flux/dev" not in message  # FLUX.1 endpoints only when no FLUX.2 one takes it
    assert "fal-ai/flux-2/lora" in message


# -- request files -----------------------------------------------------------------------


def test_validate_request_returns_canonical_endpoint_and_arguments():
    endpoint, args = validate_request(
        {"endpoint": "fal-ai/flux-2-flash", "arguments": {"prompt": "p", "image_size": "800x600"}}, "req.json"
    )
    assert endpoint == "fal-ai/flux-2/flash"
    assert args == {"prompt": "p", "image_size": {"width": 800, "height": 600}}


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"arguments": {"prompt": "p"}}, ["endpoint"]),
        ({"endpoint": "fal-ai/flux-2-pro"}, ["arguments"]),
        ({"endpoint": "fal-ai/flux-2-pro", "arguments": {"prompt": "p"}, "priority": 1}, ["priority"]),
        ({"endpoint": 7, "arguments": {"prompt": "p"}}, ["endpoint"]),
        ({"endpoint": "fal-ai/flux-2-pro", "arguments": "prompt=p"}, ["arguments"]),
        ({}, ["endpoint", "arguments"]),
    ],
)
def test_validate_request_top_level_problems(body, fields):
    with pytest.raises(InvalidInput) as err:
        validate_request(body, "jobs/a.json")
    assert sorted(p.field for p in err.value.problems) == sorted(fields)
    assert all(p.where == "jobs/a.json" for p in err.value.problems)


def test_validate_request_locates_argument_problems_in_the_file():
    with pytest.raises(InvalidInput) as err:
        validate_request({"endpoint": "fal-ai/flux-2-pro", "arguments": {"prompt": "p", "guidance_scale": 3}, "x": 1}, "a.json")
    lines = err.value.lines()
    assert "a.json: x: unknown key; a request has only endpoint and arguments" in lines
    assert any(line.startswith("a.json: fal-ai/flux-2-pro: arguments.guidance_scale: ") for line in lines)


def test_validate_request_unknown_endpoint_without_arguments():
    with pytest.raises(InvalidInput) as err:
        validate_request({"endpoint": "fal-ai/nope"}, "b.json")
    fields = sorted(p.field for p in err.value.problems)
    assert fields == ["arguments", "endpoint"]


def test_validate_request_needs_a_mapping():
    with pytest.raises(InvalidInput) as err:
        validate_request(["fal-ai/flux-2-pro"], "c.json")
    assert "c.json" in str(err.value)
