"""Settings of the Django Channels relay that `tools/bench/compare.py` measures Airwave
against: no database, no sessions, no auth middleware, the in-memory channel layer with its
default capacity (100 messages per channel), DEBUG off."""

SECRET_KEY = "airwave-bench-django-relay-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["daphne", "channels"]
ASGI_APPLICATION = "relay.asgi.application"
DATABASES = {}
USE_TZ = True
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
