"""The API's boto3 client comes from one session that has S3's model read already
(files_api/s3_session.py): the fork server imports it once, so a forked API makes its
client without reading botocore's data files again."""

from __future__ import annotations

from pathlib import Path

import botocore.loaders
import pytest

from files_api.config import Settings
from files_api.storage import _make_client
from files_profile import TWIN


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": "postgresql://app:x@127.0.0.1:1/files",
            "LOG_DIR": str(tmp_path),
            "ADMIN_TOKEN": "admin-token-123",
            "S3_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "a-secret-key",
            "S3_REGION": "eu-west-1",
        }
    )


def test_the_client_is_made_without_reading_botocores_data_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import files_api.s3_session  # noqa: F401  (what the fork server's preload does)

    read: list[str] = []
    load_file = botocore.loaders.JSONFileLoader.load_file

    def recorded(self: botocore.loaders.JSONFileLoader, file_path: str) -> object:
        read.append(file_path)
        return load_file(self, file_path)

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", recorded)
    client = _make_client(_settings(tmp_path))
    assert read == []
    # the client is the settings' own: endpoint, region and keys
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "eu-west-1"
    credentials = client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("AKIDEXAMPLE", "a-secret-key")


def test_the_fork_server_reads_the_model_for_every_start() -> None:
    assert "files_api.s3_session" in TWIN.preload
