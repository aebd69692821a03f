"""accord: durable, model-agnostic teams of LLM agents.

A lead plans, teammates work in parallel in their own processes, and everything
they share (the board, mailboxes, roster, events) lives in one durable store.
"""

__version__ = "0.1.0"
