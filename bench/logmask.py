"""Log masking benchmark: what one log record costs with the masking record factory,
against the same records without it (the baseline, in the same run).

Records like the channel's (a wamid, a client id, a status) and like Rasa's debug lines
(the client's text quoted) go through a real handler writing to an in-memory stream, with
500 remembered message bodies (the most the masking keeps). Figures: microseconds per
record for both and the overhead. The last line is one JSON object.

Options: --records (default 20,000).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import time

from salon.logmask import install_log_masking, remember, uninstall_log_masking

LINES = [
    ("message %s to %s failed: %s", ("wamid.HBgLMzM2MDAwMDAwMDEVAgARGBI", "33600000001", "131047 re-engagement")),
    ("turn for %s (%s) failed; recorded as failed in the inbox", ("US.13491208655302741918", "wamid.HBgL")),
    ("Received user message 'Bonjour, je cherche le sac Sillage en cognac' with intent '%s'", ("product_inquiry",)),
    ("parked item %s has no message; dropped: %r", (7, {"text": {"body": "Pouvez-vous me rappeler ?"}})),
    ("webhook refused: body of %d bytes is over %d", (4096, 3145728)),
]


def run(records: int) -> float:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("bench.logmask")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    start = time.perf_counter()
    for index in range(records):
        msg, args = LINES[index % len(LINES)]
        logger.info(msg, *args)
    return (time.perf_counter() - start) / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    for index in range(500):
        remember(f"un message de cliente numéro {index} avec assez de texte")
    uninstall_log_masking()
    baseline = run(args.records)
    install_log_masking()
    masked = run(args.records)
    uninstall_log_masking()
    print(f"baseline (no masking): {baseline:.1f} µs per record")
    print(f"masked:                {masked:.1f} µs per record")
    print(f"overhead:              {masked - baseline:.1f} µs per record ({masked / baseline:.1f}x)")
    print(json.dumps({"records": args.records, "baseline_us_per_record": round(baseline, 2),
                      "masked_us_per_record": round(masked, 2), "overhead_us_per_record": round(masked - baseline, 2)}))


if __name__ == "__main__":
    main()
