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


def test_previews_of_a_file_are_kept_by_content_and_never_encoded_twice(tmp_path, monkeypatch):
    from PIL import Image

    from fal_assets import previews

    monkeypatch.setenv("FAL_ASSETS_PREVIEW_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "pose.png"
    Image.new("RGBA", (300, 400), (200, 40, 40, 255)).save(path)
    first = previews.inline_markdown(path, alt="idle")
    large = previews.thumbnail_markdown(path, alt="idle")
    assert first.startswith("![idle](data:image/") and large.startswith("![idle](data:image/png")
    encodes = []
    monkeypatch.setattr(previews, "thumbnail_png", lambda *a, **k: encodes.append(a) or b"")
    monkeypatch.setattr(previews, "_encodings", lambda *a, **k: encodes.append(a) or iter(()))
    assert previews.inline_markdown(path, alt="idle") == first  # the same bytes: read back, not encoded
    assert previews.thumbnail_markdown(path, alt="idle") == large
    assert encodes == []
    assert previews.inline_markdown(path, alt="other") != first  # other arguments: another preview
    Image.new("RGBA", (300, 400), (40, 200, 40, 255)).save(path)  # new bytes at the same path
    encodes.clear()
    previews.thumbnail_markdown(path, alt="idle")
    assert len(encodes) == 1
