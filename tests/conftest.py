"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.s3server import LocalS3


@pytest.fixture(scope="session")
def s3() -> Iterator[LocalS3]:
    """A local SeaweedFS S3 endpoint on 127.0.0.1 with a bucket (one per session)."""
    with LocalS3() as server:
        yield server
