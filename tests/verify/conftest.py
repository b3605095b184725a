from __future__ import annotations

import pytest

from stamping.ofd.demo import DemoKit, make_demo_kit


@pytest.fixture(scope="session")
def kit(tmp_path_factory) -> DemoKit:
    return make_demo_kit(tmp_path_factory.mktemp("kit"))
