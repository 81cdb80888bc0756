"""What the WhatsApp channel costs the Rasa server's own interpreter, per message.

The assistant is replaced by one that answers every message at once with one text, so
what is measured is the channel alone: the signed webhook of the message, its dedup
claim and window record, the turn, the reply through the send-time guard to the Graph
API (the emulator, in its own process), and the three status webhooks Meta sends back.
Clients write through the emulator from a separate driver process and wait for the
reply to be read before writing again.

Two runs, the same traffic:

- ``io_process``: the channel's pipeline in its companion process (the default); the
  server keeps the route and the turn;
- ``in_process`` (the baseline): the same pipeline inside the server's interpreter
  (``io_process: false``).

The figure is CPU time of the server's process (user + system) per message: that is
what Rasa's own turns compete with for its interpreter. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from salon.config import PROJECT_ROOT, Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator_subprocess
from salon.integrations.seed import seed_database


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _drive(base_url: str, clients: int, per_client: int, out: Any) -> None:
    """The clients, in their own process: write, wait for the reply to be read."""

    async def run() -> None:
        async with aiohttp.ClientSession(base_url=base_url) as admin:

            async def client(k: int) -> None:
                wa_id = f"4477{k:07d}"
                for i in range(per_client):
                    async with admin.post("/_emulator/inbound", json={"from": wa_id, "text": f"message {i}"}) as r:
                        assert r.status == 200, await r.text()
                    while True:
                        async with admin.get("/_emulator/outbox", params={"to": wa_id}) as r:
                            box = await r.json()
                        if len(box) > i and box[i]["status"] == "read":
                            break
                        await asyncio.sleep(0.02)

            started = time.perf_counter()
            await asyncio.gather(*(client(k) for k in range(clients)))
            out.put(time.perf_counter() - started)

    asyncio.run(run())


async def _measure(io_process: bool, clients: int, per_client: int) -> dict[str, float]:
    from tests.whatsapp_support import APP_SECRET, running_channel

    with tempfile.TemporaryDirectory(prefix="salon-overhead-") as tmp:
        db = Path(tmp) / "salon.db"
        seed_database(f"sqlite:///{db}", PROJECT_ROOT / "data" / "maison")
        settings = Settings(var_dir=Path(tmp), data_dir=Path(tmp), database_url=f"sqlite:///{db}", redis_url=None)
        config = EmulatorConfig(app_secret=APP_SECRET, throughput_per_second=10000)

        async def reply(message: Any) -> None:
            await message.output_channel.send_response(message.sender_id, {"text": "Noted, thank you."})

        async with running_emulator_subprocess(config) as emu:
            async with running_channel(settings, api_base_url=emu.base_url, reply=reply,
                                       access_token=config.access_token, io_process=io_process) as ch:
                async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                    async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                        assert r.status == 200, await r.text()
                context = multiprocessing.get_context("spawn")
                figures: dict[str, float] = {}
                for count in (2, clients):  # a warm-up, then the measured run
                    queue = context.Queue()
                    before = _cpu_seconds()
                    driver = context.Process(target=_drive, args=(emu.base_url, count, per_client, queue))
                    driver.start()
                    # The driver reports when done; wait in a thread so this loop keeps serving.
                    elapsed = await asyncio.to_thread(queue.get)
                    driver.join()
                    messages = count * per_client
                    figures = {"cpu_ms_per_msg": round((_cpu_seconds() - before) * 1000 / messages, 2),
                               "msgs_per_s": round(messages / elapsed, 1)}
                return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages-per-client", type=int, default=10)
    args = parser.parse_args(argv)
    # The channel on a real Sanic server, as its tests run it (tests/ is not installed).
    # Imported before any loop exists: Sanic installs uvloop's policy on import.
    sys.path.insert(0, str(PROJECT_ROOT))
    import tests.whatsapp_support  # noqa: F401
    io = asyncio.run(_measure(True, args.clients, args.messages_per_client))
    baseline = asyncio.run(_measure(False, args.clients, args.messages_per_client))
    print(f"server-side CPU per message, channel I/O in its companion process: {io['cpu_ms_per_msg']} ms "
          f"({io['msgs_per_s']} msg/s)")
    print(f"server-side CPU per message, channel I/O in the server (baseline):  {baseline['cpu_ms_per_msg']} ms "
          f"({baseline['msgs_per_s']} msg/s)")
    print(json.dumps({"io_process_cpu_ms_per_msg": io["cpu_ms_per_msg"],
                      "in_process_cpu_ms_per_msg": baseline["cpu_ms_per_msg"],
                      "io_process_msgs_per_s": io["msgs_per_s"], "in_process_msgs_per_s": baseline["msgs_per_s"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
