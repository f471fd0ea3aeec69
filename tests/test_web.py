"""The web app (`muggled-swinv2 serve`): one real server per module, driven through gradio_client
and through a real headless Chromium.

The server runs the small random-weight checkpoint with small limits, so that every limit can be
crossed with small files. Tests run in file order; the last one stops the server.
"""

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import cv2
from muggled_swinv2.cli import main
from muggled_swinv2.web.server import host_warning
from muggled_swinv2.web.service import KEEP_ASPECT, SQUARE, Limits, ModelInfo
from browser import natural_size, shown_image
from pictures import photo

pytest.importorskip("gradio", reason="the [web] extra (gradio) is not installed")
gradio_client = pytest.importorskip("gradio_client", reason="gradio_client (the [test] extra) is not installed")

REPO = Path(__file__).resolve().parent.parent
ROOM = REPO / "muggled_swinv2" / "web" / "examples" / "room.jpg"
LIMITS = ["--max-upload-mb", "1", "--max-megapixels", "0.5", "--max-video-frames", "12", "--max-video-seconds", "5"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, process, url, tmpdir, log):
        self.process, self.url, self.tmpdir, self.log = process, url, tmpdir, log

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: the server closes and removes its temporary folder
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(checkpoint, folder: Path, options: list[str]) -> Server:
    """`muggled-swinv2 serve` on a free port of 127.0.0.1, with its own TMPDIR in `folder`; returns
    once it listens."""
    tmpdir, log = folder / "tmp", folder / "server.log"
    tmpdir.mkdir(parents=True)
    port = free_port()
    env = dict(os.environ, TMPDIR=str(tmpdir), GRADIO_ANALYTICS_ENABLED="False")
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "muggled_swinv2", "serve", "-w", str(checkpoint),
                                    "--port", str(port), *options], stdout=out, stderr=subprocess.STDOUT, env=env)
    running = Server(process, f"http://127.0.0.1:{port}/", tmpdir, log)
    deadline = time.monotonic() + 600  # a loaded 2-core machine can take minutes
    while "open http" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            pytest.fail(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.2)
    return running


def serving(checkpoint, tmp_path_factory, options: list[str]):
    """A module's server fixture: one server, stopped after the module's tests."""
    running = start_server(checkpoint, tmp_path_factory.mktemp("serve"), options)
    yield running
    running.stop()


def serving_one_test(checkpoint, folder: Path, options: list[str]):
    """A browser test's own server fixture: requested before `browser`, it stops after the browser
    has closed; its log must show no traceback."""
    running = start_server(checkpoint, folder, options)
    yield running
    running.stop()
    assert "Traceback" not in running.log.read_text()


def client_of(server, tmp_path_factory):
    return gradio_client.Client(server.url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def server(small_checkpoint, tmp_path_factory):
    yield from serving(small_checkpoint, tmp_path_factory, LIMITS)


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return client_of(server, tmp_path_factory)


def depth_of(client, path, colormap="inferno", mode=KEEP_ASPECT, size=0):
    return client.predict(gradio_client.handle_file(str(path)), colormap, mode, size, api_name="/depth")


def video_of(client, path, side_by_side=False):
    return client.predict(gradio_client.handle_file(str(path)), "inferno", KEEP_ASPECT, 0, side_by_side,
                          api_name="/video_depth")


def app_error(client, call, *args) -> str:
    with pytest.raises(Exception) as caught:
        call(client, *args)
    return str(caught.value)


def write_video(path, frames: int, fps: float, size_wh=(64, 48)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size_wh)
    for index in range(frames):
        writer.write(np.roll(photo(size_wh[1], size_wh[0], seed=3), index * 4, axis=1))
    writer.release()
    return path


def frames_of(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    return frames


# ----------------------------------------------------------------------------- without a server


def test_serve_without_gradio_says_what_to_install():
    code = "import sys; sys.modules['gradio'] = None; from muggled_swinv2.cli import main; sys.exit(main(['serve']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "pip install 'muggled_swinv2[web]'" in result.stderr


def test_package_and_core_commands_never_import_gradio():
    code = ("import sys, muggled_swinv2, muggled_swinv2.cli, muggled_swinv2.web.service, muggled_swinv2.web.server; "
            "print('gradio' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_host_warning_only_off_this_machine():
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    assert "reachable from other machines" in host_warning("0.0.0.0")


def test_model_line_names_the_demo_model():
    info = ModelInfo("micro", Path("/x/demo_micro_256.safetensors"), "cpu", "float32", demo=True)
    assert "micro" in info.line() and "demo_micro_256.safetensors" in info.line() and "demo model" in info.line()
    assert "demo" not in ModelInfo("base", Path("/x/base.pt"), "cuda:0", "float16").line()
    assert "0.5 megapixels" in Limits(max_pixels=500_000).line()


# ----------------------------------------------------------------------------- the API


@pytest.mark.parametrize("colormap, mode, size, cli_flags", [
    ("inferno", KEEP_ASPECT, 0, []),
    ("gray", SQUARE, 0, ["--colormap", "gray", "--square"]),
    ("turbo", KEEP_ASPECT, 96, ["--colormap", "turbo", "--size", "96"]),
])
def test_depth_equals_the_image_command(client, small_checkpoint, tmp_path, colormap, mode, size, cli_flags):
    depth_png, (photo_path, slider_depth), downloads, status, mesh_path = depth_of(client, ROOM, colormap, mode, size)
    with open(mesh_path, "rb") as file:  # the 3D view's mesh (export/geometry.py), a binary PLY
        assert file.read(3) == b"ply"
    assert main(["image", str(ROOM), "-w", str(small_checkpoint), "--out", str(tmp_path), "--raw", "npy,png16",
                 "--quiet", *cli_flags]) == 0
    by_name = {Path(path).name: Path(path) for path in downloads}
    assert sorted(by_name) == ["room.npy", "room.png", "room_16bit.png", "room_mesh.ply"]
    assert np.array_equal(np.load(by_name["room.npy"]), np.load(tmp_path / "room.npy"))
    for name in ("room.png", "room_16bit.png"):
        assert np.array_equal(cv2.imread(str(by_name[name]), cv2.IMREAD_UNCHANGED),
                              cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED))
    assert np.array_equal(cv2.imread(depth_png), cv2.imread(str(tmp_path / "room.png")))
    assert cv2.imread(photo_path).shape == cv2.imread(str(ROOM)).shape
    assert status.startswith("Depth in ")


def test_upload_size_limit(client, server, tmp_path):
    big = tmp_path / "noise.png"
    cv2.imwrite(str(big), np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8))
    assert big.stat().st_size > 1e6
    assert "exceeds the maximum file size" in app_error(client, depth_of, big)  # the client checks first
    import httpx

    with open(big, "rb") as file:  # and the server refuses it whoever sends it
        response = httpx.post(server.url + "gradio_api/upload", files={"files": ("noise.png", file, "image/png")})
    assert response.status_code == 413


def test_pixel_limit(client, tmp_path):
    wide = tmp_path / "wide.png"
    cv2.imwrite(str(wide), np.zeros((800, 800), np.uint8))
    assert "wide.png has 800x800 pixels (0.6 megapixels); this server takes pictures up to 0.5 megapixels" in \
        app_error(client, depth_of, wide)


def test_video_limits(client, tmp_path):
    long = write_video(tmp_path / "long.avi", frames=20, fps=10)
    assert "long.avi has more than 12 frames; this server takes videos up to 12 frames" in app_error(client, video_of, long)
    slow = write_video(tmp_path / "slow.avi", frames=8, fps=1)
    assert "slow.avi lasts 8.0 s; this server takes videos up to 5 s" in app_error(client, video_of, slow)


def test_bad_uploads_are_reported_and_the_server_keeps_serving(client, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    assert "notes.txt: not an image OpenCV can decode" in app_error(client, depth_of, text)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(ROOM.read_bytes()[:600])
    assert "corrupt.jpg: not an image OpenCV can decode" in app_error(client, depth_of, corrupt)
    no_frames = write_video(tmp_path / "no_frames.avi", frames=0, fps=10)
    assert "no_frames.avi" in app_error(client, video_of, no_frames)
    assert "notes.txt: cannot open as a video" in app_error(client, video_of, text)
    assert "room.jpg: is a picture, not a video; for its depth use the Picture tab" in app_error(client, video_of, ROOM)
    assert Path(depth_of(client, ROOM)[0]).is_file()


def test_video_tab_gives_the_depth_video(client, tmp_path):
    result = video_of(client, write_video(tmp_path / "clip.avi", frames=6, fps=10), True)
    path = Path(result["video"] if isinstance(result, dict) else result)
    assert path.suffix == ".mp4"  # H.264 through PyAV (tests/test_video_ffmpeg.py reads its streams)
    frames = frames_of(path)
    assert len(frames) == 6 and frames[0].shape == (48, 128, 3)  # side by side: twice as wide


def test_ten_concurrent_requests_all_complete(server, small_checkpoint, tmp_path):
    main(["image", str(ROOM), "-w", str(small_checkpoint), "--out", str(tmp_path), "--raw", "npy", "--quiet"])
    expected = np.load(tmp_path / "room.npy")

    def one(index):
        own = gradio_client.Client(server.url, verbose=False, download_files=str(tmp_path / f"client{index}"))
        return np.load(next(path for path in depth_of(own, ROOM)[2] if path.endswith(".npy")))

    with ThreadPoolExecutor(10) as pool:
        depths = list(pool.map(one, range(10)))
    assert len(depths) == 10 and all(np.array_equal(depth, expected) for depth in depths)


# ----------------------------------------------------------------------------- a real browser


def test_browser_shows_the_depth_of_an_uploaded_picture(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    wait = WebDriverWait(browser, 90)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#picture input[type=file]"))
    assert "dpt_swin2_small_64.pt" in browser.find_element(By.ID, "model-info").text
    browser.find_element(By.CSS_SELECTOR, "#picture input[type=file]").send_keys(str(ROOM))
    image = wait.until(lambda d: shown_image(d, "#depth"))
    assert natural_size(browser, image) == [320, 240]
    assert "/gradio_api/file=" in image.get_attribute("src")
    assert browser.find_element(By.ID, "status").text.startswith("Depth in ")
    screenshot = tmp_path / "serve.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")


# ----------------------------------------------------------------------------- last: stopping


def test_server_bound_locally_and_stopping_removes_its_temporary_folder(server):
    assert f"open {server.url} in a browser" in server.log.read_text()  # 127.0.0.1 by default
    assert list(server.tmpdir.glob("muggled-swinv2-serve-*"))
    server.stop()
    assert not list(server.tmpdir.glob("muggled-swinv2-serve-*"))
    assert "Traceback" not in server.log.read_text()
