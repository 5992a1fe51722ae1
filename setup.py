"""Only what pyproject.toml cannot say: the zoo lives in the repository's top-level specs/
folder and ships inside the wheel as the package netdsl.zoo, so that installed netdsl finds
`resnet50` and `import "resnet_family.net"` from any folder."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["netdsl", "netdsl.*"]), "netdsl.zoo"],
      package_dir={"netdsl.zoo": "specs"})
