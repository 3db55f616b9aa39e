"""The distribution is ``qworker-redis`` (``qworker`` on the package index is another
project); the command and the import package stay ``qworker``, and every install instruction
names the distribution. The systemd units of a split fleet each say which types they serve."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION = "qworker-redis"
# The name after ``pip install``, quoted or not, without its extras (``'qworker-redis[web]'``).
PIP_INSTALL = re.compile(r"pip install (?!--|-e\b)'?([A-Za-z0-9_./-]+)")


def test_the_distribution_name_is_free_of_the_other_project() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    assert project["scripts"] == {"qworker": "qworker.cli:main"}


def test_every_install_instruction_names_the_distribution() -> None:
    texts = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "scripts").glob("*.service"))]
    installs = [
        (path.name, target)
        for path in texts
        for target in PIP_INSTALL.findall(path.read_text())
        if not target.startswith(("/", ".", "py-spy"))  # a checkout, a tool
    ]
    assert installs, "no install instruction found"
    assert all(target == DISTRIBUTION for _name, target in installs), installs


def test_the_split_fleet_units_serve_disjoint_job_types() -> None:
    def exec_start(name: str) -> str:
        text = (REPO_ROOT / "scripts" / name).read_text()
        return next(line for line in text.splitlines() if line.startswith("ExecStart="))

    tweets, jobs = exec_start("qworker-tweets.service"), exec_start("qworker-jobs.service")
    assert "--job-types tweet " in tweets
    assert "--job-types report,mail " in jobs and "tweet" not in jobs
    assert "--dry-run" not in tweets + jobs
    assert "x.env" in (REPO_ROOT / "scripts" / "qworker-tweets.service").read_text()
    assert "x.env" not in (REPO_ROOT / "scripts" / "qworker-jobs.service").read_text()
