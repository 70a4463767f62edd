"""Doing things: tools, devices (GPIO, MQTT), timers, the fast path, the audit log."""
