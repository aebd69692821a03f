"""Model adapters behind one interface (``llm/base.py``), and the price table."""
