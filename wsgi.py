"""WSGI entry point, e.g. `gunicorn wsgi:app` with DATABASE_URL set."""

from backoffice import create_app

app = create_app()
