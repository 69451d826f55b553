"""pinrepro.reqfile: the one reader of requirement files and locks, and every reader of lock text agreeing with it."""

from __future__ import annotations

from pathlib import Path

from pinrepro.cudawheels import cuda_wheels
from pinrepro.reqfile import lock_options, normalize_output, parse_lock, pins, pins_only, without_options
from pinrepro.summary import parse_requirements
from tests.support.layers import header

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requirements"

HASH = "sha256:" + "0" * 64
# A lock with editable lines next to pins: the editable ones name packages (one of them a CUDA wheel's name and
# version in a local path) but pin nothing.
EDITABLE_LOCK = (
    "-e ./local-pkg\n"
    "--editable=git+https://git.example/org/tool.git#egg=tool\n"
    "-e torch @ file:///src/torch-2.3.1+cu124\n"
    "--editable file:///src/nvidia-cublas-cu12\n"
    f"nvidia-cublas-cu12==12.4.5.8 ; platform_machine == \"x86_64\" \\\n    --hash={HASH}\n"
    "mypkg @ https://files.example/mypkg-1.0.tar.gz\n"
    "six==1.16.0  # via -r requirements-base.in\n"
)


def test_an_editable_line_is_an_install_not_a_pin_for_every_reader() -> None:
    """pip installs an editable line from its source at whatever version is there: every reader of a lock -
    the layer checks (pins), the refresh summary, the CUDA wheel table - sees it as no pin at all."""
    entries = parse_lock(EDITABLE_LOCK)
    assert [(e.line, e.name, e.version, e.editable) for e in entries] == [
        (1, None, None, True),  # a path: no name pip could know without building it
        (2, None, None, True),
        (3, "torch", None, True),
        (4, None, None, True),
        (5, "nvidia-cublas-cu12", "12.4.5.8", False),
        (7, "mypkg", None, False),
        (8, "six", "1.16.0", False),
    ]
    assert pins(EDITABLE_LOCK) == {"nvidia-cublas-cu12": ("12.4.5.8", 5), "six": ("1.16.0", 8)}
    assert parse_requirements(EDITABLE_LOCK) == {
        "nvidia-cublas-cu12": ("nvidia-cublas-cu12", "12.4.5.8"),
        "mypkg": ("mypkg", "@ https://files.example/mypkg-1.0.tar.gz"),
        "six": ("six", "1.16.0"),
    }
    assert [(w.line, w.what, w.cuda) for w in cuda_wheels(EDITABLE_LOCK)] == [
        (5, "nvidia-cublas-cu12==12.4.5.8", "12")]
    assert pins_only(EDITABLE_LOCK.encode()) == b"nvidia-cublas-cu12==12.4.5.8\nsix==1.16.0\n"


def test_entries_carry_hashes_markers_urls_and_the_written_name() -> None:
    text = (f"Typing_Extensions[extra]==4.12.2 ; python_version >= \"3.8\" \\\n    --hash={HASH} \\\n"
            f"    --hash={HASH}\n    # via torch\nmypkg @ https://files.example/mypkg-1.0.tar.gz#sha256=abc\n")
    first, second = parse_lock(text)
    assert (first.line, first.name, first.written_name, first.version, first.hashes, first.marker, first.url) == (
        1, "typing-extensions", "Typing_Extensions", "4.12.2", (HASH, HASH), 'python_version >= "3.8"', None)
    assert first.text == 'Typing_Extensions[extra]==4.12.2 ; python_version >= "3.8"'
    # a URL's fragment is part of it (a # after whitespace starts a comment, one inside a word does not)
    assert (second.line, second.name, second.version, second.url) == (
        5, "mypkg", None, "https://files.example/mypkg-1.0.tar.gz#sha256=abc")


def test_not_pins() -> None:
    text = "requests>=2\nnumpy==1.26.*\nbroken ==\n- stray\n-\n"
    assert [(e.line, e.name, e.version) for e in parse_lock(text)] == [
        (1, "requests", None), (2, "numpy", None), (3, None, None)]  # lines starting with - are never entries
    assert pins(text) == {}


def test_options_in_every_spelling_pip_accepts() -> None:
    text = ("-r base.in\n-rshort.in\n--requirement=long.in  # a comment\n-c \\\n    constraints.lock\n"
            "--constraint = spaced.lock\n-i https://idx.example/simple\n--extra-index-url=https://idx.example/cu124\n"
            "-fhttps://links.example/\n--no-index\n# -r commented.in\n")
    assert [(o.line, o.option, o.value) for o in lock_options(text)] == [
        (1, "-r", "base.in"), (2, "-r", "short.in"), (3, "--requirement", "long.in"), (4, "-c", "constraints.lock"),
        (6, "--constraint", "spaced.lock"), (7, "-i", "https://idx.example/simple"),
        (8, "--extra-index-url", "https://idx.example/cu124"), (9, "-f", "https://links.example/"),
        (10, "--no-index", ""),
    ]
    assert parse_lock(text) == []
    assert [(w.line, w.cuda, w.index) for w in cuda_wheels(text)] == [(8, "12.4", "https://idx.example/cu124")]


def test_without_options_drops_index_lines_only() -> None:
    lock = (b"--index-url https://idx.example/simple\n-ihttps://idx.example/b\n--find-links=/wheels\n"
            b"--only-binary :all:\nsix==1.16.0\n")
    assert without_options(lock) == b"--only-binary :all:\nsix==1.16.0\n"


def test_normalize_sorts_editable_lines_first_and_keeps_options_in_order() -> None:
    text = ("# uv\n#    pinrepro lock\n--only-binary :all:\nzeta==1.0\n    # via -r r.in\n"
            "--editable=./b-pkg\nalpha==2.0\n-e ./a-pkg\n--index-url https://idx.example/simple\n")
    body = normalize_output(text, "3.11", "linux/amd64", index_lines=["--index-url https://ours.example/simple"])
    assert body.split("#\n")[-1] == ("--index-url https://ours.example/simple\n--only-binary :all:\n"
                                     "-e ./a-pkg\n--editable=./b-pkg\nalpha==2.0\nzeta==1.0\n    # via -r r.in\n")


def test_normalize_merges_the_unsafe_section_and_replaces_the_header() -> None:
    pip_compile = (
        "#\n# This file is autogenerated by pip-compile with Python 3.11\n# by the following command:\n#\n"
        "#    pinrepro lock\n#\nwheel==0.43.0\n    # via -r r.in\n\n"
        "# The following packages are considered to be unsafe in a requirements file:\n"
        "setuptools==70.0.0\n    # via -r r.in\n"
    )
    uv = ("# This file was autogenerated by uv via the following command:\n#    pinrepro lock\n"
          "setuptools==70.0.0\n    # via -r r.in\nwheel==0.43.0\n    # via -r r.in\n")
    expected = header("3.11") + "setuptools==70.0.0\n    # via -r r.in\nwheel==0.43.0\n    # via -r r.in\n"
    assert normalize_output(pip_compile, "3.11", "linux/amd64") == expected
    assert normalize_output(uv, "3.11", "linux/amd64") == expected
    unknown = ("# some other tool\n#    wrote this\n"
               "setuptools==70.0.0\n    # via -r r.in\nwheel==0.43.0\n    # via -r r.in\n")
    assert normalize_output(unknown, "3.11", "linux/amd64") == expected


def test_parse_lock() -> None:
    text = (FIXTURES / "parse.lock").read_text()
    assert [(e.line, e.name, e.version, len(e.hashes), e.editable) for e in parse_lock(text)] == [
        (7, "numpy", "1.26.4", 2, False),
        (11, "torch", "2.3.0+cu121", 1, False),
        (14, "requests", None, 0, False),
        (15, "local-pkg", None, 0, True),
        (16, "six", "1.16.0", 0, False),
        (17, "pkg", None, 0, False),
    ]
