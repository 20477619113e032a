"""The offline, deterministic renderer behind the local backend and the fal emulator.

It reads everything from the request arguments fal would get: the prompt's cues
(``#RRGGBB`` colours bound to parts, pose and view words, background, trigger word),
``image_size``, ``seed``, ``num_images``, ``output_format``, LoRAs (already loaded
with ``load_lora``) and input images (already decoded) for edits. Same arguments give
byte-identical PNGs; no seed means ``DEFAULT_SEED``. Who is drawn (body kind, hair,
accessory, proportions, colour roles) comes from the prompt, the LoRAs and a hash of the
prompt's identity text, never from the seed: the seed only moves the limbs a little.

    render_image(arguments, index=0, loras=[(lora, 1.0)], inputs=[]) -> PIL image
    look_for(arguments, index=0, loras=...) -> Look (look.identity(): who is drawn)
    identity_text(prompt) -> str (the prompt's character, without pose, view and framing)
    render_request(endpoint, arguments, loras=..., inputs=...) -> [(bytes, content_type)]
    train_lora(zip_bytes, steps=..., learning_rate=...) -> (safetensors bytes, config)
    load_lora(safetensors bytes) -> LocalLora
"""

from __future__ import annotations

RENDERER_ID = "fal-assets-local/2"
RENDERER_INFO = {"backend": "local", "renderer": RENDERER_ID}
"""What callers put into metadata for pictures this renderer made (copy before changing)."""

from .cues import Cues, identity_text, parse_colour, parse_prompt  # noqa: E402
from .engine import (  # noqa: E402
    DEFAULT_SEED,
    encode,
    look_for,
    render_image,
    render_request,
    resolve_seed,
    resolve_size,
)
from .figure import Look  # noqa: E402
from .lora import LORA_FORMAT, LocalLora, load_lora, train_lora  # noqa: E402

__all__ = [
    "RENDERER_ID",
    "RENDERER_INFO",
    "DEFAULT_SEED",
    "LORA_FORMAT",
    "Cues",
    "LocalLora",
    "Look",
    "encode",
    "identity_text",
    "load_lora",
    "look_for",
    "parse_colour",
    "parse_prompt",
    "render_image",
    "render_request",
    "resolve_seed",
    "resolve_size",
    "train_lora",
]
