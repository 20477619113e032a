"""Variants: skins and colourways of every pose, made by editing the base pose image.

A spec's ``variants:`` section names each variant with its edit instruction (and
optionally a palette that overrides parts of the character's palette, the endpoint,
a seed, the poses and extra reference images). Each variant of a pose is one edit
request whose input is that pose's image: the composition, the pose and the framing
are the base's, so a game can swap skins frame for frame.

Pure rules, no Dagster:

- ``variant_request`` builds the edit (Kontext takes ``image_url`` and
  ``aspect_ratio``; FLUX.2 edits take ``image_urls`` and ``image_size``; LoRA edits
  get the character's LoRA and lead with the trigger word);
- ``check_variants`` refuses what would fail or cost an unknown amount, before any
  money moves (an endpoint that does not edit, too many input images, a LoRA of the
  wrong family, a missing reference file, an unpriced endpoint);
- ``lint_variants`` warns about instructions that ask for a new pose, expression or
  proportions (editing is for colours, materials, lighting and backgrounds);
- ``variant_version`` is what a variant image is made from besides its base image
  (the base's content hash is recorded apart, so a new base stales its variants).
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import Any

from .errors import InvalidInput, Problem
from .generate import Request
from .spec import CharacterSpec, Variant, _digest, _offset_seed

EDIT_PURPOSES = ("edit", "lora-edit")
KEEP = "Everything else stays exactly the same."
"""The last sentence of every edit prompt: an edit changes what it names, nothing else."""


# --------------------------------------------------------------------------- the spec


def reference_problem(variant: Variant, poses: dict | None, palette: dict | None) -> tuple[str, str] | None:
    """(sub-field, message) for a variant that names a pose or palette part its spec
    lacks, or lists no poses; None when it is fine (used while the spec loads)."""
    if variant.poses is not None:
        if not variant.poses:
            return "poses", "is empty; list the poses that get this variant, or leave poses out for all of them"
        if poses is not None:
            for pose in variant.poses:
                if pose not in poses:
                    close = difflib.get_close_matches(pose, list(poses), n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    return "poses", f"{pose!r} is not a pose of this spec; {hint}poses: {', '.join(poses)}"
            seen = set()
            for pose in variant.poses:
                if pose in seen:
                    return "poses", f"{pose!r} is listed twice; list each pose once"
                seen.add(pose)
    if palette is not None:
        for part in variant.palette:
            if part not in palette:
                close = difflib.get_close_matches(part, list(palette), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                allowed = ", ".join(palette) or "none (the spec has no palette)"
                return f"palette.{part}", f"is not a part of the character's palette; {hint}a variant overrides these parts: {allowed}"
    return None


def variant(spec: CharacterSpec, name: str) -> Variant:
    """The variant called ``name``; an unknown name raises ``InvalidInput``."""
    try:
        return spec.variants[name]
    except KeyError:
        where = str(spec.source) if spec.source else spec.name
        have = ", ".join(spec.variants) or "none"
        raise InvalidInput([Problem(where, f"variants.{name}", f"unknown variant; this spec has: {have}")]) from None


def poses_of(spec: CharacterSpec, name: str) -> list[str]:
    """The poses that get variant ``name``, in the spec's pose order."""
    chosen = variant(spec, name).poses
    return [p for p in spec.poses if chosen is None or p in chosen]


def pairs(spec: CharacterSpec) -> list[tuple[str, str]]:
    """Every real (pose, variant) of ``spec``, grouped by variant (one variant's poses are
    neighbours, so a run over one variant is one contiguous range of partition keys)."""
    return [(pose, name) for name in spec.variants for pose in poses_of(spec, name)]


def palette_of(spec: CharacterSpec, name: str) -> dict[str, str]:
    """The variant's palette: the character's, with the variant's overrides."""
    return {**spec.palette, **variant(spec, name).palette}


def seed_for(spec: CharacterSpec, pose: str, name: str) -> int:
    """The seed of one edit: the variant's seed, else the pose's seed plus a stable offset."""
    chosen = variant(spec, name).seed
    return chosen if chosen is not None else _offset_seed(spec.seed_for(pose), f"variant:{name}")


def references_of(spec: CharacterSpec, name: str) -> list[Path]:
    """The variant's extra input images, resolved against the spec file's folder."""
    base = spec.source.parent if spec.source else Path.cwd()
    return [(base / ref).resolve() for ref in variant(spec, name).references]


def _entry(endpoint: str):
    from .catalog import load_catalog

    return load_catalog().get(endpoint)


def uses_lora(spec: CharacterSpec, name: str) -> bool:
    """Whether the variant's endpoint edits with the character's LoRA (a lora-edit endpoint)."""
    return _entry(variant(spec, name).endpoint).purpose == "lora-edit"


# --------------------------------------------------------------------------- requests


def _sentence(text: str) -> str:
    text = " ".join(text.split()).rstrip(" .,;:")
    text = text[:1].upper() + text[1:]
    return text if text.endswith(("!", "?")) else f"{text}."


def edit_prompt(spec: CharacterSpec, name: str) -> str:
    """The edit instruction, the variant's colours bound to their parts, then ``KEEP``;
    with a LoRA edit the trigger word leads."""
    chosen = variant(spec, name)
    parts = [f"{spec.trigger_word}," if uses_lora(spec, name) else ""]
    parts.append(_sentence(chosen.instruction))
    if chosen.palette:
        changes = ", ".join(f"{part.replace('_', ' ').strip()} from {spec.palette[part]} to {hex_code}" for part, hex_code in chosen.palette.items())
        parts.append(_sentence(f"Colors: {changes}"))
    parts.append(KEEP)
    return " ".join(p for p in parts if p)


def base_size(spec: CharacterSpec, profile: str = "final") -> tuple[int, int]:
    """The size of the character's pose images under ``profile`` (when no file is at hand)."""
    from .catalog import output_size

    return output_size(spec.models.pose, {"image_size": spec.profile(profile)["image_size"]})


def _ratio(size: tuple[int, int], ratios: tuple[str, ...]) -> str | None:
    """The listed aspect ratio equal to ``size``'s (within 1%), if any."""
    want = size[0] / size[1]
    for ratio in ratios:
        a, b = (float(x) for x in ratio.split(":"))
        if abs(a / b - want) <= 0.01 * want:
            return ratio
    return None


def size_arguments(endpoint: str, size: tuple[int, int]) -> dict[str, Any]:
    """What asks the endpoint for an output the shape of the base image: Kontext's
    ``aspect_ratio`` (the base's ratio when Kontext lists it, else the input's ratio by
    default), ``resolution_mode: match_input``, or ``image_size`` of the base's size
    (``auto`` when the endpoint does not take that size)."""
    out = _entry(endpoint).output_size
    if out is None:
        return {}
    if out.mode == "aspect_ratio":
        ratio = _ratio(size, out.ratios)
        return {"aspect_ratio": ratio} if ratio else {}
    if out.mode == "resolution_mode":
        return {"resolution_mode": "match_input"}
    if out.mode == "image_size":
        fits = out.custom and all((out.min_side or 1) <= side <= (out.max_side or 10**6) for side in size)
        if fits:
            return {"image_size": {"width": size[0], "height": size[1]}}
        return {"image_size": "auto"} if out.auto else {}
    return {}


def variant_request(
    spec: CharacterSpec,
    pose: str,
    name: str,
    base_image: Path,
    *,
    size: tuple[int, int] | None = None,
    lora_weights: Path | None = None,
) -> Request:
    """The edit that makes variant ``name`` of ``pose`` from the base pose image.

    ``size`` is the base image's (read from the file when it exists, else the spec's
    pose size). The base image goes first in the input slot, the variant's references
    after it; a LoRA edit gets ``lora_weights`` (the character's LoRA).
    """
    chosen = variant(spec, name)
    entry = _entry(chosen.endpoint)
    if size is None:
        size = _image_size(base_image) if Path(base_image).is_file() else base_size(spec)
    arguments: dict[str, Any] = {"prompt": edit_prompt(spec, name), "seed": seed_for(spec, pose, name)}
    arguments.update(size_arguments(entry.id, size))
    fmt = entry.params.get("output_format")
    if fmt is not None and "png" in (fmt.values or ()):
        arguments["output_format"] = "png"
    inputs = [Path(base_image), *references_of(spec, name)]
    files: dict[str, Path] = {}
    problem = _inputs_problem(entry, len(inputs), str(spec.source or spec.name), f"variants.{name}.references")
    if problem:
        raise InvalidInput([problem])
    if entry.image_input is not None and entry.image_input.key == "image_url":
        arguments["image_url"] = ""
        files["image_url"] = inputs[0]
    else:
        arguments["image_urls"] = [""] * len(inputs)
        files.update({f"image_urls.{i}": path for i, path in enumerate(inputs)})
    if entry.purpose == "lora-edit" and lora_weights is not None:
        arguments["loras"] = [{"path": "", "scale": spec.training.lora_scale}]
        files["loras.0.path"] = Path(lora_weights)
    return Request(
        entry.id,
        arguments,
        files=files,
        labels={"character": spec.name, "pose": pose, "variant": name, "asset": "variant_images"},
    )


def _image_size(path: Path) -> tuple[int, int]:
    from .media import image_size_of

    return tuple(image_size_of(Path(path).read_bytes()))  # type: ignore[return-value]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def variant_version(spec: CharacterSpec, pose: str, name: str) -> str:
    """What variant ``name`` of ``pose`` is made from besides its base image: endpoint,
    prompt (instruction and palette), seed, LoRA scale and the references' content.
    Another variant's change, or a pose's stance, leaves it alone; a new base image is
    caught by the base's content hash, recorded beside this version."""
    chosen = variant(spec, name)
    refs = {str(ref): (file_sha256(path) if path.is_file() else None) for ref, path in zip(chosen.references, references_of(spec, name))}
    return _digest(
        {
            "endpoint": _entry(chosen.endpoint).id,
            "prompt": edit_prompt(spec, name),
            "seed": seed_for(spec, pose, name),
            "lora_scale": spec.training.lora_scale if uses_lora(spec, name) else None,
            "references": refs,
        }
    )


# --------------------------------------------------------------------------- rules


def _inputs_problem(entry, count: int, where: str, field: str) -> Problem | None:
    spec_in = entry.image_input
    if spec_in is None:
        return None
    if spec_in.key == "image_url" and count > 1:
        return Problem(
            where, field,
            f"{entry.id} takes one input image (image_url), the base pose; this variant has {count} "
            f"({count - 1} references): remove references, or use an endpoint that takes image_urls "
            "(e.g. fal-ai/flux-2/lora/edit, up to 3)",
        )
    if spec_in.max is not None and count > spec_in.max:
        return Problem(
            where, field,
            f"{entry.id} takes at most {spec_in.max} input images (image_urls): the base pose and "
            f"{spec_in.max - 1} references; this variant has {count} ({count - 1} references)",
        )
    return None


def check_variant(spec: CharacterSpec, name: str) -> list[Problem]:
    """What would make variant ``name`` fail or cost an unknown amount, before paying."""
    from .catalog import load_catalog
    from .pricing import load_prices
    from .validation import validate

    where = str(spec.source) if spec.source else spec.name
    field = f"variants.{name}"
    chosen = variant(spec, name)
    catalog = load_catalog()
    try:
        entry = catalog.get(chosen.endpoint)
    except InvalidInput as exc:
        return [Problem(where, f"{field}.endpoint", p.message) for p in exc.problems]
    if entry.purpose not in EDIT_PURPOSES:
        return [Problem(where, f"{field}.endpoint", f"{entry.id} is a {entry.purpose} endpoint; a variant edits the base pose image: "
                        "use an edit endpoint (e.g. fal-ai/flux-pro/kontext, or fal-ai/flux-2/lora/edit with the character's LoRA)")]
    problems: list[Problem] = []
    if entry.purpose == "lora-edit":
        trainer = catalog.get(spec.models.training) if spec.models.training in catalog else None
        if not spec.uses_lora:
            problems.append(Problem(where, f"{field}.endpoint", f"{entry.id} edits with the character's LoRA, and this character's poses use none ({spec.models.pose})"))
        elif trainer is not None and trainer.family != entry.family:
            problems.append(Problem(where, f"{field}.endpoint", f"{entry.id} takes {entry.family} LoRAs; the character's LoRA is {trainer.family} (from {trainer.id})"))
    refs = references_of(spec, name)
    problem = _inputs_problem(entry, 1 + len(refs), where, f"{field}.references" if refs else f"{field}.endpoint")
    if problem:
        problems.append(problem)
    from .references import confinement_problem

    for ref, path in zip(chosen.references, refs):
        outside = None if spec.references_outside_allowed or spec.source is None else confinement_problem(spec.source, path, repr(ref), f"{field}.references")
        if outside is not None:
            problems.append(outside)  # sent to fal as an input image: never a file from outside the spec's tree
        elif not path.is_file():
            problems.append(Problem(where, f"{field}.references", f"{ref!r} not found next to the spec ({path})"))
    if problems:
        return problems
    for pose in poses_of(spec, name)[:1]:  # every pose sends the same arguments but for its seed
        request = variant_request(spec, pose, name, Path("base.png"), size=base_size(spec), lora_weights=Path("lora.safetensors"))
        arguments = _placeholders(request)
        try:
            validate(request.endpoint, arguments)
        except InvalidInput as exc:
            problems.extend(Problem(where, field, str(p)) for p in exc.problems)
    try:
        load_prices().entry(entry.id)
    except InvalidInput as exc:
        problems.append(Problem(where, f"{field}.endpoint", f"refused: {exc.problems[0].message}"))
    return problems


def check_variants(spec: CharacterSpec) -> list[Problem]:
    """``check_variant`` for every variant of ``spec``."""
    return [p for name in spec.variants for p in check_variant(spec, name)]


def _placeholders(request: Request) -> dict[str, Any]:
    """The request's arguments with a URL in each file slot (what validation sees)."""
    import copy

    from .generate import set_path

    arguments = copy.deepcopy(request.arguments)
    for slot in request.files:
        set_path(arguments, slot, f"https://example.invalid/{slot}")
    return arguments


def lint_variants(spec: CharacterSpec) -> list:
    """Warnings on the variants' instructions: a pose, expression or proportions asked of
    an edit (``edit-pose``), and the prompt linter's findings (negative phrasing, ...)."""
    from .lint import _KONTEXT_BANNED, LintFinding, lint_prompt

    findings = []
    for name, chosen in spec.variants.items():
        where = f"variants.{name}"
        for match in _KONTEXT_BANNED.finditer(chosen.instruction):
            findings.append(LintFinding(
                "edit-pose",
                "a variant edits the base pose image and is for colours, materials, lighting and backgrounds, never a new "
                "pose, expression or proportions (the frames must stay aligned with the base); add a pose under poses: instead",
                "warning", match.group(0), match.span(), where,
            ))
        for finding in lint_prompt(chosen.instruction):
            findings.append(LintFinding(finding.code, finding.message, finding.severity, finding.excerpt, finding.span, where))
    return findings
