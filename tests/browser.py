"""Open a page from disk in headless Chromium (Debian's `chromium`, no pip-downloaded browser).

Two runs of the browser per page: `--dump-dom` on a copy of the page with a small inline probe
(the copy's Content-Security-Policy also allows that one inline script; everything else stays
blocked, so any network fetch is a recorded violation) that records errors, console errors,
image sizes and section ids into the DOM; and `--screenshot` of the page itself.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROBE = """<script>
(function () {
  var log = [];
  window.addEventListener("error", function (e) {
    log.push(e.message || ("failed to load " + (e.target && (e.target.src || e.target.href))));
  }, true);
  document.addEventListener("securitypolicyviolation", function (e) { log.push("CSP blocked " + e.blockedURI); });
  var original = console.error;
  console.error = function () { log.push(Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); };
  window.addEventListener("load", function () {
    setTimeout(function () {
      var out = {
        errors: log,
        images: Array.prototype.map.call(document.images, function (i) {
          return {complete: i.complete, width: i.naturalWidth, height: i.naturalHeight, alt: i.alt}; }),
        sections: Array.prototype.map.call(document.querySelectorAll("section[id]"), function (s) { return s.id; }),
        links: Array.prototype.map.call(document.querySelectorAll("a[href]"), function (a) {
          return a.getAttribute("href"); })
      };
      var pre = document.createElement("pre");
      pre.id = "lmlab-probe";
      pre.textContent = JSON.stringify(out);
      document.body.appendChild(pre);
    }, 50);
  });
})();
</script>"""

CSP = re.compile(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no chromium on PATH: the report's browser test needs Debian's chromium "
                "(sudo apt-get install -y chromium; `make test` installs it when missing)")


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run",
           "--disable-extensions", "--disable-background-networking", "--hide-scrollbars",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def probe(page: Path, work: Path) -> dict:
    """Load `page` (a copy with the probe, beside the original so relative links resolve) and return
    what the probe recorded: errors, images (complete, natural size), section ids, link targets."""
    text = page.read_text(encoding="utf-8")
    match = CSP.search(text)
    assert match, "the page has no Content-Security-Policy meta tag"
    policy = match.group(1) + "; script-src 'unsafe-inline'"
    copy = page.with_name(".probe-" + page.name)
    copy.write_text(text.replace(match.group(0), f'<meta http-equiv="Content-Security-Policy" '
                                                 f'content="{policy}">' + PROBE, 1), encoding="utf-8")
    try:
        out = _run(["--virtual-time-budget=15000", "--dump-dom", copy.resolve().as_uri()], work / "profile")
    finally:
        copy.unlink()
    found = re.search(r'<pre id="lmlab-probe">(.*?)</pre>', out.stdout, re.S)
    assert found, f"the probe did not report (chromium rc {out.returncode}): {out.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 2400) -> Path:
    out = _run([f"--screenshot={png}", f"--window-size={width},{height}", page.resolve().as_uri()],
               png.parent / "profile")
    assert png.is_file(), f"chromium wrote no screenshot (rc {out.returncode}): {out.stderr[-2000:]}"
    return png


def not_blank(png: Path) -> tuple[float, int]:
    """(share of pixels that are not white, number of distinct colours) of a screenshot."""
    from PIL import Image
    import numpy as np

    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    inked = float((pixels.min(axis=1) < 245).mean())
    colours = len(np.unique(pixels[:: max(len(pixels) // 200_000, 1)], axis=0))
    return inked, colours
