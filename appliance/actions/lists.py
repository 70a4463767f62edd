"""Lists kept on the device, a shopping list and a to-do list, as rows in SQLite
(`data_dir()/lists.sqlite3`); and the tools that add to them, read them out and take
items off them.

Items are matched exactly after tidying what was said: case, spaces, a leading "a", "an",
"some" or "the" and end punctuation do not count ("Some milk." is "milk"); nothing is
guessed. Checking an item off takes it off the list; no history is kept.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.actions.numbers import number_words
from appliance.actions.storage import open_database
from appliance.actions.tools import Param, Tool, ToolError, ToolRegistry

DEFAULT_LIST = "shopping"
LISTS = ("shopping", "todo")
"""The lists there are, by their stored names."""
MAX_ITEM_CHARS = 100
MAX_ITEMS = 500
"""Items on one list at most."""
READ_AT_MOST = 20
"""Items read out in one answer; the rest are counted."""

_SPOKEN = {"shopping": "shopping list", "todo": "to-do list"}
_ALIASES = {"to-do": "todo", "to do": "todo", "todos": "todo", "to-dos": "todo",
            "grocery": "shopping", "groceries": "shopping"}  # fmt: skip
_ARTICLES = ("a", "an", "some", "the")
_EDGE_PUNCTUATION = ".,;:!?\"'“”‘’"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    list TEXT NOT NULL,
    item TEXT NOT NULL,
    key TEXT NOT NULL,
    added_at REAL NOT NULL,
    UNIQUE (list, key)
);
"""


@dataclass(frozen=True)
class Added:
    item: str
    """The item as it is kept (tidied: "milk" for " Some  milk.")."""
    new: bool
    """False when it was on the list already (nothing was added)."""


def normalise_list(name: str | None) -> str:
    """The stored name of a list as said: "" or None → shopping; "To-Do list" → todo."""
    words = " ".join((name or "").lower().split())
    words = words.removesuffix(" list").removesuffix("list").strip() or DEFAULT_LIST
    words = _ALIASES.get(words, words)
    if words not in LISTS:
        raise ToolError("I keep a shopping list and a to-do list, nothing else.")
    return words


def spoken_list(name: str) -> str:
    """shopping → "shopping list", todo → "to-do list"."""
    return _SPOKEN[name]


def tidy_item(item: str, ask: str = "What should I add?") -> str:
    """The item as kept: spaces collapsed, end punctuation and a leading article dropped.
    Raises ToolError with `ask` when nothing is left, or when it is too long."""
    words = " ".join(str(item).split()).strip(_EDGE_PUNCTUATION + " ").split(" ")
    if len(words) > 1 and words[0].lower() in _ARTICLES:
        words = words[1:]
    text = " ".join(words).strip(_EDGE_PUNCTUATION + " ")
    if not text or text.lower() in _ARTICLES:
        raise ToolError(ask)
    if len(text) > MAX_ITEM_CHARS:
        raise ToolError(
            f"That is too long for a list item; an item can have at most "
            f"{number_words(MAX_ITEM_CHARS)} characters."
        )
    return text


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text.casefold())


class ItemLists:
    """The lists in one SQLite file. A file that cannot be opened (a full or read-only
    data partition) leaves `problem` set and keeps the lists in memory until a restart."""

    def __init__(self, path: Path, *, max_items: int = MAX_ITEMS) -> None:
        self.path = path
        self.max_items = max_items
        self._lock = threading.Lock()
        self._db, self.problem = open_database(path, _SCHEMA, "the shopping and to-do lists")
        self._closed = False

    def add(self, item: str, list_name: str = DEFAULT_LIST) -> Added:
        name = normalise_list(list_name)
        text = tidy_item(item)
        with self._lock:
            row = self._db.execute(
                "SELECT item FROM items WHERE list = ? AND key = ?", (name, _key(text))
            ).fetchone()
            if row is not None:
                return Added(row[0], False)
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM items WHERE list = ?", (name,)
            ).fetchone()
            if count >= self.max_items:
                raise ToolError(
                    f"Your {spoken_list(name)} is full: it has {number_words(count)} items. "
                    "Take some off first."
                )
            self._write(
                "INSERT INTO items (list, item, key, added_at) VALUES (?, ?, ?, ?)",
                (name, text, _key(text), time.time()),
            )
        return Added(text, True)

    def items(self, list_name: str = DEFAULT_LIST) -> list[str]:
        """The items on a list, in the order they were added."""
        name = normalise_list(list_name)
        with self._lock:
            rows = self._db.execute(
                "SELECT item FROM items WHERE list = ? ORDER BY id", (name,)
            ).fetchall()
        return [row[0] for row in rows]

    def complete(self, item: str, list_name: str = DEFAULT_LIST) -> str | None:
        """Check an item off (it leaves the list); the item as it was kept, or None when
        it is not on the list."""
        return self._take(item, list_name, "What should I check off?")

    def remove(self, item: str, list_name: str = DEFAULT_LIST) -> str | None:
        """Take an item off the list; the item as it was kept, or None when it is not on
        the list."""
        return self._take(item, list_name, "What should I take off?")

    def clear(self, list_name: str = DEFAULT_LIST) -> int:
        """Empty a list; how many items it had."""
        name = normalise_list(list_name)
        with self._lock:
            return self._write("DELETE FROM items WHERE list = ?", (name,))

    def close(self) -> None:
        """Close the file; a second close does nothing."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> ItemLists:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take(self, item: str, list_name: str, ask: str) -> str | None:
        name = normalise_list(list_name)
        key = _key(tidy_item(item, ask))
        with self._lock:
            row = self._db.execute(
                "SELECT id, item FROM items WHERE list = ? AND key = ?", (name, key)
            ).fetchone()
            if row is None:
                return None
            self._write("DELETE FROM items WHERE id = ?", (row[0],))
        return row[1]

    def _write(self, query: str, args: tuple[Any, ...]) -> int:
        """Run a change (the lock held); a card that refuses it is a sentence to say."""
        try:
            return self._db.execute(query, args).rowcount
        except sqlite3.Error as err:
            raise ToolError(
                "I couldn't save the change to your list: the storage is full or read-only."
            ) from err


def register_list_tools(registry: ToolRegistry, lists: ItemLists) -> None:
    """list_add, list_read, list_complete, list_remove and list_clear, on `lists`."""
    list_param = Param(
        "list", "string", "which list: shopping (the default) or todo", enum=LISTS,
        required=False,
    )  # fmt: skip
    item_param = Param("item", "string", 'one item, e.g. "milk"')

    def which(args: dict[str, Any]) -> str:
        return normalise_list(args.get("list"))

    async def add(args: dict[str, Any]) -> str:
        name = which(args)
        added = await asyncio.to_thread(lists.add, args["item"], name)
        if not added.new:
            return f"{_capital(added.item)} is already on your {spoken_list(name)}."
        return f"Added {added.item} to your {spoken_list(name)}."

    async def read(args: dict[str, Any]) -> str:
        name = which(args)
        items = await asyncio.to_thread(lists.items, name)
        if not items:
            return f"Your {spoken_list(name)} is empty."
        if len(items) <= READ_AT_MOST:
            return f"Your {spoken_list(name)} has {_join(items)}."
        return (
            f"Your {spoken_list(name)} has {number_words(len(items))} items; the first "
            f"{number_words(READ_AT_MOST)} are {_join(items[:READ_AT_MOST])}."
        )

    async def complete(args: dict[str, Any]) -> str:
        name = which(args)
        done = await asyncio.to_thread(lists.complete, args["item"], name)
        if done is None:
            raise ToolError(_missing(args["item"], name))
        return f"Checked off {done}."

    async def remove(args: dict[str, Any]) -> str:
        name = which(args)
        removed = await asyncio.to_thread(lists.remove, args["item"], name)
        if removed is None:
            raise ToolError(_missing(args["item"], name))
        return f"Took {removed} off your {spoken_list(name)}."

    registry.register(
        Tool("list_add", "Add an item to the shopping or to-do list.", add,
             (item_param, list_param))
    )  # fmt: skip
    registry.register(Tool("list_read", "Read out the shopping or to-do list.", read,
                           (list_param,)))  # fmt: skip
    registry.register(
        Tool("list_complete", "Check an item off a list (it is done or bought).", complete,
             (item_param, list_param))
    )  # fmt: skip

    async def clear(args: dict[str, Any]) -> str:
        name = which(args)
        taken = await asyncio.to_thread(lists.clear, name)
        if not taken:
            return f"Your {spoken_list(name)} was already empty."
        count = "one item" if taken == 1 else f"{number_words(taken)} items"
        return f"Emptied your {spoken_list(name)}: {count} taken off."

    registry.register(
        Tool("list_remove", "Take an item off a list.", remove, (item_param, list_param))
    )
    registry.register(Tool("list_clear", "Empty a list.", clear, (list_param,)))


def _missing(item: str, name: str) -> str:
    return f"{_capital(tidy_item(item))} isn't on your {spoken_list(name)}."


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
