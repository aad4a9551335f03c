"""The web page end to end: Debian's headless Chromium (selenium) against the live server on
loopback. Upload a file, record from Chromium's fake microphone; the page shows what the API says.

Skips when selenium, /usr/bin/chromium or /usr/bin/chromedriver is missing (``make test`` installs
them through scripts/system-deps.sh). With ``SERTK_SCREENSHOTS=1`` the upload test saves
docs/screenshots/web.png.
"""

from __future__ import annotations

import os
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
from test_server import LABELS, PITCH, RATE, live_server, make_pitch_bundle, sections  # noqa: E402

from sertk.recognizer import Recognizer  # noqa: E402
from sertk.server import create_app  # noqa: E402

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "screenshots" / "web.png"
FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-background-networking "
    "--disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage "
    "--window-size=1000,900 --autoplay-policy=no-user-gesture-required"
).split()


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    bundle = make_pitch_bundle(tmp_path_factory.mktemp("browser") / "pitch-demo")
    with live_server(create_app(Recognizer.load(bundle))) as base:
        yield base


def chromium(profile: Path, *extra: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", *extra):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(DRIVER)), options=options)


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
    if os.environ.get("SERTK_SCREENSHOTS") == "1":
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1000, height + 160)  # the whole page, browser frame included
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT))


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
