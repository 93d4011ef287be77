"""A real browser looks at the compare report and the plan picture (slow).

Headless Chromium opens each page twice: once with a probe script appended
(it measures the rendered chart, bars, legend and plan boxes with
getBoundingClientRect and writes the numbers into the DOM, which
`--dump-dom` prints), and once for a screenshot, whose pixels are checked
where the probe says the bars are. The screenshots are kept next to the
test's temporary files for a person to look at.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from musketeer import cli
from tests.conftest import write_small_join

pytestmark = pytest.mark.slow

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                                             "(apt-get install -y chromium)")
WIDTH, HEIGHT = 1200, 3000

PROBE = """
<script>
window.addEventListener('load', () => {
  const box = el => { const r = el.getBoundingClientRect();
                      return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; };
  const all = sel => Array.from(document.querySelectorAll(sel)).map(box);
  const out = {
    totals: all('#totals-chart svg'), breakdown: all('#breakdown-chart svg'),
    measuredBars: all('#totals-chart svg path').filter((_, i) =>
        (document.querySelectorAll('#totals-chart svg path')[i].getAttribute('style') || '').includes('#1f78b4')),
    texts: Array.from(document.querySelectorAll('#totals-chart svg text')).map(t => t.textContent.trim()),
    planNodes: all('.plan-node, g.node'),
    planTexts: Array.from(document.querySelectorAll('svg text')).map(t => t.textContent.trim()),
  };
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="musketeer-chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--hide-scrollbars", "--force-device-scale-factor=1",
             f"--window-size={WIDTH},{HEIGHT}", *args],
            capture_output=True, text=True, timeout=180, check=False)


def _probe(page: Path) -> dict:
    probed = page.with_name(page.stem + "_probe.html")
    text = page.read_text()
    if page.suffix == ".svg":
        text = f"<!doctype html><html><body>{text[text.find('<svg'):]}</body></html>"
    probed.write_text(text.replace("</body>", PROBE + "</body>") if "</body>" in text else text + PROBE)
    done = _chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not run: {done.stderr[-500:]}"
    import html

    return json.loads(html.unescape(found.group(1)))


def _screenshot(page: Path, png: Path):
    _chromium(f"--screenshot={png}", page.as_uri())
    from PIL import Image

    assert png.exists() and png.stat().st_size > 10_000
    return Image.open(png).convert("RGB")


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    return write_small_join(tmp_path, rows=5000)


@needs_chromium
def test_report_renders_charts_in_a_browser(small: Path, monkeypatch) -> None:
    monkeypatch.chdir(small)
    assert cli.main(["compare", "q.sql", "--data-dir", "data", "--backends", "local,dask",
                     "--report", "report.html"]) == 0
    probe = _probe(small / "report.html")
    (totals,), (breakdown,) = probe["totals"], probe["breakdown"]
    assert totals["w"] > 400 and totals["h"] > 80 and breakdown["w"] > 400 and breakdown["h"] > 80
    assert len(probe["measuredBars"]) >= 2 and all(b["w"] > 1 and b["h"] > 1 for b in probe["measuredBars"])
    assert {"measured", "predicted (explain)", "local", "dask"} <= set(probe["texts"])
    assert any(re.fullmatch(r"[\d.,]+ (s|ms)", t) for t in probe["texts"])
    assert len(probe["planNodes"]) >= 5 and all(n["w"] > 20 and n["h"] > 10 for n in probe["planNodes"])
    image = _screenshot(small / "report.html", small / "report.png")
    bar = probe["measuredBars"][0]
    x, y = int(bar["x"] + bar["w"] / 2), int(bar["y"] + bar["h"] / 2)
    r, g, b = image.getpixel((x, y))
    assert (abs(r - 0x1F) < 40 and abs(g - 0x78) < 40 and abs(b - 0xB4) < 40), (x, y, (r, g, b))


@needs_chromium
@pytest.mark.parametrize("graphviz", [True, False], ids=["graphviz", "built-in"])
def test_plan_picture_renders_in_a_browser(small: Path, monkeypatch, graphviz: bool) -> None:
    from musketeer import plan_picture

    if graphviz and not plan_picture.have_graphviz():
        pytest.skip("Graphviz's dot is not installed; the built-in layout is checked")
    monkeypatch.setattr(plan_picture, "have_graphviz", lambda: graphviz)
    monkeypatch.chdir(small)
    assert cli.main(["explain", "q.sql", "--data-dir", "data", "--svg", "plan.svg"]) == 0
    probe = _probe(small / "plan.svg")
    assert len(probe["planNodes"]) >= 7 and all(n["w"] > 20 and n["h"] > 10 for n in probe["planNodes"])
    words = " ".join(probe["planTexts"])
    for needle in ("%0 Scan", "Join inner", "k = dk", "Aggregate", "by name", "rows", "v < 500"):
        assert needle in words, needle
    image = _screenshot(small / "plan.svg", small / "plan.png")
    assert len(image.crop((0, 0, 600, 600)).getcolors(maxcolors=1 << 20)) > 20  # drawn, not blank
