"""Wake-word detection: the Protocol, openWakeWord, and a fake for tests."""
