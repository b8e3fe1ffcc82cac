"""Fixtures with throwaway SSH hosts (see tests/testbed.py)."""

from __future__ import annotations

import os

import pytest
import testbed as testbed_lib

# Each test's commands sign in on their own: a keeper per test home would outlive the test and
# hold connections to hosts the next test takes down. tests/integration/test_keeper.py turns the
# keeper on where it is the subject.
os.environ["REMOTEENV_NO_REUSE"] = "1"


def _in_ci() -> bool:
    return testbed_lib._in_ci()


def _make(n: int, **options) -> testbed_lib.Testbed:
    try:
        return testbed_lib.make_testbed(n, **options)
    except testbed_lib.TestbedUnavailable as error:
        message = f"no testbed on this machine: {error}"
        if _in_ci():
            # CI must have every prerequisite: a skip there would hide a broken setup.
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def testbed() -> testbed_lib.Testbed:
    """Three hosts shared by the whole run: h01 with 2 GPUs, h02 with none, h03 with 1.

    Tests that cut links or change host keys should make their own hosts.
    """
    bed = _make(3, gpus=[2, 0, 1])
    yield bed
    bed.close()


@pytest.fixture
def make_testbed():
    """make_testbed(n, **options) -> Testbed; everything made is removed after the test."""
    made: list[testbed_lib.Testbed] = []

    def factory(n: int, **options) -> testbed_lib.Testbed:
        bed = _make(n, **options)
        made.append(bed)
        return bed

    yield factory
    for bed in made:
        bed.close()
