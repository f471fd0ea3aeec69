"""Faults at a chosen point of a real run, for the tests of what a failure leaves behind."""


def fail_on_call(monkeypatch, owner, name: str, call: int, error: BaseException) -> None:
    """Make `owner.name` (a module's function or a class's method) raise `error` on its `call`-th
    call, counted from 1; every other call runs the real one."""
    real = getattr(owner, name)
    calls = 0

    def failing(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == call:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
