"""Docs kept honest: every setting is documented, and the quick start is the two commands CI and users run."""

import os
import re

from webmap.config import DEFAULTS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as fh:
        return fh.read()


def test_every_setting_is_documented():
    readme = read("README.md")
    missing = [key for key in DEFAULTS if f"`{key}`" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one():
    readme = read("README.md")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for command in commands:
        assert os.path.exists(os.path.join(ROOT, command.split()[1]))
    assert "bash scripts/test.sh" in read(".ci/run")


def test_attribution_is_on_the_map_and_in_the_readme():
    from webmap.i18n import STRINGS

    assert "dvhcvn" in STRINGS["attribution"]["vi"] and "Đào Hoàng Sơn" in STRINGS["attribution"]["vi"]
    assert "Tổng cục Thống kê" in read("README.md")
    assert "Tổng cục Thống kê" in read("data/README.md")
