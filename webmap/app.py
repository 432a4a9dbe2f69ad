"""The Flask app factory: config, store, blueprints, one error handler."""

from __future__ import annotations

import os

from flask import Flask, g

from webmap import config as config_mod
from webmap.store import default_store_url, open_store


# One module a URL area under webmap/views/, each with a blueprint named ``bp``.
BLUEPRINTS = ("auth", "pages", "upload", "api", "vendor", "tiles", "admin", "priority", "alerts", "exposure", "reports", "prints")


def create_app(test_config=None):
    instance = os.environ.get("WEBMAP_INSTANCE")
    app = Flask(__name__, instance_path=os.path.abspath(instance) if instance else None,
                instance_relative_config=True)
    app.config.from_mapping(config_mod.DEFAULTS)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.update(config_mod.from_environment())
    else:
        app.config.update(test_config)
    config_mod.validate(app.config)
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config_mod.instance_secret_key(app.instance_path)
    if not app.config["STORE_URL"]:
        app.config["STORE_URL"] = default_store_url(app.instance_path)
    app.extensions["webmap_store"] = open_store(app.config["STORE_URL"])

    from flask_wtf.csrf import CSRFProtect

    from importlib import import_module

    from webmap.views import errors

    # every POST/PUT/PATCH/DELETE must carry this session's token (form field or X-CSRFToken header)
    CSRFProtect(app)
    for name in BLUEPRINTS:
        app.register_blueprint(import_module(f"webmap.views.{name}").bp)
    errors.init_app(app)

    @app.after_request
    def security_headers(response):
        # Every asset is served by the app itself: 'self' suffices, and nothing may load from elsewhere.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    return app


def get_store():
    from flask import current_app

    return current_app.extensions["webmap_store"]
