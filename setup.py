"""gluon-tricks: the Bag of Tricks for image classification, reproduced in MXNet Gluon + Horovod."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def pinned_requirements():
    """The pins of requirements.txt (its single source), without comments or blank lines."""
    with open(os.path.join(HERE, "requirements.txt")) as f:
        return [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]


setup(
    name="gluon-tricks",
    version="0.1.0",
    description="Bag of Tricks for Image Classification (He et al., CVPR 2019) in MXNet Gluon, "
                "GluonCV and Horovod",
    long_description=open(os.path.join(HERE, "README.md")).read()
    if os.path.exists(os.path.join(HERE, "README.md")) else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["gluon_tricks", "gluon_tricks.*"]),
    python_requires=">=3.11",
    # The stack is installed by scripts/install_env.sh (pip --no-deps, then Horovod from source):
    # a plain resolver would pull opencv-python and numpy 2 in through gluoncv. The extra is the
    # same pin list for those who manage their environment themselves.
    install_requires=[],
    extras_require={"stack": pinned_requirements()},
    entry_points={"console_scripts": ["gluon-tricks = gluon_tricks.cli:main"]},
)
