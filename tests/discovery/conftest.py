from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.scrape.helpers import Exporter, new_db


@pytest.fixture
async def db_and_exporter(tmp_path) -> AsyncIterator[tuple]:
    db = new_db(str(tmp_path / "data"))
    exporter = await Exporter().start()
    yield db, exporter
    await exporter.stop()
    db.close()
