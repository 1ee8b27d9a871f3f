"""The spin-or-sleep choice follows what was measured, and keeps measuring the other way."""

from __future__ import annotations

import pytest

from remotemedia.ipc.channel import Spinner


def _run(spinner: Spinner, cost: dict, waits: int) -> list[bool]:
    modes = []
    for _ in range(waits):
        mode = spinner.choose()
        spinner.record(mode, cost[mode])
        modes.append(mode)
    return modes


WAITS = 10 * Spinner.PERIOD     # ten exploring runs


def test_it_spins_when_spinning_answers_sooner():
    modes = _run(Spinner(200e-6), {True: 30e-6, False: 90e-6}, WAITS)
    # all but the exploring waits (and the two that first measure sleeping)
    assert modes.count(True) >= WAITS - 10 * Spinner.EXPLORE - 2
    assert modes.count(False) >= 9 * Spinner.EXPLORE          # still measuring sleep


def test_it_sleeps_when_spinning_costs_more():
    modes = _run(Spinner(200e-6), {True: 150e-6, False: 90e-6}, WAITS)
    assert modes.count(False) >= WAITS - 11 * Spinner.EXPLORE
    assert modes.count(True) >= 9 * Spinner.EXPLORE


def test_one_slow_wait_does_not_condemn_a_mode():
    spinner = Spinner(200e-6)
    _run(spinner, {True: 30e-6, False: 90e-6}, 300)
    spinner.switched = False
    spinner.record(True, 5e-3)                    # one preempted wait
    explore = spinner.count % Spinner.PERIOD >= Spinner.PERIOD - Spinner.EXPLORE - 1
    assert spinner.choose() or explore


def test_the_first_wait_after_a_switch_is_not_recorded():
    spinner = Spinner(200e-6)
    assert spinner.choose() is True and spinner.switched
    spinner.record(True, 1.0)
    assert spinner.median[True] is None


def test_a_zero_budget_never_spins():
    assert _run(Spinner(0.0), {True: 1e-6, False: 1.0}, 200) == [False] * 200


def test_each_modes_figure_is_the_median_of_its_window_even_with_an_even_count():
    """The figure that picks spin or sleep is a median (the middle two averaged for an even
    window), not the upper of the two middles that `sorted()[n // 2]` gave."""
    spinner = Spinner(budget_s=0.001)
    spinner.switched = False
    for seconds in (1e-4, 3e-4):
        spinner.record(True, seconds)
    assert spinner.median[True] == pytest.approx(2e-4)
    spinner.record(True, 1e-3)
    assert spinner.median[True] == pytest.approx(3e-4)
