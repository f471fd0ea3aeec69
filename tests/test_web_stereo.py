"""The web page's Stereo tab: service.stereo runs the stereo job (jobs/stereo.py) on a picture or a
video, within the server's limits, with an anaglyph preview; and a real headless Chromium makes a
picture's stereo through the page."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from muggled_swinv2.cli import main
from muggled_swinv2.web.service import DepthService, Limits, ModelInfo, UploadError
from browser import natural_size, shown_image
from pictures import photo

REPO = Path(__file__).resolve().parent.parent
ROOM = REPO / "muggled_swinv2" / "web" / "examples" / "room.jpg"


@pytest.fixture
def service(small_model, tmp_path):
    return DepthService(small_model, ModelInfo("small", Path("small.pt"), "cpu", "float32"),
                        Limits(max_pixels=200_000, max_video_frames=12), tmp_path / "work")


def test_a_picture_gives_the_stereo_commands_files_and_an_anaglyph_preview(service, tmp_path, capsys):
    picture = tmp_path / "pic.png"
    cv2.imwrite(str(picture), photo(48, 64))
    result = service.stereo(str(picture), "half-sbs", 3.0, 0.25, False)
    names = sorted(path.name for path in result.downloads)
    assert names == ["pic_depth.npy", "pic_half-sbs.png", "pic_half-sbs_comfort.json"]
    assert result.video is None and result.preview.name == "pic_anaglyph.png"
    assert cv2.imread(str(result.preview)).shape == (48, 64, 3)
    # the same files as the command with the same depth: one job layer
    [depth_file] = [path for path in result.downloads if path.suffix == ".npy"]
    code = main(["stereo", str(picture), "--depth", str(depth_file), "--format", "half-sbs", "--divergence", "3",
                 "--convergence", "0.25", "--out", str(tmp_path / "cli"), "-q"])
    assert code == 0
    [page_sbs] = [path for path in result.downloads if path.name == "pic_half-sbs.png"]
    np.testing.assert_array_equal(cv2.imread(str(page_sbs)), cv2.imread(str(tmp_path / "cli" / "pic_half-sbs.png")))
    assert "disparity" in result.comfort


def test_a_video_gives_a_stereo_video_of_the_same_frames(service, tmp_path):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for index in range(5):
        writer.write(np.roll(photo(48, 64, seed=3), index * 4, axis=1))
    writer.release()
    result = service.stereo(str(clip), "sbs", 2.0, 0.5, True)
    assert result.preview is None and result.video.suffix in (".mp4", ".webm")
    capture = cv2.VideoCapture(str(result.video))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    assert len(frames) == 5 and frames[0].shape == (48, 128, 3)  # side by side: twice as wide
    assert result.video.with_name(f"{result.video.stem}_comfort.json") in result.downloads


@pytest.mark.parametrize("settings, message", [
    (("wiggle", 2.0, 0.5, False), "Format 'wiggle'"),
    (("sbs", 0.0, 0.5, False), "Divergence 0.0"),
    (("sbs", float("nan"), 0.5, False), "Divergence nan"),
    (("sbs", 50.0, 0.5, False), "Divergence 50.0"),
    (("sbs", 2.0, 1.5, False), "Convergence 1.5"),
])
def test_bad_settings_are_refused_in_one_line(service, tmp_path, settings, message):
    picture = tmp_path / "pic.png"
    cv2.imwrite(str(picture), photo(48, 64))
    with pytest.raises(UploadError, match=message) as caught:
        service.stereo(str(picture), *settings)
    assert "\n" not in str(caught.value)
    assert not list((tmp_path / "work" / "results").iterdir())  # nothing written


def test_the_servers_limits_hold(service, tmp_path):
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), photo(600, 800))
    with pytest.raises(UploadError, match="megapixels"):
        service.stereo(str(big), "sbs", 2.0, 0.5, False)
    long_clip = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(long_clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for index in range(20):
        writer.write(photo(48, 64, seed=index))
    writer.release()
    with pytest.raises(UploadError, match="more than 12 frames"):
        service.stereo(str(long_clip), "sbs", 2.0, 0.5, False)


@pytest.fixture
def server(small_checkpoint, tmp_path):
    """The browser test's own server."""
    pytest.importorskip("gradio", reason="the [web] extra (gradio) is not installed")
    from test_web import serving_one_test

    yield from serving_one_test(small_checkpoint, tmp_path / "serve", ["--max-megapixels", "0.5"])


def test_browser_makes_the_stereo_of_an_uploaded_picture(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    wait = WebDriverWait(browser, 120)  # the first stereo of a freshly started server, on a loaded 2-core machine
    tab = wait.until(lambda d: [button for button in d.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                                if button.text.strip() == "Stereo"])
    tab[0].click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#stereo-upload input[type=file]"))
    browser.find_element(By.CSS_SELECTOR, "#stereo-upload input[type=file]").send_keys(str(ROOM))
    # uploaded once the page links the server's copy (its text shows the name as "room" and ".jpg"
    # on two lines; "room.jpg" stands in it only for the moment the upload is under way)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#stereo-upload a[download='{ROOM.name}']"))
    browser.find_element(By.ID, "stereo-run").click()
    image = wait.until(lambda d: shown_image(d, "#stereo-preview"))
    height, width = cv2.imread(str(ROOM)).shape[:2]
    assert natural_size(browser, image) == [width, height]
    assert browser.find_element(By.ID, "stereo-status").text.startswith("Stereo in ")
    assert "half-sbs" in browser.find_element(By.ID, "stereo-downloads").text
    browser.save_screenshot(str(tmp_path / "stereo.png"))
