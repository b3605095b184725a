from __future__ import annotations

import pytest

from ofd.kit import Kit, make_kit


@pytest.fixture(scope="session")
def kit(tmp_path_factory) -> Kit:
    return make_kit(tmp_path_factory.mktemp("verify-kit"))
