"""The endpoint catalog: coverage, data facts from the seeds, ids, sizes."""

from __future__ import annotations

import copy
from datetime import date

import pytest
import yaml
from pydantic import ValidationError

from fal_assets.catalog import (
    Catalog,
    load_catalog,
    output_size,
    parse_size,
    ratio_size,
)
from fal_assets.errors import InvalidInput

REQUIRED_IDS = [
    "fal-ai/flux-2-pro",
    "fal-ai/flux-2-max",
    "fal-ai/flux-2-flex",
    "fal-ai/flux-2-flex/edit",
    "fal-ai/flux/dev",
    "fal-ai/flux/schnell",
    "fal-ai/flux-lora",
    "fal-ai/flux-pro/v1.1",
    "fal-ai/flux-2-klein/9b",
    "fal-ai/flux-2-klein/4b",
    "fal-ai/flux-2-flash",
    "fal-ai/flux-2/flash",
    "fal-ai/flux-2/flash/edit",
    "fal-ai/flux-2-flash/edit",
    "fal-ai/flux-pro/kontext",
    "fal-ai/flux-kontext-lora",
    "fal-ai/flux-2/lora",
    "fal-ai/flux-2/lora/edit",
    "fal-ai/flux-2-trainer",
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def raw_catalog() -> dict:
    from importlib import resources

    return yaml.safe_load(resources.files("fal_assets").joinpath("data/catalog.yaml").read_text("utf-8"))


# -- coverage and ids ------------------------------------------------------------


@pytest.mark.parametrize("endpoint", REQUIRED_IDS)
def test_every_seed_endpoint_resolves(catalog, endpoint):
    spec = catalog.get(endpoint)
    assert endpoint in spec.all_ids
    assert endpoint in catalog


def test_load_catalog_is_cached(catalog):
    assert load_catalog() is catalog


def test_ids_are_canonical_and_sorted(catalog):
    ids = catalog.ids()
    assert ids == sorted(ids)
    assert not set(ids) & set(catalog.aliases())
    assert set(REQUIRED_IDS) <= set(ids) | set(catalog.aliases())


@pytest.mark.parametrize(
    "alias, canonical",
    [
        # seed 000 writes fal-ai/flux-2-flash; seed 004 (and fal's pages) fal-ai/flux-2/flash
        ("fal-ai/flux-2-flash", "fal-ai/flux-2/flash"),
        ("fal-ai/flux-2-flash/edit", "fal-ai/flux-2/flash/edit"),
        # seed 000 writes fal-ai/flux-2-klein/9b; fal's page fal-ai/flux-2/klein/9b
        ("fal-ai/flux-2-klein/9b", "fal-ai/flux-2/klein/9b"),
        ("fal-ai/flux-2-klein/4b", "fal-ai/flux-2/klein/4b"),
    ],
)
def test_aliases_resolve_to_one_spec(catalog, alias, canonical):
    assert catalog.aliases()[alias] == canonical
    assert catalog.get(alias) is catalog.get(canonical)
    assert catalog.canonical(alias) == canonical
    assert alias in catalog.get(canonical).aliases


def test_unknown_endpoint_suggests_close_ids(catalog):
    with pytest.raises(InvalidInput) as err:
        catalog.get("fal-ai/flux-2-flx")
    (problem,) = err.value.problems
    assert problem.where == "fal-ai/flux-2-flx"
    assert problem.field == "endpoint"
    assert "unknown endpoint 'fal-ai/flux-2-flx'" in problem.message
    assert "fal-ai/flux-2-flex" in problem.message


def test_unknown_endpoint_far_from_everything_lists_known_ids(catalog):
    with pytest.raises(InvalidInput) as err:
        catalog.get("openai/dall-e")
    assert "known endpoints:" in str(err.value)
    assert "fal-ai/flux-2-pro" in str(err.value)


def test_contains_rejects_non_strings(catalog):
    assert 3 not in catalog
    assert "fal-ai/nope" not in catalog


# -- every entry is sourced and typed ---------------------------------------------


def test_every_entry_has_source_date_family_purpose(catalog):
    for ident in catalog.ids():
        spec = catalog.get(ident)
        assert spec.source.strip(), ident
        assert isinstance(spec.checked, date) and spec.checked.year >= 2026, ident
        assert spec.family in ("FLUX.1", "FLUX.2", "utility", "Kling")
        assert spec.purpose in ("text-to-image", "edit", "lora-inference", "lora-edit", "training",
                                "background-removal", "pixel-art", "image-to-video")
        kind = {"training": "lora", "image-to-video": "video"}.get(spec.purpose, "image")
        assert spec.output_kind == kind, ident


def test_incomplete_entries_say_so_in_notes(catalog):
    incomplete = [i for i in catalog.ids() if not catalog.get(i).schema_complete]
    assert {"fal-ai/flux-2-max", "fal-ai/flux-2/klein/9b", "fal-ai/flux-2/klein/4b"} <= set(incomplete)
    for ident in incomplete:
        assert any("onservative" in note for note in catalog.get(ident).notes), ident


@pytest.mark.parametrize(
    "endpoint, family, purpose",
    [
        ("fal-ai/flux-2-pro", "FLUX.2", "text-to-image"),
        ("fal-ai/flux-2-flex/edit", "FLUX.2", "edit"),
        ("fal-ai/flux/dev", "FLUX.1", "text-to-image"),
        ("fal-ai/flux-lora", "FLUX.1", "lora-inference"),
        ("fal-ai/flux-pro/kontext", "FLUX.1", "edit"),
        ("fal-ai/flux-kontext-lora", "FLUX.1", "lora-edit"),
        ("fal-ai/flux-2/lora", "FLUX.2", "lora-inference"),
        ("fal-ai/flux-2/lora/edit", "FLUX.2", "lora-edit"),
        ("fal-ai/flux-2/flash/edit", "FLUX.2", "edit"),
        ("fal-ai/flux-2-trainer", "FLUX.2", "training"),
    ],
)
def test_family_and_purpose(catalog, endpoint, family, purpose):
    spec = catalog.get(endpoint)
    assert (spec.family, spec.purpose) == (family, purpose)


def test_required_params_are_prompt_and_image_inputs(catalog):
    for ident in catalog.ids():
        spec = catalog.get(ident)
        required = {k for k, p in spec.params.items() if p.required}
        expected = {"image_data_url"} if spec.purpose == "training" else {"prompt"}
        if spec.purpose in ("background-removal", "pixel-art"):
            expected = set()  # image in, image out: no prompt
        if spec.image_input is not None and spec.image_input.required:
            expected.add(spec.image_input.key)
        assert required == expected, ident


# -- facts from the seeds -----------------------------------------------------------


def test_image_size_presets_per_seed_001(catalog):
    sizes = {name: catalog.preset(name) for name in catalog.image_size_presets}
    assert sizes == {
        "square_hd": (1024, 1024),
        "square": (1024, 1024),
        "portrait_4_3": (768, 1024),
        "portrait_16_9": (576, 1024),
        "landscape_4_3": (1024, 768),
        "landscape_16_9": (1024, 576),
    }
    assert "seed 001" in catalog.image_size_presets["square"].note


def test_flux_2_pro_is_zero_config(catalog):
    spec = catalog.get("fal-ai/flux-2-pro")
    assert spec.zero_config
    assert not {"guidance_scale", "num_inference_steps", "num_images"} & set(spec.params)
    assert spec.output_size.max_side == 14142
    assert spec.params["safety_tolerance"].values == ("1", "2", "3", "4", "5")


def test_flex_ranges_per_seed_001(catalog):
    params = catalog.get("fal-ai/flux-2-flex").params
    g, s = params["guidance_scale"], params["num_inference_steps"]
    assert (g.minimum, g.maximum, g.default) == (1.5, 10, 3.5)
    assert (s.minimum, s.maximum, s.default) == (2, 50, 28)
    assert catalog.get("fal-ai/flux-2-flex").image_input is None


def test_flex_edit_is_flex_plus_image_urls(catalog):
    flex = catalog.get("fal-ai/flux-2-flex")
    edit = catalog.get("fal-ai/flux-2-flex/edit")
    assert set(edit.params) - set(flex.params) == {"image_urls"}
    assert edit.image_input.key == "image_urls" and edit.image_input.required


def test_schnell_is_dev_with_four_steps(catalog):
    dev = catalog.get("fal-ai/flux/dev").params
    schnell = catalog.get("fal-ai/flux/schnell").params
    assert set(dev) == set(schnell)
    assert dev["num_inference_steps"].default == 28
    assert schnell["num_inference_steps"].default == 4
    assert dev["guidance_scale"].maximum == 20


def test_flux_dev_takes_no_lora(catalog):
    spec = catalog.get("fal-ai/flux/dev")
    assert spec.lora is None and "loras" not in spec.params and "lora_config" not in spec.params


@pytest.mark.parametrize(
    "endpoint, maximum, scale",
    [
        ("fal-ai/flux-2/lora", 3, (0, 4)),
        ("fal-ai/flux-2/lora/edit", 3, (0, 4)),
        ("fal-ai/flux-lora", None, (0, 4)),
        ("fal-ai/flux-kontext-lora", None, (0, 4)),
    ],
)
def test_lora_support(catalog, endpoint, maximum, scale):
    lora = catalog.get(endpoint).lora
    assert lora.key == "loras"
    assert lora.max == maximum
    assert (lora.scale_min, lora.scale_max) == scale


@pytest.mark.parametrize(
    "endpoint, key, minimum, maximum",
    [
        ("fal-ai/flux-pro/kontext", "image_url", 1, 1),
        ("fal-ai/flux-kontext-lora", "image_url", 1, 1),
        ("fal-ai/flux-2/lora/edit", "image_urls", 1, 3),
        ("fal-ai/flux-2-flex/edit", "image_urls", 1, 10),
        ("fal-ai/flux-2/flash/edit", "image_urls", 1, None),
        ("fal-ai/flux-2-max/edit", "image_urls", 1, 10),
        ("fal-ai/birefnet/v2", "image_url", 1, 1),
    ],
)
def test_image_inputs(catalog, endpoint, key, minimum, maximum):
    image = catalog.get(endpoint).image_input
    assert (image.key, image.min, image.max) == (key, minimum, maximum)


def test_text_to_image_endpoints_take_no_images(catalog):
    for ident in ("fal-ai/flux-2-pro", "fal-ai/flux-2-flex", "fal-ai/flux/dev", "fal-ai/flux-2/lora", "fal-ai/flux-2/flash"):
        assert catalog.get(ident).image_input is None, ident


def test_flux_2_lora_custom_bounds_per_seed_002(catalog):
    size = catalog.get("fal-ai/flux-2/lora").output_size
    assert (size.min_side, size.max_side, size.custom) == (512, 2048, True)
    assert size.default == "landscape_4_3"


def test_kontext_uses_aspect_ratio_and_kontext_lora_resolution_mode(catalog):
    kontext = catalog.get("fal-ai/flux-pro/kontext")
    assert kontext.output_size.mode == "aspect_ratio"
    assert "image_size" not in kontext.params and "num_inference_steps" not in kontext.params
    assert kontext.params["aspect_ratio"].values == (
        "21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21",
    )
    lora = catalog.get("fal-ai/flux-kontext-lora")
    assert lora.output_size.mode == "resolution_mode"
    assert "aspect_ratio" not in lora.params
    assert lora.params["resolution_mode"].default == "match_input"
    assert lora.params["output_format"].default == "png"
    assert lora.params["num_inference_steps"].minimum == 10


def test_flash_per_seed_004(catalog):
    params = catalog.get("fal-ai/flux-2/flash").params
    assert (params["guidance_scale"].minimum, params["guidance_scale"].maximum, params["guidance_scale"].default) == (0, 20, 2.5)
    assert params["output_format"].values == ("jpeg", "png", "webp")
    assert params["output_format"].default == "png"
    assert (params["num_images"].minimum, params["num_images"].maximum) == (1, 4)


def test_trainer_params_and_outputs(catalog):
    spec = catalog.get("fal-ai/flux-2-trainer")
    assert spec.output_kind == "lora"
    assert spec.outputs == ("diffusers_lora_file", "config_file")
    assert set(spec.params) == {"image_data_url", "steps", "learning_rate", "default_caption", "output_lora_format"}
    assert spec.params["image_data_url"].required
    assert spec.params["output_lora_format"].values == ("fal", "comfy")
    assert spec.params["learning_rate"].default == pytest.approx(0.00005)
    assert spec.output_size is None and spec.lora is None


def test_zero_config_endpoints(catalog):
    zero = {i for i in catalog.ids() if catalog.get(i).zero_config}
    assert zero == {"fal-ai/flux-2-pro", "fal-ai/flux-2-max", "fal-ai/flux-pro/v1.1", "fal-ai/flux-2-pro/edit", "fal-ai/flux-2-max/edit"}
    for ident in zero:
        assert "guidance_scale" not in catalog.get(ident).params


def test_taking_lists_endpoints_with_a_param(catalog):
    takers = catalog.taking("guidance_scale")
    assert "fal-ai/flux-2-flex" in takers and "fal-ai/flux-2-pro" not in takers


# -- the data model rejects inconsistent data ------------------------------------------


def _mutated(mutate) -> dict:
    data = copy.deepcopy(raw_catalog())
    mutate(data["endpoints"])
    return data


@pytest.mark.parametrize(
    "mutate, text",
    [
        (lambda e: e["fal-ai/flux-2/lora"]["params"].pop("loras"), "loras"),
        (lambda e: e["fal-ai/flux-pro/kontext"]["params"].pop("image_url"), "image_input"),
        (lambda e: e["fal-ai/flux-2-pro"]["params"]["image_size"].update(default="huge"), "not a preset"),
        (lambda e: e["fal-ai/flux-2-flex"]["params"]["guidance_scale"].update(default=50), "above maximum"),
        (lambda e: e["fal-ai/flux-2-flex"].update(aliases=["fal-ai/flux-2-pro"]), "is used by"),
        (lambda e: e["fal-ai/flux-2-trainer"].update(output_kind="image"), "output"),
        (lambda e: e["fal-ai/flux-2-flex"].update(family="FLUX.3"), "FLUX"),
        (lambda e: e["fal-ai/flux-2-flex"].update(unexpected=1), "unexpected"),
    ],
)
def test_inconsistent_catalog_data_is_rejected(mutate, text):
    with pytest.raises(ValidationError) as err:
        Catalog.model_validate(_mutated(mutate))
    assert text in str(err.value)


def test_ratios_survive_yaml():
    # unquoted 16:9 would be read by YAML 1.1 as the integer 969
    data = raw_catalog()
    values = data["endpoints"]["fal-ai/flux-pro/kontext"]["params"]["aspect_ratio"]["values"]
    assert all(isinstance(v, str) and ":" in v for v in values)


# -- sizes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1024x768", {"width": 1024, "height": 768}),
        ("1920X1080", {"width": 1920, "height": 1080}),
        (" 512 x 512 ", {"width": 512, "height": 512}),
        ("2016×1152", {"width": 2016, "height": 1152}),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["1024", "1024x", "x768", "0x768", "-5x5", "10.5x20", "big", ""])
def test_parse_size_rejects(text):
    with pytest.raises(InvalidInput) as err:
        parse_size(text)
    assert "WIDTHxHEIGHT" in str(err.value)


@pytest.mark.parametrize(
    "endpoint, arguments, inputs, expected",
    [
        ("fal-ai/flux-2-pro", {"prompt": "p"}, None, (1024, 768)),  # default landscape_4_3
        ("fal-ai/flux-2-flex", {"image_size": "portrait_4_3"}, None, (768, 1024)),
        ("fal-ai/flux-2-flex", {"image_size": "portrait_16_9"}, None, (576, 1024)),
        ("fal-ai/flux-2-flex", {"image_size": "landscape_16_9"}, None, (1024, 576)),
        ("fal-ai/flux-2-flex", {"image_size": "square"}, None, (1024, 1024)),
        ("fal-ai/flux-2/flash", {"image_size": {"width": 1920, "height": 1080}}, None, (1920, 1080)),
        ("fal-ai/flux-2/flash", {"image_size": "1920x1080"}, None, (1920, 1080)),
        ("fal-ai/flux-2-flash", {"image_size": {"width": 1920.0, "height": 1080}}, None, (1920, 1080)),
        ("fal-ai/flux-2/lora/edit", {}, [(800, 600)], (800, 600)),  # match input
        ("fal-ai/flux-2/lora/edit", {"image_size": "square_hd"}, [(800, 600)], (1024, 1024)),
        ("fal-ai/flux-2/flash/edit", {}, [(512, 512), (2048, 2048)], (512, 512)),  # first input
        ("fal-ai/flux-pro/kontext", {"aspect_ratio": "1:1"}, None, (1024, 1024)),
        ("fal-ai/flux-pro/kontext", {"aspect_ratio": "16:9"}, None, (1360, 768)),
        ("fal-ai/flux-pro/kontext", {"aspect_ratio": "9:16"}, None, (768, 1360)),
        ("fal-ai/flux-pro/kontext", {"aspect_ratio": "4:3"}, None, (1168, 880)),
        ("fal-ai/flux-pro/kontext", {}, [(2000, 1000)], ratio_size(2, 1)),  # input's ratio
        ("fal-ai/flux-kontext-lora", {}, [(640, 480)], (640, 480)),  # match_input default
        ("fal-ai/flux-kontext-lora", {"resolution_mode": "auto"}, [(640, 480)], (1168, 880)),
        ("fal-ai/flux-kontext-lora", {"resolution_mode": "21:9"}, [(640, 480)], ratio_size(21, 9)),
    ],
)
def test_output_size(endpoint, arguments, inputs, expected):
    assert output_size(endpoint, arguments, inputs) == expected


@pytest.mark.parametrize("ratio", ["21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"])
def test_kontext_ratio_rule_is_about_one_megapixel(ratio):
    a, b = (int(x) for x in ratio.split(":"))
    width, height = output_size("fal-ai/flux-pro/kontext", {"aspect_ratio": ratio})
    assert width % 16 == 0 and height % 16 == 0
    assert 0.9 * 2**20 <= width * height <= 2**20  # never above 1 MP
    assert abs(width / height - a / b) / (a / b) < 0.03


@pytest.mark.parametrize(
    "endpoint, arguments",
    [
        ("fal-ai/flux-2/lora/edit", {}),
        ("fal-ai/flux-pro/kontext", {}),
        ("fal-ai/flux-kontext-lora", {"resolution_mode": "match_input"}),
    ],
)
def test_output_following_input_needs_input_sizes(endpoint, arguments):
    with pytest.raises(InvalidInput) as err:
        output_size(endpoint, arguments)
    assert "input_sizes" in str(err.value)


def test_trainer_has_no_output_size():
    with pytest.raises(InvalidInput) as err:
        output_size("fal-ai/flux-2-trainer", {"image_data_url": "u"})
    assert "LoRA" in str(err.value) and "diffusers_lora_file" in str(err.value)


def test_output_size_rejects_nonsense():
    with pytest.raises(InvalidInput):
        output_size("fal-ai/flux-2-pro", {"image_size": {"width": 0, "height": 10}})
    with pytest.raises(InvalidInput):
        output_size("fal-ai/flux-pro/kontext", {"aspect_ratio": "5:4"})


def test_flux_2_max_text_to_image_takes_no_image_urls_and_edits_take_auto(catalog):
    from fal_assets.validation import validate

    assert "image_urls" not in catalog.get("fal-ai/flux-2-max").params
    with pytest.raises(InvalidInput) as err:
        validate("fal-ai/flux-2-max", {"prompt": "x", "image_urls": ["https://a/b.png"]})
    assert "arguments.image_urls" in str(err.value)
    for edit in ("fal-ai/flux-2-max/edit", "fal-ai/flux-2/flash/edit", "fal-ai/flux-2-flex/edit", "fal-ai/flux-2/lora/edit"):
        assert catalog.get(edit).params["image_size"].default == "auto", edit
        assert validate(edit, {"prompt": "x", "image_urls": ["https://a/b.png"], "image_size": "auto"})["image_size"] == "auto"
    with pytest.raises(InvalidInput):  # a text-to-image endpoint has no input to follow
        validate("fal-ai/flux-2-pro", {"prompt": "x", "image_size": "auto"})


def test_only_endpoints_that_return_it_carry_has_nsfw_concepts(catalog):
    assert not catalog.get("fal-ai/flux-2-pro").nsfw_flag and not catalog.get("fal-ai/flux-2-pro/edit").nsfw_flag
    assert catalog.get("fal-ai/flux-2/lora").nsfw_flag and catalog.get("fal-ai/flux/dev").nsfw_flag
