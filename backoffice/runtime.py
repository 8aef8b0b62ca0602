"""Where the database is: an existing server from the environment, or the embedded one."""

from __future__ import annotations

from dataclasses import dataclass

from backoffice.config import Settings


@dataclass(frozen=True)
class DatabaseUrls:
    app: str
    admin: str | None  # None when DATABASE_URL is given without DATABASE_ADMIN_URL
    embedded: bool
    worker: str | None = None  # None when DATABASE_URL is given without DATABASE_WORKER_URL


def database_urls(settings: Settings, *, stop_on_exit: bool = True) -> DatabaseUrls:
    if not settings.embedded:
        return DatabaseUrls(
            settings.database_url, settings.database_admin_url, embedded=False, worker=settings.database_worker_url
        )
    from backoffice import embedded

    urls = embedded.start(settings.data_dir, stop_on_exit=stop_on_exit)
    return DatabaseUrls(urls.app, urls.admin, embedded=True, worker=urls.worker)


def require_admin(urls: DatabaseUrls) -> str:
    if not urls.admin:
        raise SystemExit("This command needs DATABASE_ADMIN_URL (the owner role) as well as DATABASE_URL.")
    return urls.admin


def require_worker(urls: DatabaseUrls) -> str:
    if not urls.worker:
        raise SystemExit(
            "This command needs DATABASE_WORKER_URL (the worker role, which runs background jobs)"
            " as well as DATABASE_URL."
        )
    return urls.worker
