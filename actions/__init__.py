"""Custom actions for the rasa-sdk action server (`python -m rasa_sdk --actions actions`).

One module per capability; each is a thin adapter over the core in ``salon/``.
"""

from salon.logmask import install_log_masking

# The action server imports this package first: its logs carry no personal data.
install_log_masking()


def _close_backends_on_stop() -> None:
    """Under ``python -m rasa_sdk`` the server's Sanic app (``rasa_sdk``) exists before
    this package is imported: close the action server's connections when it stops, so
    SIGTERM ends the process at once. Imported anywhere else (tests), nothing to do."""
    from sanic import Sanic
    from sanic.exceptions import SanicException

    try:
        app = Sanic.get_app("rasa_sdk")
    except SanicException:
        return

    async def close(_app: Sanic, _loop: object) -> None:
        from actions import backends

        await backends.close()

    app.register_listener(close, "after_server_stop")


_close_backends_on_stop()
