"""Speech-to-text: the Protocol, whisper.cpp, and a scripted fake."""
