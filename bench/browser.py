"""Headless Chromium through Selenium, for the web page's tests and its render benchmark.

The browser and its driver are Debian's `chromium` and `chromium-driver`
(`make browser` installs them); Selenium talks to that driver, so nothing
is downloaded when a test runs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

INSTALL_HINT = "install Debian's chromium and chromium-driver (`make browser`, as root) and the test extra (selenium)"
# The page sets body[data-state] to ready (or error) once a view has shown what it loaded.
SETTLED = "return document.body && ['ready', 'error'].includes(document.body.dataset.state)"


def missing() -> str | None:
    """What is missing to drive a browser here, or None."""
    absent = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        absent.append("selenium")
    return f"{', '.join(absent)} not found: {INSTALL_HINT}" if absent else None


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[WebDriver]:
    """A headless Chromium window of `width` x `height` CSS pixels, quit when the block ends."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    options.add_argument("--headless=new")
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument("--disable-dev-shm-usage")
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
    driver = webdriver.Chrome(options=options, service=Service(str(shutil.which("chromedriver"))))
    try:
        yield driver
    finally:
        driver.quit()


def open_view(driver: WebDriver, url: str, timeout: float = 30) -> str:
    """Load `url` and wait until the page has shown it; the page's state (ready or error)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(SETTLED))
    return str(driver.execute_script("return document.body.dataset.state"))
