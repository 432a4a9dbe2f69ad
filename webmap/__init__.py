"""webmap: protecting Cần Thơ's postal, telecom and IT infrastructure on an offline web map."""

__version__ = "0.1.0"


def create_app(test_config=None):
    """Build the Flask app (imported lazily so the CLI starts fast)."""
    from webmap.app import create_app as _create_app

    return _create_app(test_config)
