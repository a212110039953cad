"""`smart serve` for real: the command in its own process, looked at by Debian's headless
Chromium driven by Selenium (chromium + chromium-driver, installed by .ci/run; no browser is
downloaded). Screenshots are saved in tests/artifacts/ (and $SMART_SCREENSHOTS when set)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_CORPUS, run_smart

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("SMART_SCREENSHOTS") or ROOT / "tests" / "artifacts")
QUERY = "how do I change the default terminal"  # the README's example

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; .ci/run does)",
)


class Served:
    """A `smart serve` process; ``url`` is the address it printed (with its token, if any)."""

    def __init__(self, *args, env=None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smartcli", "serve", "--port", "0", "--no-open", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=dict(os.environ, **(env or {})),
        )
        self.lines = []
        self.url = None
        deadline = time.monotonic() + 300  # the model loads first, on a busy machine
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            found = re.search(r"at (http://\S+) \(Ctrl-C stops\)", line)
            if found:
                self.url = found.group(1)
                break
        assert self.url, "".join(self.lines)
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # keep the pipe drained

    @property
    def base(self) -> str:
        return self.url.split("?")[0].rstrip("/")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def status_of(url: str, headers=None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(condition, seconds=120, what="the page"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def api(served, query):
    import json
    from urllib.parse import quote

    token = re.search(r"token=([\w-]+)", served.url)
    headers = {"Authorization": f"Bearer {token.group(1)}"} if token else {}
    with urllib.request.urlopen(
        urllib.request.Request(f"{served.base}/api/search?explain=1&q={quote(query)}", headers=headers)
    ) as response:
        return json.loads(response.read())


def assert_boxes_placed(container, boxes, expected):
    """Each drawn box sits where the API placed it, as fractions of the drawn picture."""
    from selenium.webdriver.common.by import By

    frame = container.find_element(By.TAG_NAME, "img").rect
    for element in boxes:
        r = element.rect
        drawn = (
            (r["x"] - frame["x"]) / frame["width"],
            (r["y"] - frame["y"]) / frame["height"],
            (r["x"] + r["width"] - frame["x"]) / frame["width"],
            (r["y"] + r["height"] - frame["y"]) / frame["height"],
        )
        assert any(all(abs(a - b) < 0.01 for a, b in zip(drawn, box)) for box in expected), (drawn, expected)


def loaded_images(driver, selector: str):
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].filter(i => i.complete && i.naturalWidth > 0).length", selector
    )


def test_search_cards_thumbnails_and_boxed_words_in_a_real_browser(sample_store, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    store, _ = sample_store
    # With a token, as exposed servers must have: the page sets it as a cookie for the rest.
    served = Served("--store", store, "--token", "browser-test-token", env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        assert status_of(served.base + "/") == 403
        browser.get(served.url)
        box = browser.find_element(By.ID, "q")
        box.send_keys(QUERY, Keys.ENTER)
        cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card"), what="result cards")
        assert len(cards) == 10
        wait_for(lambda: loaded_images(browser, "#results .card img") == len(cards), what="thumbnails")
        first = cards[0]
        assert "terminal-guide.pdf — page 1" in first.find_element(By.CSS_SELECTOR, ".file").text
        boxes = first.find_elements(By.CSS_SELECTOR, ".box")
        assert boxes, "no boxed words on the first card"
        answer = api(served, QUERY)
        expected = [box for match in answer["results"][0]["marks"]["words"] for box in match["boxes"]]
        assert_boxes_placed(first, boxes, expected)
        assert first.find_element(By.CSS_SELECTOR, "mark").text  # the snippet's highlighted words
        screenshot(browser, "serve-results.png")

        first.click()
        wait_for(lambda: browser.find_element(By.ID, "viewer").is_displayed(), what="the page view")
        wait_for(lambda: loaded_images(browser, "#viewer-page img") == 1, what="the large page")
        page = browser.find_element(By.CSS_SELECTOR, "#viewer-page .page")
        marked = page.find_elements(By.CSS_SELECTOR, ".box")
        assert len(marked) >= len(boxes)
        image = page.find_element(By.TAG_NAME, "img")
        assert image.get_property("naturalWidth") == 1200
        # Every box lies on the picture, and the strongest ones are over the words they name.
        frame = image.rect
        for element in marked:
            r = element.rect
            assert frame["x"] - 1 <= r["x"] and r["x"] + r["width"] <= frame["x"] + frame["width"] + 1
            assert frame["y"] - 1 <= r["y"] and r["y"] + r["height"] <= frame["y"] + frame["height"] + 1
        assert_boxes_placed(page, marked, expected)
        rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#tokens tbody tr")]
        assert any(row.startswith("terminal terminal") for row in rows), rows
        assert any(row.startswith("default default") for row in rows), rows
        link = browser.find_element(By.ID, "open-file").get_attribute("href")
        assert link.startswith("file://") and link.endswith("terminal-guide.pdf#page=1")
        screenshot(browser, "serve-page.png")

        browser.find_element(By.ID, "more-like").click()
        wait_for(lambda: "pages like terminal-guide.pdf page 1" in browser.find_element(By.ID, "status").text, what="more like this")
        cards = browser.find_elements(By.CSS_SELECTOR, "#results .card")
        assert cards and all("terminal-guide.pdf — page 1" not in c.text for c in cards)
    finally:
        assert served.stop() == 0


def test_a_hostile_file_name_is_shown_as_text(browser, tmp_path):
    from selenium.webdriver.common.by import By

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    hostile = "<img src=x onerror=\"document.title='pwned'\">\x1b[31m.pdf"
    shutil.copy(SAMPLE_CORPUS / "houseplants.pdf", corpus / hostile)
    store = tmp_path / "store"
    run_smart("index", corpus, "--store", store, "--ocr", "never", check=True)
    served = Served("--store", store, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        browser.get(served.url + "#q=watering%20plants")
        card = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card"), what="a result card")[0]
        assert hostile.replace("\x1b", "") in card.find_element(By.CSS_SELECTOR, ".file").text.replace("\x1b", "")
        assert browser.title == "smart" and not browser.find_elements(By.CSS_SELECTOR, "#results .file img")
    finally:
        served.stop()


def test_an_exposed_server_makes_up_a_token_and_warns(sample_store, tmp_path):
    store, _ = sample_store
    served = Served("--store", store, "--host", "0.0.0.0", env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        assert any("beyond this computer" in line for line in served.lines), served.lines
        token = re.search(r"\?token=([\w-]+)", served.url).group(1)
        assert len(token) >= 20
        port = served.base.rsplit(":", 1)[1]
        local = f"http://127.0.0.1:{port}"
        assert status_of(local + "/") == 403
        assert status_of(local + "/api/search?q=wifi") == 403
        assert status_of(f"{local}/api/search?q=wifi&token={token}") == 200
        assert status_of(local + "/api/search?q=wifi", {"Authorization": f"Bearer {token}"}) == 200
    finally:
        assert served.stop() == 0


def test_an_image_model_store_shows_heat_maps(tiny_checkpoints, browser, tmp_path):
    from selenium.webdriver.common.by import By

    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS / "photos", corpus / "photos")
    store = tmp_path / "store"
    run_smart("index", corpus, "--store", store, "--model", tiny_checkpoints["clip"], check=True)
    served = Served("--store", store, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        browser.get(served.url + "#q=a%20photo%20of%20the%20sunset")
        cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card"), what="result cards")
        assert len(cards) == 2
        wait_for(lambda: loaded_images(browser, "#results .card img") == 2, what="thumbnails")
        for card in cards:
            cells = card.find_elements(By.CSS_SELECTOR, ".cell")
            assert 1 <= len(cells) <= 16  # the tiny CLIP's 4 x 4 patches, those a query token matched
        screenshot(browser, "serve-heat-map.png")
    finally:
        assert served.stop() == 0
