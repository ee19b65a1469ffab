"""Settings for the Kokatto notification platform.

Every setting that differs between a laptop and production comes from the
environment (see `.env.example` and the README's "Running in production").
The defaults are embedded and safe: SQLite, django-q2's ORM broker, local
disk and console channel backends, all under `var/`.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ

from kokatto_site.local_secrets import (
    django_secret_key,
    field_encryption_keys,
    ftps_certificate,
    gateway_identity_read_from_var,
    secrets_read_from_var,
    sftp_host_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

VAR_DIR = Path(env.str("KOKATTO_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = django_secret_key(env.str("SECRET_KEY", default=""), VAR_DIR / "secret_key")
# SECRET_KEY signs sessions (and password-reset links). To rotate it, set the new one and
# list the old one here (comma-separated) until the last session it signed has ended
# (SESSION_COOKIE_AGE), then drop it.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Fernet keys for secrets at rest (API secret keys, batch archive passwords).
# A comma-separated list: the first encrypts, all decrypt, so keys can rotate:
# set new,old, run `manage.py rotate_encryption_keys`, then drop old.
FIELD_ENCRYPTION_KEYS = field_encryption_keys(
    env.str("FIELD_ENCRYPTION_KEY", default=""), VAR_DIR / "field_encryption.key"
)
# Which of SECRET_KEY and FIELD_ENCRYPTION_KEY were generated into var/ because the
# environment did not set them (name -> file): `check --deploy` refuses those when
# DEBUG is off (clients/checks.py). Not a variable: it says where the two came from.
SECRETS_READ_FROM_VAR = secrets_read_from_var()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "django_q",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "django_prometheus",
    "clients",
    "templates_app",
    "notifications",
    "batches",
    "kokatto_site.sign_in",
    # Above every app: the role groups' permissions, the demo data (seed_demo), the task
    # queue's system checks.
    "kokatto_site",
]

MIDDLEWARE = [
    # django-prometheus: first and (before axes) last, to count and time every request.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # /healthz, /readyz, /metrics: answered before https redirects, host checks and sign-in.
    "kokatto_site.operations_endpoints.OperationsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "kokatto_site.sign_in.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "kokatto_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "kokatto_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "kokatto_site.wsgi.application"
ASGI_APPLICATION = "kokatto_site.asgi.application"

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'kokatto.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the django-q2 cluster share one SQLite file: WAL lets
    # readers run beside the writer, IMMEDIATE takes the write lock up front so
    # concurrent transactions wait (up to `timeout`) instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# django-prometheus's wrappers of the same backends count connections, queries and errors.
_ENGINES_COUNTED = {"django.db.backends.sqlite3", "django.db.backends.postgresql"}
if DATABASES["default"]["ENGINE"] in _ENGINES_COUNTED:
    DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
        "django.db.backends.", "django_prometheus.db.backends."
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The API's create statement is prepared on each database connection (notifications/
# bulk_insert.py). Off behind a pooler that does not keep prepared statements: PgBouncer in
# transaction mode before 1.22, or with max_prepared_statements = 0.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# django-q2: the ORM broker by default, Redis when REDIS_URL is set.
# `retry` stays above `timeout`: a task running past `retry` is started again.
Q_CLUSTER = {
    "name": "kokatto",
    "workers": env.int("Q_WORKERS", default=2),
    # A task may run this long: sized for the largest batch file (a million lines
    # take about a minute). `retry` stays above it, or django-q2 would start a
    # second copy of a long ingest (which its lease would turn away anyway).
    "timeout": env.int("Q_TIMEOUT", default=1800),
    "retry": env.int("Q_RETRY", default=1900),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=5),
    "catch_up": False,
    "save_limit": env.int("Q_SAVE_LIMIT", default=1000),
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Batch files (client inboxes, outboxes, archives) go through this storage.
# Local disk by default; any django-storages backend (SFTPStorage, S3Storage)
# by setting BATCH_STORAGE_BACKEND and its BATCH_STORAGE_OPTIONS (JSON).
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "batches": {
        "BACKEND": env.str(
            "BATCH_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": env.json(
            "BATCH_STORAGE_OPTIONS", default={"location": str(VAR_DIR / "batches")}
        ),
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The default local batch storage exists from the start, so /readyz finds it before the
# first upload (a configured storage must exist already: its absence fails /readyz).
if "BATCH_STORAGE_BACKEND" not in env and "BATCH_STORAGE_OPTIONS" not in env:
    (VAR_DIR / "batches").mkdir(exist_ok=True)

# Batch ingestion (batches/): see the README's "Batch files".
BATCH_POLL_MINUTES = env.int("BATCH_POLL_MINUTES", default=1)
BATCH_CHUNK_LINES = env.int("BATCH_CHUNK_LINES", default=2000)
BATCH_LEASE_SECONDS = env.int("BATCH_LEASE_SECONDS", default=300)
# A batch whose runs keep ending in an error before storing a chunk is FAILED
# (INGEST_ERROR) after this many, instead of being queued again forever.
BATCH_MAX_RUNS_WITHOUT_PROGRESS = env.int("BATCH_MAX_RUNS_WITHOUT_PROGRESS", default=3)
BATCH_MAX_UNCOMPRESSED_BYTES = env.int("BATCH_MAX_UNCOMPRESSED_BYTES", default=2 * 1024**3)
BATCH_MAX_RATIO = env.int("BATCH_MAX_RATIO", default=3000)
# The uploaded file itself (archive or CSV): a larger one is FILE_TOO_LARGE, moved to
# failed/ without a scratch copy.
BATCH_MAX_FILE_BYTES = env.int("BATCH_MAX_FILE_BYTES", default=2 * 1024**3)
# Lines of a batch, blank ones too (TOO_MANY_LINES, refused while unpacking), and rejected
# lines stored per batch (past it the batch stops: TOO_MANY_REJECTIONS).
BATCH_MAX_LINES = env.int("BATCH_MAX_LINES", default=1_000_000)
BATCH_MAX_REJECTED_LINES = env.int("BATCH_MAX_REJECTED_LINES", default=100_000)
# Local scratch space for a batch being ingested (the storage itself may be remote).
BATCH_WORK_DIR = env.str("BATCH_WORK_DIR", default=str(VAR_DIR / "batch-work"))
# A client's OpenPGP public key (batches/openpgp_keys.py): RSA keys need at least this many
# bits (elliptic-curve keys are always accepted), and a key file may be at most this large
# (an armoured RSA-4096 key with a few signatures is under 10 KB).
OPENPGP_MIN_RSA_BITS = env.int("OPENPGP_MIN_RSA_BITS", default=2048)
OPENPGP_MAX_KEY_BYTES = env.int("OPENPGP_MAX_KEY_BYTES", default=64 * 1024)
# The deadline of one gpg run on a batch file (decrypting an upload, or encrypting its result):
# gpg is killed past it and the run fails, to be tried again. gpg decrypts about 100 MB/s.
# It must stay below BATCH_LEASE_SECONDS (a check says so): no lease is renewed during a run.
OPENPGP_GPG_SECONDS = env.int("OPENPGP_GPG_SECONDS", default=240)
# Where every gpg operation's throwaway home is made (private keys are imported into it): a
# tmpfs (/dev/shm) when there is one, so keys never reach a disk. Homes a killed worker left
# are removed (their gpg-agent stopped) at the start of each ingest run. Keep the path short:
# gpg-agent's sockets are made inside each home, and a socket's path is limited to ~100 chars.
# Shared by all users: a directory there is used only if it is ours (gnupg_home_new checks).
TMPFS = Path("/dev/shm")  # noqa: S108
OPENPGP_HOME_DIR = Path(
    env.str(
        "OPENPGP_HOME_DIR",
        default=str(
            TMPFS / f"kokatto-gnupg-{os.getuid()}" if TMPFS.is_dir() else VAR_DIR / "gnupg"
        ),
    )
)

# File-transfer gateway (batches/gateway/): clients upload batch files over SFTP.
# Largest file one upload may write; past it the upload is refused and removed.
GATEWAY_MAX_FILE_BYTES = env.int("GATEWAY_MAX_FILE_BYTES", default=BATCH_MAX_FILE_BYTES)
# The SFTP gateway (`run_sftp_gateway`): where it listens.
SFTP_BIND_ADDRESS = env.str("SFTP_BIND_ADDRESS", default="127.0.0.1")
SFTP_PORT = env.int("SFTP_PORT", default=2222)
# Its ed25519 host key, OpenSSH PEM text; the same on every gateway machine behind one
# address. Unset: generated once into var/ (fine for one machine and `make run`).
SFTP_HOST_KEY = sftp_host_key(env.str("SFTP_HOST_KEY", default=""), VAR_DIR / "sftp_host_key")
# Seconds a connection has to log in and open its SFTP session, and seconds an SFTP
# session may stay silent before it is closed.
SFTP_LOGIN_TIMEOUT = env.int("SFTP_LOGIN_TIMEOUT", default=30)
SFTP_IDLE_TIMEOUT = env.int("SFTP_IDLE_TIMEOUT", default=600)
# The FTPS gateway (`run_ftps_gateway`, batches/gateway/ftps.py): explicit TLS (AUTH TLS),
# TLS 1.2 or newer, required on the control and the data connection. Where it listens.
FTPS_BIND_ADDRESS = env.str("FTPS_BIND_ADDRESS", default="127.0.0.1")
FTPS_PORT = env.int("FTPS_PORT", default=2121)
# Ports offered for passive data connections, "first-last" (e.g. "60000-60099", to open in
# a firewall); empty: any free port the system picks (fine on one machine).
FTPS_PASSIVE_PORTS = env.str("FTPS_PASSIVE_PORTS", default="")
# The address given to clients in PASV answers when the gateway is behind NAT; empty: its own.
FTPS_MASQUERADE_ADDRESS = env.str("FTPS_MASQUERADE_ADDRESS", default="")
# Plain FTP (no TLS: passwords and files in clear) is refused unless this is on, for a
# legacy private link only; the gateway accounts' admin page then says so in red.
FTPS_ALLOW_PLAIN_FTP = env.bool("FTPS_ALLOW_PLAIN_FTP", default=False)
# Seconds a connection has to log in, and seconds the control connection may stay silent
# between commands (a transfer in progress is not silence; a stalled data connection is
# closed after the same time). By default the SFTP gateway's.
FTPS_LOGIN_TIMEOUT = env.int("FTPS_LOGIN_TIMEOUT", default=SFTP_LOGIN_TIMEOUT)
FTPS_IDLE_TIMEOUT = env.int("FTPS_IDLE_TIMEOUT", default=SFTP_IDLE_TIMEOUT)
# Its certificate and private key, PEM text; the same on every gateway machine behind one
# address. Unset: an ECDSA key and a self-signed certificate for localhost and 127.0.0.1
# are generated once into var/ (fine for one machine and `make run`).
FTPS_CERTIFICATE, FTPS_PRIVATE_KEY = ftps_certificate(
    env.str("FTPS_CERTIFICATE", default=""),
    env.str("FTPS_PRIVATE_KEY", default=""),
    VAR_DIR / "ftps_certificate.pem",
    VAR_DIR / "ftps_private_key.pem",
)
# Which of SFTP_HOST_KEY, FTPS_CERTIFICATE and FTPS_PRIVATE_KEY were generated into var/
# (name -> file): `check --deploy` refuses those when DEBUG is off (batches/checks.py).
GATEWAY_IDENTITY_READ_FROM_VAR = gateway_identity_read_from_var()
# Open connections one source address may hold (past it a new one is closed before any
# handshake), and logged-in sessions one account may hold (past it a login is refused).
# Counted per gateway process (batches/gateway/limits.py says why): behind a load balancer
# of N gateways an account may hold N times its limit.
GATEWAY_MAX_CONNECTIONS_PER_ADDRESS = env.int("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", default=50)
GATEWAY_MAX_SESSIONS_PER_ACCOUNT = env.int("GATEWAY_MAX_SESSIONS_PER_ACCOUNT", default=10)
# File-transfer gateway's brute-force defence (batches/gateway/defender.py), shared by every
# gateway machine through the database. A failed login scores against its source address
# (an IPv6 one by its /64) and its user name; a source whose score reaches the threshold
# within the window (counted from its first failure) is refused for the ban time, doubled
# on each repeat ban, at most the maximum.
GATEWAY_BAN_THRESHOLD = env.int("GATEWAY_BAN_THRESHOLD", default=10)
GATEWAY_BAN_WINDOW_SECONDS = env.int("GATEWAY_BAN_WINDOW_SECONDS", default=300)
GATEWAY_BAN_SECONDS = env.int("GATEWAY_BAN_SECONDS", default=900)
GATEWAY_BAN_MAX_SECONDS = env.int("GATEWAY_BAN_MAX_SECONDS", default=24 * 3600)
# How long a source that was banned is remembered (a repeat ban within it lasts longer), and
# how long failed logins stay listed in the admin; at most the newest this many are kept.
GATEWAY_DEFENDER_KEEP_SECONDS = env.int("GATEWAY_DEFENDER_KEEP_SECONDS", default=7 * 24 * 3600)
GATEWAY_FAILURE_LOG_MAX_ROWS = env.int("GATEWAY_FAILURE_LOG_MAX_ROWS", default=100_000)

# Personal data (UU PDP 27/2022; the README's "Personal data (UU PDP)"). A finished
# notification's parameters, rendered texts and recipients are purged this many days after
# it was accepted, unless its client sets its own period (Client.retention_days).
NOTIFICATION_RETENTION_DAYS = env.int("NOTIFICATION_RETENTION_DAYS", default=365)
# Days after a batch finished that its original (archive/, or failed/) and its result file
# (outbox/) are deleted from the batch storage.
BATCH_ARCHIVE_RETENTION_DAYS = env.int("BATCH_ARCHIVE_RETENTION_DAYS", default=90)
BATCH_RESULT_RETENTION_DAYS = env.int("BATCH_RESULT_RETENTION_DAYS", default=30)
# Days the logs that name people or their addresses are kept: the gateway's events (its
# failed logins: GATEWAY_DEFENDER_KEEP_SECONDS), and django-axes' sign-in attempts and logs.
GATEWAY_EVENT_RETENTION_DAYS = env.int("GATEWAY_EVENT_RETENTION_DAYS", default=180)
SIGN_IN_LOG_RETENTION_DAYS = env.int("SIGN_IN_LOG_RETENTION_DAYS", default=180)
# Days the records of who read personal data (PersonalDataAccess: staff names and
# addresses) are kept: long enough to answer for a reading long after it happened.
PERSONAL_DATA_ACCESS_RETENTION_DAYS = env.int("PERSONAL_DATA_ACCESS_RETENTION_DAYS", default=730)
# Rows purged (or deleted) per transaction: short locks, and a killed run loses one chunk.
RETENTION_CHUNK_SIZE = env.int("RETENTION_CHUNK_SIZE", default=1000)
# The key of the recipients' keyed hash (HMAC-SHA256) kept after the purge. Set it in
# production and never change it: a new key makes every stored hash unfindable. Derived
# from SECRET_KEY when unset (so rotating SECRET_KEY would change it too; `check --deploy`
# warns). The prefix is notifications.recipient_digest.DERIVED_KEY_PREFIX.
RECIPIENT_HASH_KEY = env.str("RECIPIENT_HASH_KEY", default="") or (
    "kokatto-recipient-digest:" + SECRET_KEY
)
# Rows of a notification export (CSV) read from the database at a time: the memory it takes.
NOTIFICATION_EXPORT_CHUNK_ROWS = env.int("NOTIFICATION_EXPORT_CHUNK_ROWS", default=2000)

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "Asia/Jakarta"
USE_I18N = True
USE_TZ = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Admin sign-in (kokatto_site/sign_in/): see the README's "Security".
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# django-axes: this many failed sign-ins for one user name (from any address), or from one
# address (over any user names), lock that user name or address out for SIGN_IN_LOCKOUT_MINUTES
# after the last failure. Counted in the database, so every web worker sees the same lock-outs.
AXES_FAILURE_LIMIT = env.int("SIGN_IN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SIGN_IN_LOCKOUT_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "clients.client_address.client_address"
AXES_LOCKOUT_TEMPLATE = "sign_in/locked_out.html"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Two-factor sign-in (django-otp, TOTP and backup codes) for every admin user; on unless DEBUG.
ADMIN_TWO_FACTOR_REQUIRED = env.bool("ADMIN_TWO_FACTOR_REQUIRED", default=not DEBUG)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Kokatto")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# HTTPS, cookies and the admin's session (README "Security"). With DEBUG off, plain
# http is redirected to https; set SECURE_SSL_REDIRECT=false when a TLS-terminating
# proxy redirects instead.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# HSTS: browsers use only https for this host for a year. includeSubDomains and preload
# bind every sub-domain of the host name (preload: in browsers' built-in lists, for
# months): the domain owner's decision, so off unless set, and Django's reminders of
# them (security.W005, W021) are silenced while they are deliberately off.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [
    *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
    *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
]
# True only behind a proxy of ours (TLS terminator, load balancer) that is the only way in
# and sets X-Forwarded-Proto and X-Forwarded-For itself: then the first says whether the
# client used https, and the right-most entry of the second is the client address that
# sign-in throttling counts. Anyone else can send those headers.
BEHIND_TRUSTED_PROXY = env.bool("BEHIND_TRUSTED_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TRUSTED_PROXY else None
# Cookies only over https (off by default with DEBUG, for `make run` on plain http),
# never read by scripts, not sent on cross-site sub-requests.
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
# An admin session ends a working day (in seconds) after sign-in, and when the browser
# closes (its cookie has no expiry).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=9 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts, styles and images from this site only,
# no inline script or style anywhere, never framed. CSP_REPORT_ONLY=true sends it as
# Content-Security-Policy-Report-Only (to try a change of it); CSP_REPORT_URI receives
# the browsers' reports of what it blocked.
_CSP = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "report-uri": env.list("CSP_REPORT_URI", default=[]) or None,
    }
}
if env.bool("CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # `format` is a signed parameter of the API, not DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Kokatto notification API",
    "DESCRIPTION": "The signed /notif endpoint: create, status and cancel notifications.",
    "VERSION": "1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No schema validator badge: it would send the schema's address to swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}
# The API's documentation (/api/docs/, /api/schema/) for anyone, or (false) for the
# admin's signed-in users only. It describes the signed /notif contract that clients
# are given anyway, and no secret: public unless the operator decides otherwise.
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=True)

# Content templates (templates_app/template_language.py): see the README's "Content templates".
# A template part (subject, body, HTML body) longer than this is refused on save and in
# the preview, and never parsed; Gmail clips an HTML email past about 102 KB anyway.
TEMPLATE_MAX_CHARACTERS = env.int("TEMPLATE_MAX_CHARACTERS", default=100_000)
# Each process keeps two caches (parsed and prepared templates), each bounded by both.
TEMPLATE_CACHE_MAX_ENTRIES = env.int("TEMPLATE_CACHE_MAX_ENTRIES", default=4096)
TEMPLATE_CACHE_MAX_BYTES = env.int("TEMPLATE_CACHE_MAX_BYTES", default=32 * 1024**2)

# How far a request's `timestamp` may be from the server's clock.
API_TIMESTAMP_TOLERANCE_SECONDS = env.int("API_TIMESTAMP_TOLERANCE_SECONDS", default=300)
# How long each worker keeps a client's keys and application schema (clients/config_cache.py).
API_CONFIG_CACHE_SECONDS = env.int("API_CONFIG_CACHE_SECONDS", default=10)
# At most this many entries in that cache per worker; the least recently used leave first.
API_CONFIG_CACHE_MAX_ENTRIES = env.int("API_CONFIG_CACHE_MAX_ENTRIES", default=1000)
# Before the signature is checked, /notif refuses a body (or a GET's query string) past
# this many bytes with 413, unread, and a parameter name or value past this many
# characters with 400; at most DATA_UPLOAD_MAX_NUMBER_FIELDS (Django's, 1000) parameters.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
API_MAX_PARAMETER_CHARS = env.int("API_MAX_PARAMETER_CHARS", default=4096)
# An answer's status and a delivery's status are two enums of one field name in the schema.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "AnswerStatusEnum": "notifications.api.schema.ANSWER_STATUSES",
    "DeliveryStatusEnum": "notifications.models.DeliveryStatus",
}

# Delivery pipeline (notifications/dispatch.py).
DELIVERY_CHUNK_SIZE = env.int("DELIVERY_CHUNK_SIZE", default=50)
# A chunk goes out in groups: one statement renews a group's leases, one
# transaction records its outcomes; HTTP SMS backends keep up to
# DELIVERY_SEND_CONCURRENCY of a group's messages in flight at once, on the worker's
# own thread (other backends that send side by side get that many send threads).
DELIVERY_SEND_GROUP = env.int("DELIVERY_SEND_GROUP", default=50)
DELIVERY_SEND_CONCURRENCY = env.int("DELIVERY_SEND_CONCURRENCY", default=8)
DELIVERY_LEASE_SECONDS = env.int("DELIVERY_LEASE_SECONDS", default=120)
# The total deadline of one send, whatever the channel: from connecting to the
# provider's whole answer (HTTP), or to the SMTP server's acceptance. A worker sends
# a delivery only while its lease has longer than this to run, and renews the
# group's leases when half the lease is gone: so the lease must be more than twice
# this (manage.py check says so).
DELIVERY_SEND_TIMEOUT_SECONDS = env.float("DELIVERY_SEND_TIMEOUT_SECONDS", default=15)
# A dispatch task starts no send after this long (the rest of its chunk is put back):
# with the send timeout, well under Q_TIMEOUT, which kills a task between a send and
# its record (manage.py check says so).
DELIVERY_CHUNK_SECONDS = env.float("DELIVERY_CHUNK_SECONDS", default=300)
# A dispatch task claims chunk after chunk while they come back full, for this long,
# before it queues its successor: fewer round trips through the task queue, while
# other tasks wait at most about this long for a worker that dispatches.
DELIVERY_TASK_SECONDS = env.float("DELIVERY_TASK_SECONDS", default=5)
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=5)
DELIVERY_RETRY_BASE_SECONDS = env.int("DELIVERY_RETRY_BASE_SECONDS", default=30)
DELIVERY_RETRY_MAX_SECONDS = env.int("DELIVERY_RETRY_MAX_SECONDS", default=3600)

# Every call to a provider's HTTP API (notifications/backends/http.py): connecting may
# take the connect timeout, the whole exchange (connect, send, status, headers and
# body) at most DELIVERY_SEND_TIMEOUT_SECONDS, whatever pace the provider answers at;
# at most PROVIDER_HTTP_MAX_ANSWER_BYTES of the answer are read.
PROVIDER_HTTP_CONNECT_TIMEOUT_SECONDS = env.float(
    "PROVIDER_HTTP_CONNECT_TIMEOUT_SECONDS", default=3.05
)
PROVIDER_HTTP_MAX_ANSWER_BYTES = env.int("PROVIDER_HTTP_MAX_ANSWER_BYTES", default=64 * 1024)

# Callbacks to the client (notifications/client_callbacks.py): the same bounds for each
# POST to a client's server. One sweep at a time posts them, over at most
# CLIENT_CALLBACK_SEND_CONCURRENCY connections (one client at most half of them), and
# takes no new callback after CLIENT_CALLBACK_SWEEP_SECONDS, so callbacks hold at most
# one task worker, for about that long.
CLIENT_CALLBACK_MAX_ATTEMPTS = env.int("CLIENT_CALLBACK_MAX_ATTEMPTS", default=8)
CLIENT_CALLBACK_CONNECT_TIMEOUT_SECONDS = env.float(
    "CLIENT_CALLBACK_CONNECT_TIMEOUT_SECONDS", default=3.05
)
CLIENT_CALLBACK_TIMEOUT_SECONDS = env.float("CLIENT_CALLBACK_TIMEOUT_SECONDS", default=10)
CLIENT_CALLBACK_MAX_ANSWER_BYTES = env.int("CLIENT_CALLBACK_MAX_ANSWER_BYTES", default=4096)
CLIENT_CALLBACK_SEND_CONCURRENCY = env.int("CLIENT_CALLBACK_SEND_CONCURRENCY", default=8)
CLIENT_CALLBACK_SWEEP_SECONDS = env.int("CLIENT_CALLBACK_SWEEP_SECONDS", default=60)

# Requests into the private network (clients/outbound.py): a callback URL must be
# https (plain http too with CLIENT_CALLBACK_ALLOW_HTTP, for development only; off even
# in `make run`), and a callback connects only to public addresses, plus the networks of
# OUTBOUND_ALLOWED_NETWORKS, minus those of OUTBOUND_DENIED_NETWORKS (comma-separated
# CIDRs, e.g. "10.20.0.0/16,fd12::/64"; denied wins). Provider URLs are not checked.
CLIENT_CALLBACK_ALLOW_HTTP = env.bool("CLIENT_CALLBACK_ALLOW_HTTP", default=False)
OUTBOUND_ALLOWED_NETWORKS = env.list("OUTBOUND_ALLOWED_NETWORKS", default=[])
OUTBOUND_DENIED_NETWORKS = env.list("OUTBOUND_DENIED_NETWORKS", default=[])

# Delivery receipts (/callbacks/…): Twilio signs its status callbacks with the auth
# token over the URL it called; a generic gateway calls a URL holding a secret token.
TWILIO_STATUS_CALLBACK_URL = env.str("TWILIO_STATUS_CALLBACK_URL", default="")
SMS_GATEWAY_CALLBACK_TOKEN = env.str("SMS_GATEWAY_CALLBACK_TOKEN", default="")
# A receipt can come before its send is recorded: it waits this long for the send.
RECEIPT_WAIT_HOURS = env.int("RECEIPT_WAIT_HOURS", default=24)

# Email: EMAIL_URL in django-environ's form (smtp://user:pass@host:587, smtp+tls://…);
# the console by default, so `make run` prints what it would send.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
# Each SMTP operation's timeout; a whole send is also cut at DELIVERY_SEND_TIMEOUT_SECONDS.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10)
# SMTP (notifications/backends/smtp_pool.py): a worker process keeps up to
# EMAIL_MAX_CONNECTIONS connections open and sends over them side by side (the SMTP
# server sees up to Q_WORKERS times that: keep it within the server's limit per
# client); each is closed after EMAIL_CONNECTION_MAX_MESSAGES messages or
# EMAIL_CONNECTION_MAX_SECONDS, and when the worker exits.
EMAIL_MAX_CONNECTIONS = env.int("EMAIL_MAX_CONNECTIONS", default=4)
EMAIL_CONNECTION_MAX_MESSAGES = env.int("EMAIL_CONNECTION_MAX_MESSAGES", default=100)
EMAIL_CONNECTION_MAX_SECONDS = env.float("EMAIL_CONNECTION_MAX_SECONDS", default=60)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Kokatto <no-reply@kokatto.local>")

# Channel backends per medium, in failover order (notifications/backends/).
_CONSOLE = {"BACKEND": "notifications.backends.console.ConsoleBackend"}
_SMS_BACKENDS = {
    "console": _CONSOLE,
    "twilio": {
        "BACKEND": "notifications.backends.http_sms.TwilioSmsBackend",
        "OPTIONS": {
            "account_sid": env.str("TWILIO_ACCOUNT_SID", default=""),
            "auth_token": env.str("TWILIO_AUTH_TOKEN", default=""),
            "sender_id": env.str("SMS_SENDER_ID", default=""),
            "base_url": env.str("TWILIO_BASE_URL", default="https://api.twilio.com"),
            "status_callback_url": env.str("TWILIO_STATUS_CALLBACK_URL", default=""),
            "rate_per_second": env.float("SMS_RATE_PER_SECOND", default=0),
        },
    },
    "http": {
        "BACKEND": "notifications.backends.http_sms.HttpSmsBackend",
        "OPTIONS": {
            "url": env.str("SMS_GATEWAY_URL", default=""),
            "username": env.str("SMS_GATEWAY_USERNAME", default=""),
            "password": env.str("SMS_GATEWAY_PASSWORD", default=""),
            "token": env.str("SMS_GATEWAY_TOKEN", default=""),
            "sender_id": env.str("SMS_SENDER_ID", default=""),
            "rate_per_second": env.float("SMS_RATE_PER_SECOND", default=0),
        },
    },
}
_WHATSAPP_BACKENDS = {
    "console": _CONSOLE,
    "cloud": {
        "BACKEND": "notifications.backends.whatsapp.WhatsAppCloudBackend",
        "OPTIONS": {
            "phone_number_id": env.str("WHATSAPP_PHONE_NUMBER_ID", default=""),
            "access_token": env.str("WHATSAPP_ACCESS_TOKEN", default=""),
            "language": env.str("WHATSAPP_LANGUAGE", default="id"),
            "base_url": env.str("WHATSAPP_BASE_URL", default="https://graph.facebook.com/v21.0"),
            "rate_per_second": env.float("WHATSAPP_RATE_PER_SECOND", default=0),
        },
    },
}
KOKATTO_CHANNEL_BACKENDS = {
    "sms": [_SMS_BACKENDS[name] for name in env.list("SMS_BACKENDS", default=["console"])],
    "email": [{"BACKEND": "notifications.backends.email.DjangoEmailBackend"}],
    "whatsapp": [
        _WHATSAPP_BACKENDS[name] for name in env.list("WHATSAPP_BACKENDS", default=["console"])
    ],
}
# WhatsApp's webhook (/callbacks/whatsapp/): the app secret signs its POSTs; the
# verify token answers Meta's subscription handshake.
WHATSAPP_APP_SECRET = env.str("WHATSAPP_APP_SECRET", default="")
WHATSAPP_VERIFY_TOKEN = env.str("WHATSAPP_VERIFY_TOKEN", default="")

# Phone numbers without a country code are read as Indonesian numbers.
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="ID")

# Support's search box (notifications/search.py): a phone number or an email address
# finds at most this many notifications (the newest), a page's worth several times over.
SUPPORT_SEARCH_MAX_MATCHES = env.int("SUPPORT_SEARCH_MAX_MATCHES", default=1000)
# An admin list's row count on PostgreSQL (clients/admin_scoping.py) may take at most
# this long; past it the page shows the planner's estimate instead of scanning on.
ADMIN_COUNT_TIMEOUT_MS = env.int("ADMIN_COUNT_TIMEOUT_MS", default=100)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Replaces Django's own console handler, so that each line is printed once.
    "loggers": {"django": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# Watching the platform (kokatto_site/health.py, kokatto_site/metrics.py; README "Watching
# the platform"). /readyz answers within this many seconds whatever hangs: its checks run
# side by side, each with timeouts of about this length.
READYZ_TIMEOUT_SECONDS = env.float("READYZ_TIMEOUT_SECONDS", default=0.5)
# ... and gives the same answer again for this many seconds, so that a flood of probes
# (they need no sign-in) opens no more connections to the peers than one a second does.
READYZ_CACHE_SECONDS = env.float("READYZ_CACHE_SECONDS", default=1.0)
# Who may read /metrics: a bearer token (Authorization: Bearer <token>) and/or the
# scrapers' networks (comma-separated CIDRs); with both set, both are required. With
# neither, /metrics answers only with DEBUG on or to a loopback address.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
# The delivery queue's figures are read from the database at scrape time: the due
# deliveries counted up to this many (an index range, bounded), and kept in the shared
# cache this many seconds (0: read at every scrape).
METRICS_QUEUE_COUNT_LIMIT = env.int("METRICS_QUEUE_COUNT_LIMIT", default=100_000)
METRICS_QUEUE_CACHE_SECONDS = env.int("METRICS_QUEUE_CACHE_SECONDS", default=15)
# The operators' dashboard on the admin's front page (kokatto_site/dashboard.py): its
# figures are cached this long per set of visible clients (a page load is then one
# cache read), and it lists at most DASHBOARD_BATCHES_SHOWN batches in progress.
DASHBOARD_CACHE_SECONDS = env.int("DASHBOARD_CACHE_SECONDS", default=30)
DASHBOARD_BATCHES_SHOWN = env.int("DASHBOARD_BATCHES_SHOWN", default=20)
