"""The ways a Drive target signs in, through the real SDK against the Drive emulator's token endpoint.

A service account impersonating a user puts the user in the JWT's ``sub`` claim (domain-wide
delegation); a user's OAuth consent is turned into a stored refresh token, from which the
provider gets (and renews) its access tokens. What a person pastes back is hostile input.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from cloudwatcher.config import GoogleDriveTarget
from cloudwatcher.providers import PermanentError
from cloudwatcher.providers.google_drive import GoogleDriveProvider
from cloudwatcher.providers.google_drive.authorize import AuthorizeError, authorize
from cloudwatcher.providers.google_drive.signin import (
    OAuthClient,
    SignInAttempt,
    code_from,
    consent_url,
    exchange_code,
    store_refresh_token,
)
from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.fixtures import google_drive_settings
from tests.support.upload_jobs import make_job, no_state

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[DriveEmulator]:
    with DriveEmulator(tmp_path) as running:
        yield running


def oauth_target(emulator: DriveEmulator, token_file: Path) -> GoogleDriveTarget:
    settings = google_drive_settings(
        emulator, oauth_client_file=str(emulator.oauth_client_file), token_file=str(token_file)
    )
    del settings["service_account_file"]
    return GoogleDriveTarget.model_validate(settings)


@pytest.fixture
async def providers() -> AsyncIterator[Callable[[GoogleDriveTarget], GoogleDriveProvider]]:
    built: list[GoogleDriveProvider] = []

    def make(target: GoogleDriveTarget) -> GoogleDriveProvider:
        built.append(GoogleDriveProvider(target, concurrency=2))
        return built[-1]

    yield make
    for provider in built:
        await provider.close()


Terminal = tuple[Callable[[str], None], Callable[[], str]]


def consent_through(emulator: DriveEmulator, paste: Callable[[str], str]) -> Terminal:
    """Terminal stand-ins: the shown text's URL is "opened" in the emulator, what comes back is pasted."""
    shown: list[str] = []

    def show(text: str) -> None:
        shown.append(text)

    def read_code() -> str:
        url = next(word for word in " ".join(shown).split() if word.startswith(emulator.url))
        return paste(emulator.consent(url))

    return show, read_code


# --- impersonation ------------------------------------------------------------------------------


async def test_an_impersonating_service_account_asks_for_tokens_as_that_user(
    emulator: DriveEmulator, providers: Callable[[GoogleDriveTarget], GoogleDriveProvider], tmp_path: Path
) -> None:
    target = GoogleDriveTarget.model_validate(google_drive_settings(emulator, impersonate="field-ops@example.com"))
    provider = providers(target)
    await provider.upload(make_job(tmp_path, "dev1/requests/a.txt", b"as a user"), no_state)
    assert (JWT_BEARER, "field-ops@example.com") in emulator.grants
    assert all(subject == "field-ops@example.com" for _, subject in emulator.grants)
    assert await provider.read("dev1/requests/a.txt") == b"as a user"


async def test_a_service_account_without_impersonate_sends_no_subject(
    emulator: DriveEmulator, providers: Callable[[GoogleDriveTarget], GoogleDriveProvider], tmp_path: Path
) -> None:
    provider = providers(GoogleDriveTarget.model_validate(google_drive_settings(emulator)))
    await provider.upload(make_job(tmp_path, "dev1/requests/b.txt", b"own"), no_state)
    assert emulator.grants and all(grant == (JWT_BEARER, None) for grant in emulator.grants)


# --- a user's OAuth consent ---------------------------------------------------------------------


async def test_an_authorized_user_token_uploads_and_is_refreshed_when_the_access_token_expires(
    emulator: DriveEmulator, providers: Callable[[GoogleDriveTarget], GoogleDriveProvider], tmp_path: Path
) -> None:
    token_file = tmp_path / "secrets" / "drive-token.json"
    target = oauth_target(emulator, token_file)
    written = authorize(target, *consent_through(emulator, lambda address: address + "\n"))
    assert written == token_file
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    provider = providers(target)
    await provider.upload(make_job(tmp_path, "dev1/requests/one.txt", b"one"), no_state)
    emulator.expire_tokens()
    await provider.upload(make_job(tmp_path, "dev1/requests/two.txt", b"two"), no_state)
    assert [grant for grant, _ in emulator.grants] == ["authorization_code", "refresh_token", "refresh_token"]
    assert await provider.read("dev1/requests/two.txt") == b"two"


def test_a_bare_code_is_taken_as_well_as_the_whole_redirect_address(emulator: DriveEmulator, tmp_path: Path) -> None:
    def only_the_code(address: str) -> str:
        return "  " + address.split("code=")[1].split("&")[0] + "\r\n"

    token_file = tmp_path / "token.json"
    authorize(oauth_target(emulator, token_file), *consent_through(emulator, only_the_code))
    assert json.loads(token_file.read_text())["refresh_token"] in emulator.refresh_tokens


def test_a_code_used_twice_is_refused_and_the_token_file_left_alone(emulator: DriveEmulator, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    target = oauth_target(emulator, token_file)
    pasted: list[str] = []

    def remember(address: str) -> str:
        pasted.append(address)
        return address

    authorize(target, *consent_through(emulator, remember))
    before = token_file.read_bytes()
    show, _ = consent_through(emulator, remember)
    with pytest.raises(PermanentError, match="refused the code"):
        authorize(target, show, lambda: pasted[0].split("code=")[1].split("&")[0])
    assert token_file.read_bytes() == before


def test_a_code_is_worth_nothing_without_the_verifier_of_the_sign_in_that_asked_for_it(
    emulator: DriveEmulator,
) -> None:
    client = OAuthClient.from_file(emulator.oauth_client_file)
    asked = SignInAttempt.new()
    code = code_from(emulator.consent(consent_url(client, asked)), asked.state)
    with pytest.raises(PermanentError, match="Invalid code verifier"):
        exchange_code(client, code, SignInAttempt.new(), None)
    assert emulator.refresh_tokens == set()


@pytest.mark.parametrize(
    ("pasted", "why"),
    [
        ("", "no code"),
        ("   \n", "no code"),
        ("http://127.0.0.1/?error=access_denied&state=S", "consent refused: access_denied"),
        ("http://127.0.0.1/?state=OTHER&code=4/abc", "state does not match"),
        ("http://127.0.0.1/?state=S", "no code="),
        ("http://127.0.0.1/?state=S&code=a&code=b&\x00=%ff", None),
    ],
)
def test_what_the_user_pastes_is_checked_before_any_exchange(pasted: str, why: str | None) -> None:
    if why is None:
        assert code_from(pasted, "S") == "a"
        return
    with pytest.raises(ValueError, match=why):
        code_from(pasted, "S")


def test_a_refused_consent_reaches_no_token_endpoint_and_writes_no_token(
    emulator: DriveEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token.json"
    show, _ = consent_through(emulator, lambda address: address)
    with pytest.raises(AuthorizeError, match="access_denied"):
        authorize(oauth_target(emulator, token_file), show, lambda: "http://127.0.0.1/?error=access_denied")
    assert not token_file.exists()
    assert emulator.log("POST", "/token") == []


def test_the_token_file_is_owner_only_even_under_a_permissive_umask(tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    token_file.write_text("old, world-readable")
    token_file.chmod(0o644)
    previous = os.umask(0)
    try:
        store_refresh_token(token_file, "1//refresh")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(token_file.read_text()) == {"refresh_token": "1//refresh"}
    assert [path.name for path in tmp_path.iterdir()] == ["token.json"]


@pytest.mark.parametrize("content", [None, "", "not json", "[]", '{"refresh": "x"}', '{"refresh_token": null}'])
async def test_a_missing_or_broken_token_file_is_a_permanent_error_saying_what_to_do(
    emulator: DriveEmulator,
    providers: Callable[[GoogleDriveTarget], GoogleDriveProvider],
    tmp_path: Path,
    content: str | None,
) -> None:
    token_file = tmp_path / "token.json"
    if content is not None:
        token_file.write_text(content)
    provider = providers(oauth_target(emulator, token_file))
    with pytest.raises(PermanentError, match="authorize google-drive gdrive" if content is None else "token"):
        await provider.upload(make_job(tmp_path, "dev1/requests/c.txt", b"c"), no_state)
    assert emulator.log(path_prefix="/upload/") == []


async def test_the_code_exchange_and_the_refresh_trust_the_targets_ca_bundle(
    providers: Callable[[GoogleDriveTarget], GoogleDriveProvider], tmp_path: Path
) -> None:
    (tmp_path / "tls").mkdir()
    with DriveEmulator(tmp_path / "tls", tls=True) as emulator:
        bundle = emulator.write_ca_bundle(tmp_path / "drive-ca.pem")
        target = oauth_target(emulator, tmp_path / "token.json").model_copy(update={"ca_bundle": bundle})
        assert emulator.token_uri.startswith("https://")
        authorize(target, *consent_through(emulator, lambda address: address))
        provider = providers(target)
        await provider.upload(make_job(tmp_path, "dev1/requests/tls.txt", b"over tls"), no_state)
        assert [grant for grant, _ in emulator.grants] == ["authorization_code", "refresh_token"]
