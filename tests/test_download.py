"""`muggled-swinv2 download` against a local HTTP server on 127.0.0.1 (no real network here)."""

import dataclasses
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from muggled_swinv2.cli import main
from muggled_swinv2.model.config import RELEASES

TINY_FILE = RELEASES["tiny"].file_name  # what `download tiny` fetches


def small_checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # torch.save files are zip archives
        archive.writestr("archive/data.pkl", b"x" * 50_000)
    return buffer.getvalue()


class Server:
    """Serves `files` with HTTP range support; records the Range header of every request."""

    def __init__(self, files: dict[str, bytes], cut_after: int | None = None):
        self.files, self.ranges, self.cut_after = files, [], cut_after
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = server.files.get(self.path.rsplit("/", 1)[-1])
                if body is None:
                    self.send_error(404)
                    return
                requested = self.headers.get("Range")
                server.ranges.append(requested)
                start = int(requested.split("=")[1].rstrip("-")) if requested else 0
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206 if requested else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                sent = body[start:] if server.cut_after is None else body[start : start + server.cut_after]
                self.wfile.write(sent)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v3_1/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def payload():
    return small_checkpoint_bytes()


@pytest.fixture
def server(payload):
    running = Server({TINY_FILE: payload})
    yield running
    running.close()


def download(capsys, folder, url):
    code = main(["download", "tiny", "--dir", str(folder), "--base-url", url, "--quiet"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_downloads_complete_file(tmp_path, capsys, server, payload):
    code, out, _ = download(capsys, tmp_path, server.url)
    assert code == 0 and "ready" in out
    assert (tmp_path / TINY_FILE).read_bytes() == payload
    assert not list(tmp_path.glob("*.partial"))


def test_resumes_a_partial_download(tmp_path, capsys, server, payload):
    (tmp_path / (TINY_FILE + ".partial")).write_bytes(payload[:20_000])
    code, _, _ = download(capsys, tmp_path, server.url)
    assert code == 0 and server.ranges == ["bytes=20000-"]
    assert (tmp_path / TINY_FILE).read_bytes() == payload


def test_broken_connection_keeps_partial_for_resume(tmp_path, capsys, payload):
    cutting = Server({TINY_FILE: payload}, cut_after=30_000)
    try:
        code, _, err = download(capsys, tmp_path, cutting.url)
        assert code == 2 and "run again to resume" in err
        assert not (tmp_path / TINY_FILE).exists()
        assert (tmp_path / (TINY_FILE + ".partial")).stat().st_size == 30_000
        cutting.cut_after = None
        code, _, _ = download(capsys, tmp_path, cutting.url)
        assert code == 0 and (tmp_path / TINY_FILE).read_bytes() == payload
    finally:
        cutting.close()


def test_already_downloaded_is_kept(tmp_path, capsys, server, payload):
    (tmp_path / TINY_FILE).write_bytes(payload)
    code, out, _ = download(capsys, tmp_path, server.url)
    assert code == 0 and server.ranges == [] and (tmp_path / TINY_FILE).read_bytes() == payload
    assert "ready" in out and "archive checked (CRC-32 of each entry), no published size or SHA-256" in out


def test_no_network_says_what_to_do(tmp_path, capsys):
    code, _, err = download(capsys, tmp_path, "http://127.0.0.1:9/v3_1/")  # nothing listens on port 9
    assert code == 2 and "cannot download" in err and "copy it to" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no checkpoint, and no .partial either


def test_not_a_checkpoint_is_discarded(tmp_path, capsys):
    html = Server({TINY_FILE: b"<html>rate limited</html>"})
    try:
        code, _, err = download(capsys, tmp_path, html.url)
    finally:
        html.close()
    assert code == 2 and "did not return a PyTorch checkpoint" in err
    assert not list(tmp_path.iterdir())


def test_http_error(tmp_path, capsys, server):
    server.files.clear()
    code, _, err = download(capsys, tmp_path, server.url)
    assert code == 2 and "HTTP 404" in err


def test_bad_base_url_is_one_line(tmp_path, capsys):
    code, _, err = download(capsys, tmp_path, "not-a-url")
    assert code == 2 and "--base-url not-a-url: not an http:// or https:// address" in err and err.count("\n") == 1


def test_dir_that_is_a_file(tmp_path, capsys, server):
    (tmp_path / "file").write_text("x")
    code, _, err = download(capsys, tmp_path / "file", server.url)
    assert code == 2 and "file: cannot create the folder" in err and err.count("\n") == 1
    assert (tmp_path / "file").read_text() == "x"


def test_partial_file_that_cannot_be_written(tmp_path, capsys, server):
    (tmp_path / (TINY_FILE + ".partial")).mkdir()  # where the download goes: not writable as a file
    code, _, err = download(capsys, tmp_path, server.url)
    assert code == 2 and err.count("\n") == 1
    assert ".partial: cannot write the download" in err and "no network" not in err



# ----------------------------------------------------------------------------- where weights are kept and found


@pytest.fixture
def user(tmp_path, monkeypatch):
    """A user with a home folder of their own, working in a folder of their own; no variables set."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CACHE_HOME", "MUGGLED_SWINV2_CACHE", "MUGGLED_SWINV2_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(work)
    return home


def test_download_goes_to_the_user_cache_and_is_found_from_any_folder(user, tmp_path, capsys, monkeypatch, server,
                                                                       payload):
    from muggled_swinv2.formats.weights import resolve_weights

    code = main(["download", "tiny", "--base-url", server.url, "--quiet"])
    assert code == 0, capsys.readouterr().err
    saved = user / ".cache" / "muggled_swinv2" / TINY_FILE
    assert saved.read_bytes() == payload and str(saved) in capsys.readouterr().out
    assert not (tmp_path / "work" / "weights").exists()  # not into the folder it was run in
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resolve_weights(None) == saved


def test_download_follows_xdg_cache_home(user, tmp_path, capsys, monkeypatch, server, payload):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert main(["download", "tiny", "--base-url", server.url, "--quiet"]) == 0
    assert (tmp_path / "xdg" / "muggled_swinv2" / TINY_FILE).read_bytes() == payload
    assert not (user / ".cache").exists()


def test_checkpoints_are_looked_for_in_order(user, tmp_path, monkeypatch):
    """--weights, $MUGGLED_SWINV2_WEIGHTS, ./weights, the cache folder, then the demo model."""
    from muggled_swinv2.formats.weights import resolve_weights, is_demo

    places = {name: tmp_path / name for name in ("variable", "work/weights", "home/.cache/muggled_swinv2")}
    for folder in places.values():
        folder.mkdir(parents=True)
        (folder / "model.pt").write_bytes(b"x")
    monkeypatch.setenv("MUGGLED_SWINV2_WEIGHTS", str(places["variable"]))
    assert resolve_weights("given.pt") == Path("given.pt")
    for name, folder in places.items():
        assert resolve_weights(None).resolve() == (folder / "model.pt").resolve(), name
        (folder / "model.pt").unlink()
    assert is_demo(resolve_weights(None))


def test_no_checkpoint_names_every_place_looked(user, tmp_path, capsys, monkeypatch):
    import muggled_swinv2.formats.weights as weights_module

    monkeypatch.setenv("MUGGLED_SWINV2_WEIGHTS", str(tmp_path / "variable"))
    (tmp_path / "variable").mkdir()
    places = [str(tmp_path / "variable"), str(tmp_path / "work" / "weights"), str(user / ".cache" / "muggled_swinv2")]
    code = main(["info"])  # with the demo model: the note says where no checkpoint was found
    err = capsys.readouterr().err
    assert code == 0 and "embedded demo model" in err and all(place in err for place in places), err
    monkeypatch.setattr(weights_module, "DEMO_WEIGHTS", tmp_path / "no-demo.safetensors")
    code = main(["info"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no checkpoint in" in err and all(place in err for place in places), err


def test_the_checkout_is_not_searched(user, tmp_path):
    """The package finds no checkpoint by its own install path (the repository's weights/ folder)."""
    import muggled_swinv2
    from muggled_swinv2.formats.weights import search_folders

    checkout = Path(muggled_swinv2.__file__).resolve().parents[1]
    assert [name for name, _ in search_folders()] == ["./weights", "the cache folder"]
    assert not any(folder.resolve() == checkout / "weights" for _, folder in search_folders())


def test_download_help_names_the_cache_folder(capsys):
    with pytest.raises(SystemExit):
        main(["download", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "~/.cache/muggled_swinv2" in text and "$XDG_CACHE_HOME/muggled_swinv2" in text and "weights/" not in text


# ----------------------------------------------------------------------------- issue 26, N7: each file checked before "ready"


def published(monkeypatch, payload: bytes, size: bool = True, sha256: bool = True):
    """A registry entry for tiny that publishes `payload`'s size and SHA-256 (as model.config.RELEASES would)."""
    from muggled_swinv2.model.config import RELEASES

    monkeypatch.setitem(RELEASES, "tiny", dataclasses.replace(
        RELEASES["tiny"], file_bytes=len(payload) if size else None,
        sha256=hashlib.sha256(payload).hexdigest() if sha256 else None))


@pytest.mark.parametrize("cached", ["truncated", "garbage", "folder", "damaged"])
def test_a_cached_file_that_is_not_the_release_is_reported_not_ready(tmp_path, capsys, server, payload, cached):
    """N7: `download` printed "ready" for a truncated cached file, garbage or a directory. It is kept
    (the user's to delete), the server is not asked, and the line says what to do."""
    target = tmp_path / TINY_FILE
    if cached == "folder":
        target.mkdir()
    else:
        data = {"truncated": payload[:-100], "garbage": b"<html>rate limited</html>",
                "damaged": payload.replace(b"x" * 1000, b"y" * 1000, 1)}[cached]
        target.write_bytes(data)
    before = None if cached == "folder" else target.read_bytes()
    code, out, err = download(capsys, tmp_path, server.url)
    assert code == 2 and out == "" and err.count("\n") == 1 and "ready" not in err, err
    assert err.startswith(f"error: {target}: ") and "delete it and run `muggled-swinv2 download tiny` again" in err
    assert server.ranges == []
    assert target.is_dir() if cached == "folder" else target.read_bytes() == before


def test_size_and_sha256_of_the_registry_are_checked(tmp_path, capsys, server, payload, monkeypatch):
    published(monkeypatch, payload)
    code, out, _ = download(capsys, tmp_path, server.url)
    assert code == 0 and out.endswith("; size and SHA-256 checked)\n"), out
    target = tmp_path / TINY_FILE
    # another sound archive of the same size: only the hash tells it apart
    other = payload.replace(b"x" * 50_000, b"z" * 50_000)
    assert len(other) == len(payload) and other != payload
    target.write_bytes(other)
    code, _, err = download(capsys, tmp_path, server.url)
    assert code == 2 and "its SHA-256 is not that of the published dpt_swin2_tiny_256.pt" in err
    target.write_bytes(payload + b"\0")
    code, _, err = download(capsys, tmp_path, server.url)
    assert code == 2 and f"{len(payload) + 1} bytes, not the {len(payload)} of the published" in err
    published(monkeypatch, payload, sha256=False)
    target.write_bytes(payload)
    code, out, _ = download(capsys, tmp_path, server.url)
    assert code == 0 and "size and archive checked, no published SHA-256" in out


@pytest.mark.parametrize("registry", ["hash", "no hash"])
def test_a_garbage_partial_is_never_published(tmp_path, capsys, server, payload, monkeypatch, registry):
    """N7: a .partial whose start is garbage, resumed to the full size, was renamed into place."""
    if registry == "hash":
        published(monkeypatch, payload)
    partial = tmp_path / (TINY_FILE + ".partial")
    partial.write_bytes(b"\xff" * 20_000)
    code, out, err = download(capsys, tmp_path, server.url)
    assert server.ranges == ["bytes=20000-"]
    assert code == 2 and out == "" and err.count("\n") == 1 and "did not give the published file" in err, err
    assert "deleted the download, run again" in err
    assert list(tmp_path.iterdir()) == []  # neither the checkpoint nor the damaged .partial
    code, out, _ = download(capsys, tmp_path, server.url)  # the next run starts over, and succeeds
    assert code == 0 and (tmp_path / TINY_FILE).read_bytes() == payload


# ----------------------------------------------------------------------------- issue 26 gaps: where checkpoints are found


def test_a_weights_variable_naming_no_folder_is_refused(user, tmp_path, capsys, monkeypatch):
    """Gap: $MUGGLED_SWINV2_WEIGHTS naming no folder fell back to the demo model (silently with -q)."""
    import cv2
    import numpy as np

    monkeypatch.setenv("MUGGLED_SWINV2_WEIGHTS", str(tmp_path / "typo"))
    cv2.imwrite(str(tmp_path / "work" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    for command in (["info"], ["image", "a.png", "--out", "out", "-q"]):
        code = main(command)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert f"$MUGGLED_SWINV2_WEIGHTS={tmp_path / 'typo'}: no such folder" in err and "demo" not in err


def test_macos_dot_underscore_files_are_not_checkpoints(user, tmp_path):
    """Gap: the AppleDouble `._model.pt` macOS leaves beside a copied file made "several checkpoints"."""
    from muggled_swinv2.formats.weights import resolve_weights

    folder = tmp_path / "work" / "weights"
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"x")
    (folder / "._model.pt").write_bytes(b"\0\x05\x16\x07")
    assert resolve_weights(None) == Path("weights") / "model.pt"
