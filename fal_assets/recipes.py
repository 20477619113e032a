"""The requests the pipeline sends for a character: pure builders from its spec.

Each returns a ``generate.Request`` whose arguments validation can check before any
money moves; files (dataset zip, LoRA weights) travel as local paths that the
generator uploads when it sends the request.
"""

from __future__ import annotations

from pathlib import Path

from .generate import Request
from .prompts import pose_prompt, reference_prompt
from .spec import CharacterSpec

REFERENCE_SIZE = "square_hd"  # 1024x1024: fal's trainer wants images of at least 1024 px


def reference_request(spec: CharacterSpec, view: str) -> Request:
    """One dataset image of the character in ``view``."""
    return Request(
        spec.models.reference,
        {
            "prompt": reference_prompt(spec, view),
            "image_size": REFERENCE_SIZE,
            "seed": spec.seed_for_view(view),
            "output_format": "png",
        },
        labels={"character": spec.name, "view": view, "asset": "reference_images"},
    )


def training_request(spec: CharacterSpec, dataset_zip: Path) -> Request:
    """Train the character's LoRA on its dataset zip (uploaded when sent)."""
    return Request(
        spec.models.training,
        {
            "image_data_url": "",
            "steps": spec.training.steps,
            "learning_rate": spec.training.learning_rate,
            "default_caption": spec.trigger_word,  # only for images without a caption file
            "output_lora_format": "fal",
        },
        files={"image_data_url": Path(dataset_zip)},
        labels={"character": spec.name, "asset": "character_lora"},
    )


def pose_request(spec: CharacterSpec, pose: str, lora_weights: Path | None, profile: str = "final") -> Request:
    """The pose image: LoRA inference with the trigger word first and a pinned seed."""
    arguments = {
        **spec.profile(profile),
        "prompt": pose_prompt(spec, pose, lora=lora_weights is not None and spec.uses_lora),
        "seed": spec.seed_for(pose),
    }
    files = {}
    if lora_weights is not None and spec.uses_lora:
        arguments["loras"] = [{"path": "", "scale": spec.training.lora_scale}]
        files["loras.0.path"] = Path(lora_weights)
    return Request(
        spec.models.pose,
        arguments,
        files=files,
        labels={"character": spec.name, "pose": pose, "asset": "pose_images", "profile": profile},
    )
