"""The console in a real browser (#17): headless Chromium (Debian's package, driven through its
chromedriver by Selenium; nothing is downloaded) against a real `lore serve` process over an
indexed sample folder with a few answers and feedback items, signing in through the local
identity provider. Saves a screenshot of each page at 1280 and 390 px under build/screenshots/
(git-ignored), or under $LORE_SCREENSHOTS: `LORE_SCREENSHOTS=docs/screenshots python -m pytest
tests/console/test_console_browser.py` refreshes the README's images."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.customize.promotion import store_evaluation
from bot.model.adapters import AdapterRegistry
from bot.settings import SAMPLE_DOCS
from bot.store.database import Database
from tests.console.conftest import ADMIN_TOKEN, DIRECTORY, free_port
from tests.console.identity_provider import CLIENT_ID, CLIENT_SECRET, IdentityProvider
from tests.console.seed import CORRECTION, PRIVATE_SECRET, Seeded, seed
from tests.support.tiny_model import build_tiny_adapter, build_tiny_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(os.environ.get("LORE_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "build" / "screenshots")
WIDTHS = {"laptop": (1280, 900), "phone": (390, 844)}
STARTUP_SECONDS = 180.0

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "the browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
        ".ci/run installs them)",
        allow_module_level=True,
    )

from selenium.webdriver.common.by import By  # noqa: E402  (after the skip above)
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


@dataclass
class Running:
    """`lore serve` at `url`, the identity provider, the environment `lore` runs in."""

    url: str
    idp: IdentityProvider
    env: dict[str, str]
    seeded: Seeded
    index_report: dict[str, object]


class ProviderThread:
    """The identity provider on its own event loop: Selenium's calls block."""

    def __init__(self) -> None:
        self.idp = IdentityProvider()
        self.port = free_port()
        self.idp.issuer = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> IdentityProvider:
        from aiohttp import web

        self.thread.start()
        self.runner = web.AppRunner(self.idp.app())
        asyncio.run_coroutine_threadsafe(self.runner.setup(), self.loop).result(30)
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        asyncio.run_coroutine_threadsafe(site.start(), self.loop).result(30)
        return self.idp

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def lore(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli.main import cli; cli()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("console-browser")
    (root / "directory.yaml").write_text(DIRECTORY, encoding="utf-8")
    port = free_port()
    with ProviderThread() as idp:
        config = f"""
directory_file = "{root / "directory.yaml"}"

[[sources]]
name = "handbook"
kind = "folder"
path = "{SAMPLE_DOCS}"
permissions = "public"

[model]
base_model = "{build_tiny_model(root / "tiny-model")}"
max_new_tokens = 8

[refresh]
interval_minutes = 100000

[console]
admins = ["it@example.com", "group:it"]
private_answers_viewers = ["it@example.com"]
issuer = "{idp.issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
public_url = "http://127.0.0.1:{port}"
"""
        (root / "lore.toml").write_text(config, encoding="utf-8")
        env = {
            name: value for name, value in os.environ.items() if not name.startswith(("LORE_", "SLACK_", "MICROSOFT_"))
        }
        import hashlib

        env |= {
            "LORE_HOME": str(root / "home"),
            "LORE_CONFIG": str(root / "lore.toml"),
            "LORE_CONSOLE__TOKEN_SHA256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
        }
        report = json.loads(lore(env, "index", "--json"))
        registry = AdapterRegistry(root / "home" / "adapters")
        metadata = {
            "base_model": "tiny-model",
            "created": "2026-12-01T03:00:00+00:00",
            "loss_curve": [[step, round(1.3 * 0.93**step, 3)] for step in range(1, 31)],
            "validation_curve": [[10, 0.83], [20, 0.61], [30, 0.55]],
        }
        build_tiny_adapter(root / "tiny-model", registry.directory / "lore-20261201", metadata=metadata)
        evaluation = {
            "base": {"answer_accuracy": 0.35, "citation_accuracy": 0.5, "abstention": 0.6},
            "adapter": {"answer_accuracy": 0.55, "citation_accuracy": 0.7, "abstention": 0.8},
        }
        store_evaluation(registry, "lore-20261201", evaluation)
        database = Database(f"sqlite:///{root / 'home' / 'lore.db'}")
        try:
            seeded = seed(database)
        finally:
            database.close()
        server = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli.main import cli; cli()", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
            yield Running(f"http://127.0.0.1:{port}", idp, env, seeded, report)
        finally:
            server.terminate()
            try:
                server.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.communicate()


def wait_until_up(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"lore serve exited: {process.communicate()[0]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("lore serve did not answer /healthz in time")


@pytest.fixture
def chrome(tmp_path: Path) -> Iterator[WebDriver]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_window_size(*WIDTHS["laptop"])
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver: WebDriver, running: Running, user: str, page: str = "/admin/overview") -> None:
    running.idp.user = user
    driver.get(running.url + page)


def click_and_wait(driver: WebDriver, button: WebElement) -> None:
    """Click a form's button and wait until the next page replaced this one."""
    from selenium.webdriver.support import expected_conditions

    page = driver.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(driver, 20).until(expected_conditions.staleness_of(page))


def text_of(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def screenshot(driver: WebDriver, name: str) -> None:
    """The page at each width, as tall as its content (up to 2,400 px)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width_name, (width, height) in WIDTHS.items():
        driver.set_window_size(width, height)
        full = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(height, int(full) + 140), 2400))
        driver.save_screenshot(str(SCREENSHOTS / f"{name}-{width_name}.png"))
    driver.set_window_size(*WIDTHS["laptop"])


def test_an_admin_signs_in_and_every_page_shows_what_lore_knows(running: Running, chrome: WebDriver) -> None:
    sign_in(chrome, running, "it@example.com")
    assert chrome.current_url == running.url + "/admin/overview"
    documents = running.index_report["documents"]
    assert isinstance(documents, dict)
    shown = chrome.find_element(By.CSS_SELECTOR, '#sources tr[data-source="handbook"] td.documents').text
    assert int(shown) == documents["handbook"] > 0
    assert int(chrome.find_element(By.ID, "index-documents").text) == sum(documents.values())
    assert chrome.find_element(By.CSS_SELECTOR, "svg.chart")
    screenshot(chrome, "overview")

    chrome.get(running.url + "/admin/questions")
    box = chrome.find_element(By.ID, "search")
    box.send_keys(f"garage {running.seeded.tag}")
    click_and_wait(chrome, chrome.find_element(By.ID, "apply"))
    assert chrome.find_element(By.ID, "total").text == "1"
    assert "Where is the parking garage" in text_of(chrome)
    chrome.get(running.url + f"/admin/questions?q={running.seeded.tag}")
    screenshot(chrome, "questions")
    chrome.get(running.url + f"/admin/questions/{running.seeded.answered}")
    assert "Up to five unused days carry over." in text_of(chrome)
    screenshot(chrome, "answer")

    chrome.find_element(By.LINK_TEXT, "Gaps").click()
    assert "Where is the parking garage" in chrome.find_element(By.ID, "gaps").text
    screenshot(chrome, "gaps")

    chrome.get(running.url + "/admin/sources")
    form = chrome.find_element(By.ID, "who-form")
    form.find_element(By.NAME, "email").send_keys("bob@example.com")
    form.find_element(By.NAME, "path").send_keys("people/time-off.md")
    click_and_wait(chrome, form.find_element(By.TAG_NAME, "button"))
    assert "may read" in chrome.find_element(By.ID, "who-result").text
    screenshot(chrome, "sources")

    chrome.find_element(By.LINK_TEXT, "Customization").click()
    assert chrome.find_element(By.CSS_SELECTOR, '[data-adapter="lore-20261201"] polyline')
    screenshot(chrome, "customization")

    chrome.get(running.url + "/admin/actions")
    click_and_wait(chrome, chrome.find_element(By.ID, "refresh-now"))
    WebDriverWait(chrome, 120).until(lambda driver: "Last refresh from the console" in text_of(driver))
    assert "unchanged" in chrome.find_element(By.ID, "refresh-state").text
    screenshot(chrome, "actions")


def test_an_approved_correction_is_in_the_next_dataset_and_a_forged_post_changes_nothing(
    running: Running, chrome: WebDriver
) -> None:
    sign_in(chrome, running, "it@example.com", "/admin/review")
    feedback_id = running.seeded.correction_feedback
    stranger = running.seeded.stranger_feedback

    # Another site's page posts "approve" for the stranger's correction with the admin's cookies.
    target = f"{running.url}/admin/review/{stranger}"
    chrome.get(f"{running.idp.issuer}/attacker?target={target}")
    WebDriverWait(chrome, 20).until(lambda driver: driver.current_url == target)
    assert "CSRF token is missing or wrong" in text_of(chrome)

    chrome.get(running.url + "/admin/review")
    screenshot(chrome, "review")
    entry = chrome.find_element(By.CSS_SELECTOR, f'[data-feedback="{feedback_id}"]')
    click_and_wait(chrome, entry.find_element(By.CSS_SELECTOR, "button.approve"))
    assert "approved" in chrome.find_element(By.ID, "done").text

    card = json.loads(lore(running.env, "customize", "dataset", "--json", "--max-prompt-tokens", "200"))
    folder = Path(card["folder"])
    examples = "".join(
        (folder / f"{split}.jsonl").read_text(encoding="utf-8") for split in ("train", "validation", "test")
    )
    assert CORRECTION in examples  # approved in the browser: training data
    assert "Unlimited days carry over forever." not in examples  # the forged approval did nothing
    shutil.rmtree(folder)


def test_a_colleague_who_is_not_an_admin_is_refused(running: Running, chrome: WebDriver) -> None:
    sign_in(chrome, running, "bob@example.com")
    assert "bob@example.com is not a console admin" in text_of(chrome)


def test_private_answers_stay_hidden_from_an_admin_without_the_right(running: Running, chrome: WebDriver) -> None:
    sign_in(chrome, running, "helpdesk@example.com", f"/admin/questions?q={running.seeded.tag}")
    assert "Overview" in text_of(chrome)  # signed in as an admin
    assert PRIVATE_SECRET not in text_of(chrome)
    assert "private conversations are not shown to you" in text_of(chrome)
    chrome.get(running.url + f"/admin/questions/{running.seeded.private}")
    assert PRIVATE_SECRET not in text_of(chrome) and "you may read" in text_of(chrome)
