"""``python -m salon.emulator --port 5900 --webhook-url URL --clock-file PATH``.

Every :class:`~salon.emulator.config.EmulatorConfig` field has a flag (``--help``) and an
environment variable. Stops cleanly on SIGINT / SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from salon.emulator.app import create_app
from salon.emulator.config import EmulatorConfig, config_from_cli
from salon.emulator.server import EmulatorServer
from salon.loops import run_fast


async def serve(config: EmulatorConfig) -> None:
    """Run the emulator until SIGINT or SIGTERM, printing its URLs once it listens."""
    app = create_app(config)
    server = EmulatorServer(app, config.host, config.port)
    base_url = await server.start()
    print(
        f"salon emulator: {base_url} (Graph {base_url}/{config.api_version}, admin "
        f"{base_url}/_emulator/) → webhooks to {config.webhook_url or '(none)'}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: settings from flags and the environment, then :func:`serve`."""
    config = config_from_cli(argv)
    logging.basicConfig(level=os.environ.get("SALON_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_fast(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
