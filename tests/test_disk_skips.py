"""The full-disk and read-only-folder tests skip only where neither a tmpfs can be mounted nor a
folder's mode stops this user; such a skip fails the run (tests/strict_skips.py), as a missing
package's does: the two conditions are complementary, and a green run must have run both."""

import pytest

from test_promises import run_pytest


@pytest.mark.parametrize("reason", [
    "cannot mount a tmpfs here (not root?)",  # test_data_checks.py's tiny_disk
    "cannot make a read-only folder here (a user who can write anywhere, and cannot mount)",  # test_export_reliability.py
])
def test_a_run_without_the_full_or_read_only_disk_fails(tmp_path, reason):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_sample.py").write_text(f"import pytest\n\n\ndef test_one():\n    pytest.skip({reason!r})\n")
    failed = run_pytest(tmp_path, allow=False)
    assert failed.returncode == 1 and "the run FAILS" in failed.stdout and reason in failed.stdout, failed.stdout
    assert run_pytest(tmp_path, allow=True).returncode == 0
