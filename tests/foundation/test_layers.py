"""The import contract holds: no new upward import or cycle, and the checker itself can see one."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests import layers

BASELINE = Path(__file__).resolve().parent.parent / "layers_baseline.txt"


def _known() -> set[str]:
    return {line.strip() for line in BASELINE.read_text(encoding="utf-8").splitlines() if line.strip()}


def test_no_import_breaks_the_layers_beyond_the_recorded_baseline():
    new = sorted(set(layers.violations()) - _known())
    assert not new, "imports that break the layers (see tests/layers.py):\n" + "\n".join(new)


def test_the_baseline_only_shrinks_a_fixed_violation_is_struck_from_it():
    fixed = sorted(_known() - set(layers.violations()))
    assert not fixed, "these are fixed; remove them from tests/layers_baseline.txt:\n" + "\n".join(fixed)


def _edges_of_source(tmp_path: Path, monkeypatch, source: str) -> list[layers.Edge]:
    pkg = tmp_path / "gmpki" / "gm"
    pkg.mkdir(parents=True)
    path = pkg / "probe.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.setattr(layers, "ROOT", tmp_path)
    return list(layers.edges_of(path))


def test_an_import_hidden_inside_a_function_is_still_an_upward_import(tmp_path, monkeypatch):
    edges = _edges_of_source(tmp_path, monkeypatch, """
        def sign():
            from kernel.settings import Settings
            return Settings
    """)
    up = layers.upward(edges)
    assert [str(e) for e in up] == ["gmpki.gm.probe -> kernel.settings"]
    assert up[0].in_function


def test_an_import_module_string_counts_as_an_import(tmp_path, monkeypatch):
    edges = _edges_of_source(tmp_path, monkeypatch, """
        import importlib
        def load(name):
            return importlib.import_module(f"sealflow_airflow.{name}")
    """)
    assert [str(e) for e in layers.upward(edges)] == ["gmpki.gm.probe -> sealflow_airflow"]


def test_a_cycle_between_two_packages_is_found():
    edges = [layers.Edge("stamping.ofd.verify", "stamping.verify.report", 1, False),
             layers.Edge("stamping.verify.dispatch", "stamping.ofd.verify", 1, True)]
    assert layers.unit_cycles(edges) == [["stamping.ofd", "stamping.verify"]]


def test_a_dag_file_importing_a_domain_module_bypasses_the_glue():
    edges = [layers.Edge("dags.seal_maintenance", "stamping.registry.maintenance", 3, True),
             layers.Edge("dags.stamp_batch", "sealflow_airflow.pipeline", 2, False)]
    assert [str(e) for e in layers.glue_bypassed(edges)] == ["dags.seal_maintenance -> stamping.registry.maintenance"]


def test_the_domain_importing_the_platform_simulator_is_refused():
    edges = [layers.Edge("filing.identity", "filing.simulator", 9, True),
             layers.Edge("filing.simulator", "filing.protocol", 1, False)]
    assert [str(e) for e in layers.programs_imported(edges)] == ["filing.identity -> filing.simulator"]


def test_a_private_name_taken_from_another_module_is_found(tmp_path, monkeypatch):
    (tmp_path / "stamping" / "verdict").mkdir(parents=True)
    (tmp_path / "stamping" / "verdict" / "checks.py").write_text("def _chain(): ...\n", encoding="utf-8")
    edges = _edges_of_source(tmp_path, monkeypatch, """
        from stamping.verdict.checks import _chain
    """)
    assert layers.private_names(edges) == ["gmpki.gm.probe -> stamping.verdict.checks._chain"]
