"""The reliability drills (R1–R10, W1–W4) and the tests that exercise each.

``DRILLS`` maps a drill to its goal, in one line, and to the pytest node ids that prove
it: ``tests/<file>.py::<test>`` (every parametrisation of that test) or a whole file,
``tests/<file>.py``. ``scripts/drills.py`` (``make drills``) runs them all in one pytest
process and prints one line per drill; ``tests/test_drills.py`` checks that every node
id names a test that exists and that no drill is left without one.

Each security finding in docs/security.md's table (C1, H1–H6, M1–M8,
L3–L10) has its tests under the drill it broke.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["DRILLS", "ROOT", "Drill", "missing_node_ids", "node_exists", "node_ids"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Drill:
    goal: str
    tests: tuple[str, ...]


_WEBHOOK = "tests/test_whatsapp_webhook.py"
_IO = "tests/test_whatsapp_io_process.py"
_FUZZ = "tests/test_webhook_fuzz.py"
_SENDER = "tests/test_whatsapp_sender.py"
_DISPATCH = "tests/test_outbound_dispatch.py"
_EDGE = "tests/test_trust_edge.py"
_INBOX = "tests/test_trust_inbox.py"
_DRILLS = "tests/test_drills.py"

DRILLS: dict[str, Drill] = {
    "R1": Drill(
        "forged, unsigned or stale-secret webhooks are refused; published default secrets and "
        "other numbers' webhooks are never accepted",
        (
            f"{_WEBHOOK}::test_verification_handshake",
            f"{_WEBHOOK}::test_forged_missing_oversized_and_non_json_bodies_are_refused",
            f"{_WEBHOOK}::test_signature_is_checked_on_raw_bytes_with_escaped_unicode",
            f"{_WEBHOOK}::test_secret_never_optional",
            f"{_IO}::test_the_companion_port_judges_every_body_as_the_server_route_does",
            f"{_EDGE}::test_published_secrets_are_refused_outside_the_emulator",  # M6
            f"{_INBOX}::test_webhooks_for_another_number_of_the_account_are_ignored",  # M4
        ),
    ),
    "R2": Drill(
        "a webhook delivered 5 times at once, and statuses out of order, give one turn, "
        "monotonic statuses and at most one re-route",
        (
            f"{_WEBHOOK}::test_duplicates_posted_five_times_concurrently_give_one_turn",
            f"{_WEBHOOK}::test_out_of_order_and_duplicate_statuses_stay_monotonic",
            f"{_IO}::test_duplicates_posted_concurrently_give_one_turn",
            "tests/test_whatsapp_records.py::test_a_batch_over_several_statements_claims_each_new_message_once",
            "tests/test_whatsapp_records.py::test_concurrent_claims_of_the_same_messages_have_one_winner_each",
            "tests/test_trust_reroute.py::test_redelivered_131047_failure_sends_one_template",  # H1
            "tests/test_trust_reroute.py::test_redelivered_131047_failure_parks_one_copy",  # H1
            "tests/test_trust_reroute.py::test_two_senders_rerouting_the_same_failure_send_once",  # H1
            f"{_INBOX}::test_two_channels_starting_together_replay_each_pending_message_once",  # M2
        ),
    ),
    "R3": Drill(
        "10k mutated and garbage payloads never crash the webhook nor leave the stores "
        "inconsistent; oversized bodies are refused before they are buffered",
        (
            f"{_FUZZ}::test_ten_thousand_mutated_and_garbage_payloads",
            f"{_FUZZ}::test_mutated_payloads_on_postgresql_keep_the_stores_consistent",
            f"{_FUZZ}::test_hundreds_of_payloads_through_the_real_blueprint",
            f"{_EDGE}::test_an_oversized_webhook_is_refused_before_it_is_buffered",  # M5
            f"{_EDGE}::test_the_companion_never_receives_an_unsigned_body",  # M5
        ),
    ),
    "R4": Drill(
        "Redis or the database down: 503 and nothing lost; claims, failed turns and parked "
        "content are recovered, and no failure writes personal data to the logs",
        (
            f"{_WEBHOOK}::test_store_outage_answers_503_and_loses_nothing",
            f"{_WEBHOOK}::test_a_failed_group_answers_503_to_each_webhook_and_keeps_none",
            f"{_WEBHOOK}::test_a_webhook_whose_caller_left_is_stored_and_answered",
            f"{_WEBHOOK}::test_pending_messages_are_replayed_on_start",
            f"{_FUZZ}::test_store_outage_is_503_and_leaves_nothing_half_written",
            f"{_IO}::test_killed_io_process_answers_503_then_comes_back_and_replays",
            f"{_IO}::test_webhooks_to_the_companion_port_wait_out_its_restart",
            f"{_INBOX}::test_a_claim_whose_release_failed_is_taken_over_by_metas_retry",  # M1
            f"{_INBOX}::test_a_stale_pending_message_is_swept_once_its_lease_ran_out",  # M2
            f"{_INBOX}::test_failed_turns_are_retried_with_backoff_then_handed_to_an_advisor",  # M2
            f"{_INBOX}::test_a_failed_turn_that_succeeds_on_retry_is_done",  # M2
            "tests/test_trust_parked.py::test_parked_content_survives_a_failed_delivery",  # M3
            "tests/test_sessions.py::test_parked_items_are_held_while_delivered_and_only_sent_ones_forgotten",
            "tests/test_trust_erasure.py::test_an_unreachable_store_fails_the_erasure_before_anything_is_deleted",  # H3
            "tests/test_trust_erasure.py::test_a_partial_erasure_is_reported_and_running_it_again_completes_it",  # H3
            "tests/test_trust_db.py::test_a_failed_statement_logs_no_parameter",  # L3
        ),
    ),
    "R5": Drill(
        "a dispatcher killed mid-campaign loses nothing and sends nothing twice, even right "
        "after Meta accepted a send",
        (
            "tests/test_outbound_crash.py::test_sqlite_worker_killed_mid_campaign_loses_and_doubles_nothing",
            "tests/test_outbound_crash.py::test_three_postgres_workers_one_killed_mid_campaign",
            "tests/test_outbound_queue.py::test_idempotency_claims_leases_and_recovery",
            "tests/test_outbound_queue.py::test_concurrent_claims_never_share_a_request",
            f"{_DISPATCH}::test_duplicate_idempotency_keys_send_once",
            "tests/test_outbound_scale.py::test_workers_of_a_shard_claim_disjoint_clients_and_cover_every_request",
            "tests/test_outbound_scale.py::test_two_shard_workers_send_a_campaign_once_each_and_each_client_stays_with_one",
            "tests/test_trust_indoubt.py::test_a_worker_killed_right_after_meta_accepted_is_not_sent_again",  # H2
            "tests/test_trust_indoubt.py::test_attempt_trace_prefers_any_evidence_of_acceptance",  # H2
        ),
    ),
    "R6": Drill(
        "Graph 5xx, timeouts, 130429 and 131056 are retried by their policy; a timeout after "
        "Meta accepted never sends twice",
        (
            f"{_DISPATCH}::test_pair_rate_limit_backs_off_by_the_error_policy",
            f"{_DISPATCH}::test_throughput_limit_backs_off_and_nothing_is_lost",
            f"{_SENDER}::test_graph_errors_are_mapped_and_retried_by_their_policy",
            "tests/test_http1.py::test_an_unanswered_request_times_out_and_its_connection_is_dropped",
            "tests/test_http1.py::test_a_close_without_an_answer_is_no_answer_and_frees_the_slot",
            "tests/test_http1.py::test_malformed_answers_are_no_answer",
            "tests/test_http1.py::test_refused_connections_are_connect_failed",
            "tests/test_http1.py::test_an_oversized_or_inflating_answer_is_refused",
            "tests/test_errors.py::test_pair_rate_limit_backs_off_4_to_the_n",
            "tests/test_errors.py::test_throughput_backs_off_exponentially_with_a_cap",
            "tests/test_errors.py::test_never_retried",
            "tests/test_trust_indoubt.py::test_a_send_whose_answer_timed_out_after_meta_accepted_it_is_not_sent_again",  # H2
            "tests/test_trust_parked.py::test_parked_content_survives_a_failed_delivery",  # M3
        ),
    ),
    "R7": Drill(
        "an LLM timeout or outage is cut at the deadline and answered from the catalog or by "
        "a person, never after the window",
        (
            "tests/llm/test_llm_advisor.py::test_a_slow_provider_is_cut_at_the_deadline",
            "tests/llm/test_llm_advisor.py::test_5xx_is_retried_and_4xx_is_not",
            "tests/llm/test_llm_advisor.py::test_offline_mode_answers_from_the_catalog",
            "tests/llm/test_styling_window.py::test_a_slow_model_turn_after_the_window_is_parked_not_sent",
            "tests/llm/test_styling_action.py::test_when_the_catalog_is_unreachable",
        ),
    ),
    "R8": Drill(
        "injected instructions, fences and typed /intent{...} payloads never reach the client "
        "nor another client's data",
        (
            "tests/llm/test_llm_advisor.py::test_injected_instructions_never_reach_the_client",
            "tests/llm/test_llm_advisor.py::test_a_fenced_message_cannot_close_its_fence",
            "tests/llm/test_llm_guardrails.py::test_injection_and_styling_talk_are_recognised",
            "tests/llm/test_llm_guardrails.py::test_each_violation_is_caught",
            f"{_WEBHOOK}::test_typed_intent_payloads_reach_the_assistant_as_words_only_our_buttons_as_payloads",  # M7
            "tests/test_appointment_actions.py::test_an_appointment_is_confirmed_only_to_the_client_who_holds_it",  # M7
        ),
    ),
    "R9": Drill(
        "every API, the action server and Rasa's refuse a missing, wrong or under-scoped "
        "credential and another advisor's clients; no secret leaks into logs, records or reprs",
        (
            "tests/test_access.py::test_known_tokens_map_to_their_principals",
            "tests/test_access.py::test_missing_malformed_or_unknown_tokens_are_401",
            "tests/test_access.py::test_a_known_token_without_the_scope_is_403",
            "tests/test_access.py::test_advisors_see_only_their_own_clients_managers_see_all",
            "tests/test_access.py::test_unset_environment_accepts_no_token",
            "tests/test_access.py::test_bad_configuration_is_refused_with_a_reason",
            "tests/test_advisor_api.py::test_advisor_api_end_to_end",
            "tests/test_advisor_repairs.py::test_repair_requests_seen_changed_and_told_to_the_client",
            "tests/test_privacy.py::test_gdpr_api_tokens_and_scopes",
            "tests/test_privacy.py::test_gdpr_api_rate_limits_each_ip_before_checking_tokens",
            "tests/test_outbound_queue.py::test_http_api",
            "tests/test_ratelimit.py::test_outbound_api_limits_each_peer_on_every_route",
            "tests/test_ratelimit.py::test_advisor_api_and_health_are_limited_but_the_meta_webhook_never",
            f"{_EDGE}::test_the_actions_believe_only_ids_the_whatsapp_channel_sealed",  # C1
            f"{_EDGE}::test_a_seal_is_bound_to_its_ids",  # C1
            f"{_EDGE}::test_order_status_is_not_given_to_an_unsealed_caller",  # C1
            f"{_EDGE}::test_the_action_server_refuses_calls_without_its_credential",  # C1
            f"{_EDGE}::test_the_action_server_never_listens_beyond_loopback_without_a_credential",  # C1
            f"{_EDGE}::test_shipped_credentials_and_launchers_expose_nothing",  # C1
            f"{_EDGE}::test_no_secret_in_a_repr",  # L6
            f"{_EDGE}::test_tokens_and_authorization_headers_are_masked_in_logs",  # H5, L8
            "tests/test_trust_trigger.py::test_a_failing_rasa_leaks_no_secret_url_or_token",  # H5
            "tests/test_trust_trigger.py::test_the_worker_refuses_an_empty_rasa_secret",  # H5
            "tests/test_trust_keys.py::test_a_caller_cannot_take_a_reminders_key",  # L7
            "tests/test_trust_keys.py::test_keys_are_per_principal_and_idempotent_for_each",  # L7
            "tests/test_appointment_actions.py::test_an_appointment_is_confirmed_only_to_the_client_who_holds_it",  # M7
        ),
    ),
    "R10": Drill(
        "malformed and extreme inbound (huge, RTL, emoji, combining, zero-width, wrong types) "
        "is accepted or refused with a reason, never lost, never a 500",
        (
            f"{_FUZZ}::test_a_wrong_type_rejects_its_own_message_with_a_reason_and_keeps_the_rest",
            f"{_FUZZ}::test_deep_nesting_and_unstorable_text_are_handled_before_parsing",
            f"{_WEBHOOK}::test_malformed_items_are_rejected_and_the_rest_kept",
            f"{_WEBHOOK}::test_bsuid_only_contact_and_unknown_type",
            "tests/test_whatsapp_rendering.py::test_long_text_splits_at_paragraphs_then_sentences_within_the_limit",
            "tests/test_whatsapp_rendering.py::test_unbreakable_text_is_cut_hard_but_kept_whole",
            f"{_DRILLS}::test_r10_extreme_texts_are_kept_whole_and_answered_within_the_limits",
            f"{_DRILLS}::test_r10_a_long_answer_is_cut_only_between_graphemes",
            f"{_DRILLS}::test_r10_what_cannot_be_taken_is_refused_with_its_reason_and_the_rest_kept",
            f"{_DRILLS}::test_r10_a_stop_wrapped_in_invisible_or_rtl_marks_is_still_a_stop",
            f"{_DRILLS}::test_r10_a_stranger_with_an_extreme_profile_name_reaches_an_advisor",
        ),
    ),
    "W1": Drill(
        "no free-form message outside the 24 h window: a time-skewed soak ends with 0 x 131047, "
        "nothing lost, nothing duplicated",
        (
            f"{_DISPATCH}::test_accepted_inside_the_window_but_dispatched_after_it_is_a_template",
            f"{_SENDER}::test_after_the_window_a_reply_is_parked_and_one_nudge_knocks",
            "tests/llm/test_styling_window.py::test_a_slow_model_turn_after_the_window_is_parked_not_sent",
            "tests/test_window.py::test_last_millisecond_is_open_and_24h_is_closed",
            "tests/test_window.py::test_margin_edges",
            "tests/test_window.py::test_dst_spring_forward_does_not_shorten_the_window",
            "tests/test_window.py::test_property_definition",
            "tests/test_trust_window.py::test_a_sync_131047_does_not_close_a_window_the_client_reopens",  # L10
            f"{_INBOX}::test_webhooks_for_another_number_of_the_account_are_ignored",  # M4
            f"{_DRILLS}::test_w1_a_time_skewed_soak_sends_no_free_form_outside_the_window",
        ),
    ),
    "W2": Drill(
        "no marketing without a marketing opt-in, nor after STOP or a user_preferences stop, "
        "through any path",
        (
            "tests/test_consent.py::test_stop_keywords",
            "tests/test_consent.py::test_start_keywords",
            "tests/test_consent.py::test_sentences_that_merely_contain_the_word_are_not_keywords",
            "tests/test_consent.py::test_stop_in_french_is_recorded_confirmed_once_and_enforced_then_start_restores",
            "tests/test_consent.py::test_user_preferences_and_131050_write_the_ledger",
            "tests/test_consent.py::test_an_opt_out_the_assistant_understood_in_a_sentence_is_recorded_before_its_confirmation",
            "tests/test_consent.py::test_stop_opts_the_client_out_until_she_writes_start",  # M8
            "tests/test_consent.py::test_an_erased_client_who_had_stopped_is_still_stopped_when_the_crm_imports_her_again",  # M8
            "tests/test_decision.py::test_marketing_needs_marketing_opt_in",
            "tests/test_decision.py::test_opted_out_is_refused_everything",
            "tests/test_decision.py::test_an_opted_out_client_is_still_answered_but_never_knocked_on",  # M8
            f"{_SENDER}::test_marketing_stop_is_honoured",
            f"{_SENDER}::test_no_opt_in_no_nudge_the_content_waits",
            "tests/test_templates.py::test_recategorised_template_needs_marketing_consent",
            "tests/test_trust_trigger.py::test_trigger_intent_is_checked_for_consent_before_rasa_is_asked",  # H4
            f"{_EDGE}::test_a_turn_the_assistant_starts_carries_its_purpose_to_the_guard",  # H4
            f"{_EDGE}::test_consent_is_never_inferred_from_the_assistants_words",  # H4
            f"{_DRILLS}::test_w2_marketing_after_a_stop_is_refused_through_every_path",
            f"{_DRILLS}::test_w2_an_advisor_writing_first_after_a_stop_reaches_nothing",
            f"{_DRILLS}::test_r10_a_stop_wrapped_in_invisible_or_rtl_marks_is_still_a_stop",
        ),
    ),
    "W3": Drill(
        "PAUSED, DISABLED, unknown templates and wrong parameters are never sent; the "
        "lifecycle reaches every process and survives a restart",
        (
            "tests/test_templates.py::test_paused_template_is_skipped_then_unpaused",
            "tests/test_templates.py::test_non_approved_is_never_selected",
            "tests/test_templates.py::test_param_checks",
            "tests/test_templates.py::test_length_limits_after_substitution",
            "tests/test_templates.py::test_real_status_fixtures",
            f"{_WEBHOOK}::test_template_lifecycle_webhook_reaches_the_registry",
            f"{_SENDER}::test_a_raw_template_in_custom_content_is_refused",  # L4
            "tests/test_trust_templates.py",  # H6 (the whole file)
        ),
    ),
    "W4": Drill(
        "an async 131047 is fed back: the window is marked closed and the content re-routed "
        "exactly once; a stale one is ignored",
        (
            f"{_SENDER}::test_async_131047_marks_the_window_closed_and_reroutes",
            f"{_DISPATCH}::test_async_131047_reroutes_the_request_and_counts_it",
            "tests/test_window.py::test_131047_closes_the_window_despite_our_clock",
            "tests/test_window.py::test_later_inbound_reopens_after_131047",
            "tests/test_window.py::test_stale_131047_before_last_inbound_is_ignored",
            "tests/test_sessions.py::test_131047_marks_the_window_closed_until_a_newer_inbound",
            "tests/test_sessions.py::test_stale_131047_is_ignored",
            "tests/test_decision.py::test_131047_feedback_switches_to_templates",
            "tests/test_errors.py::test_fixture_11_status_131047_closes_the_window",
            "tests/test_trust_reroute.py::test_redelivered_131047_failure_sends_one_template",  # H1
            "tests/test_trust_reroute.py::test_redelivered_131047_failure_parks_one_copy",  # H1
            "tests/test_trust_reroute.py::test_two_senders_rerouting_the_same_failure_send_once",  # H1
        ),
    ),
}


def node_ids() -> list[str]:
    """Every node id of the map, once, in the map's order."""
    return list(dict.fromkeys(node for drill in DRILLS.values() for node in drill.tests))


@cache
def _tests_in(path: Path) -> frozenset[str]:
    """The test functions a file defines: ``test_x`` at module level, ``TestC::test_y`` in
    classes (read from the source, without importing it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names.update(f"{node.name}::{item.name}" for item in node.body
                         if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                         and item.name.startswith("test"))
    return frozenset(names)


def node_exists(node_id: str, root: Path = ROOT) -> bool:
    """Whether ``node_id`` (``file`` or ``file::test``) names a test file or a test in it."""
    file, _, test = node_id.partition("::")
    path = root / file
    if not (file.startswith("tests/") and file.endswith(".py") and path.is_file()):
        return False
    if not test:
        return bool(_tests_in(path))
    return test.split("[", 1)[0] in _tests_in(path)


def missing_node_ids(root: Path = ROOT) -> list[str]:
    return [node for node in node_ids() if not node_exists(node, root)]
