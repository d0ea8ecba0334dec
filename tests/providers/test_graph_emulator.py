"""The Graph emulator is as strict as Graph where the provider could get it wrong: tokens, fragment
sizes and order, the bearer-free upload URL, names SharePoint refuses. A lenient emulator would let
the SharePoint tests pass against a provider that fails on the real service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudwatcher.providers.sharepoint import FRAGMENT_UNIT
from tests.support.emulators.graph import GraphEmulator


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[GraphEmulator]:
    with GraphEmulator(tmp_path) as running:
        yield running


def token_request(client: httpx.Client, emulator: GraphEmulator, *, secret: str | None = None) -> httpx.Response:
    """The client-credentials token request the SDK sends, with the emulator's secret unless told."""
    return client.post(
        f"{emulator.authority_url}/{emulator.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret if secret is None else secret,
            "scope": "https://graph.microsoft.com/.default",
        },
    )


@pytest.fixture
def raw_session(emulator: GraphEmulator) -> Iterator[tuple[httpx.Client, str]]:
    """A plain HTTP client with a token and a fresh upload session, bypassing the provider."""
    with httpx.Client(verify=str(emulator.ca_pem)) as client:
        token = token_request(client, emulator).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        answer = client.post(
            f"{emulator.graph_url}/drives/{emulator.drive_id}/root:/strict.bin:/createUploadSession",
            json={"item": {"@microsoft.graph.conflictBehavior": "replace"}},
        )
        assert answer.status_code == 200
        del client.headers["Authorization"]
        yield client, answer.json()["uploadUrl"]


def test_emulator_refuses_graph_calls_without_a_bearer_token(emulator: GraphEmulator) -> None:
    with httpx.Client(verify=str(emulator.ca_pem)) as client:
        answer = client.get(f"{emulator.graph_url}/drives/{emulator.drive_id}/root")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_emulator_refuses_a_token_request_with_a_wrong_secret(emulator: GraphEmulator) -> None:
    with httpx.Client(verify=str(emulator.ca_pem)) as client:
        answer = token_request(client, emulator, secret="wrong")
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_emulator_refuses_a_fragment_that_is_not_a_multiple_of_320_kib(
    raw_session: tuple[httpx.Client, str],
) -> None:
    client, upload_url = raw_session
    answer = client.put(upload_url, content=b"x" * 1000, headers={"Content-Range": "bytes 0-999/2000000"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalidRequest"


def test_emulator_refuses_an_authorization_header_on_the_upload_url(
    raw_session: tuple[httpx.Client, str],
) -> None:
    client, upload_url = raw_session
    answer = client.put(
        upload_url,
        content=b"x" * FRAGMENT_UNIT,
        headers={
            "Content-Range": f"bytes 0-{FRAGMENT_UNIT - 1}/{2 * FRAGMENT_UNIT}",
            "Authorization": "Bearer x",
        },
    )
    assert answer.status_code == 401


def test_emulator_refuses_fragments_out_of_order_or_with_a_changed_total(
    raw_session: tuple[httpx.Client, str],
) -> None:
    client, upload_url = raw_session
    total = 3 * FRAGMENT_UNIT
    skipped = client.put(
        upload_url,
        content=b"x" * FRAGMENT_UNIT,
        headers={"Content-Range": f"bytes {FRAGMENT_UNIT}-{2 * FRAGMENT_UNIT - 1}/{total}"},
    )
    assert skipped.status_code == 416
    assert skipped.json()["error"]["code"] == "invalidRange"
    first = client.put(
        upload_url,
        content=b"x" * FRAGMENT_UNIT,
        headers={"Content-Range": f"bytes 0-{FRAGMENT_UNIT - 1}/{total}"},
    )
    assert first.status_code == 202
    assert first.json()["nextExpectedRanges"] == [f"{FRAGMENT_UNIT}-"]
    other_total = client.put(
        upload_url,
        content=b"x" * FRAGMENT_UNIT,
        headers={"Content-Range": f"bytes {FRAGMENT_UNIT}-{2 * FRAGMENT_UNIT - 1}/{total + 1}"},
    )
    assert other_total.status_code == 400


def test_emulator_refuses_names_sharepoint_refuses(emulator: GraphEmulator) -> None:
    with httpx.Client(verify=str(emulator.ca_pem)) as client:
        token = token_request(client, emulator).json()["access_token"]
        answer = client.put(
            f"{emulator.graph_url}/drives/{emulator.drive_id}/root:/bad%3Aname.txt:/content",
            content=b"x",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalidRequest"
