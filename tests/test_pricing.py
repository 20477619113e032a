"""Prices as data with rules: every rule, every price example in the seeds, overrides."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from decimal import Decimal

import pytest

from fal_assets.catalog import load_catalog
from fal_assets.errors import InvalidInput
from fal_assets.pricing import (
    ENV_OVERRIDE,
    PriceEntry,
    PriceTable,
    estimate,
    load_prices,
    megapixels,
)

IMG = "https://cdn.example/in.png"


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch):
    monkeypatch.delenv(ENV_OVERRIDE, raising=False)


# -- megapixels -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "width, height, mp",
    [
        (1024, 768, 1),  # seed 001: "1024x768 = 1 MP"
        (1024, 1024, 1),  # seed 004
        (768, 1024, 1),  # portrait_4_3, seed 000's poses
        (512, 512, 1),  # rounds up (seed 004's edit input)
        (1025, 1024, 2),  # one pixel row over 1 MP
        (1920, 1080, 2),  # seed 004: 1920x1080 costs 2 MP
        (2048, 2048, 4),
        (1, 1, 1),
    ],
)
def test_megapixels_round_up_per_image(width, height, mp):
    assert megapixels(width, height) == mp


@pytest.mark.parametrize("width, height", [(0, 10), (10, -1), (10.5, 10), (True, 10)])
def test_megapixels_rejects_bad_sides(width, height):
    with pytest.raises(ValueError):
        megapixels(width, height)


# -- seed 000's cost calculator -----------------------------------------------------------

GLITCH = "3D Pixar/Disney animation style character ... Full body visible head to toe."
FLEX_POSE = {  # seed 000 workflow 1
    "prompt": f"{GLITCH}\nPose: waving",
    "guidance_scale": 5.5,
    "num_inference_steps": 35,
    "image_size": "portrait_4_3",
    "output_format": "png",
    "seed": 42,
}
PRO_POSE = {  # seed 000 workflow 2
    "prompt": f"{GLITCH}\nPose: excited, arms raised, big smile",
    "image_size": "portrait_4_3",
    "output_format": "png",
    "seed": 42,
}
TRAINING = {  # seed 000 workflow 3 step 2
    "image_data_url": "https://v3.fal.media/files/glitch_dataset.zip",
    "steps": 1000,
    "learning_rate": 0.00005,
    "default_caption": "glitch_char, Pixar 3D cyberpunk girl, pink neon armor, digital goggles",
    "output_lora_format": "fal",
}
LORA_POSE = {  # seed 000 step 3, sent where a FLUX.2 trainer LoRA belongs
    "prompt": "glitch_char, excited pose, arms raised, smiling, full body, white background",
    "loras": [{"path": "https://v3.fal.media/files/glitch.safetensors", "scale": 1.0}],
    "guidance_scale": 3.5,
    "num_inference_steps": 28,
    "image_size": "portrait_4_3",
}


def test_seed_000_six_flex_poses_cost_30_cents():
    # portrait_4_3 = 768x1024 = 0.75 MP, billed as 1 MP at $0.05
    cost = estimate("fal-ai/flux-2-flex", FLEX_POSE, count=6)
    assert cost.cost_usd == 0.30
    assert cost.per_request_usd == 0.05
    assert (cost.images, cost.billed_mp_out, cost.billed_mp_in) == (6, 6, 0)
    assert cost.output_size == (768, 1024)


def test_seed_000_six_pro_poses_cost_18_cents():
    cost = estimate("fal-ai/flux-2-pro", PRO_POSE, count=6)
    assert cost.cost_usd == 0.18
    assert cost.unit_price == 0.03 and cost.extra_unit_price == 0.015


def test_thousand_step_lora_costs_6_40_at_fals_price():
    # Seed 000 said $8.00 ($0.008/step); fal's page says $0.0064/step, and a real
    # 4000-step run was billed $25.60 (= 4000 x $0.0064).
    cost = estimate("fal-ai/flux-2-trainer", TRAINING)
    assert cost.cost_usd == 6.40
    assert estimate("fal-ai/flux-2-trainer", {**TRAINING, "steps": 4000}).cost_usd == 25.60
    assert (cost.unit, cost.steps, cost.images, cost.output_size) == ("step", 1000, 0, None)


def test_seed_000_six_lora_poses_on_the_right_endpoint():
    # Seed 000 says "~$0.18" for 6 LoRA poses because it prices flux/dev at "~$0.03/img".
    # Its LoRA is a FLUX.2 trainer LoRA, which runs on fal-ai/flux-2/lora at $0.021/MP
    # (fal's page): 6 images x 1 MP x $0.021 = $0.126.
    cost = estimate("fal-ai/flux-2/lora", LORA_POSE, count=6)
    assert cost.cost_usd == 0.126


def test_seed_000_lora_poses_on_flux_dev_would_be_15_cents_not_18():
    # Even on flux/dev (which cannot take the LoRA), seed 001's $0.025/MP gives $0.15,
    # not seed 000's 6 x ~$0.03 = $0.18.
    dev = {k: v for k, v in LORA_POSE.items() if k != "loras"}
    assert estimate("fal-ai/flux/dev", dev, count=6).cost_usd == 0.15


def test_seed_000_whole_lora_pipeline():
    # Seed 000: ~$8.18 = $8.00 training + ~$0.18 poses. At fal's prices (training $0.0064/step,
    # poses on fal-ai/flux-2/lora) the pipeline costs $6.40 + $0.126 = $6.526.
    total = estimate("fal-ai/flux-2-trainer", TRAINING).cost_usd + estimate(
        "fal-ai/flux-2/lora", LORA_POSE, count=6
    ).cost_usd
    assert total == pytest.approx(6.526, abs=1e-9)


# -- seed 001 and 004 examples -------------------------------------------------------------


def test_seed_001_1024x768_is_one_megapixel():
    cost = estimate("fal-ai/flux/dev", {"prompt": "p", "image_size": {"width": 1024, "height": 768}})
    assert cost.billed_mp_out == 1
    assert cost.cost_usd == 0.025


@pytest.mark.parametrize("endpoint", ["fal-ai/flux-2/flash", "fal-ai/flux-2-flash"])
def test_seed_004_flash_1024_square_costs_half_a_cent(endpoint):
    cost = estimate(endpoint, {"prompt": "p", "image_size": {"width": 1024, "height": 1024}})
    assert cost.cost_usd == 0.005
    assert cost.endpoint == "fal-ai/flux-2/flash"


def test_seed_004_flash_1920x1080_costs_a_cent():
    cost = estimate("fal-ai/flux-2/flash", {"prompt": "p", "image_size": "1920x1080"})
    assert (cost.billed_mp_out, cost.cost_usd) == (2, 0.01)


@pytest.mark.parametrize("endpoint", ["fal-ai/flux-2/flash/edit", "fal-ai/flux-2-flash/edit"])
def test_seed_004_flash_edit_bills_input_and_output(endpoint):
    cost = estimate(
        endpoint,
        {"prompt": "p", "image_urls": [IMG], "image_size": {"width": 1024, "height": 1024}},
        input_sizes=[(512, 512)],
    )
    assert (cost.billed_mp_in, cost.billed_mp_out, cost.cost_usd) == (1, 1, 0.01)
    assert cost.assumptions == ()


# -- each rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, expected",
    [
        ("square_hd", 0.03),  # 1 MP: first MP only
        ({"width": 1920, "height": 1080}, 0.045),  # 2 MP: 0.03 + 0.015
        ({"width": 2048, "height": 2048}, 0.075),  # 4 MP: 0.03 + 3 x 0.015
    ],
)
def test_pro_first_megapixel_plus_extra(size, expected):
    assert estimate("fal-ai/flux-2-pro", {"prompt": "p", "image_size": size}).cost_usd == expected


def test_flex_edit_bills_every_input_once_per_request():
    cost = estimate(
        "fal-ai/flux-2-flex/edit",
        {"prompt": "p", "image_urls": [IMG, IMG], "image_size": "landscape_4_3"},
        input_sizes=[(2048, 2048), (512, 512)],
        count=3,
    )
    # per request: 1 MP out + (4 + 1) MP in = 6 MP x $0.05 = $0.30
    assert cost.per_request_usd == 0.30
    assert cost.cost_usd == 0.90
    assert (cost.billed_mp_in, cost.billed_mp_out) == (15, 3)


def test_edit_without_input_sizes_assumes_one_megapixel_and_says_so():
    cost = estimate("fal-ai/flux-2-flex/edit", {"prompt": "p", "image_urls": [IMG, IMG, IMG]})
    assert cost.billed_mp_in == 3
    assert cost.cost_usd == pytest.approx(0.20)
    assert "1 MP" in cost.assumptions[0] and "3 input images" in cost.assumptions[0]
    assert "assumed:" in cost.describe()


def test_edit_output_following_the_input_uses_its_size():
    cost = estimate(
        "fal-ai/flux-2/flash/edit", {"prompt": "p", "image_urls": [IMG]}, input_sizes=[(1920, 1080)]
    )
    assert cost.output_size == (1920, 1080)  # image_size auto: the input's size
    # flash/edit resizes every input to 1 MP: the 2 MP input bills 1 MP.
    assert (cost.billed_mp_in, cost.billed_mp_out, cost.cost_usd) == (1, 2, 0.015)


def test_num_images_multiplies_output():
    cost = estimate("fal-ai/flux/schnell", {"prompt": "p", "num_images": 4, "image_size": "1920x1080"})
    assert (cost.images, cost.billed_mp_out) == (4, 8)
    assert cost.cost_usd == 0.024


def test_kontext_is_flat_per_image():
    args = {"prompt": "recolour", "image_url": IMG, "num_images": 3, "aspect_ratio": "21:9"}
    cost = estimate("fal-ai/flux-pro/kontext", args, input_sizes=[(4000, 3000)])
    assert (cost.unit, cost.images, cost.cost_usd) == ("image", 3, 0.12)
    assert cost.billed_mp_in == 0 and cost.billed_mp_out == 0


def test_kontext_lora_per_megapixel_of_matched_input():
    cost = estimate(
        "fal-ai/flux-kontext-lora",
        {"prompt": "p", "image_url": IMG, "loras": [{"path": "x", "scale": 1}]},
        input_sizes=[(1920, 1080)],
    )
    assert cost.output_size == (1920, 1080)
    assert cost.cost_usd == 0.07  # 2 MP x $0.035; input not billed


@pytest.mark.parametrize(
    "references, multiplier, cost", [(1, 2.11, 1.899), (2, 3.44, 3.096), (3, 5.09, 4.581), (4, 6.95, 6.255)]
)
def test_edit_training_reference_multipliers(references, multiplier, cost):
    result = estimate("fal-ai/flux-2-trainer/edit", {"image_data_url": "u", "steps": 100}, references=references)
    assert result.multiplier == multiplier
    assert result.cost_usd == cost  # 100 steps x $0.009 x multiplier


def test_edit_training_needs_reference_count():
    with pytest.raises(InvalidInput) as err:
        estimate("fal-ai/flux-2-trainer/edit", {"image_data_url": "u"})
    assert err.value.problems[0].field == "references"
    assert "1, 2, 3, 4" in str(err.value)
    with pytest.raises(InvalidInput):
        estimate("fal-ai/flux-2-trainer/edit", {"image_data_url": "u"}, references=5)


def test_references_rejected_where_they_do_not_apply():
    with pytest.raises(InvalidInput):
        estimate("fal-ai/flux-2-trainer", TRAINING, references=1)
    with pytest.raises(InvalidInput):
        estimate("fal-ai/flux-2-pro", PRO_POSE, references=1)


def test_trainer_uses_default_steps_when_omitted():
    cost = estimate("fal-ai/flux-2-trainer", {"image_data_url": "u"})
    assert cost.steps == load_catalog().get("fal-ai/flux-2-trainer").params["steps"].default
    assert cost.cost_usd == pytest.approx(cost.steps * 0.0064)


def test_cost_is_rounded_to_six_decimals():
    cost = estimate("fal-ai/flux/schnell", {"prompt": "p"}, count=7)
    assert cost.cost_usd == 0.021
    assert repr(cost.cost_usd) == "0.021"  # no float noise like 0.021000000000000001


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    ["fal-ai/flux-2-klein/9b", "fal-ai/flux-2/klein/4b", "fal-ai/flux-2/lora/edit", "fal-ai/flux-2-pro/edit",
     "fal-ai/flux-2/edit"],
)
def test_unknown_prices_raise_with_how_to_supply_one(endpoint):
    args = {"prompt": "p", "image_urls": [IMG]} if "edit" in endpoint else {"prompt": "p"}
    with pytest.raises(InvalidInput) as err:
        estimate(endpoint, args)
    (problem,) = err.value.problems
    assert problem.where == endpoint
    assert load_catalog().canonical(endpoint) in problem.message
    assert "override" in problem.message and ENV_OVERRIDE in problem.message


def test_arguments_are_validated_first():
    with pytest.raises(InvalidInput) as err:
        estimate("fal-ai/flux-2-pro", {"prompt": "p", "guidance_scale": 3})
    assert err.value.problems[0].field == "arguments.guidance_scale"


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "2"])
def test_count_must_be_a_positive_whole_number(count):
    with pytest.raises(InvalidInput) as err:
        estimate("fal-ai/flux-2-pro", PRO_POSE, count=count)
    assert err.value.problems[0].field == "count"


def test_input_sizes_must_match_the_inputs():
    with pytest.raises(InvalidInput) as err:
        estimate("fal-ai/flux-2-flex/edit", {"prompt": "p", "image_urls": [IMG, IMG]}, input_sizes=[(512, 512)])
    assert "2 input image" in str(err.value)
    with pytest.raises(InvalidInput):
        estimate("fal-ai/flux-2-pro", PRO_POSE, input_sizes=[(512, 512)])
    with pytest.raises(InvalidInput):
        estimate("fal-ai/flux-2/flash/edit", {"prompt": "p", "image_urls": [IMG]}, input_sizes=[(0, 512)])


# -- the estimate object ---------------------------------------------------------------------


def test_estimate_to_dict_and_describe():
    cost = estimate("fal-ai/flux-2-flex", FLEX_POSE, count=6)
    data = cost.to_dict()
    assert json.loads(json.dumps(data)) == data
    for key in ("endpoint", "cost_usd", "per_request_usd", "count", "unit", "unit_price", "images",
                "billed_mp_in", "billed_mp_out", "steps", "multiplier", "source", "checked"):
        assert key in data
    line = cost.describe()
    assert "\n" not in line
    assert line.startswith("fal-ai/flux-2-flex: $0.30 for 6 requests")
    assert "$0.05/MP" in line and "seed 001" in line
    with pytest.raises(FrozenInstanceError):
        cost.cost_usd = 0  # type: ignore[misc]


def test_describe_for_steps_and_flat_prices():
    assert "1000 steps at $0.0064/step" in estimate("fal-ai/flux-2-trainer", TRAINING).describe()
    line = estimate("fal-ai/flux-pro/kontext", {"prompt": "p", "image_url": IMG, "aspect_ratio": "1:1"}).describe()
    assert "1 image 1024x1024 at $0.04 each" in line


# -- the price data ----------------------------------------------------------------------------


def test_every_price_has_source_and_date():
    table = load_prices()
    for ident, entry in {**table.prices, **table.unpriced}.items():
        assert entry.source.strip(), ident
        assert entry.checked.year >= 2026, ident


def test_every_catalog_endpoint_is_priced_or_listed_unpriced():
    table = load_prices()
    ids = set(load_catalog().ids())
    assert set(table.prices) | set(table.unpriced) == ids
    assert not set(table.prices) & set(table.unpriced)


@pytest.mark.parametrize(
    "endpoint, unit, price",
    [
        ("fal-ai/flux/schnell", "megapixel", "0.003"),
        ("fal-ai/flux/dev", "megapixel", "0.025"),
        ("fal-ai/flux-lora", "megapixel", "0.035"),
        ("fal-ai/flux-pro/v1.1", "megapixel", "0.055"),
        ("fal-ai/flux-2-pro", "megapixel", "0.03"),
        ("fal-ai/flux-2-flex", "megapixel", "0.05"),
        ("fal-ai/flux-2/lora", "megapixel", "0.021"),
        ("fal-ai/flux-kontext-lora", "megapixel", "0.035"),
        ("fal-ai/flux-pro/kontext", "image", "0.04"),
        ("fal-ai/flux-2-trainer", "step", "0.0064"),
        ("fal-ai/flux-2-max", "megapixel", "0.07"),
        ("fal-ai/flux-2-max/edit", "megapixel", "0.07"),
        ("fal-ai/flux-2-trainer/edit", "step", "0.009"),
    ],
)
def test_shipped_prices(endpoint, unit, price):
    entry = load_prices().entry(endpoint)
    assert (entry.unit, entry.price) == (unit, Decimal(price))


@pytest.mark.parametrize(
    "endpoint, disagreement",
    [
        ("fal-ai/flux-pro/kontext", "$0.025/MP"),  # seed 000 vs seed 001's flat $0.04
        ("fal-ai/flux-2-trainer", "$0.008/step"),  # seed 000 vs fal's page
        ("fal-ai/flux/dev", "~$0.03/img"),  # seed 000's wrong per-image figure
    ],
)
def test_disagreements_are_recorded_as_notes(endpoint, disagreement):
    notes = " ".join(load_prices().entry(endpoint).notes)
    assert disagreement in notes


def test_billing_sides():
    table = load_prices()
    assert table.entry("fal-ai/flux-2/flash/edit").billed_on == ("input", "output")
    assert table.entry("fal-ai/flux-2-flex/edit").billed_on == ("input", "output")
    assert table.entry("fal-ai/flux-2/flash").billed_on == ("output",)


@pytest.mark.parametrize(
    "fields, text",
    [
        ({"unit": "image", "price": 1, "billed_on": ["input", "output"]}, "megapixel prices only"),
        ({"unit": "image", "price": 1, "extra_megapixel_price": 1}, "unit megapixel"),
        ({"unit": "megapixel", "price": 1, "input_megapixels": 1}, "billed on input"),
        ({"unit": "megapixel", "price": 1, "reference_multipliers": {1: 2}}, "step prices only"),
        ({"unit": "step", "price": -1}, "negative"),
        ({"unit": "megapixel", "price": 1, "billed_on": ["input"]}, "include output"),
        ({"unit": "hour", "price": 1}, "unit"),
    ],
)
def test_price_rules_reject_inconsistent_entries(fields, text):
    with pytest.raises(ValueError) as err:
        PriceEntry.model_validate({"source": "s", "checked": "2026-01-01", **fields})
    assert text in str(err.value)


# -- overrides ---------------------------------------------------------------------------------

OVERRIDE = """
prices:
  fal-ai/flux-pro/kontext:
    unit: megapixel
    price: 0.025
    billed_on: [output]
    source: seed 000 decision table
    checked: 2026-02-23
  fal-ai/flux-2-klein/9b:
    unit: megapixel
    price: 0.006
    source: fal llms.txt page
    checked: 2026-11-01
"""


def test_override_file_replaces_and_adds_prices(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(OVERRIDE)
    table = load_prices(path)
    assert table.override == str(path)
    kontext = estimate(
        "fal-ai/flux-pro/kontext", {"prompt": "p", "image_url": IMG, "aspect_ratio": "16:9"}, prices=table
    )
    assert (kontext.unit, kontext.cost_usd) == ("megapixel", 0.025)
    klein = estimate("fal-ai/flux-2/klein/9b", {"prompt": "p", "image_size": "1920x1080"}, prices=table)
    assert klein.cost_usd == 0.012  # stored under the canonical id
    assert "fal-ai/flux-2/klein/9b" not in table.unpriced
    # untouched entries stay
    assert estimate("fal-ai/flux-2-pro", PRO_POSE, prices=table).cost_usd == 0.03
    # the shipped table is not changed
    assert load_prices().entry("fal-ai/flux-pro/kontext").unit == "image"


def test_env_var_names_the_override(tmp_path, monkeypatch):
    path = tmp_path / "p.yaml"
    path.write_text(OVERRIDE)
    monkeypatch.setenv(ENV_OVERRIDE, str(path))
    assert estimate("fal-ai/flux-2-klein/9b", {"prompt": "p"}).cost_usd == 0.006
    # an explicit PriceTable wins over the environment
    with pytest.raises(InvalidInput):
        estimate("fal-ai/flux-2-klein/9b", {"prompt": "p"}, prices=PriceTable.model_validate(
            {"prices": {}, "unpriced": {}}
        ))


@pytest.mark.parametrize(
    "text, field, message",
    [
        ("prices:\n  fal-ai/flux-2-prp: {unit: image, price: 1, source: s, checked: 2026-01-01}\n",
         "prices.fal-ai/flux-2-prp", "fal-ai/flux-2-pro"),
        ("prices:\n  fal-ai/flux-2-pro: {unit: image, price: 1, checked: 2026-01-01}\n",
         "prices.fal-ai/flux-2-pro.source", "Field required"),
        ("prices:\n  fal-ai/flux-2-pro: {unit: image, price: lots, source: s, checked: 2026-01-01}\n",
         "prices.fal-ai/flux-2-pro.price", "decimal"),
        ("prices: [1, 2]\n", "prices", "mapping"),
        ("- just a list\n", "", "mapping"),
        ("prices: {a: [\n", "", "invalid YAML at line 2"),
        (b"prices:\x00\x01\x02", "", "not a text file (binary data at byte 7)"),
        (b"prices: {}\n# caf\xe9\n", "", "not UTF-8 text"),
        ("prices: " + "[" * 3000 + "]" * 3000 + "\n", "", "nests deeper than 20 levels"),
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcde", "bcdef")),
         "", "expands to more than 100,000 values"),
        ("prices: {}\n#" + "x" * (1024 * 1024), "", "larger than a prices file may be (1 MB)"),
    ],
    ids=["unknown-endpoint", "no-source", "price-text", "prices-list", "not-a-mapping", "yaml-syntax",
         "binary", "invalid-utf8", "deep-nesting", "alias-bomb", "huge-file"],
)
def test_bad_override_files_name_the_file_and_field(tmp_path, text, field, message):
    path = tmp_path / "bad.yaml"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    with pytest.raises(InvalidInput) as err:
        load_prices(path)
    (problem,) = err.value.problems
    assert problem.where == str(path)
    assert problem.field == field
    assert message.lower() in problem.message.lower()


def test_missing_override_file(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_OVERRIDE, str(tmp_path / "nope.yaml"))
    with pytest.raises(InvalidInput) as err:
        load_prices()
    assert "not found" in str(err.value) and "nope.yaml" in str(err.value)


def test_flux_2_max_first_and_extra_megapixels_with_inputs_counted():
    # fal: $0.07 the first processed MP, $0.03 each further MP; input images count.
    t2i = estimate("fal-ai/flux-2-max", {"prompt": "p", "image_size": "1920x1080"})
    assert t2i.cost_usd == pytest.approx(0.10)  # 2 MP: 0.07 + 0.03
    edit = estimate("fal-ai/flux-2-max/edit", {"prompt": "p", "image_urls": [IMG, IMG], "image_size": "1024x1024"},
                    input_sizes=[(1024, 1024), (2048, 1024)])
    assert (edit.billed_mp_in, edit.billed_mp_out) == (3, 1)
    assert edit.cost_usd == pytest.approx(0.07 + 3 * 0.03)


def test_flash_edit_bills_each_input_as_one_megapixel_without_sizes():
    cost = estimate("fal-ai/flux-2/flash/edit", {"prompt": "p", "image_urls": [IMG, IMG], "image_size": "square_hd"})
    assert (cost.billed_mp_in, cost.billed_mp_out, cost.assumptions) == (2, 1, ())
    assert cost.cost_usd == pytest.approx(0.015)


def test_every_catalog_endpoint_is_priced_or_refused_never_zero():
    table = load_prices()
    for ident in load_catalog().ids():
        assert (ident in table.prices) != (ident in table.unpriced), ident
        if ident in table.prices:
            assert table.prices[ident].price > 0 and table.prices[ident].source and table.prices[ident].checked, ident
