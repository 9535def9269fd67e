"""The chat page `solar serve` serves at "/", in headless Chromium (Debian's chromium and
chromium-driver, driven by selenium): it loads with no network beyond the server, a message
sent shows as the user's turn, the reply streams into the assistant's turn (its text grows
over several reads), tokens/s appear, a second turn sends the whole conversation, and the
stop button ends a long reply early. Saves a screenshot to serve_webui.png beside SOLAR_BIN.
Run: python3 test_serve_webui.py SOLAR_BIN
"""
import os
import shutil
import sys
import tempfile
import time

import common
import serve_util

common.skip_if_asked()
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:
    common.missing(e)
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not os.path.exists(DRIVER):
    common.missing("chromedriver (Debian's chromium-driver)")

SOLAR = sys.argv[1]
check = serve_util.check


def main():
    with tempfile.TemporaryDirectory() as d:
        # 16 layers of the 10m preset on one thread (300-500 tokens/s here, more on a fast
        # CPU) and no EOS: a reply long and slow enough for a polling reader to see it grow,
        # and a second one (700 tokens) that the stop button must cut short.
        model = serve_util.tiny_model(SOLAR, d, preset="10m", layers=16)
        with serve_util.Server(SOLAR, model, "-np", "2", "-c", "1024", "-t", "1", "--ignore-eos") as srv:
            opts = webdriver.ChromeOptions()
            for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,800"):
                opts.add_argument(a)
            opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
            drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
            try:
                drv.get(srv.url + "/")
                check(drv.title == "solar chat", f"page title {drv.title!r}")
                wait = WebDriverWait(drv, 30)
                drv.find_element(By.ID, "maxtok").clear()
                drv.find_element(By.ID, "maxtok").send_keys("200")
                drv.find_element(By.ID, "input").send_keys("Hello")
                drv.find_element(By.ID, "send").click()
                user = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.user"))
                check(user[0].text == "Hello", "the user's turn is shown")
                lengths = []
                t0 = time.time()
                while time.time() - t0 < 30:
                    a = drv.find_elements(By.CSS_SELECTOR, ".msg.assistant")
                    lengths.append(len(a[0].get_attribute("textContent")) if a else 0)
                    if not drv.find_element(By.ID, "send").get_attribute("disabled"):
                        break
                    time.sleep(0.02)
                growth = sorted(set(x for x in lengths if x > 0))
                check(len(growth) >= 2, f"the reply streamed in ({len(growth)} distinct lengths seen)")
                wait.until(lambda d: "tokens" in d.find_element(By.CSS_SELECTOR, ".meta").text)
                meta = drv.find_element(By.CSS_SELECTOR, ".meta").text
                check("tok/s" in meta, f"tokens/s shown ({meta!r})")
                check("tok/s" in drv.find_element(By.ID, "stats").text, "header tokens/s")

                # Second turn, stopped early.
                drv.find_element(By.ID, "maxtok").clear()
                drv.find_element(By.ID, "maxtok").send_keys("700")  # with the first turn, within -c 1024
                drv.find_element(By.ID, "input").send_keys("More")
                drv.find_element(By.ID, "send").click()
                # Clicked as soon as the reply starts (WebDriverWait polls every 0.5 s by default:
                # a fast CPU would finish the reply first).
                WebDriverWait(drv, 30, poll_frequency=0.01).until(
                    lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant")) == 2 and
                    d.find_elements(By.CSS_SELECTOR, ".msg.assistant")[1].get_attribute("textContent"))
                drv.find_element(By.ID, "stop").click()
                wait.until(lambda d: not d.find_element(By.ID, "send").get_attribute("disabled"))
                metas = drv.find_elements(By.CSS_SELECTOR, ".meta")
                check(len(metas) == 2 and metas[1].text.startswith("stopped"), f"stop button ends the reply ({metas[-1].text!r})")
                check(len(drv.find_elements(By.CSS_SELECTOR, ".msg.user")) == 2, "two user turns")
                shot = os.path.join(os.path.dirname(os.path.abspath(SOLAR)), "serve_webui.png")
                drv.save_screenshot(shot)
                check(os.path.getsize(shot) > 1000, f"screenshot {shot}")
                errors = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
                check(not errors, f"no console errors {errors[:2]}")
            finally:
                drv.quit()
            rc = srv.stop()
            check(rc == 0, f"server exit status {rc}")
    serve_util.report()


if __name__ == "__main__":
    main()
