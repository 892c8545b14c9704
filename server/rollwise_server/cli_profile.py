"""The profile ``rollwise login`` writes: a server URL, a token and an environment, for one user.

Options and variables (``--url``/``ROLLWISE_URL``, ``--token``/``ROLLWISE_TOKEN``,
``--env``/``ROLLWISE_ENV``) win over it. It is a JSON file only its owner can read (mode 0600,
written through a temporary file in the same directory and renamed, so a reader never sees half
of it): ``$ROLLWISE_PROFILE``, else ``$XDG_CONFIG_HOME/rollwise/profile.json`` (by default
``~/.config/rollwise/profile.json``).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import attrs

__all__ = ["Profile", "profile_path"]


def profile_path() -> Path:
    explicit = os.environ.get("ROLLWISE_PROFILE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rollwise" / "profile.json"


@attrs.frozen
class Profile:
    url: str | None = None
    token: str | None = None
    env: str | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> Profile:
        """The profile, or an empty one if there is none. A profile that others may read is
        refused (its token would be theirs too)."""
        path = path or profile_path()
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PermissionError(
                f"{path} can be read by other users: chmod 600 {path} (it holds a token)"
            )
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a rollwise profile (a JSON object)")
        values = {k: data.get(k) for k in ("url", "token", "env")}
        return cls(**{k: v for k, v in values.items() if isinstance(v, str)})

    def save(self, path: Path | None = None) -> Path:
        path = path or profile_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps(attrs.asdict(self), indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".profile-")  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
