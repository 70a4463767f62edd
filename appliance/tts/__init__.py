"""Text-to-speech: the Protocol, Piper, and a fake that makes tones."""
