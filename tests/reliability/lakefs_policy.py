"""Which lakeFS permission each API call retune makes needs (as lakeFS's controller checks it), and whether
infra/lakefs/policy.json grants it: the least-privilege check run after whole DAG runs against the fake lakeFS."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from urllib.parse import unquote

POLICY = Path(__file__).resolve().parents[2] / "infra" / "lakefs" / "policy.json"
_R = r"(?P<repo>[^/]+)"
# (method, path under /api/v1, action, resource): from lakeFS pkg/api/controller.go `authorize` calls.
# Resources: "repo", or "branch:<group>", "object", "tag" under the repository's ARN.
ROUTES: list[tuple[str, str, str, str]] = [
    ("GET", rf"repositories/{_R}", "fs:ReadRepository", "repo"),
    ("GET", rf"repositories/{_R}/branches", "fs:ListBranches", "repo"),
    ("POST", rf"repositories/{_R}/branches", "fs:CreateBranch", "branch:*"),
    ("GET", rf"repositories/{_R}/branches/(?P<b>[^/]+)", "fs:ReadBranch", "branch:b"),
    ("DELETE", rf"repositories/{_R}/branches/(?P<b>[^/]+)", "fs:DeleteBranch", "branch:b"),
    ("POST", rf"repositories/{_R}/branches/[^/]+/objects", "fs:WriteObject", "object"),
    ("DELETE", rf"repositories/{_R}/branches/[^/]+/objects", "fs:DeleteObject", "object"),
    ("POST", rf"repositories/{_R}/branches/(?P<b>[^/]+)/commits", "fs:CreateCommit", "branch:b"),
    ("GET", rf"repositories/{_R}/commits/[^/]+", "fs:ReadCommit", "repo"),
    ("GET", rf"repositories/{_R}/refs/[^/]+/objects", "fs:ReadObject", "object"),
    ("HEAD", rf"repositories/{_R}/refs/[^/]+/objects", "fs:ReadObject", "object"),
    ("GET", rf"repositories/{_R}/refs/[^/]+/objects/stat", "fs:ReadObject", "object"),
    ("GET", rf"repositories/{_R}/refs/[^/]+/objects/ls", "fs:ListObjects", "repo"),
    ("GET", rf"repositories/{_R}/refs/(?P<b>[^/]+)/commits", "fs:ReadBranch", "branch:b"),
    ("GET", rf"repositories/{_R}/refs/[^/]+/diff/[^/]+", "fs:ListObjects", "repo"),
    ("POST", rf"repositories/{_R}/refs/[^/]+/merge/(?P<b>[^/]+)", "fs:CreateCommit", "branch:b"),
    ("GET", rf"repositories/{_R}/tags", "fs:ListTags", "repo"),
    ("POST", rf"repositories/{_R}/tags", "fs:CreateTag", "tag"),
    ("GET", rf"repositories/{_R}/tags/(?P<t>[^/]+)", "fs:ReadTag", "tag"),
]
# Creating the repository is a one-time setup step (store.lakefs.storage_namespace, or `lakectl repo create`),
# deliberately left out of the policy the flows run with.
SETUP = [("POST", "repositories")]


def required(method: str, path: str) -> tuple[str, str] | None:
    """(action, resource ARN) lakeFS checks for one request; None for setup calls; KeyError when unknown."""
    rest = unquote(path).removeprefix("/api/v1/")
    if (method, rest) in SETUP:
        return None
    for want, pattern, action, kind in ROUTES:
        match = re.fullmatch(pattern, rest)
        if want == method and match:
            arn = f"arn:lakefs:fs:::repository/{match['repo']}"
            if kind.startswith("branch:"):
                group = kind.split(":")[1]
                arn += "/branch/" + ("x" if group == "*" else match[group])
            elif kind in ("object", "tag"):
                arn += f"/{kind}/x"
            return action, arn
    raise KeyError(f"no known lakeFS permission for {method} {path}: add it to ROUTES")


def granted(action: str, arn: str, policy: dict) -> bool:
    return any(
        s["effect"] == "allow"
        and any(fnmatch.fnmatchcase(action, a) for a in s["action"])
        and any(fnmatch.fnmatchcase(arn, r) for r in ([s["resource"]] if isinstance(s["resource"], str) else
                                                       s["resource"]))  # fmt: skip
        for s in policy["statement"]
    )


def not_granted(requests: list[tuple[str, str, int]], policy_path: Path = POLICY) -> list[str]:
    """The calls among `requests` (method, path, status) that policy.json does not allow."""
    policy = json.loads(policy_path.read_text())
    missing = set()
    for method, path, _ in requests:
        if not path.startswith("/api/v1/"):
            continue  # the fake's own control endpoint
        need = required(method, path)
        if need is not None and not granted(*need, policy):
            missing.add(f"{method} {path} needs {need[0]} on {need[1]}")
    return sorted(missing)


def admin_actions(policy_path: Path = POLICY) -> list[str]:
    """Actions in the policy beyond data access: auth, repository management, retention, imports, ..."""
    policy = json.loads(policy_path.read_text())
    data_actions = {action for _, _, action, _ in ROUTES}
    return sorted({a for s in policy["statement"] for a in s["action"] if a not in data_actions})
