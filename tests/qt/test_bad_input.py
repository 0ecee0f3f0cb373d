"""Bad arguments to the manager's methods: the error names the argument, nothing is registered."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda m: m.stop_task(99),
            KeyError,
            "task 99 is unknown: stop_task takes a uid of this manager",
        ),
        (lambda m: m.set_priority(99, 1), KeyError, "task 99 is unknown: set_priority takes a uid"),
        (lambda m: m.info(99), KeyError, "task 99 is unknown: info takes a uid"),
        (lambda m: m.retry(99), KeyError, "task 99 is unknown: retry takes a uid"),
        (
            lambda m: m.options(retries=-1).submit(print),
            ValueError,
            "retries must be a non-negative integer, got -1",
        ),
        (
            lambda m: m.options(timeout=0).submit(print),
            ValueError,
            "timeout must be a positive number of seconds, got 0",
        ),
        (lambda m: m.options(key=[1]).submit(print), TypeError, r"key must be hashable, got \[1\]"),
        (
            lambda m: m.options(resources={"gpu": 1}).submit(print),
            ValueError,
            r"resource 'gpu' is unknown: set_resource_limit\('gpu', n\) first",
        ),
        (
            lambda m: m.options(retry_on=3).submit(print),
            TypeError,
            "retry_on must be exception types, got 3",
        ),
        (
            lambda m: m.options(on_upstream_failure="explode").submit(print),
            ValueError,
            "on_upstream_failure must be 'fail' or 'cancel', got 'explode'",
        ),
        (
            lambda m: m.options(owner="me").submit(print),
            TypeError,
            "owner must be a QObject, got 'me'",
        ),
        (lambda m: m.add_task(print, colour="red"), TypeError, "unknown task option 'colour'"),
        (
            lambda m: m.set_resource_limit("disk", 0),
            ValueError,
            "resource limit must be a positive integer, got 0",
        ),
        # NaN never equals itself: as a group or a key it could never be found
        # again (each task its own group, stop_task_group(nan) a silent no-op)
        (
            lambda m: m.options(group=float("nan")).submit(print),
            ValueError,
            r"^group must equal itself to be found again, got nan \(NaN never does\)$",
        ),
        (
            lambda m: m.options(key=float("nan")).submit(print),
            ValueError,
            r"^key must equal itself to be found again, got nan",
        ),
        (
            lambda m: m.add_task(print, group=float("nan")),
            ValueError,
            r"^group must equal itself to be found again, got nan",
        ),
        (
            lambda m: m.stop_task_group(float("nan")),
            ValueError,
            r"^group must equal itself to be found again, got nan",
        ),
        (
            lambda m: m.set_group_name(float("nan"), "odd"),
            ValueError,
            r"^group must equal itself to be found again, got nan",
        ),
        (
            lambda m: setattr(m, "cache_size", -1),
            ValueError,
            "cache_size must be a non-negative integer, got -1",
        ),
    ],
)
def test_bad_input_names_the_argument_and_registers_nothing(make_manager, call, error, message):
    m = make_manager()
    with pytest.raises(error, match=message):
        call(m)
    assert m.add_task(print) == 1
    assert [i.uid for i in m.tasks()] == [1]
