"""The repository documents itself: a short README, docs/ with its five files, links that
resolve, and no reference to documents outside the repository."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("api.md", "architecture.md", "kafka.md", "operations.md", "performance.md")

# Spelled in pieces so that this file does not match itself.
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", "con" + "tract"]), re.IGNORECASE)
# Third-party text kept verbatim (the MIT licence of the vendored Chart.js uses the word).
VERBATIM = {"viewing/static/viewing/chart-LICENSE.md"}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_nothing_refers_outside_the_repository():
    offenders = []
    for path in tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in VERBATIM or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{rel}:{number}: {line.strip()[:100]}")
    assert offenders == []


def test_the_checker_sees_a_reference():
    assert OUTSIDE.search("see ../" + "shared/" + "CON" + "TRACT.md §2")
    assert OUTSIDE.search("the con" + "tract says")
    assert not OUTSIDE.search("see docs/api.md, Events")


def test_readme_is_short_and_docs_hold_the_five_files():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250
    for name in DOCS:
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        assert text.startswith("# "), name
        assert len(text.splitlines()) > 20, name


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6} (.+)", line)):
            found.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return found


def test_links_between_the_documents_resolve():
    pages = [ROOT / "README.md", *(ROOT / "docs" / name for name in DOCS)]
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            if not dest.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
                broken.append(f"{page.name}: {target}")
    assert broken == []


def test_the_link_checker_sees_a_broken_anchor():
    assert "the-open-mode-of-make-run" in anchors("### The open mode of `make run`\n")
    assert "writes-when-an-event-is-visible-and-shutdown" in anchors(
        "## Writes: when an event is visible, and shutdown"
    )
    assert "nope" not in anchors("# Title\n```sh\n# nope\n```\n")
