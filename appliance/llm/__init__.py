"""The language model: the Protocol, llama.cpp, a scripted fake, and the sentence splitter."""
