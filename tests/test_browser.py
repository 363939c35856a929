"""The two pages in a real browser: app.py driven through upload -> convert in headless Chromium (Debian's
`chromium` package, driven by Playwright), and a training run's samples/NAME/index.html opened from the file system.

Screenshots are kept in test-artefacts/ (git-ignored) for a person to look at. The tests are skipped, with the
reason, only where Chromium, Playwright or Gradio is not installed; .ci/run installs Chromium when it is missing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import CORRUPT_WAV, ROOT, add_tiny_run, sine, write_wav

pytestmark = pytest.mark.slow  # a real browser and server

CHROMIUM = Path(os.environ.get("POP2JAZZ_CHROMIUM", "/usr/bin/chromium"))
# what runs headless Chromium on a machine without a screen, as root, with nothing to reach outside
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTEFACTS = ROOT / "test-artefacts"
UPLOAD_LIMIT_MB = 1  # the app under test refuses larger uploads
TINY_RUN_LABEL = "run tiny (checkpoints/tiny/latest.pt)"


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (Playwright's Browser), closed after the module."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium), or set "
                    f"$POP2JAZZ_CHROMIUM")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is a dev dependency: uv sync")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page (its own profile and cookies) 1280 x 900 that accepts downloads."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield context.new_page()
    context.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """app.py on a free local port, started as a user would, in a folder with one run (checkpoints/tiny) and its
    own TMPDIR: {"url", "root", "tmp"}. When the module is done it is stopped with SIGTERM, and then its temporary
    folder must be gone and nothing must have been written anywhere else."""
    pytest.importorskip("gradio", reason="app.py needs the web extra: uv run --extra web pytest")
    root = tmp_path_factory.mktemp("app")
    add_tiny_run(root)
    (root / "tmp").mkdir()
    port = free_port()
    environment = {**os.environ, "TMPDIR": str(root / "tmp"), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--max-upload-mb",
                               str(UPLOAD_LIMIT_MB), "--griffin-lim-iters", "4", "--device", "cpu"], cwd=root,
                              env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"app.py did not start: {server.communicate()[0][-3000:]}")
            time.sleep(0.5)
    yield {"url": url, "root": root, "tmp": root / "tmp"}
    server.send_signal(signal.SIGTERM)
    output = server.communicate(timeout=60)[0]
    assert server.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert list((root / "tmp").iterdir()) == []  # uploads and conversions went with the temporary folder
    assert sorted(path.name for path in root.iterdir()) == ["checkpoints", "tmp"]  # and nothing was written beside


def screenshot(page, name: str) -> Path:
    """Keep a screenshot of the whole page as test-artefacts/NAME.png; returns its path."""
    ARTEFACTS.mkdir(exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def upload(page, song: Path) -> None:
    """Clear the song box (the example is in it at first) and upload `song` as a user choosing a file does."""
    page.locator("#song button[aria-label='Clear']").click()
    page.locator("#song input[type=file]").set_input_files(str(song))


def audio_duration(page, box: str, name: str) -> float:
    """The duration in seconds that the browser's <audio> element in the box `box` reports, once it plays `name`."""
    return page.wait_for_function(
        "([box, name]) => { const audio = document.querySelector(`#${box} audio`);"
        " return audio && audio.src.endsWith(name) && audio.duration > 0 && audio.duration }",
        arg=[box, name], timeout=120_000).json_value()


def test_upload_convert_and_the_output_plays_as_long_as_the_input(app_server, page, tmp_path):
    song = write_wav(tmp_path / "tone.wav", np.stack([sine(3.0, 44100)] * 2, axis=1), 44100)  # 3 s, stereo, 44.1 kHz
    page.goto(app_server["url"])
    assert audio_duration(page, "song", "lets_go_fishin_excerpt.ogg") > 29  # the example is there at first
    model = page.get_by_role("combobox", name="model")
    model.click()
    page.get_by_role("option", name=TINY_RUN_LABEL).click()
    assert model.input_value() == TINY_RUN_LABEL
    upload(page, song)
    before = audio_duration(page, "song", "tone.wav")
    page.get_by_role("button", name="Convert").click()
    after = audio_duration(page, "converted", "tone_jazz.wav")
    assert before == pytest.approx(3.0, abs=1e-3) and after == pytest.approx(before, abs=1e-3)  # 1 ms: 44 samples
    status = page.locator("#status").inner_text()
    assert "using checkpoints/tiny/latest.pt" in status
    assert "tone.wav -> tone_jazz.wav: 3.0 s at 44100 Hz stereo" in status
    assert page.locator("#spectrograms img").evaluate("image => image.complete && image.naturalWidth") > 500
    with page.expect_download() as download:
        page.locator("#download").click()
    assert download.value.suggested_filename == "tone_jazz.wav"
    download.value.save_as(tmp_path / "downloaded.wav")
    info = sf.info(str(tmp_path / "downloaded.wav"))
    assert (info.frames, info.samplerate, info.channels) == (132300, 44100, 2)  # 3 s, as the song: 44.1 kHz stereo
    assert screenshot(page, "app_converted").stat().st_size > 50_000


def test_a_corrupt_upload_shows_the_error_on_the_page(app_server, page, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(CORRUPT_WAV)
    page.goto(app_server["url"])
    page.wait_for_selector("#song audio")
    upload(page, broken)
    page.wait_for_function("() => (document.querySelector('#song audio') || {}).src?.endsWith('broken.wav')")
    page.get_by_role("button", name="Convert").click()
    error = page.locator("#status .error")
    error.wait_for(timeout=60_000)
    assert error.inner_text().startswith("error: broken.wav: not a readable audio file")
    assert "Traceback" not in page.locator("body").inner_text()
    screenshot(page, "app_error")


def test_an_upload_above_the_limit_is_refused(app_server, page, tmp_path):
    large = write_wav(tmp_path / "large.wav", np.zeros((UPLOAD_LIMIT_MB * 2**20 // 4 + 1000, 2), np.float32), 44100)
    page.goto(app_server["url"])
    page.wait_for_selector("#song audio")
    upload(page, large)
    page.get_by_text("exceed the maximum allowed size of 1.0 Mb").wait_for(timeout=30_000)
    assert page.locator("#song audio").count() == 0  # nothing took the example's place


def test_a_runs_page_shows_every_picture_and_plays_every_sample(eval_run, page):
    index = eval_run["samples"] / "index.html"
    page.goto(index.as_uri())  # from the file system, as a person opens it: no server
    assert page.title() == "pop2jazz run tiny <&> run"
    assert page.locator("section h3").all_inner_texts() == ["Epoch 4", "Epoch 3", "Epoch 2", "Epoch 1"]
    images, players = page.locator("img"), page.locator("audio")
    assert images.count() == 2 + 4 and players.count() == 4  # both curves, and a picture and a player per epoch
    for image in images.all():  # the epochs' pictures load lazily, when they come into view
        image.scroll_into_view_if_needed()
        image.evaluate("image => image.complete || new Promise(done => image.addEventListener('load', done))")
        assert image.evaluate("image => image.naturalWidth") > 500, image.get_attribute("src")
    for player in players.all():
        duration = player.evaluate("audio => audio.readyState >= 1 ? audio.duration : new Promise(done =>"
                                   " audio.addEventListener('loadedmetadata', () => done(audio.duration)))")
        assert duration == pytest.approx(sf.info(str(eval_run["samples"] / player.get_attribute("src"))).duration,
                                         abs=1e-3)
        assert duration > 5
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "run_page")
