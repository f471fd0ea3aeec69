"""A real headless Chromium for the web page's tests: Debian's chromium and chromium-driver, driven
through Selenium (conftest.py's `browser` fixture starts one a test).

Nothing of it outlives the test: chromedriver starts in a process group of its own, with Chromium
and its helpers inside it; when the test ends, passed or failed, the session is closed
(driver.quit() closes Chromium, then chromedriver) and then whatever is still in the group is
killed, as it is when the start itself fails halfway.
"""

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
MISSING = "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1400")


@contextmanager
def chromium(profile: Path) -> Iterator:
    """A Selenium driver of a headless Chromium with its profile in `profile`; skips the test where
    Chromium or Selenium is not installed."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(MISSING)
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the [test] extra) is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(str(CHROMEDRIVER), popen_kw={"start_new_session": True})  # its own process group
    try:
        driver = webdriver.Chrome(service=service, options=options)  # stops chromedriver itself when it fails
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        kill_group(getattr(service, "process", None))  # none where chromedriver never started


def kill_group(leader) -> None:
    """SIGKILL whatever is left in the process group that `leader` (a Popen, or None when it never
    started) leads."""
    if leader is None:
        return
    try:
        os.killpg(leader.pid, signal.SIGKILL)
    except ProcessLookupError:  # all gone: the usual case after driver.quit()
        pass


def shown_image(driver, selector: str):
    """The first image under `selector` that the page has loaded and shows, else None (for a
    WebDriverWait)."""
    from selenium.webdriver.common.by import By

    shown = [image for image in driver.find_elements(By.CSS_SELECTOR, f"{selector} img")
             if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image)]
    return shown[0] if shown else None


def natural_size(driver, image) -> list[int]:
    """An image's width and height as loaded (the file's, whatever the page scales it to)."""
    return driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
