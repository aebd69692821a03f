"""What every part of the store shares that is no operation: its clock's type and the
caps that keep one bad caller from filling the store (errors say which was hit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Seconds since the epoch; tests pass a fake one to move leases deterministically.
Clock = Callable[[], float]

MAX_TITLE = 500
MAX_DESCRIPTION = 256 * 1024
MAX_RESULT = 256 * 1024
MAX_BODY = 256 * 1024
MAX_SUMMARY = 500
MAX_KEY = 200
MAX_PAYLOAD = 64 * 1024
MAX_MEMORY = 8 * 1024
MAX_CONTINUITY = 4 * 1024
#: A skill's body (the service's ``[learning] skill_chars`` is the tighter, usual cap),
#: and the files kept beside it, all together.
MAX_SKILL = 4 * 1024 * 1024
MAX_SKILL_FILES = 8 * 1024 * 1024
#: A file claim's pattern, and how many patterns one task's claim may hold.
MAX_PATTERN = 500
MAX_FILE_CLAIMS = 100
#: What a member's model has written so far in one call (``set_live``): far above a reply.
MAX_LIVE = 1024 * 1024

#: "Not given", where None is a value (``update_member(task_id=None)`` clears it).
UNSET: Any = object()
