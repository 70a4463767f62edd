"""The appliance on MQTT, end to end: a real Pipeline (fake engines), the MQTT service as
`appliance run` starts it, a real mosquitto, and a separate subscriber client."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from appliance import events as ev
from appliance.audio.sources import ArraySource
from appliance.mqtt.link import LinkState
from appliance.mqtt.service import mqtt_service
from appliance.sections.mqtt import MqttConfig
from tests.fakes import make_pipeline, request
from tests.mqtt_broker import Mosquitto, free_port, subscriber

BASE = "appliance/kitchen"


@pytest.fixture
def broker(tmp_path: Path):
    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()


def settings(port: int, **overrides: Any) -> MqttConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "device_name": "Kitchen",
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
    }
    values.update(overrides)
    return MqttConfig(**values)


async def online(service) -> None:  # noqa: ANN001
    async with asyncio.timeout(10):
        while not service.link.connected:  # noqa: ASYNC110 - link state has no event
            await asyncio.sleep(0.01)


def test_say_mute_ask_and_listen_commands_drive_the_pipeline_and_state_is_published(
    broker, tmp_path
):
    pipeline, rec, sink, tts, llm = make_pipeline([], ["Paris is the capital."])

    async def main() -> None:
        async with (
            subscriber(broker.port, f"{BASE}/#") as (client, seen),
            pipeline,
            mqtt_service(settings(broker.port), pipeline, state_dir=tmp_path) as service,
        ):
            await online(service)
            await client.publish(f"{BASE}/command/say", "Your tea is ready.", qos=1)
            await seen.wait_for(lambda s: s.on(f"{BASE}/state")[-2:] == ["speaking", "idle"])
            assert tts.spoken == ["Your tea is ready."]
            assert [e.text for e in rec.of("announcement")] == ["Your tea is ready."]

            await client.publish(f"{BASE}/command/mute", "ON", qos=1)
            await seen.wait_for(lambda s: s.on(f"{BASE}/muted")[-1:] == ["ON"])
            assert pipeline.muted
            assert [(e.muted, e.by) for e in rec.of("muted")] == [(True, "mqtt")]
            await seen.wait_for(lambda s: s.on(f"{BASE}/state")[-1:] == ["muted"])
            await client.publish(f"{BASE}/command/mute", "off", qos=1)
            await seen.wait_for(lambda s: s.on(f"{BASE}/muted")[-1:] == ["OFF"])
            assert not pipeline.muted

            await client.publish(f"{BASE}/command/ask", "What is the capital of France?", qos=1)
            await seen.wait_for(lambda s: bool(s.on(f"{BASE}/ask/result")))
            result = json.loads(seen.on(f"{BASE}/ask/result")[0])
            assert result == {
                "text": "What is the capital of France?",
                "reply": "Paris is the capital.",
                "outcome": "replied",
            }
            assert llm.prompts and tts.spoken[-1] == "Paris is the capital."

            # Push-to-talk with no microphone loop running: refused, and said so.
            await client.publish(f"{BASE}/command/listen", "PRESS", qos=1)
            await seen.wait_for(lambda s: bool(s.on(f"{BASE}/error")))
            assert "not listening now" in json.loads(seen.on(f"{BASE}/error")[0])["message"]

        states = seen.on(f"{BASE}/state")
        assert "thinking" in states and states[-1] == "idle"
        # Transcripts are private unless enabled: nothing published but the clearing "".
        assert set(seen.on(f"{BASE}/transcript")) <= {""}
        assert set(seen.on(f"{BASE}/reply")) <= {""}
        assert seen.on(f"{BASE}/availability")[0] == "online"

    asyncio.run(main())


def test_garbage_commands_are_reported_and_change_nothing(broker, tmp_path):
    pipeline, rec, sink, tts, llm = make_pipeline([], [])
    garbage = [
        ("say", b"\xff\xfe\x00not utf-8"),
        ("say", b"   "),
        ("ask", ("x" * 2000).encode()),
        ("say", b"bell\x07"),
        ("mute", b"maybe"),
        ("mute", b""),
        ("reboot", b"now"),
    ]

    async def main() -> None:
        async with (
            subscriber(broker.port, f"{BASE}/error") as (client, seen),
            pipeline,
            mqtt_service(settings(broker.port), pipeline, state_dir=tmp_path) as service,
        ):
            await online(service)
            for command, payload in garbage:
                await client.publish(f"{BASE}/command/{command}", payload, qos=1)
            await seen.wait_for(lambda s: len(s.on(f"{BASE}/error")) == len(garbage))
            await asyncio.sleep(0.2)
        errors = [json.loads(p) for p in seen.on(f"{BASE}/error")]
        assert [e["topic"].rsplit("/", 1)[-1] for e in errors] == [c for c, _ in garbage]
        assert all(e["code"] == "bad_command" for e in errors)
        assert "not UTF-8" in errors[0]["message"]
        assert "empty" in errors[1]["message"]
        assert "at most 1000" in errors[2]["message"]
        assert "ON or OFF" in errors[4]["message"]
        assert "unknown command 'reboot'" in errors[6]["message"]
        assert tts.spoken == [] and llm.prompts == []
        assert not pipeline.muted and rec.of("muted") == [] and rec.of("announcement") == []

    asyncio.run(main())


def discovery_configs(collected) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    return {
        topic: json.loads(payload)
        for topic, payload, retained in collected.messages
        if topic.endswith("/config") and payload and retained
    }


def test_home_assistant_discovery_announces_the_device_and_removes_it_when_disabled(
    broker, tmp_path
):
    pipeline, *_ = make_pipeline([], [])

    async def main() -> None:
        async with (
            pipeline,
            mqtt_service(settings(broker.port), pipeline, state_dir=tmp_path) as service,
        ):
            await online(service)
        # A client that connects later (Home Assistant) finds the retained configs.
        async with subscriber(broker.port, "homeassistant/#") as (_, seen):
            await seen.wait_for(lambda s: len(discovery_configs(s)) == 8)
        configs = discovery_configs(seen)
        assert {t.split("/")[1] + "/" + t.split("/")[3] for t in configs} == {
            "sensor/status", "switch/mute", "sensor/timers", "sensor/next_timer",
            "sensor/last_action", "text/say", "notify/say", "button/listen",
        }  # fmt: skip
        assert all(t.split("/")[2] == "kitchen" for t in configs)
        unique_ids = [c["unique_id"] for c in configs.values()]
        assert len(set(unique_ids)) == len(unique_ids)
        devices = {json.dumps(c["device"], sort_keys=True) for c in configs.values()}
        assert len(devices) == 1
        device = configs["homeassistant/switch/kitchen/mute/config"]["device"]
        assert device["identifiers"] == ["appliance_kitchen"] and device["name"] == "Kitchen"
        assert {c["availability_topic"] for c in configs.values()} == {f"{BASE}/availability"}
        mute = configs["homeassistant/switch/kitchen/mute/config"]
        assert (mute["command_topic"], mute["state_topic"]) == (
            f"{BASE}/command/mute",
            f"{BASE}/muted",
        )
        status = configs["homeassistant/sensor/kitchen/status/config"]
        assert "muted" in status["options"] and status["state_topic"] == f"{BASE}/state"

        # Transcripts on: two more sensors. Then discovery off: everything removed.
        async with (
            pipeline,
            mqtt_service(
                settings(broker.port, publish_transcripts=True), pipeline, state_dir=tmp_path
            ) as service,
        ):
            await online(service)
        async with subscriber(broker.port, "homeassistant/#") as (_, seen):
            await seen.wait_for(lambda s: len(discovery_configs(s)) == 10)
        async with (
            pipeline,
            mqtt_service(
                settings(broker.port, discovery=False), pipeline, state_dir=tmp_path
            ) as service,
        ):
            await online(service)
        async with subscriber(broker.port, "homeassistant/#", f"{BASE}/availability") as (
            _,
            seen,
        ):
            await seen.wait_for(lambda s: bool(s.on(f"{BASE}/availability")))
            await asyncio.sleep(0.2)
        assert discovery_configs(seen) == {}

    asyncio.run(main())


def test_transcripts_timers_and_actions_are_published(broker, tmp_path):
    pipeline, rec, sink, tts, llm = make_pipeline(
        ["set a tea timer for ten minutes"], ["Ten minutes, starting now."]
    )
    config = settings(broker.port, publish_transcripts=True)

    async def main() -> None:
        async with (
            subscriber(broker.port, f"{BASE}/#") as (_, seen),
            pipeline,
            mqtt_service(config, pipeline, state_dir=tmp_path) as service,
        ):
            await online(service)
            await pipeline.run(ArraySource(request()))  # a spoken turn
            bus = pipeline.bus
            base = {"turn": 1, "stream_time": 0.0}
            bus.publish(ev.Timer(**base, timer_id=1, name="tea", state="set",
                                   seconds=600, ends_at=1_900_000_600.0))  # fmt: skip
            bus.publish(ev.Timer(**base, timer_id=2, name="eggs", state="set",
                                   seconds=300, ends_at=1_900_000_300.0))  # fmt: skip
            bus.publish(ev.Timer(**base, timer_id=2, name="eggs", state="fired",
                                   seconds=300, ends_at=1_900_000_300.0))  # fmt: skip
            bus.publish(ev.Action(**base, tool="timer_set", arguments={"minutes": 10},
                                    ok=True, result="set", path="intent"))  # fmt: skip
            await seen.wait_for(
                lambda s: len(s.on(f"{BASE}/timers")) == 3 and bool(s.on(f"{BASE}/last_action"))
            )
        assert seen.on(f"{BASE}/transcript")[-1] == "set a tea timer for ten minutes"
        assert seen.on(f"{BASE}/reply")[-1] == "Ten minutes, starting now."
        timers = [json.loads(p) for p in seen.on(f"{BASE}/timers")]
        assert [t["active"] for t in timers] == [1, 2, 1]
        assert timers[1]["next_name"] == "eggs"
        assert timers[1]["next_ends_at"] == "2030-03-17T17:51:40+00:00"
        assert [(t["timer_id"], t["name"]) for t in timers[2]["timers"]] == [(1, "tea")]
        fired = json.loads(seen.on(f"{BASE}/timer_event")[-1])
        assert (fired["state"], fired["name"]) == ("fired", "eggs")
        action = json.loads(seen.on(f"{BASE}/last_action")[0])
        assert (action["tool"], action["arguments"], action["ok"]) == (
            "timer_set",
            {"minutes": 10},
            True,
        )

    asyncio.run(main())


def test_a_broker_that_is_down_does_not_stop_the_pipeline(tmp_path):
    pipeline, rec, sink, tts, llm = make_pipeline([], ["Still here."])

    async def main() -> None:
        async with (
            pipeline,
            mqtt_service(settings(free_port()), pipeline, state_dir=tmp_path) as service,
        ):
            result = await pipeline.ask("are you there")
            assert result.reply == "Still here."
            async with asyncio.timeout(5):
                while service.link.state is not LinkState.RETRYING:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        (error,) = [e for e in rec.of("error") if e.stage == "mqtt"]
        assert error.code == "mqtt_connect" and "retrying" in error.message
        # What it would have published is kept for when the broker returns.
        from appliance.mqtt.outbox import Outbox

        assert len(Outbox(tmp_path / "mqtt-outbox.sqlite3", 1000)) >= 3

    asyncio.run(main())


def test_configs_are_sent_again_when_home_assistant_comes_online(broker, tmp_path):
    pipeline, *_ = make_pipeline([], [])

    async def main() -> None:
        async with (
            pipeline,
            mqtt_service(settings(broker.port), pipeline, state_dir=tmp_path) as service,
        ):
            await online(service)
            async with subscriber(broker.port, "homeassistant/+/kitchen/+/config") as (
                client,
                seen,
            ):
                await seen.wait_for(lambda s: len(s.messages) == 8)  # the retained configs
                assert all(retained for *_, retained in seen.messages)
                await client.publish("homeassistant/status", "offline", qos=1)
                await client.publish("homeassistant/status", "online", qos=1)
                # All 11 again: the 8 configs and the 3 empty ones (transcripts are off,
                # and there is no camera for the Look button).
                await seen.wait_for(lambda s: len(s.messages) == 19)
                await client.publish("homeassistant/status", b"\xffjunk", qos=1)
                await asyncio.sleep(0.2)
                assert len(seen.messages) == 19  # only "online" asks again

    asyncio.run(main())


def test_a_timer_restored_after_a_restart_is_published_again(broker, tmp_path):
    """A timer set before a restart: the new service re-arms it and publishes it, so Home
    Assistant's timer sensors keep showing it (and a timer set after the restart does not
    make it vanish from the list)."""
    from appliance.house import Actions
    from appliance.sections.devices import ActionsConfig

    async def service(texts: list[str], wait_for) -> tuple[list[str], Any]:  # noqa: ANN001
        pipeline, *_ = make_pipeline([], [])
        async with (
            subscriber(broker.port, f"{BASE}/timers", f"{BASE}/timer_event") as (_, seen),
            pipeline,
            mqtt_service(settings(broker.port), pipeline, state_dir=tmp_path) as mqtt,
            # As `appliance run` does: MQTT first, then the actions (which re-arm timers).
            Actions([], ActionsConfig(), pipeline.bus, tmp_path) as actions,
        ):
            await online(mqtt)
            replies = [(await actions.intents.handle(t, n)).reply for n, t in enumerate(texts)]
            await seen.wait_for(wait_for)
        return replies, seen

    def timers(seen) -> list[dict[str, Any]]:  # noqa: ANN001
        return [json.loads(p) for p in seen.on(f"{BASE}/timers")]

    replies, _ = asyncio.run(
        service(["Set a tea timer for ten minutes."], lambda s: bool(s.on(f"{BASE}/timers")))
    )
    assert replies == ["OK, tea timer for ten minutes, starting now."]

    # The service stops and starts again on the same data directory.
    replies, seen = asyncio.run(
        service(
            ["Set an eggs timer for five minutes."],
            lambda s: [t["active"] for t in timers(s)][-1:] == [2],
        )
    )
    events = [json.loads(p) for p in seen.on(f"{BASE}/timer_event")]
    assert [(e["name"], e["state"]) for e in events] == [("tea", "restored"), ("eggs", "set")]
    assert events[0]["seconds"] == 600 and events[0]["ends_at"].startswith("20")
    # Live messages (not the retained one from before the restart): tea, then tea and eggs.
    live = [json.loads(p) for t, p, retained in seen.messages
            if t == f"{BASE}/timers" and not retained]  # fmt: skip
    assert [[t["name"] for t in m["timers"]] for m in live] == [["tea"], ["eggs", "tea"]]
    assert live[-1]["next_name"] == "eggs"
