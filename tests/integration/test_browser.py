"""`remoteenv up` end to end in a real browser: headless Chromium opens the printed URL, JupyterLab renders,
and a notebook cell run in the env's kernel prints that env's sys.prefix (the build on the host, not ours).

Needs Chromium and its driver (Debian: the chromium and chromium-driver packages) and selenium in the venv.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import wheelhouse
from cli_runner import remoteenv
from conda_share import Share

pytestmark = pytest.mark.integration

REQUIREMENTS = "jupyterlab\nipykernel\n"
ENV_NAME = "main"  # the env `up` makes from a requirements.txt without --env
KERNEL_LABEL = f"Python ({ENV_NAME})"  # how ipykernel's registration names it in the launcher
FIRST_LOAD = 120  # JupyterLab's first load on a small CI machine
CELL_RUN = 90  # the kernel starts, then runs the cell


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(message: str):
    if _in_ci():
        # CI must have every prerequisite: a skip there would hide a broken setup.
        pytest.fail(message)
    pytest.skip(message)


def _browser_paths() -> tuple[str, str]:
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        _unavailable("no Chromium here: install chromium and chromium-driver (Debian packages)")
    return browser, driver


def _chrome(browser: str, driver: str, profile) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser  # with the driver's path as well: Selenium Manager never downloads
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", f"--user-data-dir={profile}", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def _without_token(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "token"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _api_url(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path, query=""))


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _stop_tunnel(env: dict[str, str], host_name: str, tunnel_pid: int | None, check: bool = True) -> None:
    down = remoteenv("down", host_name, "--stop-jupyter", env=env, timeout=120)
    if tunnel_pid and os.path.exists(f"/proc/{tunnel_pid}"):
        # `down` should have ended the keeper it started; never leave it behind.
        try:
            os.kill(tunnel_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if check:
        assert down.code == 0, down.out + down.err


def test_up_url_opens_jupyterlab_and_a_cell_runs_in_the_envs_kernel(make_testbed, tmp_path):
    try:
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError as error:
        _unavailable(f"no selenium: {error}")
    browser, driver_path = _browser_paths()
    house = wheelhouse.wheelhouse_or_skip()
    bed = make_testbed(1)
    host, env = bed.hosts[0], bed.client.env()
    wheels = Share(bed).wheels(house)
    req = bed.dir / "requirements.txt"
    req.write_text(REQUIREMENTS)

    started = time.monotonic()
    up = remoteenv("up", host.name, "--dist", "venv", "--wheelhouse", str(wheels), "-f", str(req),
                   "--detach", "--json", "--no-open", env=env, timeout=1200)
    answer = None
    try:
        assert up.code == 0, up.out + up.err
        answer = json.loads(up.out)
        url, env_path = answer["url"], answer["env"]
        assert url.startswith(f"http://127.0.0.1:{answer['local_port']}/lab?") and "token=" in url, url
        print(f"remoteenv up took {time.monotonic() - started:.1f}s: {url.split('?')[0]}, env {env_path}")
        # A venv's sys.prefix is the path its python was started by: the env's stable link (which the kernel
        # spec names), while the build it points at is its real path. Both must match what the cell prints.
        prefix = host.run(f"{env_path}/bin/python -c 'import sys; print(sys.prefix)'").stdout.strip()
        real = host.run(f"readlink -f {env_path}").stdout.strip()
        assert prefix.startswith("/") and real.startswith("/"), (prefix, real)

        driver = _chrome(browser, driver_path, tmp_path / "chrome-profile")
        try:
            # JupyterLab re-renders as it loads: an element found a moment ago may be replaced.
            wait = WebDriverWait(driver, FIRST_LOAD, ignored_exceptions=(StaleElementReferenceException,))

            # Without the token: a login page, never the lab.
            driver.get(_without_token(url))
            wait.until(ec.url_contains("/login"))
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[type='password']")))
            assert not driver.find_elements(By.CSS_SELECTOR, ".jp-Launcher, .jp-LabShell")
            assert _status(_api_url(url, "/api/contents")) == 403  # and the API refuses too

            # With it: JupyterLab, its launcher offering the env's kernel.
            driver.get(url)
            try:
                card = wait.until(ec.element_to_be_clickable((
                    By.XPATH, "//div[contains(@class, 'jp-Launcher')]//div[contains(@class, 'jp-LauncherCard')]"
                              f"[@data-category='Notebook'][.//*[normalize-space()='{KERNEL_LABEL}']]")))
            except TimeoutException:
                cards = [c.text for c in driver.find_elements(By.CSS_SELECTOR, ".jp-LauncherCard")]
                raise AssertionError(f"no launcher card {KERNEL_LABEL!r} at {driver.current_url}: {cards}") from None
            assert "/login" not in driver.current_url
            print(f"JupyterLab's launcher after {time.monotonic() - started:.1f}s")
            card.click()

            # A notebook on that kernel: type into its first cell and run it.
            wait.until(lambda d: KERNEL_LABEL in d.find_element(
                By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-KernelName").text)
            # The kernel named is not yet the kernel started: a cell sent before it is idle can be lost.
            wait.until(ec.presence_of_element_located((
                By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator"
                                 "[data-status='idle']")))
            # The cell's editor once the notebook has settled (it is drawn again as the kernel starts).
            editor = wait.until(ec.element_to_be_clickable(
                (By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell .cm-content")))
            editor.click()
            editor.send_keys("import sys; print(sys.prefix)")
            WebDriverWait(driver, 10).until(lambda d: "print(sys.prefix)" in editor.text)
            editor.send_keys(Keys.SHIFT, Keys.ENTER)

            def printed(d):
                outputs = d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) "
                                                           ".jp-Cell .jp-OutputArea-output")
                text = "\n".join(o.text for o in outputs).strip()
                return text or False

            try:
                shown = WebDriverWait(driver, CELL_RUN).until(printed)
            except TimeoutException:
                raise AssertionError("the cell printed nothing; cell: "
                                     + repr(editor.text)) from None
            print(f"the cell printed {shown!r} after {time.monotonic() - started:.1f}s")
            assert shown == prefix, f"printed {shown!r}, the env's python says {prefix!r}"
            assert host.run(f"readlink -f '{shown}'").stdout.strip() == real, (shown, real)
        finally:
            driver.quit()
    except BaseException:
        _stop_tunnel(env, host.name, (answer or {}).get("tunnel_pid"), check=False)  # not over the first error
        raise
    _stop_tunnel(env, host.name, answer["tunnel_pid"])
