"""Time and memory of a running `muggled-swinv2 serve`: seconds from upload to result for a
640x480 photo (through gradio_client, and with --browser through headless Chromium, from choosing
the file to the depth picture shown), and the server's RSS over many requests.

    muggled-swinv2 serve -w weights/dpt_swin2_tiny_256.pt &
    python benchmarks/serve_check.py http://127.0.0.1:7860/ --pid $! --requests 50 --browser [--screenshot page.png]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
from gradio_client import Client, handle_file

ROOM = Path(__file__).resolve().parents[1] / "muggled_swinv2" / "web" / "examples" / "room.jpg"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def browser_seconds(url: str, picture: Path, runs: int, screenshot: str | None = None) -> list[float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1280,1000", f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    seconds = []
    try:
        for _ in range(runs):
            driver.get(url)
            wait = WebDriverWait(driver, 120)
            upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#picture input[type=file]"))
            started = time.perf_counter()
            upload.send_keys(str(picture))
            wait.until(lambda d: any(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)
                                     for image in d.find_elements(By.CSS_SELECTOR, "#depth img")))
            seconds.append(time.perf_counter() - started)
            if screenshot and len(seconds) == 1:
                time.sleep(0.5)  # the downloads list settles
                driver.save_screenshot(screenshot)
    finally:
        driver.quit()
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--pid", type=int, help="the server's process id, to follow its RSS")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--browser", action="store_true", help="also time 3 uploads in headless Chromium")
    parser.add_argument("--picture", default=str(ROOM), help="photo to upload, resized to 640x480 (default: room.jpg)")
    parser.add_argument("--screenshot", help="with --browser: save the page after the first upload (PNG)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="serve-check-"))
    picture = folder / "photo_640x480.jpg"
    cv2.imwrite(str(picture), cv2.resize(cv2.imread(args.picture), (640, 480), interpolation=cv2.INTER_AREA))
    client = Client(args.url, verbose=False, download_files=str(folder / "downloads"))
    seconds, rss = [], []
    for index in range(args.requests):
        started = time.perf_counter()
        client.predict(handle_file(str(picture)), "inferno", "keep aspect ratio", 0, api_name="/depth")
        seconds.append(time.perf_counter() - started)
        if args.pid:
            rss.append(rss_mib(args.pid))
    print(f"API, 640x480, {args.requests} requests: first {seconds[0]:.2f} s, median {statistics.median(seconds):.2f} s, "
          f"max {max(seconds):.2f} s")
    if rss:
        print(f"server RSS (MiB) after request 1: {rss[0]:.0f}, 10: {rss[min(9, len(rss) - 1)]:.0f}, "
              f"{len(rss)}: {rss[-1]:.0f}; min {min(rss):.0f}, max {max(rss):.0f}")
    if args.browser:
        shown = browser_seconds(args.url, picture, 3, args.screenshot)
        print("browser, upload -> depth shown: " + ", ".join(f"{value:.2f} s" for value in shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
