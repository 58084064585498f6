"""Kleene's three-valued logic, checked against its order-theoretic definition: with F < U < T,
`all` is the minimum, `any` the maximum, and `not` reverses the order."""

from __future__ import annotations

import itertools

from router.policy.truth import NOT, Truth, all_of, any_of, junction, when

FINAL = (Truth.F, Truth.U, Truth.T)
RANK = {t: i for i, t in enumerate(FINAL)}


def test_negation_reverses_the_order_and_keeps_residual() -> None:
    assert [~t for t in FINAL] == [Truth.T, Truth.U, Truth.F]
    assert ~Truth.R is Truth.R
    assert all(NOT[t] is ~t for t in Truth)


def test_junctions_are_min_and_max() -> None:
    for n in range(1, 4):
        for values in itertools.product(FINAL, repeat=n):
            assert all_of(values) is min(values, key=RANK.__getitem__)
            assert any_of(values) is max(values, key=RANK.__getitem__)
            assert junction(iter(values), conjunction=True) is all_of(values)


def test_when_is_material_implication() -> None:
    for p, c in itertools.product(FINAL, repeat=2):
        assert when(p, c) is max(~p, c, key=RANK.__getitem__)
    assert when(Truth.F, Truth.F) is Truth.T


def test_truth_is_its_letter() -> None:
    """Verdicts cross the engine and the wire as their letters."""
    assert [str(t) for t in Truth] == ["T", "F", "U", "R"]
    assert Truth.of(True) is Truth.T and Truth.of(False) is Truth.F
