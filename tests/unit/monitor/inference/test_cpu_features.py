"""Which CPUs run the int8 models as measured, and which model ``auto`` then picks."""

from __future__ import annotations

import pytest

from monitor.inference import cpu_features
from monitor.inference.cpu_features import cpu_flags, int8_exact
from monitor.inference.detectors import block_corruption
from monitor.inference.detectors.block_corruption import model_name_for

ZEN3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma\n"
ICELAKE = "processor\t: 0\nflags\t\t: sse2 avx2 avx512f avx512bw avx512_vnni\n\nprocessor\t: 1\n"


def test_the_flags_are_read_from_cpuinfo() -> None:
    assert cpu_flags(ZEN3) == {"fpu", "sse2", "avx", "avx2", "fma"}
    assert "avx512_vnni" in cpu_flags(ICELAKE)
    assert cpu_flags("processor\t: 0\n") == set()


@pytest.mark.parametrize(
    ("machine", "flags", "exact"),
    [
        ("x86_64", cpu_flags(ZEN3), False),  # AVX2 only: vpmaddubsw saturates
        ("x86_64", cpu_flags(ICELAKE), True),
        ("AMD64", {"avx2", "avx_vnni"}, True),  # Alder Lake's VEX dot products
        ("x86_64", None, False),  # unreadable: taken as lacking them
        ("aarch64", None, True),  # Arm widens before adding
    ],
)
def test_int8_is_exact_only_with_dot_products_on_x86(
    machine: str, flags: set[str] | None, exact: bool
) -> None:
    assert int8_exact(machine, flags) is exact


@pytest.mark.parametrize(
    ("exact", "name"), [(True, "block_corruption_light"), (False, "block_corruption_light_fp32")]
)
def test_auto_runs_the_float_model_where_int8_saturates(
    exact: bool, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(block_corruption, "int8_exact_here", lambda: exact)
    assert model_name_for("auto") == name
    assert model_name_for("light") == "block_corruption_light"  # a setting is kept as given
    assert model_name_for("light_fp32") == "block_corruption_light_fp32"


def test_this_machine_is_judged_once() -> None:
    cpu_features.int8_exact_here.cache_clear()
    first = cpu_features.int8_exact_here()
    assert cpu_features.int8_exact_here() is first
    assert cpu_features.int8_exact_here.cache_info().hits >= 1
