"""The Lua scripts, read once from the package and shared by every client."""

from __future__ import annotations

import hashlib
from importlib import resources

__all__ = ["ENSURE", "PUBLISH", "STATE", "LuaScript"]


class LuaScript:
    """A script's source and SHA1, for EVALSHA with an EVAL fallback."""

    def __init__(self, name: str) -> None:
        folder = resources.files(__package__).joinpath("lua")
        common = folder.joinpath("common.lua").read_text(encoding="utf-8")
        body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
        self.name = name
        self.source = f"{common}\n{body}"
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()  # noqa: S324

    def __repr__(self) -> str:
        return f"<LuaScript {self.name} {self.sha[:8]}>"


ENSURE = LuaScript("ensure")
PUBLISH = LuaScript("publish")
STATE = LuaScript("state")
