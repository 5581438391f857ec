"""`ganzoo demo` in a real headless browser: Debian's chromium driven by selenium through
chromedriver. The server runs in a subprocess on a free 127.0.0.1 port with the released
``dcgan_fashion`` (embedded in the repository, 32x32x1) and a model that cannot load.

Skips, saying why, where chromium/chromedriver (``apt-get install chromium chromium-driver``),
selenium or gradio is missing. ``GANZOO_DEMO_SCREENSHOT=PATH`` also saves the screenshot there.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="no headless browser: install Debian's chromium and chromium-driver "
                              "(apt-get install -y chromium chromium-driver) to run the demo's browser test"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the demo server exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the demo server did not answer {url} within {timeout} s")


@pytest.fixture
def demo_server(tmp_path):
    pytest.importorskip("gradio", reason="the demo needs gradio (pip install 'ganzoo[demo]')")
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ganzoo", "demo", "dcgan_fashion", str(tmp_path / "no_such_model"),
           "--no-catalog", "--port", str(port), "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/", proc, timeout=120)
        yield f"http://127.0.0.1:{port}/", proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1400", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_the_demo_page_generates_a_grid_in_a_browser(demo_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    url, proc = demo_server
    browser.get(url)
    wait = WebDriverWait(browser, 90)
    # the first model loads when the page opens and the status says so
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Loaded dcgan_fashion"))
    browser.find_element(By.CSS_SELECTOR, "#generate").click()
    img = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#grid img")))
    wait.until(lambda d: d.execute_script("const i = arguments[0]; return i.complete && i.naturalWidth > 0;", img))
    # 16 samples of 32 px enlarged 4x in rows of 8 (2 px padding): 1042 x 262
    size = browser.execute_script("const i = arguments[0]; return [i.naturalWidth, i.naturalHeight];", img)
    assert size == [2 + 8 * (128 + 2), 2 + 2 * (128 + 2)]
    assert "16 samples of dcgan_fashion, seed 0" in browser.find_element(By.ID, "status").text
    shot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("GANZOO_DEMO_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["GANZOO_DEMO_SCREENSHOT"])

    # a model that cannot load: an error on the page, and the server stays up
    box = browser.find_element(By.CSS_SELECTOR, "#model input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("no_such_model")
    option = wait.until(EC.element_to_be_clickable((By.XPATH, "//ul//li[contains(., 'no_such_model')]")))
    option.click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Error: could not load"))
    assert proc.poll() is None
    browser.find_element(By.CSS_SELECTOR, "#generate").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "no such folder"))
    assert proc.poll() is None
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
