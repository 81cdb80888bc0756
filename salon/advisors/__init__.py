"""The client advisors, people: handoff, their desk, repair requests."""
