"""Django settings, driven by environment variables (see docs/deployment.md)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import dj_database_url

from facturo.core.errors import _

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("FACTURO_DATA_DIR", ".facturo")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
TESTING = "pytest" in sys.modules


def _secret_key() -> str:
    if key := os.environ.get("FACTURO_SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("FACTURO_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("FACTURO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
# Where users and customers reach this installation: absolute links in e-mails (portal,
# payment links, reminders, alerts) start with it.
FACTURO_BASE_URL = os.environ.get("FACTURO_BASE_URL", "http://localhost:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("FACTURO_CSRF_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "huey.contrib.djhuey",
    "facturo.foundation",
    "facturo.audit",
    "facturo.accounts",
    "facturo.organizations",
    "facturo.documents",
    "facturo.notifications",
    "facturo.customers",
    "facturo.catalog",
    "facturo.invoicing",
    "facturo.subscriptions",
    "facturo.payments",
    "facturo.dunning",
    "facturo.banking",
    "facturo.accounting",
    "facturo.portal",
    "facturo.api",
    "facturo.jobs",
    "facturo.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "facturo.web.urls"
WSGI_APPLICATION = "facturo.web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "facturo.web.context.organization",
            ],
        },
    }
]


def _sqlite(path: Path) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            # BEGIN IMMEDIATE: writers queue at the start of a transaction instead of failing
            # halfway; this is what serialises number allocation on SQLite.
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
    }


DATABASE_URL = os.environ.get("FACTURO_DATABASE_URL", "")
DATABASES: dict[str, Any]
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {"default": _sqlite(DATA_DIR / "facturo.sqlite3")}

# Tests run the integration suite on PostgreSQL too when it is reachable (always in CI).
TEST_POSTGRES_URL = os.environ.get(
    "FACTURO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
if TESTING and not DATABASE_URL:
    DATABASES["postgresql"] = dj_database_url.parse(TEST_POSTGRES_URL)
    DATABASES["postgresql"]["TEST"] = {
        "NAME": os.environ.get("FACTURO_TEST_POSTGRES_DB", "test_facturo")
    }
# Server-side parameter binding lets psycopg prepare the statements it sees repeatedly
# (issuing runs the same ~17 statements each time): ~25 % faster issuing on PostgreSQL.
for _db in DATABASES.values():
    if _db["ENGINE"].endswith("postgresql"):
        _db.setdefault("OPTIONS", {})["server_side_binding"] = (
            os.environ.get("FACTURO_PG_SERVER_SIDE_BINDING", "1") == "1"
        )
DATABASE_ROUTERS = ["facturo.foundation.db.ContextRouter"]

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:dashboard"
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = 1  # hour
AXES_ENABLED = not TESTING

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request when it is missing
# Static files are served from the app folders by WhiteNoise: no collectstatic step to forget.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = os.environ.get("FACTURO_SECURE_COOKIES", "0") == "1"
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# E-mail: the global SMTP server; an organization may configure its own in its settings.
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ.get("FACTURO_SMTP_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("FACTURO_SMTP_PORT", "1025"))
EMAIL_HOST_USER = os.environ.get("FACTURO_SMTP_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("FACTURO_SMTP_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("FACTURO_SMTP_STARTTLS", "0") == "1"
EMAIL_TIMEOUT = 20
DEFAULT_FROM_EMAIL = os.environ.get("FACTURO_FROM_EMAIL", "facturo@localhost")

REDIS_URL = os.environ.get("FACTURO_REDIS_URL", "")
if REDIS_URL:
    HUEY = {"huey_class": "huey.RedisHuey", "name": "facturo", "url": REDIS_URL, "immediate": False}
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "facturo",
        "filename": str(DATA_DIR / "huey.sqlite3"),
        "immediate": False,
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("FACTURO_LOG_LEVEL", "WARNING")},
}
