"""`image --ray`: the image job as a Ray Data pipeline, on one local Ray instance (2 CPUs) shared by
the module; the command line reuses the test process's connection."""

import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import cv2
from muggled_swinv2.cli import main
from muggled_swinv2.io.colormaps import colorize
from muggled_swinv2.io.images import read_pfm
from pictures import photo
from missing import without_packages

OPTIONS = ("--raw", "npy,pfm,png16,tiff", "--side-by-side", "--batch-size", "3")


def run(capsys, *args):
    code = main(["image", *map(str, args)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A dozen pictures of several sizes (gray and 16-bit among them) and one corrupt file."""
    folder = tmp_path_factory.mktemp("pictures")
    for index in range(12):
        image = photo(40 + 4 * index, 64 + 2 * index, seed=index)
        if index == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if index == 5:
            image = image.astype(np.uint16) * 257
        cv2.imwrite(str(folder / f"p{index:02d}.png"), image)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    return folder


@pytest.fixture(scope="module")
def local_outputs(tmp_path_factory, folder, small_checkpoint):
    out = tmp_path_factory.mktemp("local")
    assert main(["image", str(folder), "-w", str(small_checkpoint), "--out", str(out), "-q", *OPTIONS]) == 1
    return out


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def read_output(path):
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".pfm":
        return read_pfm(path)
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float64)


def assert_same_outputs(ours, local):
    names = sorted(path.name for path in local.iterdir() if not path.name.startswith("."))  # not the ledger
    assert sorted(path.name for path in ours.iterdir() if not path.name.startswith(".")) == names and len(names) == 12 * 5
    for name in names:
        expected, got = read_output(local / name), read_output(ours / name)
        assert got.shape == expected.shape, name
        assert np.abs(got - expected).max() <= tolerance(name, expected), name


# One step of the inferno colour map: the largest difference between neighbouring entries.
INFERNO_STEP = np.abs(np.diff(colorize(np.linspace(0, 1, 256, dtype=np.float32)[None])[0].astype(int), axis=0)).max()


def tolerance(name, expected):
    """Float rounding (the actors may run PyTorch on another number of threads than the local
    command): 1e-5 of the range for the float files; in a picture, a value may cross one level."""
    if name.endswith((".npy", ".pfm", ".tiff")):
        return 1e-5 * (expected.max() - expected.min())
    return 1.0 if name.endswith("_16bit.png") else INFERNO_STEP


def test_same_outputs_skip_and_restart(tmp_path, capsys, ray_instance, folder, local_outputs, small_checkpoint):
    out = tmp_path / "out"
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", out, "--ray", *OPTIONS)
    assert code == 1
    assert "corrupt.png: not an image OpenCV can decode" in err and "processed 12, failed 1" in err
    assert_same_outputs(out, local_outputs)

    # A second run sends no work: everything is skipped (the corrupt file fails again).
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", out, "--ray", "-q", *OPTIONS)
    assert code == 1 and err.count("\n") == 1 and "corrupt.png" in err

    # A run stopped part way: some outputs missing (a whole image, or one file of an image), and
    # the temp files a killed writer leaves. Running the same command again finishes the job.
    for name in ("p00.png", "p00.npy", "p00.pfm", "p00_16bit.png", "p00.tiff", "p07.npy", "p11.png"):
        (out / name).unlink()
    (out / ".p07.abc123.partial").write_bytes(b"\x93NUMPY half")
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", out, "--ray", *OPTIONS)
    assert code == 1 and "processed 3, skipped 9" in err and "failed 1" in err
    (out / ".p07.abc123.partial").unlink()
    assert_same_outputs(out, local_outputs)


def test_all_done_needs_no_cluster(tmp_path, capsys, local_outputs, folder, small_checkpoint):
    """A picture whose outputs are all there (made from this very file: the ledger records each
    output's input) is skipped before any cluster is reached."""
    only = folder / "p01.png"
    code, err = run(capsys, only, "-w", small_checkpoint, "--out", local_outputs, "--ray", "ray://127.0.0.1:1", *OPTIONS)
    assert code == 0 and "processed 0, skipped 1" in err


def test_more_gpus_than_the_cluster_has_is_one_line_not_a_wait(tmp_path, capsys, ray_instance, folder, small_checkpoint):
    started = time.monotonic()
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", tmp_path / "out", "--ray", "--gpus-per-actor", "1")
    assert code == 2 and err.count("\n") == 1 and time.monotonic() - started < 60
    assert "error: --ray: no node of the Ray cluster has 1 CPU and 1 GPU for an actor" in err
    assert not list((tmp_path / "out").glob("*.png"))


def test_more_cpus_per_actor_than_any_node_has_is_one_line_not_a_wait(tmp_path, capsys, ray_instance, folder,
                                                                      small_checkpoint):
    started = time.monotonic()
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", tmp_path / "out", "--ray", "--cpus-per-actor", "64")
    assert code == 2 and err.count("\n") == 1 and time.monotonic() - started < 60
    assert "error: --ray: no node of the Ray cluster has 64 CPU for an actor (the most on one node: 2 CPU" in err, err
    assert not list((tmp_path / "out").glob("*.png"))


def test_unreachable_address_is_one_line(tmp_path, capsys, folder, small_checkpoint):
    pytest.importorskip("ray.data")
    for address in ("127.0.0.1:1", "ray://127.0.0.1:1"):
        code, err = run(capsys, folder, "-w", small_checkpoint, "--out", tmp_path / "out", "--ray", address)
        assert code == 2 and err.count("\n") == 1
        assert f"error: --ray {address}: cannot reach a Ray cluster there" in err


def test_ray_not_installed_is_one_line(tmp_path, capsys, monkeypatch, folder, small_checkpoint):
    without_packages(monkeypatch, "ray")
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", tmp_path / "out", "--ray")
    assert code == 2 and err.count("\n") == 1 and "pip install 'muggled_swinv2[ray]'" in err


def test_ray_options_need_ray_and_addresses_are_not_inputs(tmp_path, capsys, folder, small_checkpoint):
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", tmp_path / "out", "--actors", "2")
    assert code == 2 and "--actors only apply with --ray" in err
    code, err = run(capsys, folder / "p00.png", "--ray", folder / "p01.png", "-w", small_checkpoint, "--out", tmp_path / "o")
    assert code == 2 and "not a cluster address" in err
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", tmp_path / "o", "--ray", "--cpus-per-actor", "1.5")
    assert code == 2 and err.count("\n") == 1 and "Ray takes a fraction below 1 or a whole number" in err


def test_core_commands_never_import_ray(small_checkpoint):
    code = ("import sys, muggled_swinv2, muggled_swinv2.cli, muggled_swinv2.distributed; "
            "sys.exit('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


MANY = 12


@pytest.fixture(scope="module")
def many_pictures(tmp_path_factory):
    """MANY (12) small pictures; run at --size 768, each takes long enough for a run to be stopped part way."""
    folder = tmp_path_factory.mktemp("many")
    for index in range(MANY):
        cv2.imwrite(str(folder / f"m{index:02d}.png"), photo(120, 160, seed=100 + index))
    return folder


def wait_for_pictures(process, out, count, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and len(list(out.glob("*.png"))) >= count:
            return
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no {count} outputs before the run ended or {timeout_s} s passed: {process.communicate()[1]}")


def settled(out, quiet_s=3.0, timeout_s=60.0):
    """Wait until no file has appeared in or left `out` for quiet_s seconds."""
    deadline = time.monotonic() + timeout_s
    names, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = sorted(path.name for path in out.iterdir())
        if now != names:
            names, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.1)
    pytest.fail(f"{out} still changing after {timeout_s} s")


def assert_complete(out, names):
    """Each output is a whole file: the pictures decode, the arrays load, both at the photo's size."""
    for name in names:
        if name.endswith(".png"):
            assert cv2.imread(str(out / name)).shape == (120, 160, 3), name
        else:
            assert np.load(out / name).shape == (120, 160), name


@pytest.mark.parametrize("stop", ["SIGINT", "SIGKILL"])
def test_stopped_run_is_finished_by_running_again(tmp_path, capsys, stop, many_pictures, small_checkpoint, ray_instance):
    """The driver stopped part way (Ctrl-C: exit 130 and one line; or killed): every file it left
    is complete, and the same command run again writes the rest, as a local run would. The stopped
    run is a command of its own (with its own local Ray instance, as a user's); the run again is
    made in this process, on the module's Ray instance (starting another instance and PyTorch
    for it proves nothing more here)."""
    out = tmp_path / "out"
    options = ("-w", small_checkpoint, "--raw", "npy", "--size", "768", "-q")
    command = [sys.executable, "-m", "muggled_swinv2", "image", str(many_pictures), "--out", str(out),
               *map(str, options), "--ray"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    wait_for_pictures(process, out, 2)
    process.send_signal(getattr(signal, stop))
    _, err = process.communicate(timeout=120)
    if stop == "SIGINT":
        assert process.returncode == 130
        assert re.fullmatch(r"processed \d+, failed 0(, [\d.]+ s per image)? \(interrupted: run again to do the rest\)\n", err), err
    else:
        assert process.returncode == -signal.SIGKILL
    settled(out)  # a killed driver's actors may finish the batch they hold before Ray stops them
    written = sorted(path.name for path in out.iterdir() if not path.name.startswith("."))
    assert 2 <= sum(name.endswith(".png") for name in written) < MANY, "the run was not stopped part way"
    assert_complete(out, written)

    # A writer killed part way leaves its temp file (mkstemp's name) beside an output not yet written.
    missing = next(f"m{index:02d}" for index in range(MANY) if not (out / f"m{index:02d}.npy").exists())
    (out / f".{missing}.k1lled_x.partial").write_bytes(b"\x93NUMPY half")
    code, err = run(capsys, many_pictures, "--out", out, *options, "--ray")
    assert code == 0 and err == ""
    names = [f"m{index:02d}.{suffix}" for index in range(MANY) for suffix in ("png", "npy")]
    assert sorted(path.name for path in out.iterdir()) == sorted([".muggled_swinv2-outputs.jsonl", *names])
    assert_complete(out, names)

    # The same numbers as a local run, on a sample: one picture written before the stop, two after.
    before = next(name for name in written if name.endswith(".npy")).removesuffix(".npy")
    after = [f"m{index:02d}" for index in range(MANY) if f"m{index:02d}.npy" not in written][-2:]
    sample = tmp_path / "sample"
    sample.mkdir()
    for stem in (before, *after):
        shutil.copy(many_pictures / f"{stem}.png", sample)
    local = tmp_path / "local"
    code, _ = run(capsys, sample, "--out", local, *options)
    assert code == 0
    for stem in (before, *after):
        for name in (f"{stem}.png", f"{stem}.npy"):
            expected, got = read_output(local / name), read_output(out / name)
            assert np.abs(got - expected).max() <= tolerance(name, expected), name


LOCAL_SESSION = """
import sys
from ray._private import node as ray_node, worker
from muggled_swinv2.distributed import RayOptions
from muggled_swinv2.distributed.cluster import ray_session

running_at_shutdown = {}
kill = ray_node.Node._kill_process_impl

def recording_kill(self, kind, **options):
    running_at_shutdown[kind] = [info.process.poll() is None for info in self.all_processes.get(kind, [])]
    return kill(self, kind, **options)

ray_node.Node._kill_process_impl = recording_kill
with ray_session(RayOptions(num_cpus=1), quiet=False):
    pids = {kind: [info.process.pid for info in infos] for kind, infos in worker._global_node.all_processes.items()}
print(repr((pids, running_at_shutdown)))
"""


def test_a_local_instance_is_stopped_whole_and_without_a_word(tmp_path):
    """All the local instance's processes are gone after the session, with nothing printed; the
    autoscaler monitor was stopped before ray.shutdown reached it (which gives it a second's grace
    on SIGTERM that it never takes: 1 s of every run)."""
    pytest.importorskip("ray.data")
    done = subprocess.run([sys.executable, "-c", LOCAL_SESSION], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    pids, running_at_shutdown = ast.literal_eval(done.stdout)
    assert pids.get("monitor") and running_at_shutdown["monitor"] == [False], running_at_shutdown
    assert running_at_shutdown["raylet"] == [True]  # the rest is left to ray.shutdown
    deadline = time.monotonic() + 10
    alive = None
    while time.monotonic() < deadline:
        alive = [(kind, pid) for kind, found in pids.items() for pid in found if process_alive(pid)]
        if not alive:
            break
        time.sleep(0.1)
    assert not alive, alive


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def session_processes(session: int) -> list[str]:
    """'pid name' of the running processes of a session (a command started with start_new_session)."""
    found = []
    for entry in os.scandir("/proc"):
        try:
            with open(f"/proc/{entry.name}/stat") as file:
                name, fields = file.read().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        state, _, _, sid = fields.split()[:4]
        if int(sid) == session and state != "Z":
            found.append(f"{entry.name} {name.split('(', 1)[1]}")
    return found


def test_ctrl_c_leaves_nothing_running_and_counts_what_it_wrote(tmp_path, many_pictures, small_checkpoint):
    """Ctrl-C at a terminal (SIGINT to the whole foreground process group): exit 130 and one line,
    whose count is the pictures written; no process of the run is left (the raylet's agents
    outlived the command by a minute), and no file appears after it."""
    pytest.importorskip("ray.data")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "muggled_swinv2", "image", str(many_pictures), "--out", str(out),
               "-w", str(small_checkpoint), "--raw", "npy", "--size", "768", "-q", "--ray"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_pictures(process, out, 2)
    assert any("raylet" in line for line in session_processes(process.pid))  # the instance runs in the session
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert session_processes(process.pid) == []
    written = sorted(path.name for path in out.iterdir() if not path.name.startswith("."))
    time.sleep(1.0)
    assert sorted(path.name for path in out.iterdir() if not path.name.startswith(".")) == written
    match = re.fullmatch(r"processed (\d+), failed 0(, [\d.]+ s per image)? \(interrupted: run again to do the rest\)\n", err)
    assert match, err
    complete = [name for name in written if name.endswith(".png") and name.replace(".png", ".npy") in written]
    assert int(match.group(1)) == len(complete) and 2 <= len(complete) < MANY, (err, written)
    assert_complete(out, written)
