"""``fal-assets validate``: check character specs and request files without sending."""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidInput, Problem


def check_spec(path: Path, *, allow_references_outside: bool = False) -> tuple[list[Problem], list[str]]:
    """Problems with a spec (schema, its own reference images, endpoints per stage, every
    request it would send) and lint notes on its prompts."""
    from . import references
    from .catalog import load_catalog
    from .lint import lint_spec
    from .recipes import pose_request, reference_request
    from .spec import load_spec
    from .validation import validate

    try:
        spec = load_spec(path, allow_references_outside=allow_references_outside)
    except InvalidInput as exc:
        return exc.problems, []
    where = str(path)
    problems: list[Problem] = references.check(spec)
    catalog = load_catalog()
    wanted = {"reference": ("text-to-image",), "training": ("training",), "pose": ("lora-inference", "text-to-image")}
    for stage, purposes in wanted.items():
        endpoint = getattr(spec.models, stage)
        try:
            entry = catalog.get(endpoint)
        except InvalidInput as exc:
            problems.extend(Problem(where, f"models.{stage}", p.message) for p in exc.problems)
            continue
        if entry.purpose not in purposes:
            problems.append(
                Problem(where, f"models.{stage}", f"{endpoint} is a {entry.purpose} endpoint; this stage needs {' or '.join(purposes)}")
            )
    if problems:
        return problems, []
    samples = [reference_request(spec, next(iter(spec.views)))]
    weights = Path("lora.safetensors")
    samples += [pose_request(spec, pose, weights, profile) for pose in spec.poses for profile in spec.profiles]
    for request in samples:
        arguments = dict(request.arguments)
        for slot in request.files:
            if slot == "loras.0.path":
                arguments["loras"] = [{**arguments["loras"][0], "path": "https://example.invalid/lora.safetensors"}]
        try:
            validate(request.endpoint, arguments)
        except InvalidInput as exc:
            label = request.labels.get("profile", "reference")
            problems.extend(Problem(where, f"profiles.{label}" if label != "reference" else "models.reference", str(p)) for p in exc.problems)
    notes = [f"{where}: {finding.message}" for finding in lint_spec(spec)]
    from .variants import check_variants, lint_variants

    problems.extend(check_variants(spec))
    notes += [f"{where}: {finding}" for finding in lint_variants(spec)]
    animation_problems, animation_notes = _check_animations(spec, where)
    return _unique(problems + animation_problems), notes + animation_notes


def _check_animations(spec, where: str) -> tuple[list[Problem], list[str]]:
    """Each animation's endpoint fits its method and every request it would send is valid;
    an endpoint with no known price is a note (the animation is refused until one is supplied)."""
    from .animation import endpoint_problems, estimate_animation, pose_image_size

    problems = endpoint_problems(spec)
    notes = []
    bad = {p.field for p in problems}
    for name in spec.animations:
        if f"animations.{name}.endpoint" in bad:
            continue
        try:
            estimate_animation(spec, name, None, Path("lora.safetensors"), base_size=pose_image_size(spec))
        except InvalidInput as exc:
            for p in exc.problems:
                if p.field == "price":
                    notes.append(f"{where}: animations.{name}: refused until priced: {p.message}")
                else:
                    problems.append(Problem(where, f"animations.{name}", f"{p.field}: {p.message}"))
    return problems, notes


def check_request(path: Path) -> list[Problem]:
    from .validation import validate_request

    from . import bounded

    try:
        body = bounded.load_json(bounded.read_text(path, "request"), str(path))
    except InvalidInput as exc:
        return exc.problems
    try:
        validate_request(body, str(path))
    except InvalidInput as exc:
        return [p if p.where.startswith(str(path)) else p.located(str(path)) for p in exc.problems]
    return []


def check_file(path: Path, *, allow_references_outside: bool = False) -> tuple[list[Problem], list[str]]:
    """(problems, notes) for one file: YAML is a character spec, JSON a request."""
    path = Path(path)
    if not path.is_file():
        return [Problem(str(path), "", "no such file")], []
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return check_spec(path, allow_references_outside=allow_references_outside)
    if suffix == ".json":
        return check_request(path), []
    return [Problem(str(path), "", "unknown kind of file; allowed: .yaml/.yml (character spec) or .json (request)")], []


def _unique(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for problem in problems:
        if str(problem) not in seen:
            seen.add(str(problem))
            out.append(problem)
    return out
