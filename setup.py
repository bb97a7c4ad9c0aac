"""Packaging beyond pyproject.toml: the top-level schemas/ folder ships as slm_bench/schemas.

The workflow's layout keeps schemas/ beside Snakefile and rules/; an installed package finds
them through slm_bench.validation.schema_dir(). Every subpackage of slm_bench is found here, so
a new one needs no edit; the two data folders are listed as packages of their own.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["slm_bench", "slm_bench.*"]),
        "slm_bench.data",
        "slm_bench.schemas",
    ],
    package_dir={"slm_bench.schemas": "schemas"},
)
