"""The worker's circuit breaker, on a clock the test moves."""
from app.ai.breaker import Breaker


def test_opens_after_consecutive_failures_and_half_opens_after_the_pause():
    now = [0.0]
    b = Breaker(failures=3, reset_seconds=30, clock=lambda: now[0])
    assert b.allowance(4) == 4
    b.failure(), b.failure()
    assert b.state == "closed"
    b.success()
    b.failure(), b.failure()
    assert b.state == "closed", "a success resets the count"
    b.failure()
    assert b.state == "open" and b.allowance(4) == 0
    now[0] = 29.9
    assert b.allowance(4) == 0
    now[0] = 30
    assert b.state == "half_open" and b.allowance(4) == 1
    b.taken(1)
    assert b.allowance(4) == 0, "one trial job at a time"
    b.failure()
    assert b.state == "open", "a failed trial opens it again"
    now[0] = 61
    b.taken(b.allowance(4))
    b.success()
    assert b.state == "closed" and b.allowance(4) == 4
