"""Engines on a bigger box (an OpenAI-compatible chat server, Wyoming services), each in
front of the appliance's own engine for the same stage: the remote answers while it can,
and the local engine takes the turn over when it cannot, with an event saying why."""
