"""The shopping and to-do lists: adding, reading out, checking off and taking off, what is
refused, and keeping them on the same SQLite file across a restart."""

from __future__ import annotations

import asyncio

import pytest

from appliance import events as ev
from appliance.actions.lists import MAX_ITEMS, ItemLists, normalise_list, register_list_tools
from appliance.actions.tools import CallContext, ToolError, ToolRegistry
from tests.fakes import Recorder


def list_tools(lists: ItemLists):
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    registry = ToolRegistry(bus)
    register_list_tools(registry, lists)

    def call(tool: str, **arguments) -> tuple[bool, str]:
        outcome = asyncio.run(registry.call(tool, arguments, CallContext("api")))
        return outcome.ok, outcome.message

    return call, registry, recorder


def test_add_read_check_off_and_take_off(tmp_path):
    with ItemLists(tmp_path / "lists.sqlite3") as lists:
        call, _, recorder = list_tools(lists)
        said = [
            call("list_read"),
            call("list_add", item="milk"),
            call("list_add", item="Some eggs."),
            call("list_add", item="  a   loaf of  bread "),
            call("list_read"),
            call("list_add", item="call the plumber", list="todo"),
            call("list_read", list="todo"),
            call("list_complete", item="MILK"),
            call("list_complete", item="milk"),
            call("list_remove", item="the eggs"),
            call("list_remove", item="eggs", list="todo"),
            call("list_read"),
        ]
        shopping, todo = lists.items(), lists.items("to-do")
    assert said == [
        (True, "Your shopping list is empty."),
        (True, "Added milk to your shopping list."),
        (True, "Added eggs to your shopping list."),
        (True, "Added loaf of bread to your shopping list."),
        (True, "Your shopping list has milk, eggs and loaf of bread."),
        (True, "Added call the plumber to your to-do list."),
        (True, "Your to-do list has call the plumber."),
        (True, "Checked off milk."),
        (False, "Milk isn't on your shopping list."),
        (True, "Took eggs off your shopping list."),
        (False, "Eggs isn't on your to-do list."),
        (True, "Your shopping list has loaf of bread."),
    ]
    assert shopping == ["loaf of bread"] and todo == ["call the plumber"]
    assert [(a.tool, a.ok) for a in recorder.of("action")][7:9] == [
        ("list_complete", True), ("list_complete", False),
    ]  # fmt: skip


def test_a_list_is_emptied_and_the_other_kept(tmp_path):
    with ItemLists(tmp_path / "lists.sqlite3") as lists:
        call, _, _ = list_tools(lists)
        call("list_add", item="milk")
        call("list_add", item="eggs")
        call("list_add", item="call the plumber", list="todo")
        said = [call("list_clear"), call("list_clear"), call("list_read", list="todo")]
    assert said == [
        (True, "Emptied your shopping list: two items taken off."),
        (True, "Your shopping list was already empty."),
        (True, "Your to-do list has call the plumber."),
    ]


def test_a_duplicate_is_not_added_twice_and_is_not_an_error(tmp_path):
    with ItemLists(tmp_path / "lists.sqlite3") as lists:
        call, _, _ = list_tools(lists)
        said = [
            call("list_add", item="milk"),
            call("list_add", item="The  Milk!"),
            call("list_add", item="milk", list="todo"),  # another list: not a duplicate
        ]
        added = lists.add("an milk")
        items = lists.items(), lists.items("todo")
    assert said == [
        (True, "Added milk to your shopping list."),
        (True, "Milk is already on your shopping list."),
        (True, "Added milk to your to-do list."),
    ]
    assert (added.item, added.new) == ("milk", False)
    assert items == (["milk"], ["milk"])


def test_empty_too_long_unknown_and_full_are_refused(tmp_path):
    with ItemLists(tmp_path / "lists.sqlite3", max_items=3) as lists:
        call, _, _ = list_tools(lists)
        said = [
            call("list_add", item=""),
            call("list_add", item="   "),
            call("list_add", item="the"),
            call("list_add", item="x" * 101),
            call("list_add", item="x" * 100),
            call("list_add", item="milk", list="hardware"),
            call("list_complete", item=" "),
            call("list_add", item="eggs"),
            call("list_add", item="bread"),
            call("list_add", item="butter"),
            call("list_add", item="eggs"),  # already there: a full list still says so
        ]
        items = lists.items()
        with pytest.raises(ToolError, match="I keep a shopping list and a to-do list"):
            lists.add("milk", "hardware")
    assert said == [
        (False, "What should I add?"),
        (False, "What should I add?"),
        (False, "What should I add?"),
        (
            False,
            "That is too long for a list item; an item can have at most one hundred characters.",
        ),
        (True, f"Added {'x' * 100} to your shopping list."),
        (False, "Sorry, I couldn't do that. List must be one of: shopping, todo."),
        (False, "What should I check off?"),
        (True, "Added eggs to your shopping list."),
        (True, "Added bread to your shopping list."),
        (False, "Your shopping list is full: it has three items. Take some off first."),
        (True, "Eggs is already on your shopping list."),
    ]
    assert items == ["x" * 100, "eggs", "bread"]
    assert MAX_ITEMS == 500


def test_list_names_as_said():
    assert normalise_list(None) == normalise_list("") == "shopping"
    assert normalise_list("Shopping list") == normalise_list("groceries") == "shopping"
    for said in ("todo", "to-do", "To Do list", "to-do list", "todos"):
        assert normalise_list(said) == "todo", said


def test_a_long_list_is_read_out_in_part(tmp_path):
    with ItemLists(tmp_path / "lists.sqlite3") as lists:
        for n in range(25):
            lists.add(f"item {n}")
        call, _, _ = list_tools(lists)
        ok, said = call("list_read")
    assert ok
    assert said.startswith("Your shopping list has twenty five items; the first twenty are item 0,")
    assert said.endswith("item 18 and item 19.")


def test_lists_survive_a_restart_and_clear_empties_one(tmp_path):
    path = tmp_path / "lists.sqlite3"
    with ItemLists(path) as lists:
        for item in ("milk", "eggs", "bread"):
            lists.add(item)
        lists.add("water the plants", "todo")
        assert lists.complete("eggs") == "eggs"
    with ItemLists(path) as reopened:
        assert reopened.problem is None
        assert reopened.items() == ["milk", "bread"]
        assert reopened.items("todo") == ["water the plants"]
        assert reopened.clear() == 2
    with ItemLists(path) as again:
        assert again.items() == [] and again.items("todo") == ["water the plants"]


def test_an_unwritable_data_directory_keeps_the_lists_in_memory(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    lists = ItemLists(blocker / "lists.sqlite3")
    assert lists.problem is not None and str(blocker / "lists.sqlite3") in lists.problem
    call, _, _ = list_tools(lists)
    assert call("list_add", item="milk") == (True, "Added milk to your shopping list.")
    assert call("list_read") == (True, "Your shopping list has milk.")
    lists.close()
    lists.close()  # a second close does nothing
