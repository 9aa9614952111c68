"""A real browser for the console's tests: Debian's headless chromium driven
by chromium-driver through Selenium, with a fresh profile, no network but
loopback, and the browser's console log kept so that a test can assert that
nothing went wrong in the page (CSP violations are SEVERE entries too)."""

import base64
import os
import re
import shutil
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get("INCUBATORD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("INCUBATORD_CHROMEDRIVER", "/usr/bin/chromedriver")
BIN = os.environ.get("INCUBATORD_BIN", "build/incubatord")
# Screenshots are test artefacts, kept beside the binary under test.
ARTEFACTS = os.path.join(os.path.dirname(os.path.abspath(BIN)), "console-screenshots")


class Browser:
    def __init__(self, base, width=1366, height=768):
        self.base = base
        self.profile = tempfile.mkdtemp(prefix="incubatord-chromium-")
        self.downloads = os.path.join(self.profile, "downloads")
        os.makedirs(self.downloads)
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-default-apps",
                  "--disable-extensions", "--lang=zh-CN", f"--window-size={width},{height}",
                  f"--user-data-dir={self.profile}"):
            opts.add_argument(a)
        opts.add_experimental_option("prefs", {
            "download.default_directory": self.downloads, "download.prompt_for_download": False,
            "intl.accept_languages": "zh-CN,zh"})
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_window_size(width, height)
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                    {"behavior": "allow", "downloadPath": self.downloads})
        self.logs = []

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # ---- navigation and waiting ----

    def open(self, fragment=""):
        self.driver.get(f"{self.base}/console/{fragment}")

    def go(self, fragment):
        self.driver.execute_script("location.hash = arguments[0]", fragment)

    def wait(self, predicate, timeout=15, what="the page"):
        def check(_):
            try:
                return predicate()
            except StaleElementReferenceException:
                return False
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(check)
        except TimeoutException:
            self.screenshot("timeout")
            raise AssertionError(f"timed out waiting for {what}; console: {self.console()}")

    def click(self, css):
        """Clicks an element scrolled to the middle of the window (clear of the sticky header)."""
        el = self.wait_for(css)
        self.js("arguments[0].scrollIntoView({block: 'center'})", el)
        el.click()
        return el

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_for(self, css, timeout=15):
        return self.wait(lambda: (self.all(css) or [None])[0], timeout, css)

    def wait_idle(self, timeout=15):
        """Until no loading state is left in the page."""
        self.wait(lambda: not self.all(".loading") and self.all("main .view > *"), timeout,
                  "every loading state to end")

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    # ---- sign-in ----

    def sign_in(self, token, code=None):
        self.open("#/signin")
        self.wait_for("#signin-form")
        if code:
            self.find("#kind-incubator").click()
            self.find("#code").send_keys(code)
        self.find("#token").send_keys(token)
        self.find("#signin-submit").click()
        self.wait(lambda: "#/signin" not in self.driver.current_url, what="signing in")
        self.wait_idle()

    def sign_out(self):
        self.find("#sign-out").click()
        self.wait_for("#signin-form")

    # ---- what the browser knows ----

    def storage(self):
        return self.js("""return {
            session: Object.fromEntries(Object.keys(sessionStorage).map(k => [k, sessionStorage.getItem(k)])),
            local: Object.fromEntries(Object.keys(localStorage).map(k => [k, localStorage.getItem(k)])),
            cookie: document.cookie, url: location.href, history: history.length}""")

    def console(self):
        """Every browser console entry so far (kept across calls)."""
        self.logs.extend(self.driver.get_log("browser"))
        return self.logs

    def errors(self):
        return [e for e in self.console() if e["level"] == "SEVERE"]

    # ---- artefacts ----

    def screenshot(self, name, full=True, scale=1.0, path=None):
        """A PNG of the page (all of it when full) under ARTEFACTS, or at path."""
        d = self.driver
        if full:
            self.js("window.scrollTo(0, 0)")
        params = {"format": "png", "captureBeyondViewport": full}
        if full or scale != 1.0:
            metrics = d.execute_cdp_cmd("Page.getLayoutMetrics", {})
            size = metrics["cssContentSize"] if full else metrics["cssLayoutViewport"]
            params["clip"] = {"x": 0, "y": 0, "width": size.get("width", size.get("clientWidth")),
                              "height": size.get("height", size.get("clientHeight")),
                              "scale": scale}
        data = base64.b64decode(d.execute_cdp_cmd("Page.captureScreenshot", params)["data"])
        if path is None:
            os.makedirs(ARTEFACTS, exist_ok=True)
            path = os.path.join(ARTEFACTS, f"{name}.png")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def pdf(self):
        """The page printed as the browser prints it on A4, as PDF bytes."""
        r = self.driver.execute_cdp_cmd("Page.printToPDF", {
            "paperWidth": 8.27, "paperHeight": 11.69, "preferCSSPageSize": True,
            "printBackground": True, "marginTop": 0, "marginBottom": 0, "marginLeft": 0,
            "marginRight": 0})
        return base64.b64decode(r["data"])

    def wait_download(self, suffix, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            done = [n for n in os.listdir(self.downloads) if n.endswith(suffix)]
            if done:
                return os.path.join(self.downloads, done[0])
            time.sleep(0.1)
        raise AssertionError(f"no {suffix} downloaded: {os.listdir(self.downloads)}")


def pdf_pages(data):
    """The page count of a PDF that Chromium wrote (its page tree is not compressed)."""
    counts = re.findall(rb"/Type /Pages\n/Count (\d+)", data) or re.findall(rb"/Count (\d+)", data)
    return int(counts[0])


def media_box(data):
    """The first page's size in points."""
    box = re.search(rb"/MediaBox \[([0-9. ]+)\]", data).group(1)
    return [float(x) for x in box.split()]
