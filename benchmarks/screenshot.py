"""The README's picture of the search page: index corpus/ with the bundled model, start `searcher serve` on a free
127.0.0.1 port (it stops itself), search in headless Chromium (Debian: apt-get install chromium
chromium-driver) and save benchmarks/search-page.png.

    python benchmarks/screenshot.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from _common import CACHE, HERE
from serve import free_port

QUERY = "how do I read a file line by line"


def main() -> None:
    import time

    import httpx
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    env = {**os.environ, "SEARCHER_HOME": str(CACHE / "serve-home")}
    index = CACHE / "screenshot-corpus"
    subprocess.run(
        [sys.executable, "-m", "searcher", "index", str(HERE.parent / "corpus"), "--index", str(index), "-q"],
        check=True,
        env=env,
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "searcher", "serve", "--index", str(index), "--port", str(port), "--stop-after", "120"],
        env=env,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,760"):
        options.add_argument(arg)
    chrome = None
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        chrome = webdriver.Chrome(
            service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")), options=options
        )
        chrome.get(f"http://127.0.0.1:{port}/?q=" + QUERY.replace(" ", "+"))
        WebDriverWait(chrome, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results li.hit")))
        chrome.save_screenshot(str(HERE / "search-page.png"))
    finally:
        if chrome is not None:
            chrome.quit()
        server.terminate()
        server.wait(timeout=30)
    print(HERE / "search-page.png")


if __name__ == "__main__":
    main()
