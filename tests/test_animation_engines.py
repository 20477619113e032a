"""The exports as the engines meet them: Phaser 3 in headless Chromium loads the atlas and
the Aseprite JSON, builds the animations with ``createFromAseprite`` and plays one; the
frame count, order, timing and pixels regions are read back from the page.

Needs Chromium (Debian: ``apt-get install chromium``) and Phaser 3's build
(``npm install --no-save phaser@3``, or ``PHASER_JS=/path/to/phaser.min.js``); skipped
without them.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from fal_assets import animation_export as ex
from tests.test_animation_export import cycle, figure

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
PHASER = next((Path(p) for p in (os.environ.get("PHASER_JS", ""), ROOT / "node_modules/phaser/dist/phaser.min.js") if p and Path(p).is_file()), None)

pytestmark = pytest.mark.skipif(CHROMIUM is None or PHASER is None,
                                reason="needs chromium and Phaser 3 (npm install --no-save phaser@3, or PHASER_JS=...)")

PAGE = """<!doctype html><html><body><pre id="out">pending</pre>
<script src="phaser.min.js"></script>
<script>
const out = document.getElementById('out');
window.onerror = (message) => { out.textContent = 'error: ' + message; };
new Phaser.Game({type: Phaser.CANVAS, width: 64, height: 64, banner: false, audio: {noAudio: true},
  fps: {forceSetTimeOut: true, target: 60}, scene: {
  preload() {
    this.load.aseprite('hero', 'animations.png', 'animations.aseprite.json');
    this.load.atlas('atlas', 'animations.png', 'animations.json');
  },
  create() {
    const made = this.anims.createFromAseprite('hero');
    const atlas = this.textures.get('atlas');
    const hero = this.textures.get('hero');
    const result = {anims: {}, atlas: {}, hero: {}, played: []};
    for (const a of made) {
      result.anims[a.key] = {frames: a.frames.map(f => f.textureFrame), frameRate: a.frameRate, duration: a.duration, repeat: a.repeat};
    }
    for (const name of atlas.getFrameNames()) { const f = atlas.get(name); result.atlas[name] = [f.cutX, f.cutY, f.cutWidth, f.cutHeight]; }
    for (const name of hero.getFrameNames()) { const f = hero.get(name); result.hero[name] = [f.cutX, f.cutY, f.cutWidth, f.cutHeight]; }
    const sprite = this.add.sprite(32, 32, 'hero');
    sprite.on('animationupdate', (anim, frame) => { if (result.played.length < 20) result.played.push(frame.textureFrame); });
    sprite.play({key: 'run', repeat: -1});
    result.played.push(sprite.frame.name);
    out.textContent = 'created';
    this.time.delayedCall(2500, () => { out.textContent = JSON.stringify(result); });
  }
}});
</script></body></html>
"""


def serve(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_phaser_plays_the_exported_animations_in_order(tmp_path):
    character = ex.CharacterScale(0.5, 95, 200)
    run = ex.normalise_frames("run", cycle(8), character)
    idle = ex.normalise_frames("idle", [figure(leg=i) for i in range(4)], character)
    clips = [ex.Clip("run", run.frames, 12.0, True, run.pivot), ex.Clip("idle", idle.frames, 6.0, True, idle.pivot)]
    site = tmp_path / "site"
    ex.write_exports(clips, site)
    shutil.copy(PHASER, site / "phaser.min.js")
    (site / "index.html").write_text(PAGE)
    server = serve(site)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        proc = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--dump-dom", url],
                              capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    dom = proc.stdout
    start, end = dom.find('<pre id="out">') + len('<pre id="out">'), dom.find("</pre>")
    text = dom[start:end]
    assert text.startswith("{"), (text[:500], proc.stderr[-1500:])
    result = json.loads(text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    # createFromAseprite: one animation per frameTag, its frames in order, 1000/fps ms each
    assert result["anims"]["run"]["frames"] == [str(i) for i in range(8)]
    assert result["anims"]["idle"]["frames"] == ["8", "9", "10", "11"]
    assert result["anims"]["run"]["duration"] == 8 * 83 and result["anims"]["idle"]["duration"] == 4 * 167
    # played with repeat -1: 0..7 then round again
    played = result["played"]
    assert len(played) >= 10 and played[:10] == ["0", "1", "2", "3", "4", "5", "6", "7", "0", "1"], played
    # the atlas names frames <animation>/<nnn>, and both JSONs cut the same pixels
    atlas = json.loads((site / "animations.json").read_text())
    assert [n for n in result["atlas"] if n != "__BASE"] == list(atlas["frames"])
    for index, name in enumerate(list(atlas["frames"])):
        f = atlas["frames"][name]["frame"]
        assert result["atlas"][name] == [f["x"], f["y"], f["w"], f["h"]]
        assert result["hero"][str(index)] == result["atlas"][name]
