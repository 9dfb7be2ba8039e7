"""The labelling page in a real headless Chromium: label with the keyboard, undo, skip, train.

Needs Debian's ``chromium`` and ``chromium-driver`` packages (see the README's prerequisites);
skipped with the reason when they are missing. Only 127.0.0.1 is contacted.
"""
import shutil
from pathlib import Path

import pytest

from activebatch.workspace import ModelConfig, Workspace
from activebatch.workspace.server import LabelServer
from workspace_fixtures import DIGITS, make_images

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists()
                                                else None)
try:
    import selenium  # noqa: F401
    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover
    HAVE_SELENIUM = False

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER and HAVE_SELENIUM),
    reason="needs chromium and chromedriver (apt-get install chromium chromium-driver) and selenium")


@pytest.fixture
def browser(tmp_path, monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")   # never let Selenium look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1000,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_label_with_the_keyboard_undo_skip_and_train(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    folder, truth = make_images(tmp_path, n=16)
    ws = Workspace.create(tmp_path / "ws", folder, DIGITS, model=ModelConfig(max_epochs=20))
    batch = ws.query(6).item_ids
    server = LabelServer(ws.folder, port=0).start()
    wait = WebDriverWait(browser, 30)
    shown = lambda: browser.find_element(By.ID, "item").get_attribute("data-item-id")  # noqa: E731
    progress = lambda: browser.find_element(By.ID, "progress-text").text  # noqa: E731
    press = lambda key: browser.find_element(By.TAG_NAME, "body").send_keys(key)  # noqa: E731
    try:
        # First use: the page asks for a name and shows nothing until it has one.
        browser.get(server.url)
        wait.until(lambda d: d.find_elements(By.ID, "need-name"))
        assert shown() == "" and ws.store.last_round() == 1
        assert browser.get_cookie("activebatch_browser") is not None   # items are held for this browser
        browser.find_element(By.ID, "annotator").send_keys("alice", Keys.ENTER)
        wait.until(lambda d: shown())
        assert browser.execute_script("return localStorage.getItem('activebatch-annotator')") == "alice"
        assert progress() == "0 / 6 labelled in round 1"
        # Each digit class has its own digit as shortcut.
        keys = {b.get_attribute("data-class"): b.get_attribute("data-key")
                for b in browser.find_elements(By.CSS_SELECTOR, ".class-btn")}
        assert keys == {d: d for d in DIGITS}

        labelled = []
        for k in range(4):
            item = shown()
            assert item == batch[k]
            src = browser.find_element(By.CSS_SELECTOR, "#item img").get_attribute("src")
            assert src.endswith(f"/api/image/{ws.store.positions_of([item])[item]}")
            press(truth[item])
            wait.until(lambda d, item=item: shown() != item)
            labelled.append(item)
        wait.until(lambda d: progress() == "4 / 6 labelled in round 1")

        press(Keys.BACKSPACE)                       # undo the last label: its item comes back
        wait.until(lambda d: shown() == labelled[-1])
        wait.until(lambda d: progress() == "3 / 6 labelled in round 1")

        press(Keys.SPACE)                           # skip it
        wait.until(lambda d: shown() not in ("", labelled[-1]))
        assert "skipped" in browser.find_element(By.ID, "message").text

        labels = ws.labels()
        assert dict(zip(labels["item_id"], labels["label"])) == {i: truth[i] for i in labelled[:3]}
        assert set(labels["annotator"]) == {"alice"} and set(labels["source"]) == {"web"}
        events = ws.store.label_events()
        assert events["action"].tolist() == ["label"] * 4 + ["remove"]
        assert events["item_id"].tolist()[-1] == labelled[-1]

        browser.find_element(By.ID, "batch-size").clear()
        browser.find_element(By.ID, "batch-size").send_keys("4")
        browser.find_element(By.ID, "train-btn").click()
        wait.until(lambda d: d.find_element(By.ID, "round").text == "2")
        wait.until(lambda d: progress() == "0 / 4 labelled in round 2" and shown())
        assert shown() in set(ws.batch(2)["item_id"])
        assert ws.store.last_round() == 2 and len(ws.batch(2)) == 4
    finally:
        server.stop()

