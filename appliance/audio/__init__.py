"""Audio in and out: formats, WAV files, sources (file, microphone), sinks, VAD."""
