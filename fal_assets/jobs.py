"""What a fal endpoint does with a request, done offline with the local renderer.

Shared by the local backend (in-process) and the fal queue emulator (over HTTPS), so
both answer with fal's result shapes: ``images[]`` for image endpoints,
``diffusers_lora_file`` and ``config_file`` for the trainer.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from .catalog import load_catalog

Fetch = Callable[[str], tuple[bytes, str]]
"""Turns an input URL (data URI, local path, media URL) into (bytes, content type)."""


@dataclass
class JobOutput:
    """A result without URLs, and the files the URLs will point at, in order."""

    result: dict[str, Any]
    files: list[tuple[bytes, str, str]] = field(default_factory=list)  # (data, content_type, name)
    slots: list[tuple[str, ...]] = field(default_factory=list)  # where each file's URL goes

    def with_urls(self, urls: list[str]) -> dict[str, Any]:
        """The result with each file's URL put in its slot."""
        result = json.loads(json.dumps(self.result))
        for url, slot in zip(urls, self.slots, strict=True):
            target: Any = result
            for part in slot:
                target = target[int(part)] if isinstance(target, list) else target[part]
            target["url"] = url
        return result


def default_seed() -> int:
    """The seed a request without one gets: random, as fal does."""
    return random.SystemRandom().randrange(0, 2**32)


def input_urls(arguments: dict[str, Any]) -> list[str]:
    """Every input image URL in a request, in order."""
    urls = list(arguments.get("image_urls") or [])
    if arguments.get("image_url"):
        urls.append(arguments["image_url"])
    return urls


def run_job(endpoint: str, arguments: dict[str, Any], fetch: Fetch) -> JobOutput:
    """Run one validated request offline and return fal's result shape."""
    from PIL import Image

    from . import render

    spec = load_catalog().get(endpoint)
    if spec.output_kind == "lora":
        return _train(arguments, fetch)
    if spec.output_kind == "video":
        return _video(arguments, fetch)
    if spec.purpose in ("background-removal", "pixel-art"):
        return _image_utility(spec, arguments, fetch)

    arguments = dict(arguments)
    if "seed" not in arguments:
        arguments["seed"] = default_seed()
    inputs = [Image.open(io.BytesIO(fetch(url)[0])).convert("RGB") for url in input_urls(arguments)]
    loras = [
        (render.load_lora(fetch(entry["path"])[0]), float(entry.get("scale", 1.0)))
        for entry in arguments.get("loras") or []
    ]
    files = render.render_request(endpoint, arguments, loras=loras, inputs=inputs)
    images, out_files, slots = [], [], []
    for index, (data, content_type) in enumerate(files):
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        suffix = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(content_type, "bin")
        images.append({"url": "", "width": width, "height": height, "content_type": content_type})
        out_files.append((data, content_type, f"{index}.{suffix}"))
        slots.append(("images", str(index)))
    result = {
        "images": images,
        "seed": arguments["seed"],
        "prompt": arguments.get("prompt", ""),
        "timings": {},
    }
    if spec.nsfw_flag:  # only the endpoints whose output has it (flux-2-pro's has not)
        result["has_nsfw_concepts"] = [False] * len(images)
    return JobOutput(result, out_files, slots)


def _image_utility(spec, arguments: dict[str, Any], fetch: Fetch) -> JobOutput:
    """Background removal (the offline key cutter) and pixel art (downscale, few colours)."""
    from PIL import Image

    data, _ = fetch(arguments["image_url"])
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    if spec.purpose == "background-removal":
        from .cutout import KeyCutter

        out = KeyCutter().cut(image).image
    else:
        small = image.resize((max(1, image.width // 8), max(1, image.height // 8)), Image.Resampling.BOX)
        out = small.quantize(colors=16).convert("RGB").resize(image.size, Image.Resampling.NEAREST)
    fmt = str(arguments.get("output_format") or "png")
    buffer = io.BytesIO()
    out.save(buffer, format=fmt.upper())
    content_type = f"image/{fmt}"
    item = {"url": "", "width": out.width, "height": out.height, "content_type": content_type}
    name = f"0.{fmt}"
    if spec.outputs == ("image",):
        return JobOutput({"image": item}, [(buffer.getvalue(), content_type, name)], [("image",)])
    return JobOutput({"images": [item]}, [(buffer.getvalue(), content_type, name)], [("images", "0")])


def _train(arguments: dict[str, Any], fetch: Fetch) -> JobOutput:
    from . import render

    dataset, _ = fetch(arguments["image_data_url"])
    weights, config = render.train_lora(
        dataset,
        steps=int(arguments.get("steps", 1000)),
        learning_rate=float(arguments.get("learning_rate", 0.00005)),
        default_caption=arguments.get("default_caption"),
        trigger_word=arguments.get("trigger_word"),
    )
    config_bytes = json.dumps(config, indent=2, sort_keys=True).encode("utf-8")
    result = {
        "diffusers_lora_file": {
            "url": "",
            "content_type": "application/octet-stream",
            "file_name": "pytorch_lora_weights.safetensors",
            "file_size": len(weights),
        },
        "config_file": {
            "url": "",
            "content_type": "application/json",
            "file_name": "config.json",
            "file_size": len(config_bytes),
        },
    }
    files = [
        (weights, "application/octet-stream", "pytorch_lora_weights.safetensors"),
        (config_bytes, "application/json", "config.json"),
    ]
    return JobOutput(result, files, [("diffusers_lora_file",), ("config_file",)])


def _video(arguments: dict[str, Any], fetch: Fetch) -> JobOutput:
    """Image-to-video (Kling's shape): the input's character drawn through the prompt's
    motion over ``duration`` seconds, an mp4 in ``video``."""
    from PIL import Image

    from .render.motion import render_clip

    with Image.open(io.BytesIO(fetch(arguments["image_url"])[0])) as opened:
        source = opened.convert("RGB")
    data, _, _ = render_clip(arguments, [source])
    item = {"url": "", "content_type": "video/mp4", "file_name": "output.mp4", "file_size": len(data)}
    return JobOutput({"video": item}, [(data, "video/mp4", "output.mp4")], [("video",)])
