"""Texts several test files share: seed 000's GLITCH description and a tiny spec."""

from fal_assets.spec import DEFAULT_VIEWS

# seed 000, workflow 1, verbatim
GLITCH = """
3D Pixar/Disney animation style character (like Big Hero 6, The Incredibles):
Petite athletic girl, approximately 5 heads tall, slender build.
Face: Round cute face, digital goggle visor covering eyes with pink/purple neon glow.
Short dark blonde hair in a high ponytail with black hair tie.
Outfit: Black tactical bodysuit with dark gray armor panels. Hot pink (#FF1493) and
magenta neon-glowing circuit lines on armor. Small katana sheathed on back.
Style: Professional 3D render, Pixar film quality, cinematic lighting, white background.
Full body visible head to toe.
"""

# The smallest spec the trainer accepts: 9 views (fal's minimum dataset), 2 poses.
VIEWS = "".join(f"  {name}: {text}\n" for name, text in list(DEFAULT_VIEWS.items())[:9])
TINY = """\
name: {name}
trigger_word: {name}_char
description: a small round green slime with two dot eyes
style: flat pixel art
palette:
  body: "#33CC66"
poses:
  idle: sitting still, looking at the viewer
  hop: hopping up in the air
views:
""" + VIEWS
