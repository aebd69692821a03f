"""The agent runtime: agent definitions, tools, context, and the agent loop."""
