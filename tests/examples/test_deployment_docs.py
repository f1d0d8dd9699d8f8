"""docs/deployment.md and the examples index: the paste-ready sidecar snippet is the tested example's, and every
example folder is documented and listed."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.examples.support import EXAMPLES, REPO

DOCS = REPO / "docs" / "deployment.md"
SNIPPET_MARKER = "<!-- sidecar-snippet:"


def _snippet() -> dict[str, Any]:
    text = DOCS.read_text(encoding="utf-8")
    after_marker = text[text.index(SNIPPET_MARKER) :]
    match = re.search(r"```yaml\n(.*?)```", after_marker, flags=re.DOTALL)
    assert match is not None
    loaded = yaml.safe_load(match.group(1))
    assert isinstance(loaded, dict)
    return loaded


def _sidecar_pod() -> dict[str, Any]:
    docs = yaml.safe_load_all((EXAMPLES / "sidecar" / "deployment.yaml").read_text(encoding="utf-8"))
    (deployment,) = [doc for doc in docs if doc and doc["kind"] == "Deployment"]
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_docs_sidecar_snippet_is_the_tested_sidecar_container() -> None:
    snippet, pod = _snippet(), _sidecar_pod()
    assert snippet["initContainers"] == pod["initContainers"]
    assert snippet["volumes"] == pod["volumes"]
    assert snippet["securityContext"].items() <= pod["securityContext"].items()


def test_every_example_folder_is_listed_in_the_index() -> None:
    folders = [p.name for p in EXAMPLES.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
    index = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    assert {"compose", "gateway", "library", "local-dev", "sidecar"} <= set(folders)
    for folder in folders:
        assert f"]({folder}/)" in index


def test_every_deployment_example_has_a_readme() -> None:
    for folder in ("compose", "gateway", "library", "local-dev", "sidecar"):
        assert (EXAMPLES / folder / "README.md").is_file()


def test_relative_links_in_the_example_readmes_and_deployment_docs_resolve() -> None:
    pages = [DOCS, *EXAMPLES.glob("**/README.md")]
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to missing {target}"
