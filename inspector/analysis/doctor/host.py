"""The host being examined: a root prefix, an environment and a uid.

Every doctor probe goes through :class:`Host` instead of touching ``/proc``, ``/etc`` or
``os.environ`` directly, so tests build a fake host in a temporary directory and so
``--root /mnt/other`` inspects another system's files.  Paths shown to the user are the host's
own paths (``/etc/containers/storage.conf``), never the prefixed ones.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True, slots=True)
class Host:
    root: str = "/"
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    uid: int = field(default_factory=os.geteuid)

    @property
    def is_live(self) -> bool:
        """True when examining the running system (root "/"), where running its tools is fine."""
        return os.path.realpath(self.root) == "/"

    @property
    def rootless(self) -> bool:
        return self.uid != 0

    def path(self, host_path: str) -> str:
        """Map an absolute host path to the local filesystem (prefix with the root)."""
        if not os.path.isabs(host_path):
            return host_path
        if self.root in ("", "/"):
            return host_path
        return os.path.join(self.root, host_path.lstrip("/"))

    def read_text(self, host_path: str, limit: int = 1 << 20) -> str | None:
        """Read a small text file, None when it does not exist or cannot be read."""
        try:
            fd = os.open(self.path(host_path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                # /proc files are regular; never read fifos or devices.
                return None
            chunks = []
            total = 0
            while total < limit:
                b = os.read(fd, min(65536, limit - total))
                if not b:
                    break
                chunks.append(b)
                total += len(b)
            return b"".join(chunks).decode("utf-8", "replace")
        except OSError:
            return None
        finally:
            os.close(fd)

    def exists(self, host_path: str) -> bool:
        return os.path.lexists(self.path(host_path))

    def home(self) -> str | None:
        home = self.env.get("HOME")
        if home:
            return home
        if self.uid == 0:
            return "/root"
        return None

    def config_home(self) -> str | None:
        """$XDG_CONFIG_HOME, else $HOME/.config (containers/storage's rule)."""
        x = self.env.get("XDG_CONFIG_HOME")
        if x:
            return x
        home = self.home()
        return os.path.join(home, ".config") if home else None

    def data_home(self) -> str | None:
        x = self.env.get("XDG_DATA_HOME")
        if x:
            return x
        home = self.home()
        return os.path.join(home, ".local", "share") if home else None
