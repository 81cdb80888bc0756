"""`rasa data validate --fail-on-warnings`, with form and action responses counted as used.

Rasa 3.6's validator treats every response as a story action, so a response that only a
form asks (`utter_ask_<slot>`) or only a custom action sends
(`dispatcher.utter_message(response=...)`) is reported as unused, and
`--fail-on-warnings` then fails every project with a form (RasaHQ/rasa#11843 describes
the inverted warning handling). This script runs the same checks as the CLI, counts those
two uses as uses, fails on every other warning, and also fails when an action names a
response the domain does not define.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

# Intents the WhatsApp channel triggers as `/intent` for messages without text (media,
# locations, contacts, catalog orders, unsupported types): they have no NLU examples.
CHANNEL_TRIGGERED_INTENTS = frozenset(
    {"share_media", "share_location", "share_contact", "place_order", "unsupported_message",
     # triggered by the outbound worker through Rasa's trigger_intent
     "advisor_followup"}
)
NO_NLU_EXAMPLES = re.compile(r"The intent '([a-z_]+)' is listed in the domain file, but is not found in the NLU training data")

RESPONSE_IN_CODE = re.compile(r"""response\s*=\s*["'](utter_[A-Za-z0-9_]+)["']""")


def responses_sent_by_actions(actions_dir: Path) -> set[str]:
    names: set[str] = set()
    for source in sorted(actions_dir.rglob("*.py")):
        names.update(RESPONSE_IN_CODE.findall(source.read_text(encoding="utf-8")))
    return names


def responses_asked_by_forms(domain) -> set[str]:  # type: ignore[no-untyped-def]
    asked: set[str] = set()
    for form, definition in domain.forms.items():
        for slot in definition.get("required_slots", []):
            for name in (f"utter_ask_{form}_{slot}", f"utter_ask_{slot}"):
                if name in domain.responses:
                    asked.add(name)
                    break
    return asked


def _channel_triggered(warning: str) -> bool:
    match = NO_NLU_EXAMPLES.search(warning)
    return bool(match and match.group(1) in CHANNEL_TRIGGERED_INTENTS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="config.yml")
    parser.add_argument("--domain", default="domain.yml")
    parser.add_argument("--data", default="data")
    parser.add_argument("--actions", default="actions")
    args = parser.parse_args(argv)

    from rasa.shared.importers.importer import TrainingDataImporter
    from rasa.shared.utils.io import raise_warning
    from rasa.validator import Validator

    importer = TrainingDataImporter.load_from_config(
        args.config, args.domain, training_data_paths=[args.data]
    )
    validator = Validator.from_importer(importer)
    domain = importer.get_domain()
    if domain.is_empty():
        print("validate: the domain is empty", file=sys.stderr)
        return 1

    used_elsewhere = responses_asked_by_forms(domain) | responses_sent_by_actions(Path(args.actions))
    missing = sorted(name for name in responses_sent_by_actions(Path(args.actions)) if name not in domain.responses)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [
            validator.verify_domain_validity(),
            validator.verify_actions_in_stories_rules(),
            validator.verify_forms_in_stories_rules(),
            validator.verify_form_slots(),
            validator.verify_slot_mappings(),
            validator.verify_intents_in_stories(ignore_warnings=False),
            validator.verify_example_repetition_in_intents(ignore_warnings=False),
            validator.verify_story_structure(ignore_warnings=False),
        ]
        story_utterances = {
            event.action_name
            for story in validator.story_graph.story_steps
            for event in story.events
            if getattr(event, "action_name", None)
        }
        for name in sorted(domain.responses):
            if name not in story_utterances and name not in used_elsewhere:
                raise_warning(f"The response '{name}' is not used by any story, rule, form or action.")
        validator.warn_if_config_mandatory_keys_are_not_set()

    problems = [
        str(w.message)
        for w in caught
        if issubclass(w.category, UserWarning) and not issubclass(w.category, DeprecationWarning)
        and not _channel_triggered(str(w.message))
    ]
    problems += [f"An action sends the response '{name}', which the domain does not define." for name in missing]
    for problem in problems:
        print(f"validate: {problem}", file=sys.stderr)
    if problems or not all(results):
        print(f"validate: FAILED ({len(problems)} warnings)", file=sys.stderr)
        return 1
    print(
        f"validate: domain, NLU data, stories and rules are consistent "
        f"({len(domain.responses)} responses, {len(domain.intents)} intents, "
        f"{len(validator.story_graph.story_steps)} story and rule blocks)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
