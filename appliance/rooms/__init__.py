"""Many rooms, one answer: boxes on one network that hear the same wake word agree, in
tens of milliseconds, that the one that heard it best answers (a small UDP multicast
exchange; no daemon, no broker)."""
