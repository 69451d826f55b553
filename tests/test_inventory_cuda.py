"""CUDA facts from image env, NVIDIA_REQUIRE_CUDA parsing and evaluation, and the toolkit -> driver table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.version import Version as V

from pinrepro.inventory.cuda import (
    Condition,
    HostFacts,
    cuda_from_env,
    env_list_to_mapping,
    parse_require,
    parse_version,
    upstream_version,
    version_or_zero,
)
from pinrepro.inventory.driver_table import COMPAT_FLOORS, driver_floor, load_table, newest_cuda_for_driver

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inventory"


def _env(name: str) -> dict[str, str]:
    return env_list_to_mapping(json.loads((FIXTURES / name).read_text()))


# -- env ----------------------------------------------------------------------------------------------------
def test_cuda_12_4_devel_env() -> None:
    cuda = cuda_from_env(_env("cuda-12.4.0-devel-env.json"))
    assert (cuda.version, cuda.cudnn, cuda.nccl, cuda.cublas) == ("12.4.0", None, "2.20.5", "12.4.2.65")
    assert cuda.require is not None and not cuda.require.implied and not cuda.require.disabled
    assert len(cuda.require.clauses) == 31
    assert str(cuda.require.clauses[0]) == "cuda>=12.4"
    assert str(cuda.require.clauses[1]) == "brand=tesla,driver>=470,driver<471"
    assert cuda.require.cuda_floor == "12.4"
    assert cuda.require.compat_drivers == ("470", "525", "535")
    assert cuda.require.unparsed == ()


def test_cuda_13_2_arm64_env_has_no_nccl() -> None:
    cuda = cuda_from_env(_env("cuda-13.2.0-devel-arm64-env.json"))
    assert (cuda.version, cuda.cudnn, cuda.nccl, cuda.cublas) == ("13.2.0", None, None, "13.3.0.5")
    assert cuda.require is not None
    assert cuda.require.compat_drivers == ("535", "570", "580", "590")
    assert cuda.require.cuda_floor == "13.2"


@pytest.mark.parametrize(
    ("env", "cudnn"),
    [
        ({"NV_CUDNN_VERSION": "8.9.6.50"}, "8.9.6.50"),  # cudnn8: no Debian revision
        ({"NV_CUDNN_VERSION": "9.5.1.17-1"}, "9.5.1.17"),  # cudnn9: with one
        ({"CUDNN_VERSION": "7.6.5.32"}, "7.6.5.32"),  # cudnn7-era variable name
        ({"NV_CUDNN_VERSION": ""}, None),
        ({}, None),
    ],
)
def test_cudnn_formats(env: dict[str, str], cudnn: str | None) -> None:
    assert cuda_from_env(env).cudnn == cudnn


def test_nccl_falls_back_to_the_package_variable() -> None:
    assert cuda_from_env({"NV_LIBNCCL_PACKAGE_VERSION": "2.18.1-1"}).nccl == "2.18.1"
    assert cuda_from_env({"NCCL_VERSION": "2.8.4"}).nccl == "2.8.4"


def test_only_cuda_version_implies_a_requirement() -> None:
    cuda = cuda_from_env({"CUDA_VERSION": "11.8.0"})
    assert cuda.require is not None
    assert (cuda.require.text, cuda.require.implied) == ("cuda>=11.8", True)
    assert cuda.require.evaluate(HostFacts(driver=V("520.61.5"), cuda=V("11.8"))) is True
    assert cuda.require.evaluate(HostFacts(driver=V("470.82.1"), cuda=V("11.4"))) is False


def test_disable_require_skips_the_check() -> None:
    cuda = cuda_from_env(
        {"CUDA_VERSION": "12.4.0", "NVIDIA_REQUIRE_CUDA": "cuda>=12.4", "NVIDIA_DISABLE_REQUIRE": "true"}
    )
    assert cuda.require is not None and cuda.require.disabled
    assert cuda.require.evaluate(HostFacts(driver=V("390.0"), cuda=V("9.1"))) is True


def test_config_without_cuda() -> None:
    cuda = cuda_from_env({"PATH": "/usr/bin"})
    assert not cuda.present
    assert cuda.require is None


def test_env_list_drops_malformed_items() -> None:
    assert env_list_to_mapping(["A=1", "B", 3, "=x", "C=a=b", "A=2"]) == {"A": "2", "C": "a=b"}
    assert env_list_to_mapping(None) == {}


# -- NVIDIA_REQUIRE_CUDA ----------------------------------------------------------------------------------
def test_parse_require_or_of_ands() -> None:
    req = parse_require("cuda>=12.2 brand=tesla,driver>=470,driver<471 arch=x86_64")
    assert [[str(c) for c in clause.conditions] for clause in req.clauses] == [
        ["cuda>=12.2"], ["brand=tesla", "driver>=470", "driver<471"], ["arch=x86_64"],
    ]


def test_parse_require_keeps_garbage_visible() -> None:
    req = parse_require("cuda>=12.2 bogus driver>>5 color=red,driver>=1")
    assert [str(c) for c in req.clauses] == ["cuda>=12.2"]
    assert req.unparsed == ("bogus", "driver>>5", "color=red,driver>=1")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (HostFacts(driver=V("550.54.14"), cuda=V("12.4")), True),  # new enough driver
        (HostFacts(driver=V("560.28.3"), cuda=V("12.6")), True),
        (HostFacts(driver=V("535.104.5"), cuda=V("12.2"), brand="Tesla"), True),  # cuda-compat on a datacenter GPU
        (HostFacts(driver=V("535.104.5"), cuda=V("12.2")), None),  # same, brand unknown: cannot tell
        (HostFacts(driver=V("530.30.2"), cuda=V("12.1"), brand="tesla"), False),  # no clause for the 530 branch
        (HostFacts(driver=V("470.82.1"), cuda=V("11.4"), brand="geforce"), True),
        (HostFacts(driver=V("471.0"), cuda=V("11.4"), brand="tesla"), False),  # driver<471 is exclusive
        (HostFacts(driver=V("450.80.2"), cuda=V("11.0"), brand="tesla"), False),
        (HostFacts(driver=None, cuda=None), None),
    ],
)
def test_require_evaluation(host: HostFacts, expected: bool | None) -> None:
    cuda = cuda_from_env(_env("cuda-12.4.0-devel-env.json"))
    assert cuda.require is not None
    assert cuda.require.evaluate(host) is expected


@pytest.mark.parametrize(
    ("condition", "host", "expected"),
    [
        (Condition("driver", "<", "471"), HostFacts(driver=V("470.82.1"), cuda=None), True),
        (Condition("driver", "==", "470.82.01"), HostFacts(driver=V("470.82.1"), cuda=None), True),
        (Condition("driver", "!=", "470"), HostFacts(driver=V("470.0.0"), cuda=None), False),
        (Condition("cuda", ">", "12.2"), HostFacts(driver=None, cuda=V("12.2")), False),
        (Condition("cuda", "<=", "12.2"), HostFacts(driver=None, cuda=V("12.2")), True),
        (Condition("arch", "=", "x86_64"), HostFacts(driver=None, cuda=None, arch="x86_64"), True),
        (Condition("arch", "=", "x86_64"), HostFacts(driver=None, cuda=None), None),
        (Condition("brand", "!=", "tesla"), HostFacts(driver=None, cuda=None, brand="GeForce"), True),
        (Condition("driver", ">=", "abc"), HostFacts(driver=V("1"), cuda=None), None),
    ],
)
def test_condition_evaluation(condition: Condition, host: HostFacts, expected: bool | None) -> None:
    assert condition.evaluate(host) is expected


# -- versions -----------------------------------------------------------------------------------------------
def test_versions() -> None:
    assert parse_version("470.82.01") == V("470.82.1")
    assert parse_version("470.82.01").release == (470, 82, 1)  # type: ignore[union-attr]
    assert parse_version("12.4").release == (12, 4)  # type: ignore[union-attr]
    assert parse_version("12.4.0-1") is None
    assert parse_version("12.4rc1") is None  # dotted numbers only, not every PEP 440 version
    assert parse_version(None) is None
    # missing trailing parts count as 0
    assert V("470") == parse_version("470.0.0")
    assert V("470.82.1") < V("471")
    assert V("12.10") > V("12.9")
    assert version_or_zero("not a version") == V("0")


@pytest.mark.parametrize(
    ("text", "upstream"),
    [
        ("2.20.5-1+cuda12.4", "2.20.5"),
        ("9.5.1.17-1", "9.5.1.17"),
        ("8.9.6.50", "8.9.6.50"),
        ("1:2.3-4", "2.3"),
        ("3.10.12-1~22.04.4", "3.10.12"),
        ("", None),
        (None, None),
    ],
)
def test_upstream_version(text: str | None, upstream: str | None) -> None:
    assert upstream_version(text) == upstream


# -- driver table -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cuda", "toolkit", "compat", "release"),
    [
        ("12.4.0", "550.54.14", "525", "CUDA 12.4 GA"),
        ("12.4.1", "550.54.15", "525", "CUDA 12.4 Update 1"),
        ("12.4", "550.54.14", "525", "CUDA 12.4 GA"),
        ("13.0.2", "580.95.05", "580", "CUDA 13.0 Update 2"),
        ("13.1.0", "590.44.01", "580", "CUDA 13.1"),
        ("11.8.0", "520.61.05", "450", "CUDA 11.8 GA"),
        ("11.0.3", "450.51.06", "450", "CUDA 11.0.3 Update 1"),  # rows that spell the full version
        ("11.2.2", "460.32.03", "450", "CUDA 11.2.2 Update 2"),
        ("11.4.0", "470.42.01", "450", "CUDA 11.4.0 GA"),
        # Not in the table: unknown, never guessed - but the major family's compat floor is known.
        ("13.2.0", None, "580", None),
        ("12.3.2", None, "525", None),
        ("12.7.0", None, "525", None),
        ("14.0.0", None, None, None),
        ("10.2.89", None, None, None),
        ("12", None, None, None),
        ("garbage", None, None, None),
    ],
)
def test_driver_floor(cuda: str, toolkit: str | None, compat: str | None, release: str | None) -> None:
    floor = driver_floor(cuda)
    assert floor is not None
    assert (floor.toolkit, floor.compat, floor.release) == (toolkit, compat, release)


def test_driver_floor_of_nothing() -> None:
    assert driver_floor(None) is None


def test_table_is_complete() -> None:
    table = load_table()
    assert len(table) == 49  # every data row of the package data file
    assert COMPAT_FLOORS == {11: "450", 12: "525", 13: "580"}


@pytest.mark.parametrize(
    ("driver", "cuda"),
    [("550.54.14", "12.4"), ("535.104.05", "12.2"), ("470.82.01", "11.4"), ("600.1", "13.1"), ("440.33", None),
     ("junk", None)],
)
def test_newest_cuda_for_driver(driver: str, cuda: str | None) -> None:
    assert newest_cuda_for_driver(driver) == cuda
