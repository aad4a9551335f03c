"""The web page end to end: Debian's headless Chromium (selenium) against the live server on
loopback. Upload a file, record from Chromium's fake microphone; the page shows what the API says,
under the server's Content-Security-Policy with no violation. A page of another origin that
posts a form or a no-cors fetch to the API runs no inference.

Skips when selenium, /usr/bin/chromium or /usr/bin/chromedriver is missing (``make test`` installs
them through scripts/system-deps.sh). ``test_screenshot_of_the_default_model`` takes the README's
picture into a temporary folder; with ``SERTK_SCREENSHOTS=1`` it writes docs/screenshots/web.png.
"""

from __future__ import annotations

import base64
import http.server
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import voice as synthetic_voice

pytest.importorskip("fastapi")
pytest.importorskip("selenium")
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and DRIVER.exists()):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (scripts/system-deps.sh installs them)",
        allow_module_level=True,
    )

import httpx  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_server import (  # noqa: E402
    LABELS,
    PITCH,
    RATE,
    encode,
    live_server,
    make_pitch_bundle,
    sections,
    tone,
)

from sertk.recognizer import Recognizer  # noqa: E402
from sertk.server import create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "screenshots" / "web.png"
EXAMPLES = REPO / "examples"
EXAMPLE_CLIPS = ("03a02Wc.flac", "15a02Ta.flac", "08a02Fe.flac")  # angry, sad, happy
FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-background-networking "
    "--disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage "
    "--window-size=1000,900 --autoplay-policy=no-user-gesture-required"
).split()


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    bundle = make_pitch_bundle(tmp_path_factory.mktemp("browser") / "pitch-demo")
    with live_server(create_app(bundle, workers=1)) as base:
        yield base


# records every Content-Security-Policy violation of a page, from its first script on
CSP_RECORDER = (
    "window.cspViolations = [];"
    "document.addEventListener('securitypolicyviolation', (e) =>"
    "  window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"
)


def csp_violations(driver) -> list[str]:
    return driver.execute_script("return window.cspViolations || []")


def chromium(profile: Path, *extra: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", *extra):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CSP_RECORDER})
    return driver


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "profile")
    yield driver
    driver.quit()


def text(driver, element_id: str) -> str:
    """The element's text as written (``.text`` would apply CSS text-transform)."""
    return driver.find_element(By.ID, element_id).get_attribute("textContent").strip()


def wait_for_result(driver, seconds: float = 60) -> str:
    """Wait until the page shows a result or an error; returns the shown label."""
    WebDriverWait(driver, seconds).until(
        lambda d: text(d, "result-label") or d.find_element(By.ID, "error").is_displayed()
    )
    assert not driver.find_element(By.ID, "error").is_displayed(), text(driver, "error")
    return text(driver, "result-label")


def test_upload_shows_the_apis_answer(browser, url, tmp_path):
    clip = tmp_path / "three-moods.wav"
    sf.write(clip, sections(), RATE)
    answer = httpx.post(f"{url}/v1/predict", files={"file": (clip.name, clip.read_bytes())}).json()
    timeline = httpx.post(
        f"{url}/v1/timeline", params={"hop": 0.5}, files={"file": (clip.name, clip.read_bytes())}
    ).json()

    browser.get(f"{url}/")
    WebDriverWait(browser, 30).until(lambda d: "pitch-demo" in text(d, "model-info"))
    assert not browser.find_element(By.ID, "key-form").is_displayed()  # this server has no key
    browser.find_element(By.ID, "file-input").send_keys(str(clip))
    assert wait_for_result(browser) == answer["label"]
    assert text(browser, "result-confidence").startswith(f"{100 * answer['confidence']:.1f}%")
    assert "three-moods.wav" in text(browser, "result-meta")

    bars = browser.find_elements(By.CSS_SELECTOR, "#probabilities .bar-track")
    shown = {b.get_attribute("aria-label"): float(b.get_attribute("aria-valuenow")) for b in bars}
    assert set(shown) == set(LABELS)
    for label, probability in answer["probabilities"].items():
        assert shown[label] == pytest.approx(100 * probability, abs=0.051)
    for track in bars:  # each bar fills its track in proportion to the probability
        fill = track.find_element(By.CSS_SELECTOR, ".prob-bar").size["width"]
        share = answer["probabilities"][track.get_attribute("aria-label")]
        assert fill / track.size["width"] == pytest.approx(share, abs=0.02)

    segments = browser.find_elements(By.CSS_SELECTOR, "#timeline .segment")
    expected = [s["label"] for s in timeline["segments"]]
    assert [
        s.get_attribute("aria-label").split(": ")[1].split(" ")[0] for s in segments
    ] == expected
    assert {"sad", "angry", "happy", "silence"} <= set(expected)
    assert all(s.size["width"] > 0 for s in segments)
    silent = browser.find_elements(By.CSS_SELECTOR, "#timeline .segment.silence")
    assert len(silent) == expected.count("silence")
    legend = [li.get_attribute("textContent") for li in browser.find_elements(By.CSS_SELECTOR,
                                                                                "#legend li")]  # fmt: skip
    assert set(legend) == set(expected)
    assert csp_violations(browser) == []


def shown_segments(driver) -> list[str]:
    """The labels of the page's timeline segments, in order (from their aria-labels)."""
    segments = driver.find_elements(By.CSS_SELECTOR, "#timeline .segment")
    return [s.get_attribute("aria-label").split(": ")[1].split(" ")[0] for s in segments]


def example_recording(path: Path) -> Path:
    """Three example clips of the README (angry, sad, happy), 1 s of silence before each and
    after the last: float32 WAV at 16 kHz."""
    from sertk.audio import load_audio

    gap = np.zeros(RATE, dtype=np.float32)
    parts = [gap]
    for name in EXAMPLE_CLIPS:
        signal, _ = load_audio(EXAMPLES / name, sampling_rate=RATE)
        parts += [signal, gap]
    sf.write(path, np.concatenate(parts), RATE)
    return path


def test_screenshot_of_the_default_model(tmp_path):
    """The README's web-page picture: the default model on three example clips. Checks what it
    shows (the model, the API's label, confidence, bars and timeline, painted); written to
    tmp_path, or docs/screenshots/web.png with ``SERTK_SCREENSHOTS=1``."""
    clip = example_recording(tmp_path / "three-examples.wav")
    target = SCREENSHOT if os.environ.get("SERTK_SCREENSHOTS") == "1" else tmp_path / "web.png"
    recognizer = Recognizer.load("default")
    with live_server(create_app(recognizer)) as base:
        files = {"file": (clip.name, clip.read_bytes())}
        answer = httpx.post(f"{base}/v1/predict", files=files).json()
        timeline = httpx.post(f"{base}/v1/timeline", params={"hop": 0.5}, files=files).json()
        model = httpx.get(f"{base}/v1/labels").json()["model"]
        driver = chromium(tmp_path / "profile")
        try:
            driver.get(f"{base}/")
            WebDriverWait(driver, 30).until(lambda d: "default" in text(d, "model-info"))
            driver.find_element(By.ID, "file-input").send_keys(str(clip))
            assert wait_for_result(driver) == answer["label"]
            WebDriverWait(driver, 30).until(lambda d: shown_segments(d))
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1000, height + 160)  # the whole page, browser frame included
            info, label = text(driver, "model-info"), text(driver, "result-label")
            confidence, segments = text(driver, "result-confidence"), shown_segments(driver)
            bars = driver.find_elements(By.CSS_SELECTOR, "#probabilities .bar-track")
            names = [b.get_attribute("aria-label") for b in bars]
            target.parent.mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(target))
        finally:
            driver.quit()
    labels = ", ".join(recognizer.labels)
    kind = f"{model['model_name']} on {model['features']['name']}"
    assert info == f"Model “default” ({kind}) · labels: {labels}"
    assert label == answer["label"] and confidence.startswith(f"{100 * answer['confidence']:.1f}%")
    assert sorted(names) == sorted(recognizer.labels)
    assert segments == [s["label"] for s in timeline["segments"]]
    speech = [s["label"] for s in timeline["segments"] if s["speech"]]
    caption = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    claim = re.search(r"the timeline shows (\w+), (\w+) and (\w+) \(", caption)
    assert claim and speech == list(claim.groups())  # one segment per clip, as the README says
    assert f"whole {answer['duration']:.1f} s upload" in caption  # what the README says of it
    assert f"calls {answer['label']}." in caption
    picture = sf_image(target)
    assert picture.shape[1] == 1000 and picture.shape[0] > 800
    assert len(np.unique(picture.reshape(-1, picture.shape[-1]), axis=0)) > 50  # not blank


def sf_image(path: Path) -> np.ndarray:
    """The PNG at ``path`` as ``[height, width, channels]`` uint8 (matplotlib's reader)."""
    from matplotlib import image

    return (image.imread(path) * 255).astype(np.uint8)


def test_a_bad_file_shows_the_servers_message(browser, url, tmp_path):
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio at all\n" * 20)
    browser.get(f"{url}/")
    browser.find_element(By.ID, "file-input").send_keys(str(notes))
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "error").is_displayed())
    assert "not a recognised audio format" in text(browser, "error")
    assert not browser.find_element(By.ID, "result").is_displayed()


def test_microphone_recording_is_analysed(url, tmp_path):
    # Chromium's fake microphone plays this file: a high tone the toy model calls "angry"
    voice = tmp_path / "voice.wav"
    rate = 48000
    t = np.arange(10 * rate) / rate
    sf.write(voice, synthetic_voice(len(t) / rate, PITCH["angry"], sampling_rate=rate), rate,
             subtype="PCM_16")  # fmt: skip  # a voice at that pitch: tones are no speech
    driver = chromium(
        tmp_path / "profile",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={voice}",
    )
    try:
        driver.get(f"{url}/")
        button = driver.find_element(By.ID, "record-button")
        assert button.is_enabled()
        button.click()
        WebDriverWait(driver, 30).until(lambda d: button.get_attribute("aria-pressed") == "true")
        # record about 2 s, as counted by the page's own clock
        WebDriverWait(driver, 30).until(
            lambda d: float(text(d, "record-time").split()[0] or 0) >= 2.0
        )
        button.click()
        label = wait_for_result(driver)
        assert button.get_attribute("aria-pressed") == "false"
        assert label == "angry"  # the tone went through the microphone path intact
        meta = text(driver, "result-meta")
        assert meta.startswith("recording.wav")
        assert float(meta.split(" · ")[1].split()[0]) >= 1.5  # seconds of recorded audio
        assert driver.find_elements(By.CSS_SELECTOR, "#timeline .segment")
        assert csp_violations(driver) == []  # the audio worklet and the blob: player included
    finally:
        driver.quit()


def test_recording_is_disabled_without_a_secure_context(browser, url):
    """On a plain-http address other than localhost there is no microphone API: say so."""
    base = url.replace("127.0.0.1", "0.0.0.0")  # not a potentially trustworthy origin
    browser.get(f"{base}/")
    WebDriverWait(browser, 30).until(lambda d: text(d, "model-info") != "Loading the model…")
    if browser.execute_script("return window.isSecureContext"):
        pytest.skip("this Chromium treats the address as secure")
    assert not browser.find_element(By.ID, "record-button").is_enabled()
    assert "secure" in text(browser, "record-hint")


def test_the_csp_recorder_sees_a_violation(browser, url):
    """Control: content the policy forbids is reported, so an empty list above means none."""
    browser.get(f"{url}/")
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        "document.body.append(s);"
    )  # an inline script: 'self' only
    WebDriverWait(browser, 10).until(lambda d: csp_violations(d))
    assert csp_violations(browser)[0].startswith("script-src")
    assert browser.execute_script("return window.ran === undefined")


EVIL_PAGE = """<!doctype html><html><body>
<form id="form" method="post" enctype="multipart/form-data" action="{api}/v1/predict">
  <input type="file" name="file" id="file"></form>
<script>
const bytes = Uint8Array.from(atob("{wav}"), (c) => c.charCodeAt(0));
const file = new File([bytes], "clip.wav", {{ type: "audio/wav" }});
const body = new FormData();
body.append("file", file);
window.fetched = fetch("{api}/v1/predict", {{ method: "POST", mode: "no-cors", body }})
  .then(() => "sent", (error) => String(error));
window.submitForm = () => {{
  const files = new DataTransfer();
  files.items.add(file);
  document.getElementById("file").files = files.files;
  document.getElementById("form").submit();
}};
</script></body></html>"""


@pytest.fixture
def evil_origin(url):
    """A page on http://localhost:PORT (another site than 127.0.0.1) that posts to the API."""
    page = EVIL_PAGE.format(api=url, wav=base64.b64encode(encode(tone(1.0, 300))).decode())

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()


def test_a_page_of_another_origin_cannot_run_inference(browser, url, evil_origin):
    answered = lambda: httpx.get(f"{url}/healthz").json()["inference"]["requests"]  # noqa: E731
    before = answered()
    browser.get(f"{evil_origin}/")
    # a no-cors fetch: the browser sends it without asking and hides the answer
    assert browser.execute_script("return await window.fetched") == "sent"
    # a form post: the browser navigates to the API's answer
    browser.execute_script("window.submitForm()")
    WebDriverWait(browser, 30).until(lambda d: "cross_origin" in d.page_source)
    assert "are refused" in browser.page_source
    assert answered() == before  # neither ran the model


def test_the_page_asks_for_the_servers_api_key(browser, tmp_path):
    bundle = make_pitch_bundle(tmp_path / "keyed")
    app = create_app(bundle, workers=0, api_key="page-key")
    clip = tmp_path / "clip.wav"
    sf.write(clip, sections(), RATE)
    with live_server(app) as base:
        browser.get(f"{base}/")
        WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "key-form").is_displayed())
        assert "API key" in text(browser, "model-info")
        browser.find_element(By.ID, "key-input").send_keys("page-key")
        browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
        WebDriverWait(browser, 30).until(lambda d: "keyed" in text(d, "model-info"))
        browser.find_element(By.ID, "file-input").send_keys(str(clip))
        assert wait_for_result(browser) in LABELS
        assert csp_violations(browser) == []
