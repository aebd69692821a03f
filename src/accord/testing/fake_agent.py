"""A stand-in for an external coding agent (``runtime: command``), for tests.

It behaves as ``claude -p --mcp-config FILE --output-format json`` does toward accord:
it reads its prompt (``--prompt-file``, else stdin), connects to the MCP servers of the
configuration ``--mcp-config`` names (accord's, ``accord``) with the ``mcp`` SDK's own
stdio client, and works only through their tools:

- with a task in its prompt (``# Your task #N: ...``): it claims it (``TaskUpdate``
  ``in_progress``), writes ``task-N.txt`` in its folder (and the file a description
  line ``write PATH`` names), tells the lead (``SendMessage``), and completes it
  (``TaskUpdate`` ``completed``); a refused completion is printed and it exits 1;
- with mail only: it answers each sender.

Then it prints a JSON result like Claude Code's, with a cost (``--cost``, default
0.0042 USD) and token counts, so the member's usage row can be checked.

    python -m accord.testing.fake_agent --mcp-config {mcp} --prompt-file {prompt_file}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

TASK = re.compile(r"^# Your task #(\d+): (.*)$", re.M)
WRITE = re.compile(r"^write (\S+)$", re.M)
SENDER = re.compile(r'<message id="\d+" from="([^"]+)"')


async def work(config: dict[str, Any], prompt: str) -> tuple[int, str]:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    spec = config["mcpServers"]["accord"]
    params = StdioServerParameters(
        command=spec["command"], args=list(spec.get("args", [])), env=spec.get("env")
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        async def call(tool: str, **arguments: Any) -> tuple[bool, str]:
            result = await session.call_tool(tool, arguments)
            text = "\n".join(getattr(c, "text", "") for c in result.content)
            return not result.is_error, text

        found = TASK.search(prompt)
        if found is None:
            senders = sorted(set(SENDER.findall(prompt)))
            for sender in senders:
                await call("SendMessage", to=sender, message="Got your message.")
            return 0, f"answered {', '.join(senders) or 'nobody'}"
        task_id = int(found.group(1))
        ok, said = await call("TaskUpdate", taskId=task_id, status="in_progress")
        if not ok and "already" not in said:
            return 1, f"could not claim task #{task_id}: {said}"
        Path(f"task-{task_id}.txt").write_text(f"{found.group(2)}\n")
        ok, said = await call("TaskGet", taskId=task_id)
        try:
            description = str(json.loads(said).get("description", ""))
        except (ValueError, AttributeError):
            description = said
        for path in WRITE.findall(description):
            Path(path).write_text(f"written for task #{task_id}\n")
        await call("SendMessage", to="lead", message=f"task #{task_id} is done", summary="done")
        ok, said = await call(
            "TaskUpdate", taskId=task_id, status="completed", result=f"wrote task-{task_id}.txt"
        )
        if not ok:
            return 1, f"completing task #{task_id} was refused: {said}"
        return 0, f"task #{task_id} completed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mcp-config", required=True)
    parser.add_argument("--prompt-file")
    parser.add_argument("--cost", type=float, default=0.0042)
    args = parser.parse_args(argv)
    config = json.loads(Path(args.mcp_config).read_text())
    prompt = Path(args.prompt_file).read_text() if args.prompt_file else sys.stdin.read()
    code, said = asyncio.run(work(config, prompt))
    print(
        json.dumps(
            {
                "type": "result",
                "subtype": "success" if code == 0 else "error",
                "is_error": code != 0,
                "result": said,
                "total_cost_usd": args.cost,
                "usage": {"input_tokens": 1200, "output_tokens": 300},
            }
        )
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
