"""One error handler: JSON for /api paths, a short HTML page elsewhere; never a traceback to the user."""

from __future__ import annotations

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from webmap.errors import WebmapError
from webmap.i18n import current_language


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _answer(status: int, message: str):
    if _wants_json():
        response = jsonify({"status": status, "error": message})
        response.status_code = status
        return response
    return render_template("error.html", status=status, message=message), status


def init_app(app):
    @app.errorhandler(WebmapError)
    def handle_webmap_error(exc):
        status = exc.http_status
        if status >= 500:
            message = "internal error"
        elif _wants_json():  # the API answers in English (its clients are programs); pages in the visitor's language
            message = exc.message
        else:
            message = exc.localized(current_language())
        if status >= 500:
            app.logger.exception("webmap error")
        return _answer(status, message)

    @app.errorhandler(HTTPException)
    def handle_http_error(exc):
        return _answer(exc.code or 500, exc.description if exc.code and exc.code < 500 else "internal error")

    @app.errorhandler(Exception)
    def handle_internal_error(exc):
        app.logger.exception("unhandled error")
        return _answer(500, "internal error")
