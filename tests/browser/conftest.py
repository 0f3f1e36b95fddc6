"""Browser tests: headless Chromium (Debian's `chromium` + `chromium-driver`) driven by selenium, against a local
stack started as `make run` starts it.

Reusable pieces for any page the dev server serves:
- `ensure_chromium()` installs the two Debian packages when /usr/bin/chromium or /usr/bin/chromedriver is missing;
- `dev_stack` (module scope) is `python -m local.stack` on free ports with the demo roster (SEED=1);
- `browser` (per test) is a fresh headless Chromium with its own profile; on a failure it leaves a screenshot, the
  page source and the browser's console log in artifacts/browser/;
- `save_screenshot(driver, name)` writes artifacts/browser/<name>.png (artifacts/ is git-ignored).

selenium-manager never runs: the driver's path is given explicitly and SE_OFFLINE=1, so nothing is downloaded.

Why the stack runs in a subprocess: moto's backends and the service's cached clients are process-wide, so a second
in-process LocalStack cannot run beside the session `stack` fixture of tests/conftest.py (its tables already exist).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, free_port, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROME_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage",
    "--window-size=1400,1000", "--disable-component-update", "--disable-sync", "--no-first-run",
)
APT_INSTALL = ("apt-get", "install", "-y", "chromium", "chromium-driver")

os.environ["SE_OFFLINE"] = "1"  # selenium-manager must not look anything up, let alone download a driver


# --- Chromium --------------------------------------------------------------------------------------------------------
def ensure_chromium() -> None:
    """Installs Debian's chromium and chromium-driver when either binary is missing (`apt-get update` first)."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing and there is no apt-get to install chromium and chromium-driver")
    sudo: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            pytest.fail("chromium and chromium-driver are missing; install them as root: "
                        "apt-get update && apt-get install -y chromium chromium-driver")
        sudo = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([*sudo, "apt-get", "update"], [*sudo, *APT_INSTALL]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} or {CHROMEDRIVER} is still missing")


def chrome_options(user_data_dir: Path):
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


def start_chromium(user_data_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    ensure_chromium()
    user_data_dir.mkdir(parents=True, exist_ok=True)
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=chrome_options(user_data_dir))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


# --- artifacts -------------------------------------------------------------------------------------------------------
def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "page"


def save_screenshot(driver, name: str) -> Path:
    """Writes artifacts/browser/<name>.png and returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{_safe(name)}.png"
    driver.save_screenshot(str(path))
    return path


def browser_errors(driver) -> list[str]:
    """Script errors (uncaught exceptions, console.error) in the browser console since the last call. HTTP error
    answers are left out: Chromium logs every 4xx as SEVERE, and a test may well expect one (a wrong PIN is 403)."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry.get("level") == "SEVERE" and entry.get("source") != "network"]


def _save_failure(driver, name: str) -> None:
    try:
        save_screenshot(driver, f"{name}-FAILED")
        (ARTIFACTS / f"{_safe(name)}-FAILED.html").write_text(driver.page_source)
        lines = [f"{e.get('level')} {e.get('message')}" for e in driver.get_log("browser")]
        (ARTIFACTS / f"{_safe(name)}-FAILED.console.txt").write_text("\n".join(lines))
    except Exception as exc:  # noqa: BLE001 - the browser may be what failed
        print(f"could not save the failure artifacts of {name}: {exc}")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "browser: drives headless Chromium (deselect with -m 'not browser')")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


# --- fixtures --------------------------------------------------------------------------------------------------------
@pytest.fixture
def browser(request, tmp_path) -> Iterator:
    """A fresh headless Chromium (own profile) per test; on failure its screen, DOM and console go to artifacts/."""
    driver = start_chromium(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            _save_failure(driver, request.node.name)
        driver.quit()


@dataclass(frozen=True)
class DevStack:
    api_url: str
    dev_url: str
    log_path: Path
    startup_s: float

    def token(self, role: str, sub: str) -> str:
        return requests.post(f"{self.dev_url}/dev/tokens", json={"role": role, "sub": sub}, timeout=10).json()["token"]

    def get(self, role: str, path: str) -> requests.Response:
        """GET the public API as `role` (a fresh token for a `browser-test-<role>` subject)."""
        return self.call("GET", role, path)

    def call(self, method: str, role: str, path: str, body: dict | None = None, sub: str | None = None) -> requests.Response:
        """The public API as `role`/`sub` (default subject `browser-test-<role>`)."""
        token = self.token(role, sub or f"browser-test-{role}")
        return requests.request(method, f"{self.api_url}{path}", json=body, headers={"Authorization": f"Bearer {token}"},
                                timeout=30)

    def dev(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        """A /dev endpoint of the dev server."""
        return requests.request(method, f"{self.dev_url}{path}", json=body, timeout=30)


PORT_TAKEN = "Address already in use"
START_ATTEMPTS = 3


class _PortTaken(Exception):
    """A free port was taken by another process before the stack bound it (other test runs share this machine)."""


def _start_stack(env: dict, log_path: Path) -> tuple[subprocess.Popen, str, str]:
    """Starts `python -m local.stack` on free ports and waits for /v1/health; raises _PortTaken when a port it was
    given got taken meanwhile."""
    ports = {"LOCAL_AWS_PORT": free_port(), "PORT": free_port(), "DEV_PORT": free_port()}
    with open(log_path, "w") as log_file:  # a file, not a pipe: an unread pipe fills up and blocks the stack
        process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT,
                                   env={**env, **{k: str(v) for k, v in ports.items()}}, stdout=log_file,
                                   stderr=subprocess.STDOUT)
    api_url, dev_url = f"http://127.0.0.1:{ports['PORT']}", f"http://127.0.0.1:{ports['DEV_PORT']}"

    def healthy() -> bool:
        if process.poll() is not None:
            output = log_path.read_text()
            if PORT_TAKEN in output:
                raise _PortTaken(output[-500:])
            pytest.fail(f"local stack exited early:\n{output[-4000:]}")
        try:
            return requests.get(f"{api_url}/v1/health", timeout=1).json() == {"status": "ok"}
        except (requests.RequestException, ValueError):
            return False

    try:
        wait_for(healthy, timeout=90, interval=0.2, message="the local stack to answer /v1/health")
    except BaseException:
        _stop(process)
        raise
    return process, api_url, dev_url


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="module")
def dev_stack(request, tmp_path_factory) -> Iterator[DevStack]:
    """`python -m local.stack` (what `make run` starts) on free ports, demo roster seeded; stopped after the module.
    Started again on other ports (up to 3 times) when one of its ports was taken before it bound it."""
    # Not the in-process stack's settings: the child makes its own endpoint, tables and queue.
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_TABLE", "_QUEUE_URL", "_TOPIC_ARN", "_STATE_MACHINE_ARN")) and k not in ("AWS_ENDPOINT_URL", "MOTO_PORT")}
    # PERSIST=0: the stack must neither load nor overwrite .local-state/ (a developer's `make run` state, or the
    # previous module's stack).
    env.update(SEED="1", PERSIST="0", PYTHONUNBUFFERED="1")
    log_path = tmp_path_factory.mktemp("dev-stack") / "stack.log"
    started = time.monotonic()
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            process, api_url, dev_url = _start_stack(env, log_path)
            break
        except _PortTaken as taken:
            if attempt == START_ATTEMPTS:
                pytest.fail(f"the local stack's ports were taken {START_ATTEMPTS} times:\n{taken}")
    try:
        yield DevStack(api_url, dev_url, log_path, time.monotonic() - started)
    finally:
        _stop(process)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        # One log per test module (each has a stack of its own): dev-stack-test_console.log, ...
        shutil.copyfile(log_path, ARTIFACTS / f"dev-stack-{request.module.__name__.rsplit('.', 1)[-1]}.log")
