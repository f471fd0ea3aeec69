"""The web server inside its limits (issue 21, items 9-14): each test drives a real `muggled-swinv2
serve` on 127.0.0.1 through gradio_client, and measures the server's memory where a request could
blow it up: the peak RSS (VmHWM of /proc/PID/status) is reset before the request
(/proc/PID/clear_refs) and read after it.

A picture's header is read before anything is decoded (io/images.picture_size: unit-tested for
every format OpenCV decodes in test_picture_size.py, which needs no Gradio).
"""

import signal
import socket
import struct
import subprocess
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest

import cv2
from muggled_swinv2.web.service import KEEP_ASPECT
from test_web import ROOM, app_error, client_of, depth_of, serving, start_server, video_of, write_video

gradio_client = pytest.importorskip("gradio_client", reason="gradio_client (the [test] extra) is not installed")

LIMITS = ["--max-upload-mb", "12", "--max-megapixels", "0.5", "--max-video-frames", "30", "--max-video-seconds", "10"]
MEMORY_BOUND_MIB = 200  # above the RSS before the request; the unbounded requests took 2-6 GB


def radiance_hdr(width: int, height: int) -> bytes:
    """A one-colour Radiance HDR, run-length encoded: 12000x12000 pixels (1.7 GB as float32 BGR)
    in 9.2 MB."""
    full, rest = divmod(width, 127)
    line = bytes([2, 2, width >> 8, width & 255]) + b"".join(
        bytes([255, component]) * full + (bytes([128 + rest, component]) if rest else b"") for component in (128, 64, 32, 129))
    return b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + f"-Y {height} +X {width}\n".encode() + line * height


def mjpeg_avi(path: Path, frame_jpeg: bytes, frames: int, size_wh: tuple[int, int], fps: int = 10) -> Path:
    """An AVI of `frames` copies of one JPEG (Motion JPEG), written directly: OpenCV's writer
    would take a minute to encode twenty 8K frames."""
    def chunk(fourcc: bytes, data: bytes) -> bytes:
        return fourcc + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)

    def listing(kind: bytes, data: bytes) -> bytes:
        return chunk(b"LIST", kind + data)

    width, height = size_wh
    main = struct.pack("<10I4I", 1_000_000 // fps, 0, 0, 0x10, frames, 0, 1, len(frame_jpeg), width, height, 0, 0, 0, 0)
    stream = b"vids" + b"MJPG" + struct.pack("<IHHIIIIIIiI4h", 0, 0, 0, 0, 1, fps, 0, frames, len(frame_jpeg), -1, 0,
                                             0, 0, width, height)
    bitmap = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    header = listing(b"hdrl", chunk(b"avih", main) + listing(b"strl", chunk(b"strh", stream) + chunk(b"strf", bitmap)))
    frame_chunk = chunk(b"00dc", frame_jpeg)
    movi = listing(b"movi", frame_chunk * frames)
    index = chunk(b"idx1", b"".join(struct.pack("<4sIII", b"00dc", 0x10, 4 + index * len(frame_chunk), len(frame_jpeg))
                                    for index in range(frames)))
    path.write_bytes(chunk(b"RIFF", b"AVI " + header + movi + index))
    return path


def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for process {pid}")


def peak_rise_mib(server, request) -> float:
    """How far the server's peak RSS rose above its RSS while `request()` ran."""
    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")  # peak RSS := current RSS
    before = status_mib(server.process.pid, "VmRSS")
    request()
    return status_mib(server.process.pid, "VmHWM") - before


def log_lines(server) -> list[str]:
    return server.log.read_text().splitlines()


@pytest.fixture(scope="module")
def server(small_checkpoint, tmp_path_factory):
    yield from serving(small_checkpoint, tmp_path_factory, LIMITS)


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return client_of(server, tmp_path_factory)


# ----------------------------------------------------------------------------- 9: pictures, from their header


@pytest.mark.parametrize("name", ["huge.hdr", "huge.png"])
def test_huge_picture_refused_from_its_header_in_bounded_memory(server, client, tmp_path, name):
    huge = tmp_path / name
    huge.write_bytes(radiance_hdr(12000, 12000))
    assert huge.stat().st_size < 10e6
    messages = []
    rise = peak_rise_mib(server, lambda: messages.append(app_error(client, depth_of, huge)))
    assert f"{name} has 12000x12000 pixels (144.0 megapixels); this server takes pictures up to 0.5 megapixels" \
        in messages[0]
    assert rise < MEMORY_BOUND_MIB, f"the server's peak RSS rose {rise:.0f} MiB"
    print(f"{name}: peak RSS +{rise:.0f} MiB")


# ----------------------------------------------------------------------------- 10: video frames


def test_video_of_huge_frames_refused_before_decoding(server, client, tmp_path):
    ok, frame = cv2.imencode(".jpg", np.zeros((4320, 7680), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 20])
    video = mjpeg_avi(tmp_path / "eight_k.avi", frame.tobytes(), frames=20, size_wh=(7680, 4320))
    assert cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT) == 20
    messages = []
    started = time.monotonic()
    rise = peak_rise_mib(server, lambda: messages.append(app_error(client, video_of, video)))
    assert "eight_k.avi has 7680x4320 pixels (33.2 megapixels); this server takes video frames up to 0.5 megapixels" \
        in messages[0]
    assert rise < MEMORY_BOUND_MIB, f"the server's peak RSS rose {rise:.0f} MiB"
    print(f"refused in {time.monotonic() - started:.1f} s, peak RSS +{rise:.0f} MiB")


# ----------------------------------------------------------------------------- 11: the memory check


def test_size_beyond_memory_gets_the_command_lines_memory_check(server, client):
    messages = []
    rise = peak_rise_mib(server, lambda: messages.append(app_error(client, depth_of, ROOM, "inferno", KEEP_ASPECT, 100000)))
    assert "room.jpg: needs about" in messages[0] and "GiB available; the largest long side that fits is" in messages[0]
    assert "\n" not in messages[0] and "--" not in messages[0]  # the page's terms, not the command line's flags
    assert rise < MEMORY_BOUND_MIB, f"the server's peak RSS rose {rise:.0f} MiB"
    print(f"size=100000: {messages[0]!r}, peak RSS +{rise:.0f} MiB")


# ----------------------------------------------------------------------------- 14: refusals in one line


def test_rejected_requests_get_the_reason_and_log_one_line_each(server, client, tmp_path):
    not_uploaded = {"path": str(ROOM)}  # without meta, gradio_client does not upload it: the server must not read it
    cases = [  # (upload, colormap, mode, size) -> a part of the reason
        ((gradio_client.handle_file(str(ROOM)), "nosuch", KEEP_ASPECT, 0), "colormap: Value: nosuch is not in the list"),
        ((gradio_client.handle_file(str(ROOM)), "inferno", "sideways", 0), "mode: Value: 'sideways'"),
        ((gradio_client.handle_file(str(ROOM)), "inferno", KEEP_ASPECT, -5), "size: Value -5 is less than minimum value 0"),
        ((gradio_client.handle_file(str(ROOM)), "inferno", KEEP_ASPECT, "big"), "size: 'big' is not a number"),
        ((not_uploaded, "inferno", KEEP_ASPECT, 0), "is not in the cache folder and cannot be accessed"),
        (({"meta": {"_type": "gradio.FileData"}}, "inferno", KEEP_ASPECT, 0), "upload: no file in the request"),
        ((5, "inferno", KEEP_ASPECT, 0), "A request this app cannot read"),
    ]
    for arguments, reason in cases:
        lines_before = len(log_lines(server))
        message = app_error(client, lambda client, *values: client.predict(*values, api_name="/depth"), *arguments)
        assert reason in message and "verbose error reporting" not in message
        new_lines = log_lines(server)[lines_before:]
        assert len(new_lines) == 1 and new_lines[0].startswith("refused: ") and reason in new_lines[0], new_lines
    assert "Traceback" not in server.log.read_text()


# ----------------------------------------------------------------------------- 13: the address


def serve_fails(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "muggled_swinv2", "serve", *arguments],
                          capture_output=True, text=True, timeout=300)


def test_port_out_of_range_refused_when_parsing():
    result = serve_fails("--port", "70000", "-w", "no-such-weights.pt")
    assert result.returncode == 2
    assert "--port: a TCP port is 1-65535, got 70000" in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_found_before_the_model_loads():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve_fails("--port", str(port), "-w", "no-such-weights.pt")  # the weights would fail next
    assert result.returncode == 2
    assert result.stderr == f"error: --port {port}: 127.0.0.1:{port} is already in use (another server?); choose another --port\n"


# ----------------------------------------------------------------------------- 12: Ctrl-C during a video


def test_ctrl_c_during_a_video_request_exits_cleanly_every_time(small_checkpoint, tmp_path):
    clip = write_video(tmp_path / "clip.avi", frames=40, fps=10, size_wh=(320, 240))
    for attempt in range(3):
        running = start_server(small_checkpoint, tmp_path / f"run{attempt}", ["--max-video-frames", "100"])
        try:
            client = gradio_client.Client(running.url, verbose=False, download_files=str(tmp_path / "downloads"))
            client.submit(gradio_client.handle_file(str(clip)), "inferno", KEEP_ASPECT, 0, False, api_name="/video_depth")
            deadline = time.monotonic() + 120
            while not list(running.tmpdir.glob("muggled-swinv2-serve-*/results/*/*.partial.mp4")):
                assert time.monotonic() < deadline, "the video request did not start"
                time.sleep(0.02)
            running.process.send_signal(signal.SIGINT)
            code = running.process.wait(120)
        finally:
            running.stop()
        log = running.log.read_text()
        assert code == 0 and "terminate called" not in log and "Traceback" not in log, f"exit {code}:\n{log}"
        assert not list(running.tmpdir.iterdir()), "the temporary folder was left behind"


# ----------------------------------------------------------------------------- the examples: package data


def test_the_examples_ship_as_package_data():
    from setuptools.config.setupcfg import read_configuration

    import muggled_swinv2.web

    package = Path(muggled_swinv2.web.__file__).parent
    patterns = read_configuration(ROOM.parents[3] / "setup.cfg")["options"]["package_data"]["muggled_swinv2.web"]
    examples = [str(path.relative_to(package)) for path in (package / "examples").iterdir()]
    assert ROOM.parent == package / "examples" and len(examples) >= 6
    assert all(any(fnmatch(example, pattern) for pattern in patterns) for example in examples), (examples, patterns)
