"""Against a real fal account: skipped without FAL_KEY. Costs about $0.003 per run
(one 512x512 FLUX.1 [schnell] image), and the second request is a journal hit ($0)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.fal, pytest.mark.skipif(not (os.environ.get("FAL_KEY") or os.environ.get("FAL_AI_API_KEY")),
                                                  reason="needs a real fal account: set FAL_KEY")]
ROOT = Path(__file__).resolve().parents[1]


def test_one_cheap_image_then_a_free_rerun(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("FAL_RUN_HOST", "FAL_QUEUE_RUN_HOST")}
    args = [str(Path(sys.executable).with_name("fal-assets")), "generate", "fal-ai/flux/schnell",
            "--arg", "prompt=a small red robot waving, flat vector, plain white background",
            "--arg", "image_size=512x512", "--arg", "num_inference_steps=2", "--arg", "output_format=png",
            "--backend", "fal", "--out", str(tmp_path), "--json"]
    import json

    first = json.loads(subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=600).stdout)
    assert first["backend"] == "fal" and first["cost_usd"] == pytest.approx(0.003) and not first["cache_hit"]
    assert Path(first["files"][0]).is_file()
    second = json.loads(subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=600).stdout)
    assert second["cache_hit"] and second["cost_usd"] == 0 and second["request_id"] == first["request_id"]
    key = os.environ.get("FAL_KEY") or os.environ["FAL_AI_API_KEY"]
    assert all(key.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
