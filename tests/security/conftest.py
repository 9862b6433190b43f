"""pytest wiring for pctl's security tests (issue 4).

The fixtures of tests/conftest.py (pctl_bin, moto_auth, moto_open, pctl_env,
auth_env, ...) are used as they are; helpers live in secutil.py next to this file.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

DEFAULT_TIMEOUT = 90


def pytest_collection_modifyitems(config, items):
    for item in items:
        if not str(item.fspath).startswith(HERE + os.sep):
            continue
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))
