"""The writer the crash test kills (tests/test_crash_consistency.py): in a loop, the same
calls the running appliance makes to keep its state, through the same classes:

- a settings save from the page (`ConfigStore.save`: a new system prompt, version-checked);
- a timer set, and now and then one cancelled or fired (`TimerStore`);
- an audit log entry (`AuditLog.append`);
- MQTT messages queued while the broker is away (`Outbox.put`).

After each call returns, one line on stdout acknowledges it ("ack config 17", "ack timer
5 t12", ...), flushed: what the process was told is kept. The test SIGKILLs it at a random
moment and checks that every acknowledged change is there.

    python -m tests.crash_driver DATA_DIR SEED
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from appliance.actions.audit import AuditEntry, AuditLog
from appliance.actions.timers import TimerStore
from appliance.config import load_config
from appliance.mqtt.outbox import Outbox, OutMessage
from appliance.web.settings import ConfigStore


def ack(*words: object) -> None:
    sys.stdout.write(" ".join(map(str, ("ack", *words))) + "\n")
    sys.stdout.flush()


def main(data: Path, seed: int) -> None:
    rng = random.Random(seed)
    config_path = data / "config.toml"
    store = ConfigStore(config_path)
    config = load_config(config_path)
    timers = TimerStore(data / "timers.sqlite3")
    audit = AuditLog(data / "audit.sqlite3")
    outbox = Outbox(data / "mqtt-outbox.sqlite3", max_messages=1_000_000)
    n = seed * 1_000_000  # unique across runs
    while True:
        n += 1
        what = rng.choice(("config", "timer", "timer", "audit", "outbox"))
        if what == "config":
            result = store.save(config, {"llm.system_prompt": f"prompt {n}"}, store.version())
            config = result.config
            ack("config", n)
        elif what == "timer":
            running = timers.running()
            if running and (len(running) > 50 or rng.random() < 0.4):
                record = rng.choice(running)
                state = rng.choice(("cancelled", "fired"))
                assert timers.finish(record.id, state)
                ack("finish", record.id, state)
            else:
                record = timers.add(f"t{n}", 600.0, time.time())
                ack("timer", record.id, record.name)
        elif what == "audit":
            audit.append(AuditEntry(time.time(), "voice", "fast", n, f"said {n}", "set_timer"))
            ack("audit", n)
        else:
            outbox.put([OutMessage("appliance/test/state", f"m{n}".encode())])
            ack("outbox", n)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
