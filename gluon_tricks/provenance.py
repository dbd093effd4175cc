"""Which code produced a result: the git commit of the checkout gluon_tricks runs from, marked
`+dirty` when tracked files differ from it, so every training log names the code behind its
numbers. A neutral bottom module; it runs git only when asked."""
import os
import subprocess

from gluon_tricks import __version__

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()


def code_version(root=_PACKAGE_ROOT):
    """'<40-hex commit>' or '<commit>+dirty' for a git checkout at `root`, else
    'gluon-tricks <version> (no git checkout)' (an installed copy, the Docker image)."""
    try:
        commit = _git("rev-parse", "HEAD", cwd=root)
        dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=root)
    except (OSError, subprocess.SubprocessError):
        return "gluon-tricks %s (no git checkout)" % __version__
    return commit + ("+dirty" if dirty else "")
