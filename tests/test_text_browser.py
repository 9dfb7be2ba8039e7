"""The labelling page shows a text item's text in a real headless Chromium: as text (markup in it is
never run or rendered), in a block that scrolls when the text is long; a key press labels it.

Skipped, with the reason, where Chromium, chromedriver or selenium is missing (as in
``test_serve_browser.py``, whose browser fixture this file uses).
"""
import pandas as pd

from activebatch.workspace import ModelConfig, Workspace
from activebatch.workspace.server import LabelServer
from test_serve_browser import browser, pytestmark  # noqa: F401  (the fixture and the skip condition)

HOSTILE = 'Tom & Jerry <script>window.__injected = 1;</script><b>not bold</b> &amp; "quoted"'


def test_a_text_item_is_shown_escaped_scrolls_and_is_labelled(tmp_path, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    long_text = "\n".join(f"Paragraph {i}: the striker scored again in the rain." for i in range(120))
    texts = {"short": HOSTILE, "long": long_text, "other": "bake the dough in a hot oven"}
    pd.DataFrame({"id": list(texts), "text": list(texts.values()), "lang": "en"}).to_csv(tmp_path / "t.csv",
                                                                                         index=False)
    ws = Workspace.create(tmp_path / "ws", tmp_path / "t.csv", ["sports", "cooking"], text_column="text",
                          model=ModelConfig(max_epochs=5))
    batch = ws.query(3).item_ids
    server = LabelServer(ws.folder, port=0).start()
    wait = WebDriverWait(browser, 30)
    shown = lambda: browser.find_element(By.ID, "item").get_attribute("data-item-id")  # noqa: E731
    try:
        browser.get(server.url + "?annotator=alice")
        wait.until(lambda d: shown())
        seen = {}
        for _ in range(3):
            item = shown()
            block = browser.find_element(By.CSS_SELECTOR, "#item .item-text")
            seen[item] = block
            # the text exactly as written: no element was made from it, no script ran
            assert block.get_attribute("textContent") == texts[item]
            assert block.find_elements(By.CSS_SELECTOR, "*") == []
            assert browser.find_elements(By.CSS_SELECTOR, "#item script, #item b") == []
            assert browser.execute_script("return window.__injected === undefined")
            # the other columns beside it
            cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#item table td")]
            assert cells == [item, "en"]
            if item == "long":
                sizes = browser.execute_script("const e = arguments[0]; return [e.scrollHeight, e.clientHeight, "
                                               "getComputedStyle(e).overflowY];", block)
                assert sizes[0] > sizes[1] and sizes[2] == "auto"
            label = "cooking" if item == "other" else "sports"
            key = browser.find_element(By.CSS_SELECTOR, f'.class-btn[data-class="{label}"]').get_attribute("data-key")
            browser.find_element(By.TAG_NAME, "body").send_keys(key)   # the class's shortcut
            wait.until(lambda d, item=item: shown() != item)
        assert sorted(seen) == sorted(batch)
        labels = ws.labels()
        assert dict(zip(labels["item_id"], labels["label"])) == {"short": "sports", "long": "sports",
                                                                 "other": "cooking"}
        assert set(labels["annotator"]) == {"alice"}
    finally:
        server.stop()
