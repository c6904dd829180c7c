"""wait_for: poll a condition until it holds (the tests never sleep to wait)."""
import time


class WaitAbort(AssertionError):
    """Raised by a predicate to stop waiting at once (e.g. the daemon died)."""


def wait_for(predicate, timeout=30.0, what="the condition", interval=0.05, context=None, max_interval=0.5):
    """Call predicate() until it returns a true value, and return that value.

    An exception raised by predicate counts as "not yet" (a table that does not
    exist yet, a server not answering yet) and is reported if time runs out.
    The pause between calls starts at `interval` and grows to `max_interval`
    (pass the same value for a steady fast poll, e.g. to catch a moment).
    On timeout raise AssertionError naming `what`, with the last value or
    error and, when given, context() (e.g. the tail of a daemon's log).
    """
    deadline = time.monotonic() + timeout
    last_value, last_error = None, None
    while True:
        try:
            last_value, last_error = predicate(), None
            if last_value:
                return last_value
        except WaitAbort:
            raise
        except Exception as exc:  # noqa: BLE001 - reported below
            last_value, last_error = None, exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            msg = f"timed out after {timeout:g} s waiting for {what}"
            if last_error is not None:
                msg += f"\nlast error: {last_error!r}"
            elif last_value not in (None, False):
                msg += f"\nlast value: {last_value!r}"
            if context is not None:
                try:
                    msg += "\n" + str(context())
                except Exception as exc:  # noqa: BLE001
                    msg += f"\n(context unavailable: {exc!r})"
            raise AssertionError(msg)
        time.sleep(min(interval, remaining))
        interval = min(interval * 1.5, max_interval)
