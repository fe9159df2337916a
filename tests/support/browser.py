"""Driving headless Chromium in the browser tests: find elements, take screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def by_css(browser: Any, selector: str, timeout: float = 20.0) -> Any:
    """The first element matching ``selector``, waiting up to ``timeout`` seconds for it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector))
    )


def all_css(browser: Any, selector: str) -> list[Any]:
    """Every element matching ``selector`` now."""
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, selector))


def shoot(browser: Any, folder: Path, name: str) -> None:
    """Save a screenshot of the page as ``folder/name.png``."""
    browser.save_screenshot(str(folder / f"{name}.png"))
