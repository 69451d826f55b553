"""File offsets kept as runs (pinrepro.dockerfile.offsets) behave as the tuple of ints they stand for."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pinrepro.dockerfile import instructions, parse
from pinrepro.dockerfile.offsets import Offsets, OffsetsBuilder

RUNS = st.lists(st.tuples(st.integers(1, 5), st.integers(0, 3)), max_size=8)


def build(runs: list[tuple[int, int]]) -> tuple[Offsets, list[int]]:
    """Runs of (length, gap before it in the file), and the plain list they stand for."""
    builder = OffsetsBuilder()
    plain: list[int] = []
    file = 0
    for length, gap in runs:
        file += gap
        builder.add(length, file)
        plain.extend(range(file, file + length))
        file += length
    return builder.build(), plain


@settings(max_examples=200, deadline=None)
@given(RUNS, st.integers(-12, 40), st.integers(-12, 40), st.sampled_from([None, 1, 2, -1]))
def test_offsets_index_slice_and_iterate_like_a_tuple(runs: list[tuple[int, int]], a: int, b: int,
                                                      step: int | None) -> None:
    offsets, plain = build(runs)
    assert len(offsets) == len(plain)
    assert list(offsets) == plain
    for index in range(-len(plain), len(plain)):
        assert offsets[index] == plain[index]
    assert list(offsets[a:b:step]) == plain[a:b:step]
    assert list(offsets[a:][:b]) == plain[a:][:b]
    # Equal sequences are equal, and hash alike, however their runs were cut: here one run per character.
    cut = plain[a:b]
    per_character = Offsets(range(len(cut)), cut, len(cut))
    assert offsets[a:b] == per_character
    assert hash(offsets[a:b]) == hash(per_character)


def test_out_of_range() -> None:
    offsets, _ = build([(3, 2)])
    for index in (3, -4):
        try:
            offsets[index]
        except IndexError:
            continue
        raise AssertionError(f"offsets[{index}] did not raise")


def test_a_continued_line_is_a_few_runs() -> None:
    text = "FROM a\nRUN echo \\\n  b \\\n# note\n  c\n"
    run = instructions(text)[0][1]
    assert [text[offset] for offset in run.offsets] == list(run.text)
    script = parse(text).runs[0]
    assert [text[offset] for offset in script.offsets] == list(script.script)
    assert len(repr(run.offsets)) < 80  # three runs, not one int per character
