"""No personal data in logs: the masking itself, and real traffic through the WhatsApp
channel and the emulator with every record captured at DEBUG and scanned."""

from __future__ import annotations

import logging
import re

import pytest

from salon.config import Settings
from salon.logmask import MaskingFilter, install_log_masking, mask_record, mask_text, remember
from tests.test_whatsapp_sender import answer, say, settle, wired

CLAIRE = "33600000001"
EMAIL = "claire.laurent@example.com"
PHONE = "+33 6 12 34 56 78"
BODY = f"Bonjour, voici mon adresse {EMAIL} et mon portable {PHONE}, merci de me rappeler"
NAME = "Claire Laurent"

PHONE_RUN = re.compile(r"(?<![\w.])\+?\d(?:[\s\-.]?\d){7,14}(?!\w)")
EMAIL_RUN = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args or None, exc_info)


def test_phone_numbers_in_every_spelling_are_masked() -> None:
    for raw in ("+33612345678", "+33 6 12 34 56 78", "+1 (415) 555-0100", "33600000001", "wa_id=33600000001"):
        masked = mask_text(f"client {raw} wrote")
        assert not PHONE_RUN.search(masked), masked
        assert "[phone:" in masked
    # the same number gets the same tag, so lines can be correlated
    assert mask_text("33600000001") == mask_text("+33600000001")


def test_bsuids_emails_and_remembered_bodies_are_masked() -> None:
    masked = mask_text("from US.13491208655302741918 and FR.ABC123DEF.77 <jane.doe+x@mail.example.org>")
    assert "13491208655302741918" not in masked and "ABC123DEF" not in masked
    assert "jane.doe" not in masked and masked.count("[bsuid:") == 2 and "[email:" in masked
    remember("Je cherche le sac Sillage en cognac", "Hélène Dubois", "/opt_out", None)
    masked = mask_text("turn text=Je cherche le sac Sillage en cognac from Hélène Dubois intent /opt_out")
    assert "Sillage" not in masked and "Hélène" not in masked and "/opt_out" in masked


def test_short_remembered_values_are_masked_as_whole_words_only() -> None:
    remember("Ana")
    masked = mask_text("Ana wrote; the banana order was handled by Anabel")
    assert masked.startswith("[text:") and "banana" in masked and "Anabel" in masked


def test_rasa_lines_quoting_the_client_are_masked() -> None:
    line = "Received user message 'a secret only I know' with intent '{'name': 'greet'}'"
    assert "secret" not in mask_text(line)
    assert "secret" not in mask_text("""tracker {"event": "user", "text": "a secret only I know"}""")


def test_structured_arguments_and_tracebacks_are_masked() -> None:
    payload = {"to": "x", "text": {"body": "ma commande arrive quand ?"}, "profile_name": "Zoé Martin",
               "nested": [{"email": "zoe@example.com"}]}
    rec = mask_record(record("parked item %s: %r", 7, payload))
    text = rec.getMessage()
    assert "commande" not in text and "Zoé" not in text and "zoe@" not in text and "parked item 7" in text
    try:
        raise ValueError(f"no client for {EMAIL} / 33611112222")
    except ValueError as exc:
        rec = mask_record(record("failed", exc=exc))
    assert rec.exc_text and "ValueError" in rec.exc_text
    assert EMAIL not in rec.exc_text and "33611112222" not in rec.exc_text
    # as a handler filter too
    rec = record("from %s", CLAIRE)
    assert MaskingFilter().filter(rec) and CLAIRE not in rec.getMessage()


def test_ordinary_lines_stay_readable() -> None:
    line = "webhook refused: body of 4096 bytes is over 3145728; port 127.0.0.1:5005 batch 12 of 3 entries"
    assert mask_text(line) == line


def test_rasa_events_quoting_the_assistant_and_wamids_are_masked() -> None:
    # the processor's structured debug line: the events' reprs inside a JSON list
    line = ('{"action_name": "action_greet", "rasa_events": ["BotUttered(\'Good evening, Ms Laurent. I\'d be '
            'glad to help.\', {\\"buttons\\": [{\\"title\\": \\"Speak to Sophie\\"}]}, {}, 1795973651.2)"], '
            '"parse_data_text": "je suis Claire", "level": "debug"}')
    masked = mask_text(line)
    assert "Laurent" not in masked and "glad" not in masked and "Claire" not in masked
    assert "Speak to Sophie" in masked and "action_greet" in masked  # the rest stays readable
    masked = mask_text("BotUttered(text: Bonjour Madame Laurent, data: {}) UserUttered(text: c'est Claire, intent: x)")
    assert "Laurent" not in masked and "Claire" not in masked and masked.count("[text:") == 2
    # A response's lead (salon/whatsapp/merging.py) is its first sentence: masked like its text,
    # in the events' JSON (escaped) and in a structured argument.
    line = ('{"action_name": "action_greet", "rasa_events": ["BotUttered(\'Bonsoir Madame Laurent. Sophie\', '
            '{\\"buttons\\": [{\\"title\\": \\"Parler à Sophie\\"}]}, {\\"metadata\\": '
            '{\\"lead\\": \\"Bonsoir Madame Laurent, \\\\\\"chère\\\\\\" cliente.\\"}}, 1795973651.2)"]}')
    masked = mask_text(line)
    assert "Laurent" not in masked and "cliente" not in masked, masked
    assert "Parler à Sophie" in masked and "metadata" in masked
    masked = mask_text('{"metadata": {"lead": "Good evening, Ms Laurent."}}')
    assert "Laurent" not in masked and '"lead": [text:' in masked
    # base64 after "wamid." holds the client's number (HBgL + "33600000001" + ...)
    wamid = "wamid.HBgLMzM2MDAwMDAwMDEVAgASGBQwOTIwOTA0Mzc0OTcwQUM5RDhFQgA="
    masked = mask_text(f"status read for {wamid}")
    assert "wamid." not in masked and "MzM2MDAw" not in masked and masked == f"status read for {mask_text(wamid)}"


def test_loggers_tracing_raw_values_stay_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    raw = logging.getLogger("aiosqlite")
    raw.setLevel(logging.NOTSET)
    install_log_masking()
    caplog.set_level(logging.DEBUG)  # the process is configured for DEBUG afterwards
    assert logging.getLogger("salon.x").isEnabledFor(logging.DEBUG)
    assert not raw.isEnabledFor(logging.DEBUG) and raw.isEnabledFor(logging.INFO)


def scan(records: list[logging.LogRecord], forbidden: list[str]) -> list[str]:
    leaks = []
    for rec in records:
        text = rec.getMessage() + (rec.exc_text or "") + (rec.stack_info or "")
        if PHONE_RUN.search(text) or EMAIL_RUN.search(text) or any(f in text for f in forbidden):
            leaks.append(f"{rec.name}: {text}")
    return leaks


@pytest.mark.parametrize("name", ["channel"])
async def test_real_traffic_through_the_channel_logs_no_personal_data(
    settings: Settings, caplog: pytest.LogCaptureFixture, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two answers, each its own message: her second message may arrive while the first
    # turn runs, which would merge them.
    monkeypatch.setenv("SALON_MERGE_REPLIES", "off")
    install_log_masking()
    caplog.set_level(logging.DEBUG)
    async with wired(settings, answer("Merci, nous revenons vers vous très vite.", utter_action="utter_ack")) as (
        ch, emu, admin,
    ):
        await say(admin, **{"from": CLAIRE, "text": BODY, "name": NAME})
        await say(admin, **{"from": CLAIRE, "text": f"Encore moi, {NAME}, écrivez à {EMAIL}", "name": NAME})
        box = await settle(ch, admin, CLAIRE, 2)
    assert len(box) == 2 and [m.text for m in ch.received][0] == BODY
    assert len(caplog.records) > 20, "the run logged too little to prove anything"
    leaks = scan(caplog.records, [CLAIRE, EMAIL, NAME, "Laurent", "portable", "Encore moi"])
    assert leaks == []


async def test_the_companion_io_process_logs_no_personal_data(
    settings: Settings, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WhatsApp I/O child installs the masking in its main(): its stderr, at DEBUG,
    carries none of what the client wrote or who they are."""
    from tests.test_whatsapp_io_process import outbox as io_outbox
    from tests.test_whatsapp_io_process import wait_until
    from tests.test_whatsapp_io_process import wired as io_wired

    monkeypatch.setenv("SALON_LOG_LEVEL", "DEBUG")
    async with io_wired(settings, answer("Merci, nous revenons vers vous très vite.")) as (ch, admin):
        await say(admin, **{"from": CLAIRE, "text": BODY, "name": NAME})
        await wait_until(lambda: _sent(io_outbox, admin))
    err = capfd.readouterr().err
    # the message part of each line (the time stamp in front is digits too)
    child = [line.split(" - ", 1)[-1] for line in err.splitlines() if "whatsapp-io[" in line]
    # the message, its reply and the reply's statuses were logged, masked
    assert any(line.startswith("message [wamid:") and "from [phone:" in line for line in child), child
    assert any(line.startswith("send to [phone:") and "free_form [wamid:" in line for line in child), child
    assert any(line.startswith("status sent for [phone:") for line in child), child
    leaks = [line for line in child
             if PHONE_RUN.search(line) or EMAIL_RUN.search(line) or any(f in line for f in (CLAIRE, NAME, "portable"))]
    assert leaks == []


async def _sent(outbox_of, admin) -> bool:  # type: ignore[no-untyped-def]
    return any(m["status"] == "read" for m in await outbox_of(admin, CLAIRE))
