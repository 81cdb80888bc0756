"""What each message costs: Meta's rate card as data, the estimate before a send, and the
ledger of what Meta bills after it.
"""
