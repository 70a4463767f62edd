"""MQTT: the appliance's state and commands on a broker, Home Assistant discovery, and
MQTT-backed devices for the action tools.

- `config`: the `[mqtt]` settings.
- `outbox`: the bounded, persistent (SQLite) queue every outgoing message goes through.
- `link`: one connection to the broker: Last Will, reconnect with backoff, the outbox pump.
- `bridge`: pipeline events → state topics; command topics → the pipeline.
- `discovery`: Home Assistant MQTT discovery payloads.
- `device`: a light or switch behind MQTT topics (an `actions.devices.DeviceBackend`).
- `service`: all of it started and stopped with `appliance run`.
"""
