"""The web page's Metric box: the service's metric depth from the page's known points table (as
`image --known` writes it, through the job's writer table), the readout at a clicked pixel, every
bad table in one line; and a real headless Chromium that clicks the depth picture, fits and reads
the metric depth back."""

import json
import re

import numpy as np
import pytest

import cv2
from muggled_swinv2.web.service import (MAX_KNOWN_POINTS, DepthService, Limits, ModelInfo, UploadError)
from browser import shown_image
from pictures import photo

pytest.importorskip("gradio", reason="the [web] extra (gradio) is not installed")

SCALE, SHIFT = 0.4, 0.1


@pytest.fixture(scope="module")
def service(small_model, small_checkpoint, tmp_path_factory):
    info = ModelInfo("small", small_checkpoint, "cpu", "float32")
    return DepthService(small_model, info, Limits(max_pixels=100_000), tmp_path_factory.mktemp("service"))


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    path = tmp_path_factory.mktemp("upload") / "room.png"
    cv2.imwrite(str(path), photo(48, 80))
    return path


def test_the_metric_box_fits_the_known_points_and_reads_back_metres(service, picture):
    plain = service.image(picture)
    d = np.load(next(path for path in plain.downloads if path.suffix == ".npy")).astype(np.float64)
    z = 1 / (SCALE * d + SHIFT)
    rows = [[x, y, float(z[y, x])] for x, y in [(2, 3), (70, 10), (40, 44)]] + [[None, None, None]]  # a blank row
    result = service.metric(picture, rows, "affine", 90)
    names = [path.name for path in result.downloads]
    assert names == ["room.png", "room_16bit.png", "room.npy", "room_mesh.ply", "room_metric.npy", "room_metric_mm.png",
                     "room_camera.json"]
    metric = np.load(result.metric_npy)
    np.testing.assert_allclose(metric, z, rtol=1e-5)
    camera = json.loads(result.downloads[-1].read_text())
    assert camera["scale"] == pytest.approx(SCALE, rel=1e-6) and camera["fx"] == pytest.approx(40)
    assert result.summary.startswith("room.png: metric: affine fit to 3 known points")
    assert b"from metric depth (metres)" in result.model3d.read_bytes()[:300]  # the mesh in metres (fx 40)
    assert service.readout(str(result.metric_npy), 70, 10) == f"Pixel (70, 10): **{metric[10, 70]:.3f} m**"
    assert service.readout(str(result.metric_npy), 80, 10).startswith("Pixel (80, 10) is outside")
    assert "relative inverse depth" in service.readout(str(plain.downloads[2]), 1, 1)
    assert service.readout("/etc/passwd", 1, 1) == "That result has expired; estimate the depth again."


@pytest.mark.parametrize("rows, fit, fov, message", [
    ([[1, 1, None], [5, 5, 2]], "affine", 0, "Known point 1: expected the numbers x, y and z (metres), got 1, 1, blank"),
    ([[1, 1, "far"], [5, 5, 2]], "affine", 0, "Known point 1: expected the numbers"),
    ([[80, 1, 2], [5, 5, 3]], "affine", 0, "Known point 1 (80,1=2): outside the 80x48 picture (x 0-79"),
    ([[1, 1, -2], [5, 5, 3]], "affine", 0, "Known point 1 (1,1=-2): the distance must be a positive finite"),
    ([[1, 1, 2]], "affine", 0, "1 known point: an affine fit needs 2 or more"),
    ([], "affine", 0, "No known points: click the depth picture"),
    ([[1, 1, 2], [5, 5, 3]], "affine", 200, "Field of view 200: expected degrees between 0 and 180"),
    ([[1, 1, 2], [5, 5, 3]], "cubic", 0, "Fit 'cubic': expected affine or scale."),
    ([[1, 1, 2]] * (MAX_KNOWN_POINTS + 1), "scale", 0, f"{MAX_KNOWN_POINTS + 1} known points: this server takes up to"),
])
def test_a_bad_table_is_one_line_and_writes_nothing(service, picture, rows, fit, fov, message):
    before = sorted(service.results.iterdir())
    with pytest.raises(UploadError) as refused:
        service.metric(picture, rows, fit, fov)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    assert sorted(service.results.iterdir()) == before


@pytest.fixture
def server(small_checkpoint, tmp_path):
    """The browser test's own server."""
    from test_web import LIMITS, serving_one_test

    yield from serving_one_test(small_checkpoint, tmp_path / "serve", LIMITS)


def test_browser_click_fit_and_read_the_metric_depth(server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_web import ROOM

    server, browser = server, browser
    browser.get(server.url)
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#picture input[type=file]"))
    browser.find_element(By.CSS_SELECTOR, "#picture input[type=file]").send_keys(str(ROOM))
    image = wait.until(lambda d: shown_image(d, "#depth"))
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Depth in "))
    [relative] = [path for path in server.tmpdir.rglob("room.npy") if "results" in path.parts]
    d = np.load(relative)
    # the one-point scale fit: a click with its distance typed first
    browser.find_element(By.XPATH, "//label[.//span[text()='scale']]").click()
    distance = browser.find_element(By.CSS_SELECTOR, "#known-distance input")
    distance.clear()
    distance.send_keys("2.5")
    ActionChains(browser).move_to_element_with_offset(image, 20, 10).click().perform()
    readout = wait.until(lambda d: (text := d.find_element(By.ID, "metric-readout").text) and "added" in text and text)
    x, y = (int(value) for value in re.search(r"Pixel \((\d+), (\d+)\)", readout).groups())
    assert 150 <= x <= 200 and 110 <= y <= 150  # about the picture's centre (320x240 shown at its size or scaled)
    assert "2.5" in browser.find_element(By.ID, "known-points").text
    browser.find_element(By.ID, "fit-metric").click()
    wait.until(lambda d: "metric: scale fit to 1 known points" in d.find_element(By.ID, "metric-status").text)
    downloads = browser.find_element(By.ID, "downloads").text.replace("\n", "")
    assert "room_metric.npy" in downloads and "room_camera.json" in downloads and "room_metric_mm.png" in downloads
    [metric_file] = [path for path in server.tmpdir.rglob("room_metric.npy") if "results" in path.parts]
    metric = np.load(metric_file)
    assert metric[y, x] == pytest.approx(2.5, rel=1e-5)  # the known point, exactly
    np.testing.assert_allclose(metric, 2.5 * d[y, x] / d, rtol=1e-4)  # scale fit: z proportional to 1 / d
    ActionChains(browser).move_to_element_with_offset(image, -60, -40).click().perform()
    readout = wait.until(lambda d: (text := d.find_element(By.ID, "metric-readout").text) and " m" in text and text)
    x2, y2, metres = re.search(r"Pixel \((\d+), (\d+)\): ([\d.]+) m", readout).groups()
    assert float(metres) == pytest.approx(float(metric[int(y2), int(x2)]), abs=5e-4)
    browser.save_screenshot(str(tmp_path / "metric.png"))
