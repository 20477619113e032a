"""The seeds' own calls: accepted where they are right, rejected with a useful message where not.

Arguments are copied from /work/shared/seeds as written (variables replaced by example
values of the same kind).
"""

from __future__ import annotations

import pytest
from samples import GLITCH

from fal_assets.catalog import load_catalog
from fal_assets.errors import InvalidInput
from fal_assets.pricing import ENV_OVERRIDE, estimate, load_prices
from fal_assets.validation import validate, validate_request

pose_desc = "crouched, katana drawn"
dataset_url = "https://v3.fal.media/files/zebra/glitch_dataset.zip"  # fal_client.upload(...)
lora_url = "https://v3.fal.media/files/koala/glitch_lora.safetensors"  # training["diffusers_lora_file"]["url"]
ref_url = "https://v3.fal.media/files/lion/glitch_base.jpeg"  # fal_client.upload(...)

SEED_000_WORKFLOW_1 = (
    "fal-ai/flux-2-flex",
    {
        "prompt": f"{GLITCH}\nPose: {pose_desc}",
        "guidance_scale": 5.5,
        "num_inference_steps": 35,
        "image_size": "portrait_4_3",
        "output_format": "png",
        "seed": 42,  # pin seed for reproducible batches
    },
)
SEED_000_WORKFLOW_2 = (
    "fal-ai/flux-2-pro",
    {
        "prompt": f"{GLITCH}\nPose: excited, arms raised, big smile",
        "image_size": "portrait_4_3",
        "output_format": "png",
        "seed": 42,
    },
)
SEED_000_TRAINER = (
    "fal-ai/flux-2-trainer",
    {
        "image_data_url": dataset_url,
        "steps": 1000,
        "learning_rate": 0.00005,
        "default_caption": "glitch_char, Pixar 3D cyberpunk girl, pink neon armor, digital goggles",
        "output_lora_format": "fal",
    },
)
SEED_000_STEP_3 = (
    "fal-ai/flux/dev",
    {
        "prompt": "glitch_char, excited pose, arms raised, smiling, full body, white background",
        "lora_config": {"path": lora_url, "scale": 1.0},
        "guidance_scale": 3.5,
        "num_inference_steps": 28,
        "image_size": "portrait_4_3",
    },
)
SEED_000_WORKFLOW_4 = (
    "fal-ai/flux-pro/kontext",
    {
        "image_url": ref_url,
        "prompt": "Change the neon glow color from pink to cyan/teal",
        "guidance_scale": 3.5, "num_inference_steps": 28,
    },
)

# seed 002, the FLUX 2 Lora call
SEED_002_LORA = (
    "fal-ai/flux-2/lora",
    {
        "prompt": "a photo of TOK on a sunny windowsill",
        "loras": [
            {
                "path": "https://your-cdn.com/lora.safetensors",
                "scale": 1,
            }
        ],
    },
)

# seed 003, the submit input and the schema's full input example
SEED_003_EDIT = (
    "fal-ai/flux-2/lora/edit",
    {
        "prompt": "Make this donut realistic",
        "image_urls": ["https://storage.googleapis.com/falserverless/example_inputs/flux2_dev_lora_edit_input.png"],
    },
)
SEED_003_EDIT_FULL = (
    "fal-ai/flux-2/lora/edit",
    {
        "prompt": "Make this donut realistic",
        "guidance_scale": 2.5,
        "num_inference_steps": 28,
        "image_size": {"height": 1152, "width": 2016},
        "num_images": 1,
        "acceleration": "regular",
        "enable_safety_checker": True,
        "output_format": "png",
        "image_urls": ["https://storage.googleapis.com/falserverless/example_inputs/flux2_dev_lora_edit_input.png"],
        "loras": [],
    },
)

# seed 004, generate_with_retry and edit_image
prompt = "A red fox in fresh snow, golden hour"
image_url = "https://storage.googleapis.com/example/input.png"
guidance_scale = 2.5
SEED_004_FLASH = ("fal-ai/flux-2/flash", {"prompt": prompt})
SEED_004_FLASH_EDIT = (
    "fal-ai/flux-2/flash/edit",
    {
        "prompt": prompt,
        "image_urls": [image_url],
        "guidance_scale": guidance_scale,
        "enable_safety_checker": True,
    },
)

# seed 001, the curl body it sends to {MODEL}
SEED_001_CURL = {"prompt": "...", "image_size": "portrait_4_3", "num_images": 1}

@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch):
    monkeypatch.delenv(ENV_OVERRIDE, raising=False)


RIGHT = {
    "seed 000 workflow 1 (flex)": SEED_000_WORKFLOW_1,
    "seed 000 workflow 2 (pro)": SEED_000_WORKFLOW_2,
    "seed 000 trainer step 2": SEED_000_TRAINER,
    "seed 002 flux-2 lora": SEED_002_LORA,
    "seed 003 lora edit": SEED_003_EDIT,
    "seed 003 lora edit, full example": SEED_003_EDIT_FULL,
    "seed 004 flash": SEED_004_FLASH,
    "seed 004 flash edit": SEED_004_FLASH_EDIT,
    "seed 004 flash, seed 000's id": ("fal-ai/flux-2-flash", SEED_004_FLASH[1]),
    "seed 004 flash edit, seed 000's id": ("fal-ai/flux-2-flash/edit", SEED_004_FLASH_EDIT[1]),
}


@pytest.mark.parametrize("endpoint, arguments", list(RIGHT.values()), ids=list(RIGHT))
def test_right_seed_calls_are_accepted_as_written(endpoint, arguments):
    normalised = validate(endpoint, arguments)
    assert set(normalised) == set(arguments)
    request = {"endpoint": endpoint, "arguments": arguments}
    assert validate_request(request, "seed.json")[1] == normalised
    # priced as written, or (no price in the seeds) refused with a way to supply one
    canonical = load_catalog().canonical(endpoint)
    if canonical in load_prices().unpriced:
        with pytest.raises(InvalidInput) as err:
            estimate(endpoint, arguments)
        assert [p.field for p in err.value.problems] == ["price"]
    else:
        assert estimate(endpoint, arguments).cost_usd > 0


@pytest.mark.parametrize("model", ["fal-ai/flux/dev", "fal-ai/flux/schnell", "fal-ai/flux-lora", "fal-ai/flux-pro/v1.1"])
def test_seed_001_curl_body_fits_flux1_models(model):
    assert validate(model, SEED_001_CURL) == SEED_001_CURL


def test_seed_001_curl_body_on_flux_2_pro_is_told_about_num_images():
    with pytest.raises(InvalidInput) as err:
        validate("fal-ai/flux-2-pro", SEED_001_CURL)
    assert [p.field for p in err.value.problems] == ["arguments.num_images"]


def test_seed_000_step_3_lora_on_flux_dev_is_rejected_with_the_fix():
    endpoint, arguments = SEED_000_STEP_3
    with pytest.raises(InvalidInput) as err:
        validate(endpoint, arguments)
    (problem,) = err.value.problems
    assert problem.where == "fal-ai/flux/dev"
    assert problem.field == "arguments.lora_config"
    message = problem.message
    assert "fal-ai/flux/dev takes no LoRA" in message
    assert "FLUX.2 trainer LoRAs go to fal-ai/flux-2/lora as loras: [{path, scale}], at most 3" in message
    assert "FLUX.1 LoRAs go to fal-ai/flux-lora" in message


def test_seed_000_step_3_done_right_is_accepted():
    _, arguments = SEED_000_STEP_3
    fixed = {k: v for k, v in arguments.items() if k != "lora_config"}
    fixed["loras"] = [arguments["lora_config"]]
    assert validate("fal-ai/flux-2/lora", fixed)["loras"] == [{"path": lora_url, "scale": 1.0}]


def test_seed_000_workflow_4_kontext_is_right_but_for_its_step_count():
    # Seed 001's Kontext [pro] table and fal's Kontext reference have no
    # num_inference_steps (fal-ai/flux-kontext-lora has); fal would ignore it, so the
    # user is told rather than left thinking it did something.
    endpoint, arguments = SEED_000_WORKFLOW_4
    with pytest.raises(InvalidInput) as err:
        validate(endpoint, arguments)
    (problem,) = err.value.problems
    assert problem.field == "arguments.num_inference_steps"
    assert "fal-ai/flux-kontext-lora" in problem.message
    rest = {k: v for k, v in arguments.items() if k != "num_inference_steps"}
    assert validate(endpoint, rest) == rest
    assert estimate(endpoint, rest).cost_usd == 0.04


def test_seed_000_flex_table_image_urls_belong_on_flex_edit():
    # seed 000's flex table lists image_urls; seed 001 puts editing on the /edit endpoint
    with pytest.raises(InvalidInput) as err:
        validate("fal-ai/flux-2-flex", {"prompt": "p", "image_urls": [ref_url]})
    assert "fal-ai/flux-2-flex/edit" in err.value.problems[0].message
    validate("fal-ai/flux-2-flex/edit", {"prompt": "p", "image_urls": [ref_url]})


def test_seed_000_best_practices_fit_flex():
    # "Test at low steps first (10-15)", "enable_prompt_expansion: false", safety_tolerance "2"
    validate(
        "fal-ai/flux-2-flex",
        {"prompt": "p", "num_inference_steps": 12, "enable_prompt_expansion": False, "safety_tolerance": "2"},
    )


def test_seed_000_lora_scale_advice_fits_the_allowed_range():
    # "scale 0.5-1.5 safe range; >1.5 degrades quality": allowed, if unwise
    for scale in (0.5, 1.5, 2.0):
        validate("fal-ai/flux-2/lora", {"prompt": "glitch_char", "loras": [{"path": lora_url, "scale": scale}]})
