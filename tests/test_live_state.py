"""`Layered` live state: several sources read as one, the first that has an offering wins."""

from __future__ import annotations

from router.live.state import Layered, LiveState, LiveValues

DOWN = LiveValues(status="down", reason="circuit open")
NO_KEY = LiveValues(status="no_key", reason="set X_API_KEY")


def test_the_first_layer_that_has_an_offering_wins() -> None:
    values = Layered({"a": DOWN}, {"a": NO_KEY, "b": NO_KEY})
    live = LiveState(values, consulted=True)
    assert live.of("a") is DOWN and live.of("b") is NO_KEY
    assert live.of("c").status == "available"
    assert sorted(values) == ["a", "b"] and len(values) == 2


def test_truth_is_whether_any_layer_holds_an_offering_without_counting_them() -> None:
    class Uncountable(dict[str, LiveValues]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            raise AssertionError("truthiness must not walk the keys")

    big = Uncountable({f"o{i}": NO_KEY for i in range(5000)})
    assert Layered({}, big)
    assert not Layered({}, {})
    emptied: dict[str, LiveValues] = {"a": DOWN}
    values = Layered(emptied)
    emptied.clear()  # a live layer can empty after the fact
    assert not values
    assert Layered(Layered({"a": DOWN}))
