"""`Layered` live state: several sources read as one, the first that has an offering wins."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from router.live.state import Layered, LiveState, LiveValues, not_available

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


class ReadOnly(Mapping[str, LiveValues]):
    """A live source that is not a dict (probed id by id)."""

    def __init__(self, values: dict[str, LiveValues]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> LiveValues:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


STATUSES = st.sampled_from([LiveValues(), DOWN, NO_KEY,
                            LiveValues(status="available", latency_ms=3.0)])
LAYER = st.dictionaries(st.sampled_from("abcdefg"), STATUSES, max_size=7)


@settings(max_examples=300, deadline=None)
@given(st.lists(LAYER, max_size=4), st.lists(st.sampled_from("abcdefgh"), max_size=8),
       st.booleans())
def test_not_available_is_the_first_match_of_each_id(
        layers: list[dict[str, LiveValues]], ids: list[str], nest: bool) -> None:
    """Equal to looking each id up through `Layered` (first layer that has it wins), whether
    sources are dicts, other mappings, or `Layered` inside `Layered`."""
    sources: list[Mapping[str, LiveValues]] = [
        ReadOnly(layer) if i % 2 else layer for i, layer in enumerate(layers)]
    values = Layered(Layered(*sources[:2]), *sources[2:]) if nest else Layered(*sources)
    expected = {oid for oid in ids
                if (v := values.get(oid)) is not None and v.status != "available"}
    assert not_available(ids, values) == expected
    assert not_available(ids, {}) == set()
