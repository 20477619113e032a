"""Previews for people in the Dagster UI."""


def test_inline_previews_fit_where_dagster_draws_them(tmp_path):
    # Dagster's UI draws Markdown metadata under 1000 characters in place
    from PIL import Image, ImageDraw

    from fal_assets.previews import INLINE_LIMIT, inline_markdown

    pose = Image.new("RGB", (768, 1024), "white")
    draw = ImageDraw.Draw(pose)
    for i in range(40):
        draw.ellipse([(i * 37) % 700, (i * 53) % 950, (i * 37) % 700 + 60, (i * 53) % 950 + 70], fill=(i * 6, 255 - i * 5, 90))
    cutout = pose.convert("RGBA")
    cutout.putalpha(Image.new("L", pose.size, 0).point(lambda v: 255))
    for image in (pose, cutout):
        text = inline_markdown(image, alt="idle")
        assert text.startswith("![idle](data:image/") and len(text) < INLINE_LIMIT
    assert inline_markdown(tmp_path / "gone.png", alt="idle") == f"_idle: {tmp_path / 'gone.png'} is missing_"
