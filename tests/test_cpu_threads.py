"""cpu_threads: the CPUs this process may run on, shared out between workers."""

import os

from muggled_swinv2.devices import cpu_threads


def test_threads_share_the_affinity_between_workers(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert [cpu_threads(), cpu_threads(1), cpu_threads(3), cpu_threads(8), cpu_threads(20), cpu_threads(0)] == [8, 8, 2, 1, 1, 8]


def test_threads_without_affinity_use_the_cpu_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert cpu_threads(2) == 3
