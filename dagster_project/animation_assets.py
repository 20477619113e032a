"""Animated sprites as assets: frames -> sprites -> the character's animated sheet.

Partitions are the real character x animation pairs the specs name (``glitch/run``,
``rivet/walk``), static like the pose partitions (see ``partitions.py``), joined to the
rest of the graph by ``StaticPartitionMapping``s only: an animation reads its base
pose's image and its character's LoRA and sprite sheet (the character's scale); the
animated sheet reads its character's animations.

    animation_frames (fal)  -> animation_sprites (cut out, one canvas) -> animated_sheet
      + checks: animation_canvas_shared, animation_loop_closes, animation_frames_whole

Each asset calls one library function (``fal_assets.animation``,
``fal_assets.animation_export``) and records what it made and cost.
"""


import base64
import json

import dagster as dg

from fal_assets import animation as an
from fal_assets import atomic
from fal_assets import animation_export as ax
from fal_assets.errors import GenerationFailed
from fal_assets.spec import scan_specs

from .assets import OWNERS, stage
from .partitions import join, poses_by_character, split
from .resources import CharacterLibrary, CutoutResource, FalResource, StoreResource, cached_load_spec

MV = dg.MetadataValue


class AnimationPartitions:
    """The partitions of one library's animations, from ``{character: {animation: base pose}}``."""

    def __init__(self, animations: dict[str, dict[str, str]]):
        self.by_character = {c: dict(a) for c, a in animations.items() if a}
        self.pairs = [(c, a) for c, names in self.by_character.items() for a in names]
        keys = [join(c, a) for c, a in self.pairs]
        self.animations = dg.StaticPartitionsDefinition(keys)
        self.characters = dg.StaticPartitionsDefinition(list(self.by_character))
        # an animation reads its own character's LoRA and sprite sheet ...
        self.from_character = dg.StaticPartitionMapping({c: [join(c, a) for a in names] for c, names in self.by_character.items()})
        # ... and its base pose's image (pose key -> the animations built on it)
        by_pose: dict[str, list[str]] = {}
        for c, names in self.by_character.items():
            for a, pose in names.items():
                by_pose.setdefault(join(c, pose), []).append(join(c, a))
        self.from_pose = dg.StaticPartitionMapping(by_pose)
        # the animated sheet reads its own character's animations
        self.to_character = dg.StaticPartitionMapping({join(c, a): c for c, a in self.pairs})

    @classmethod
    def of_specs(cls, specs) -> "AnimationPartitions":
        return cls({name: {a: spec.animation_pose(a) for a in spec.animations} for name, spec in specs.items()})

    @property
    def empty(self) -> bool:
        return not self.pairs


class AnimationConfig(dg.Config):
    profile: str = "final"  # the quality profile's arguments an edit endpoint takes (steps, ...)


def _gif_markdown(path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"![{alt}](data:image/gif;base64,{data})"


def _frames_metadata(made: an.AnimationFrames, spec) -> dict:
    animation = spec.animation(made.animation)
    gens = made.generations
    return {
        "method": MV.text(made.method),
        "endpoint": MV.text(made.endpoint),
        "frames": MV.int(len(made.frames)),
        "fps": MV.float(float(animation.fps)),
        "loop": MV.bool(animation.loop),
        "base_pose": MV.text(spec.animation_pose(made.animation)),
        "seeds": MV.json([f.seed for f in made.frames]),
        "request_ids": MV.json(sorted({g.request_id or "" for g in gens})),
        "cost_usd": MV.float(made.cost_usd),  # billed by this materialization (cache hits and local: $0)
        "estimated_usd": MV.float(made.estimated_usd),  # what the animation costs on fal
        "cost_per_frame_usd": MV.json([round(f.estimated_usd, 6) for f in made.frames]),
        "cost_kind": MV.text("billed" if any(g.cost_kind == "billed" for g in gens) else "estimated"),
        "cache_hits": MV.int(made.cache_hits),
        "requests": MV.int(len(gens)),
        "backend": MV.text(made.backend),
        "frames_version": MV.text(made.version),
        "folder": MV.path(str(made.folder)),
    }


def build(folder: str) -> tuple[list, list]:
    """The animation assets and checks for the specs in ``folder`` (none when no spec
    names an animation)."""
    specs, _ = scan_specs(folder, loader=cached_load_spec)
    parts = AnimationPartitions.of_specs(specs)
    if parts.empty:
        return [], []
    per_animation = dict(partitions_def=parts.animations, backfill_policy=dg.BackfillPolicy.single_run(), owners=OWNERS)

    @dg.asset(
        deps=[dg.AssetDep("pose_images", partition_mapping=parts.from_pose),
              dg.AssetDep("character_lora", partition_mapping=parts.from_character)],
        **stage("animations"), kinds={"fal", "png"}, pool="fal", **per_animation,
    )
    def animation_frames(context: dg.AssetExecutionContext, config: AnimationConfig, characters: CharacterLibrary, fal: FalResource,
                         store: StoreResource) -> dg.MaterializeResult:
        """Each animation's raw frames from its base pose image: keyframes (edits with
        the previous frame, seeds pinned per frame) or one image-to-video clip sampled
        evenly; estimated and budget-checked before anything is sent. One character's
        animations run together, their chains advancing side by side."""
        failures = []
        settings = fal.settings(context.run.run_id)
        for character, names in poses_by_character(context.partition_keys).items():
            spec = characters.spec(character)
            bases = {n: store.path(character, "poses_raw", f"{spec.animation_pose(n)}.png") for n in names}
            weights = store.path(character, "lora", "pytorch_lora_weights.safetensors")
            folders = {n: store.path(character, "animations", n, "frames") for n in names}
            with an.journal_lookup(settings, fal.key) as lookup:
                made = an.animation_frames(spec, names, bases, weights if weights.is_file() else None, folders,
                                           lambda r: fal.generate(context, r), config.profile,
                                           preflight=an.budget_preflight(settings), lookup=lookup)
            for name, outcome in made.items():
                if isinstance(outcome, BaseException):
                    failures.append(f"{character}/{name}: {outcome}")
                    continue
                context.add_asset_metadata(_frames_metadata(outcome, spec), partition_key=join(character, name))
                context.log.info(f"{character}/{name}: {len(outcome.frames)} frames by {outcome.method}, "
                                 f"${outcome.cost_usd:.4f} billed, ${outcome.estimated_usd:.4f} on fal")
        if failures:
            raise GenerationFailed("\n".join(failures))
        return dg.MaterializeResult()

    @dg.asset(
        deps=["animation_frames", dg.AssetDep("sprite_sheet", partition_mapping=parts.from_character)],
        **stage("animations"), kinds={"rembg", "png"}, **per_animation,
    )
    def animation_sprites(context: dg.AssetExecutionContext, characters: CharacterLibrary, cutout: CutoutResource,
                          store: StoreResource) -> dg.MaterializeResult:
        """The frames cut out and put on one canvas per animation at the character's scale
        and baseline (read off its sprite sheet), so an idle and a run line up."""
        cutter = cutout.cutter()
        for key in context.partition_keys:
            character, name = split(key)
            spec = characters.spec(character)
            base = store.path(character, "poses_raw", f"{spec.animation_pose(name)}.png")
            scale = ax.CharacterScale.from_sheet(store.path(character), base)
            root = store.path(character, "animations", name)
            made = ax.animation_sprites(spec, name, root / "frames", root / "cutouts", root / "sprites", cutter, scale)
            clip = ax.Clip(name, made.canvas.frames, made.fps, made.loop, made.canvas.pivot)
            preview = atomic.write_bytes(root / "preview.gif", ax.gif_bytes(clip, max_side=160))
            context.add_asset_metadata({
                "frames": MV.int(len(made.paths)),
                "canvas": MV.text(f"{made.canvas.canvas[0]}x{made.canvas.canvas[1]}"),
                "baseline": MV.int(made.canvas.baseline),
                "pivot": MV.json(list(made.canvas.pivot)),
                "scale": MV.float(round(made.canvas.scale, 6)),
                "method": MV.text(", ".join(sorted(set(made.methods)))),
                "cache_hits": MV.int(made.cache_hits),
                "problems": MV.json(made.problems),
                "loop": MV.json(made.loop_measure),
                "folder": MV.path(str(root / "sprites")),
                "preview": MV.md(_gif_markdown(preview, f"{character}/{name}")),
            }, partition_key=key)
        return dg.MaterializeResult()

    @dg.asset(
        partitions_def=parts.characters,
        deps=[dg.AssetDep("animation_sprites", partition_mapping=parts.to_character)],
        **stage("animations"), kinds={"png", "json"}, owners=OWNERS,
    )
    def animated_sheet(context: dg.AssetExecutionContext, characters: CharacterLibrary, store: StoreResource) -> dg.MaterializeResult:
        """All of a character's animations in one atlas (frames ``<animation>/<nnn>``) with
        TexturePacker JSON, Aseprite JSON (frameTags), a Godot 4 SpriteFrames (fps, loop)
        and an animated GIF/WebP per animation. fps and loop come from the spec: a new fps
        re-exports here and touches no frame."""
        spec = characters.spec(context.partition_key)
        sheet = ax.animated_sheet(spec, store.path(spec.name, "animations"), store.path(spec.name))
        versions = {n: an.export_version(spec, n) for n in spec.animations}
        published = store.publish(sheet.atlas_png, sheet.atlas_json, sheet.aseprite_json, sheet.godot, *sheet.previews.values(), *sheet.webps.values())
        return dg.MaterializeResult(
            metadata={
                "atlas": MV.path(str(sheet.atlas_png)), "atlas_json": MV.path(str(sheet.atlas_json)),
                "aseprite_json": MV.path(str(sheet.aseprite_json)), "godot": MV.path(str(sheet.godot)),
                "frames": MV.int(sheet.frames), "atlas_size": MV.text(f"{sheet.atlas_size[0]}x{sheet.atlas_size[1]}"),
                "animations": MV.json(sheet.clips), "export_versions": MV.json(versions),
                "preview": MV.md(" ".join(_gif_markdown(p, n) for n, p in sheet.previews.items())),
                **published,
            },
            data_version=dg.DataVersion(an._digest(versions)),
        )

    return [animation_frames, animation_sprites, animated_sheet], _checks(parts)


def _check(found: dict[str, list[str]], severity=dg.AssetCheckSeverity.ERROR, **extra) -> dg.AssetCheckResult:
    failing = {k: v for k, v in found.items() if v}
    return dg.AssetCheckResult(passed=not failing, severity=severity,
                               metadata={"checked": len(found), "problems": MV.json(failing), **extra})


def _frames(store: StoreResource, key: str, kind: str):
    from PIL import Image

    character, name = split(key)
    folder = store.path(character, "animations", name, kind)
    frames = []
    for path in sorted(folder.glob("[0-9][0-9][0-9].png")):
        with Image.open(path) as image:
            frames.append(image.convert("RGBA"))
    return frames, folder


def _checks(parts: AnimationPartitions) -> list:
    @dg.asset_check(asset="animation_sprites", partitions_def=parts.animations, blocking=True)
    def animation_canvas_shared(context: dg.AssetCheckExecutionContext, characters: CharacterLibrary, store: StoreResource) -> dg.AssetCheckResult:
        """Every frame of an animation has one canvas size and the feet on one baseline
        (a grounded animation stands on it in some frame; none reaches below it)."""
        found = {}
        for key in context.partition_keys:
            character, name = split(key)
            frames, folder = _frames(store, key, "sprites")
            info = json.loads((folder / "animation.json").read_text()) if (folder / "animation.json").is_file() else {}
            spec = characters.spec(character)
            grounded = spec.pose(spec.animation_pose(name)).stance != "airborne"
            found[key] = ax.canvas_problems(frames, info.get("baseline"), grounded=grounded) if frames else ["no frames"]
        return _check(found)

    @dg.asset_check(asset="animation_sprites", partitions_def=parts.animations)
    def animation_loop_closes(context: dg.AssetCheckExecutionContext, characters: CharacterLibrary, store: StoreResource) -> dg.AssetCheckResult:
        """A looping animation's last frame leads back to its first: their difference is
        no bigger than twice the usual step between neighbouring frames."""
        found, measured = {}, {}
        for key in context.partition_keys:
            character, name = split(key)
            if not characters.spec(character).animation(name).loop:
                found[key] = []
                continue
            frames, _ = _frames(store, key, "sprites")
            found[key], measured[key] = ax.loop_problems(frames) if frames else (["no frames"], {})
        return _check(found, measured=MV.json(measured))

    @dg.asset_check(asset="animation_sprites", partitions_def=parts.animations, blocking=True)
    def animation_frames_whole(context: dg.AssetCheckExecutionContext, store: StoreResource) -> dg.AssetCheckResult:
        """No frame is empty after the cutout, and none is clipped by the edge of the picture."""
        found = {}
        for key in context.partition_keys:
            cutouts, _ = _frames(store, key, "cutouts")
            found[key] = ax.frame_problems(cutouts) if cutouts else ["no cut-out frames"]
        return _check(found)

    return [animation_canvas_shared, animation_loop_closes, animation_frames_whole]
