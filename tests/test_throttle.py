"""Login throttling per account and per address, with a clock the test moves (the real SQLite file)."""

from webmap.throttle import LoginThrottle


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def make(tmp_path):
    clock = Clock()
    return LoginThrottle(str(tmp_path / "accounts.sqlite"), account_limit=3, address_limit=5, window_s=600,
                         clock=clock), clock


def test_an_account_is_locked_after_repeated_failures_then_released(tmp_path):
    throttle, clock = make(tmp_path)
    for _ in range(3):
        assert throttle.retry_after("police1", "10.0.0.1") == 0
        throttle.failed("police1", "10.0.0.1")
        clock.now += 10
    wait = throttle.retry_after("Police1", "10.0.0.9")  # same account, any case, any address
    assert 570 <= wait <= 581
    clock.now += wait
    assert throttle.retry_after("police1", "10.0.0.1") == 0


def test_an_address_is_limited_across_accounts(tmp_path):
    throttle, _ = make(tmp_path)
    for i in range(5):
        throttle.failed(f"user{i}", "10.0.0.2")
    assert throttle.retry_after("someone_else", "10.0.0.2") > 0
    assert throttle.retry_after("someone_else", "10.0.0.3") == 0


def test_success_clears_the_account_but_not_the_address(tmp_path):
    throttle, _ = make(tmp_path)
    for _ in range(2):
        throttle.failed("police1", "10.0.0.4")
    throttle.succeeded("police1", "10.0.0.4")
    throttle.failed("police1", "10.0.0.4")
    assert throttle.retry_after("police1", "10.0.0.4") == 0  # 1 failure since the success, limit 3


def test_failures_survive_a_restart(tmp_path):
    throttle, clock = make(tmp_path)
    for _ in range(3):
        throttle.failed("police1", "10.0.0.5")
    again = LoginThrottle(throttle.path, account_limit=3, address_limit=5, window_s=600, clock=clock)
    assert again.retry_after("police1", "10.0.0.5") > 0
