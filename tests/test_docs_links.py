"""Every relative link of the documentation (README.md, docs/*.md, scripts/README.md,
logs/gluoncv/README.md) names a file or folder of the repository, and every `#anchor` names a
heading of the page it points to (GitHub's heading ids), so moving or renaming a page or a section
breaks a test, not a reader's click."""
import glob
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = sorted(["README.md", "scripts/README.md", "logs/gluoncv/README.md"]
               + [os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md"))])

# [text](target) and ![alt](target); a target has no spaces (an optional "title" may follow).
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text):
    """The text without fenced and indented code blocks and without inline code spans, where
    brackets and parentheses are code, not links."""
    kept, fenced, previous_blank = [], False, True
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            kept.append("")
            continue
        indented_code = previous_blank and line.startswith("    ")
        if fenced or indented_code:
            kept.append("")
            previous_blank = indented_code or previous_blank
            continue
        kept.append(re.sub(r"`[^`]*`", "", line))
        previous_blank = not line.strip()
    return "\n".join(kept)


def read(path):
    with open(path) as f:
        return f.read()


def links(text):
    return LINK.findall(prose(text))


def heading_ids(text):
    """GitHub's ids of a page's headings: inline code as its text, lower case, punctuation
    dropped (hyphens and underscores kept), spaces to hyphens, repeats numbered -1, -2, ..."""
    ids, seen, fenced = set(), {}, False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        match = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        title = re.sub(r"`([^`]*)`", r"\1", match.group(1)).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else "%s-%d" % (slug, count))
    return ids


def broken_links(page, repo=REPO):
    """[(target, why)] for each link of `page` (relative to `repo`) that does not resolve."""
    text = read(os.path.join(repo, page))
    broken = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(repo, os.path.dirname(page), path)) if path \
            else os.path.join(repo, page)
        if not resolved.startswith(repo + os.sep) and resolved != repo:
            broken.append((target, "outside the repository"))
        elif not os.path.exists(resolved):
            broken.append((target, "no such file"))
        elif anchor and (not resolved.endswith(".md")
                         or anchor not in heading_ids(read(resolved))):
            broken.append((target, "no heading #%s there" % anchor))
    return broken


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_the_readme_links_every_docs_page():
    with open(os.path.join(REPO, "README.md")) as f:
        targets = {t.partition("#")[0] for t in links(f.read())}
    docs = {p for p in PAGES if p.startswith("docs/")}
    assert docs and docs <= targets


def test_a_broken_link_or_anchor_is_found(tmp_path):
    """The checker itself: missing files, missing headings and links to outside are reported;
    links in code and to the web are not links to check."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "# Page A\n\n## The demo (`make demo`)\n\n## GluonCV's logs\n")
    (tmp_path / "README.md").write_text(
        "# Top\n\n[ok](docs/a.md) [ok](docs/a.md#the-demo-make-demo) [ok](docs/a.md#gluoncvs-logs)"
        " [ok](#top) [web](https://example.com/x)\n"
        "[gone](docs/b.md) [no heading](docs/a.md#nothing) [up](../x.md) ![img](fig.png)\n"
        "`[code](nothing.md)`\n\n    [indented code](nothing.md)\n\n"
        "```\n[fenced](nothing.md)\n```\n")
    assert broken_links("README.md", repo=str(tmp_path)) == [
        ("docs/b.md", "no such file"), ("docs/a.md#nothing", "no heading #nothing there"),
        ("../x.md", "outside the repository"), ("fig.png", "no such file")]
