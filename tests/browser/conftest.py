"""Headless Chromium (Debian's chromium and chromium-driver) driven by Selenium against a live server.

Without Chromium the browser tests are skipped, and the run's summary says so;
with REQUIRE_SERVICES=1 (CI) they fail instead.
"""

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SCREENSHOTS = Path(
    os.environ.get("BROWSER_SCREENSHOTS", Path(__file__).resolve().parents[2] / "browser-screenshots")
)
WIDTH, HEIGHT = 1366, 900
MISSING = (
    "browser tests need Chromium: apt-get install -y chromium chromium-driver, "
    "and selenium (requirements-dev.txt)"
)


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    absent = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    return f"{' and '.join(absent)} not found" if absent else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    # CI (REQUIRE_SERVICES) must run them: there the browser fixture fails instead.
    if reason is None or os.environ.get("REQUIRE_SERVICES"):
        return
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.skip(reason=f"{reason}; {MISSING}"))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = [report for report in terminalreporter.stats.get("skipped", []) if "browser" in report.keywords]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} browser test(s) skipped: {_missing()}; {MISSING}", yellow=True, bold=True
        )


class Browser:
    """A Chromium window of 1,366 x 900; every step is named, screenshotted, and named again when it fails."""

    def __init__(self, driver, base_url: str, folder: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.folder = folder
        self.count = 0

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base_url}{path}")

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        try:
            yield
        except Exception as exc:
            shot = self.folder / f"{self.count:02d}-{slug}-FAILED.png"
            self.driver.save_screenshot(str(shot))
            raise AssertionError(
                f"browser step {self.count} '{name}' failed at {self.driver.current_url} "
                f"(screenshot {shot}): {exc.__class__.__name__}: {exc}"
            ) from exc
        self.driver.save_screenshot(str(self.folder / f"{self.count:02d}-{slug}.png"))

    def wait(self, condition, timeout: float = 10):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def css(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all_css(self, selector: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def visible(self, selector: str, timeout: float = 10):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions

        return self.wait(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selector)), timeout
        )

    def clickable(self, selector: str, timeout: float = 10):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions

        return self.wait(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, selector)), timeout)

    def text(self) -> str:
        return self.css("body").text

    def horizontal_overflow(self) -> int:
        """Pixels the page is wider than the window (0: it fits)."""
        return self.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
        )

    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture
def browser(request, live_server) -> Iterator[Browser]:
    missing = _missing()
    if missing is not None:
        pytest.fail(f"REQUIRE_SERVICES is set and {missing}; {MISSING}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in (
        "--headless=new",
        f"--window-size={WIDTH},{HEIGHT}",
        "--no-sandbox",  # containers run as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    driver.set_page_load_timeout(30)
    folder = SCREENSHOTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        yield Browser(driver, live_server.url, folder)
    finally:
        driver.quit()
