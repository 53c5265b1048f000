"""What the engine needs from the service under test, and how a profile names it.

The engine drills a runbook; the service it describes is someone else's. Everything the
engine must know about that service (how a user signs up and writes data, how its twin
is launched, its monitoring names, which rows the gate's live checks seed) comes from a
*service kit*: a module the runbook's profile names (`[profile] kit = "my_service_kit"`)
whose `KIT` attribute satisfies `ServiceKit`. This module imports nothing of the engine
but its errors: every layer may use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import httpx

from runbook_checks.errors import UsageError

if TYPE_CHECKING:
    from runbook_checks.vocabulary import Vocabulary


@dataclass(frozen=True)
class Upload:
    """One write a user made, as the service answered it."""

    status_code: int  # 0: no answer (the request itself failed)
    file_id: str | None  # the id the service gave the write, when it kept it
    name: str
    checksum: str  # sha256 of what was sent
    size: int
    body: str  # the answer's first characters (or the transport error)

    @property
    def acknowledged(self) -> bool:
        """201 stored or 202 queued: the service promised to keep it."""
        return self.status_code in (201, 202) and self.file_id is not None


@dataclass(frozen=True)
class Twin:
    """How the project's stacks run the service's twin: a Python module, started with the
    stack's interpreter (in the docker backend: the image's `python`)."""

    label: str  # how versions() names it ("my_service")
    # argv after the interpreter that serves the API; the stack appends `--instance NAME`
    # (an instance's name, shown in `ps`) and sets API_HOST, API_PORT, LOG_DIR, SPOOL_DIR
    serve: tuple[str, ...]
    # argv after the interpreter that migrates an empty database named by $DATABASE_URL
    migrate: tuple[str, ...]
    migrations: Path | None  # the migrations' folder (*.sql: the template cluster's key)
    release_setting: str  # the setting that names the release a deploy installs
    # the settings drills change: the API's database pool size, its storage quota (bytes),
    # how long it waits for an upload's body (seconds), and that wait when not set
    pool_size_setting: str
    quota_setting: str
    upload_timeout_setting: str
    default_upload_timeout_s: float
    default_release: str = "dev"  # the release reported when that setting is not set
    image: str = ""  # its container image for the docker backend ("": it has none)
    # modules a local stack's fork server imports once, so that each start of the twin
    # (`serve`, a `-m MODULE` command) is forked with them done (stack/forkserver.py);
    # (): every start imports them anew
    preload: tuple[str, ...] = ()

    def release(self, settings: Mapping[str, str]) -> str:
        """The release the twin runs with `settings`."""
        return settings.get(self.release_setting) or self.default_release

    def describe(self, settings: Mapping[str, str]) -> str:
        return f"{self.label} {self.release(settings)}"


@dataclass(frozen=True)
class DataModel:
    """The service's data as faults, resets and the gate's live checks reach it: table
    names (users own stored objects; shares point at them; refused writes are recorded),
    the index an owner's listing needs, its listing cache, and how a realistic volume is
    made and removed."""

    users: str  # id (uuid), email
    objects: str  # a user's stored objects: id, user_id, name, object_key, size_bytes, status
    shares: str  # share links: token, file_id (cascade with their object)
    failures: str  # refused writes: user_id
    owner_index: str  # on objects(owner_column): what the owner's listing needs
    owner_column: str
    # the cache key of a user's listing generation ({user}: the id); INCR makes it stale
    listing_cache_key: str
    # SQL that adds a realistic volume (parameters %(users)s and %(rows)s), and removes it
    volume: tuple[str, ...]
    volume_cleanup: tuple[str, ...]


class User(Protocol):
    """A user the drill signed up: who it is and the headers its requests carry."""

    @property
    def id(self) -> str: ...

    @property
    def email(self) -> str: ...

    @property
    def token(self) -> str:
        """The credential a runbook's user-token placeholder stands for."""
        ...

    @property
    def auth(self) -> Mapping[str, str]: ...


class ServiceClient(Protocol):
    """The user traffic drills, faults and the gate send to the service's front door."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def close(self) -> None: ...

    def health(self, timeout_s: float = 3.0) -> httpx.Response: ...

    def create_user(self, email: str, tier: str = "free") -> User:
        """Sign a new user up on plan `tier`."""
        ...

    def upload(
        self,
        user: User,
        name: str,
        content: bytes,
        content_type: str = "application/octet-stream",
        timeout_s: float | None = None,
    ) -> Upload: ...

    def post_upload(
        self,
        user: User,
        *,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """The raw upload request (a multipart `files` form, or a streamed `content`
        body with its own headers), for faults that watch the answer itself."""
        ...

    def download(self, user: User, file_id: str) -> httpx.Response: ...

    def list_files(self, user: User) -> httpx.Response: ...

    def delete(self, user: User, file_id: str) -> httpx.Response: ...

    def share(
        self,
        user: User,
        file_id: str,
        *,
        permission: str = "download",
        expires_in_s: int | None = None,
        max_downloads: int | None = None,
    ) -> str:
        """A share link's token for `file_id`."""
        ...


@runtime_checkable
class ServiceKit(Protocol):
    """Everything service-specific the engine uses, from one module the profile names."""

    @property
    def name(self) -> str: ...

    @property
    def twin(self) -> Twin:
        """How the local and docker stacks run the service's twin."""
        ...

    @property
    def data(self) -> DataModel:
        """Its tables, as faults and the gate's live checks use them."""
        ...

    @property
    def vocabulary(self) -> Vocabulary:
        """Its monitoring names: metrics, routes, features, messages."""
        ...

    def client(
        self, base_url: str, admin_token: str, *, timeout_s: float = 10.0, keepalive: bool = True
    ) -> ServiceClient:
        """A client of the front door at `base_url` (admin routes with `admin_token`)."""
        ...

    def openapi(self) -> Mapping[str, Any]:
        """The API's OpenAPI document, built without a server (the gate's offline curl
        checks; a live gate reads GET /openapi.json)."""
        ...


KIT_ATTRIBUTE = "KIT"


def load_kit(module: str, *, where: str) -> ServiceKit:
    """The `KIT` of the module named `module`; `where` names the file and field that
    named it (`profile.toml: profile.kit`) in the UsageError when it is not one."""
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise UsageError(
            f"{where}: {module!r} is not a module name",
            hint="name an importable module whose KIT describes the service",
        )
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(
            f"{where}: cannot import {module!r}: {exc}",
            hint="install the kit's package, or fix the name",
        ) from None
    kit = getattr(imported, KIT_ATTRIBUTE, None)
    if not isinstance(kit, ServiceKit):
        raise UsageError(
            f"{where}: {module!r} has no {KIT_ATTRIBUTE} describing a service",
            hint=f"{module}.{KIT_ATTRIBUTE} must provide name, twin, data, vocabulary, "
            "client(...) and openapi()",
        )
    return kit
