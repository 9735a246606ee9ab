"""The README's fenced blocks as one bash script, for the tests that run them as written."""

from __future__ import annotations

import re
from collections.abc import Callable


def readme_script(text: str, skip: Callable[[str], bool] = lambda _command: False) -> str:
    """The fenced ``bash`` and ``python`` blocks of ``text`` as one bash script, in order.

    Bash blocks run line by line (comment lines dropped, and the commands ``skip`` says to
    leave out); python blocks are pasted into ``python -``. The script stops at the first
    failure (``set -euo pipefail``).
    """
    parts = ["set -euo pipefail"]
    for lang, body in re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.DOTALL):
        if lang == "python":
            parts.append("python - <<'PYEOF'\n" + body + "PYEOF")
            continue
        for line in body.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command and not command.startswith("#") and not skip(command):
                parts.append(line)
    return "\n".join(parts) + "\n"
