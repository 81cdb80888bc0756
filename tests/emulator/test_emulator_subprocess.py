"""``python -m salon.emulator`` as a separate process: flags, clock file, webhooks, stop."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import aiohttp

from salon.clock import read_offset_file
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import WebhookReceiver, running_emulator_subprocess


async def test_the_module_runs_as_a_process_and_shares_its_clock(tmp_path: Path) -> None:
    clock_file = tmp_path / "clock.json"
    async with WebhookReceiver() as receiver:
        config = EmulatorConfig(
            webhook_url=receiver.url,
            clock_file=str(clock_file),
            status_read_delay=None,
            status_sent_delay=0.01,
            status_delivered_delay=0.02,
        )
        async with (
            running_emulator_subprocess(config, log_file=tmp_path / "emulator.log") as emu,
            aiohttp.ClientSession() as session,
        ):
            assert emu.pid is not None
            async with session.get(f"{emu.base_url}/_emulator/config") as resp:
                public = await resp.json()
            assert public["webhook_url"] == receiver.url and public["base_url"] == emu.base_url
            async with session.post(
                f"{emu.base_url}/_emulator/inbound", json={"from": "33612345678", "text": "Hello"}
            ) as resp:
                assert resp.status == 200
            await receiver.wait_for(lambda r: r.messages())
            assert receiver.posts[0].signature_valid

            async with session.post(
                f"{emu.base_url}/_emulator/clock", json={"advance_seconds": 25 * 3600}
            ) as resp:
                assert resp.status == 200
            assert read_offset_file(clock_file) == timedelta(hours=25)

            body = {
                "messaging_product": "whatsapp",
                "to": "33612345678",
                "type": "text",
                "text": {"body": "late"},
            }
            async with session.post(emu.messages_url, json=body, headers=emu.auth_headers) as resp:
                wamid = (await resp.json())["messages"][0]["id"]
            failed = await receiver.wait_for(lambda r: r.statuses(wamid, "failed"))
            assert failed[0]["errors"][0]["code"] == 131047
        # the process is gone once the context exits
        async with aiohttp.ClientSession() as session:
            try:
                async with session.get(
                    f"{emu.base_url}/_emulator/health", timeout=aiohttp.ClientTimeout(total=1)
                ):
                    raise AssertionError("emulator still answering after exit")
            except aiohttp.ClientError:
                pass
