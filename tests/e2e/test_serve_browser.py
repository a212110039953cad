"""`smart serve` for real: the command in its own process, looked at by Debian's headless
Chromium driven by Selenium (chromium + chromium-driver, installed by .ci/run; no browser is
downloaded). Screenshots are saved in tests/artifacts/ (and $SMART_SCREENSHOTS when set)."""

import contextlib
import os
import re
import shutil
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_CORPUS, run_smart
from tests.serving import Served, status_of

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("SMART_SCREENSHOTS") or ROOT / "tests" / "artifacts")
QUERY = "how do I change the default terminal"  # the README's example

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; .ci/run does)",
)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--disable-gpu"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: refused loads show there
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
        link = browser.find_element(By.ID, "open-file")
        assert link.get_attribute("href") == f"{served.base}/file/{answer['results'][0]['id']}#page=1"
        assert link.text == "open the file at page 1"
        screenshot(browser, "serve-page.png")
        opened = open_link_in_new_tab(browser, link)
        assert opened == {"url": link.get_attribute("href"), "type": "application/pdf", "refused": []}, opened

        browser.find_element(By.ID, "more-like").click()
        wait_for(lambda: "pages like terminal-guide.pdf page 1" in browser.find_element(By.ID, "status").text, what="more like this")
        cards = browser.find_elements(By.CSS_SELECTOR, "#results .card")
        assert cards and all("terminal-guide.pdf — page 1" not in c.text for c in cards)
    finally:
        assert served.stop() == 0


@contextlib.contextmanager
def clicked_into_new_tab(browser, link):
    """Click ``link`` (it opens a tab) and look at the new tab until the block ends; yields the
    loads the browser refused meanwhile ("Not allowed to load local resource")."""
    first = browser.current_window_handle
    browser.get_log("browser")  # what was logged before is not this link's
    before = set(browser.window_handles)
    link.click()
    tab = wait_for(lambda: (set(browser.window_handles) - before or {None}).pop(), seconds=10, what="a new tab")
    browser.switch_to.window(tab)
    try:
        wait_for(lambda: browser.execute_script("return document.readyState") == "complete", what="the file")
        yield [entry["message"] for entry in browser.get_log("browser") if "Not allowed to load" in entry["message"]]
    finally:
        browser.close()
        browser.switch_to.window(first)


def open_link_in_new_tab(browser, link) -> dict:
    """What clicking ``link`` shows: the new tab's address, its document's type, refused loads."""
    with clicked_into_new_tab(browser, link) as refused:
        return {"url": browser.current_url, "type": browser.execute_script("return document.contentType"), "refused": refused}


def text_on_screen(browser) -> str:
    """What the browser window shows, read by OCR (the PDF viewer draws the page; its text is not in the DOM)."""
    import pymupdf

    from smartcli.ingest.ocr import find_tessdata

    picture = pymupdf.Pixmap(browser.get_screenshot_as_png())
    data = picture.pdfocr_tobytes(compress=False, language="eng", tessdata=find_tessdata(["eng"]))
    with pymupdf.open("pdf", data) as doc:
        return " ".join(doc[0].get_text("text").split())


def test_the_file_opens_in_the_browser_at_the_page(sample_store, browser, tmp_path):
    from selenium.webdriver.common.by import By

    store, _ = sample_store
    served = Served("--store", store, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        browser.get(served.url + "#q=wifi%20channels%20and%20interference")
        cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card"), what="result cards")
        card = next(c for c in cards if "home-network.pdf — page 2" in c.text)
        card.click()
        link = wait_for(lambda: browser.find_element(By.ID, "open-file"), what="the page view")
        with clicked_into_new_tab(browser, link) as refused:  # a file:// link: no tab, "Not allowed to load local resource"
            assert refused == [] and browser.execute_script("return document.contentType") == "application/pdf"
            shown = wait_for(
                lambda: (lambda text: text if "Wi-Fi channels" in text else None)(text_on_screen(browser)), seconds=60, what="page 2"
            )
            assert "Setting up the router" not in shown  # page 1's heading: the viewer opened at page 2
            screenshot(browser, "serve-file.png")
        assert link.get_attribute("href") == f"{served.base}/file/{card.get_attribute('data-id')}#page=2"
        assert link.text == "open the file at page 2"
        browser.get(served.base + "/file/999999")
        assert "not found" in browser.find_element(By.TAG_NAME, "body").text
    finally:
        assert served.stop() == 0


def test_cards_titles_legend_and_near_identical_passages(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from tests.corpus import make_pdf
    from tests.formats import write_epub

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    long_name = "Annual maintenance schedule for the community garden and its tool shed.pdf"
    make_pdf(corpus / long_name, ["sharpen the garden shears and oil the hinges of the tool shed", "compost bins and the rain barrel"])
    passage = (
        "Before you sail, check the weather forecast, the tide tables and the moorings; tell the harbour master "
        "where you are going and when you will be back, carry a radio, flares and a life jacket for everyone aboard"
    )
    write_epub(corpus / "sailing.epub", [passage + f" (part {n})" for n in range(1, 5)] + ["the bowline and the reef knot"])
    store = tmp_path / "store"
    run_smart("index", corpus, "--store", store, "--ocr", "never", check=True)
    served = Served("--store", store, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        browser.get(served.url + "#q=" + "check the tide tables before you sail and oil the tool shed hinges".replace(" ", "%20"))
        cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card"), what="result cards")
        answer = api(served, "check the tide tables before you sail and oil the tool shed hinges")
        repeated = [r for r in answer["results"] if "tide tables" in r["snippet"]]
        assert len(repeated) == 4
        folded = [c for c in cards if c.get_attribute("data-repeats")]
        assert len(folded) == 1 and folded[0].get_attribute("data-repeats") == "4"
        note = folded[0].find_element(By.CSS_SELECTOR, ".repeats").text
        assert note.startswith("4 near-identical passages") and note.count("sailing.epub") == 3, note
        assert len(cards) == len(answer["results"]) - 3
        # Titles wrap between words: every line break of a title falls at a space.
        titles = browser.find_elements(By.CSS_SELECTOR, "#results .card .file")
        breaks = browser.execute_script(LINE_BREAKS, titles)
        assert any(breaks), "no title is long enough to wrap: the test shows nothing"
        for title, at in zip(titles, breaks):
            text = title.text
            assert all(text[i - 1] == " " or text[i] == " " for i in at), (text, at)
        # The colour legend, from weak (blue) to strong (red), as the boxes are coloured.
        legend = browser.find_element(By.ID, "legend")
        assert legend.is_displayed() and "0.3 weak" in legend.text and "0.9 strong" in legend.text
        scale = browser.find_element(By.CSS_SELECTOR, "#legend .legend-scale")
        gradient = scale.value_of_css_property("background-image")
        stops = [tuple(map(int, c)) for c in re.findall(r"rgb\((\d+), (\d+), (\d+)\)", gradient)]
        assert gradient.startswith("linear-gradient") and len(stops) >= 2, gradient
        assert max(stops[0]) == stops[0][2] and max(stops[-1]) == stops[-1][0], stops  # blue (weak) to red (strong)
        screenshot(browser, "serve-cards.png")
    finally:
        assert served.stop() == 0


# For each element, the offsets in its text where a new line starts (a character whose box sits
# lower than the previous one's).
LINE_BREAKS = """
return arguments[0].map((element) => {
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  const tops = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rects = range.getClientRects();
      tops.push(rects.length ? rects[rects.length - 1].top : null);
    }
  }
  const breaks = [];
  let last = null;
  tops.forEach((top, i) => {
    if (top === null) return;
    if (last !== null && top > last + 2) breaks.push(i);
    last = top;
  });
  return breaks;
});
"""


def test_the_token_is_required_on_loopback_and_the_browser_opens_with_it(sample_store, browser, tmp_path):
    from selenium.webdriver.common.by import By

    store, _ = sample_store
    recorded = tmp_path / "browser-argv"
    fake_browser = tmp_path / "browser"
    fake_browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {recorded}\n')
    fake_browser.chmod(0o755)
    served = Served("--store", store, no_open=False, env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "BROWSER": str(fake_browser)})
    try:
        token = served.token
        assert token and len(token) >= 24
        answer = api(served, QUERY)
        for target in ("/", "/api/search?q=wifi", answer["results"][0]["thumbnail"], answer["results"][0]["file_url"].split("#")[0]):
            assert status_of(served.base + target) == 403, target
            assert status_of(served.base + target, {"Authorization": f"Bearer {token}"}) == 200, target
        # The browser was opened on a file only this user can read, which sends it on with the
        # token: the token is on no command line (other users can list those).
        opened = wait_for(lambda: recorded.exists() and recorded.read_text().split(), seconds=30, what="the browser to be opened")
        assert len(opened) == 1 and opened[0].startswith("file://") and token not in opened[0]
        redirect = Path(opened[0][len("file://") :])
        assert stat.S_IMODE(redirect.stat().st_mode) == 0o600 and stat.S_IMODE(redirect.parent.stat().st_mode) == 0o700
        assert served.url in redirect.read_text()
        browser.get(opened[0])
        wait_for(lambda: browser.current_url.startswith(served.base), what="the redirect")
        wait_for(lambda: "token" not in browser.current_url, what="the token to leave the address bar")
        browser.find_element(By.ID, "q").send_keys("wifi\n")
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card"), what="results (the cookie carries the token)")
    finally:
        assert served.stop() == 0
    assert not redirect.exists()  # removed when the server stops


def test_no_token_is_an_explicit_choice_and_loopback_only(sample_store, tmp_path):
    store, _ = sample_store
    served = Served("--store", store, "--no-token", env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        assert served.token is None and any("every user of this computer" in line for line in served.lines)
        assert status_of(served.base + "/api/search?q=wifi") == 200
    finally:
        assert served.stop() == 0
    refused = run_smart("serve", "--store", store, "--no-token", "--host", "0.0.0.0", "--no-open")
    assert refused.returncode == 2 and "--no-token works on loopback only" in refused.stderr


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
