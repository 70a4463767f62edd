"""`appliance models measure`: the RAM a model really takes once loaded and used.

Each model is loaded in a fresh interpreter, after its engine's libraries are imported,
and run once (a wake word scores a second of audio, whisper transcribes one, the LLM
answers a question, Piper says a sentence). The growth of the process's resident file
pages (mmap'ed weights) and anonymous pages (buffers, KV cache) is what the catalog
records and the memory budget uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from appliance.errors import ModelError
from appliance.models.catalog import ModelEntry, RamUse

_CHILD = r"""
import json, sys, threading
from pathlib import Path
import numpy as np

def rss():
    values = {}
    for line in open("/proc/self/status"):
        key, _, rest = line.partition(":")
        if key in ("RssFile", "RssAnon"):
            values[key] = int(rest.split()[0]) * 1024
    return values

role, path, context = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
second = (np.random.default_rng(0).normal(0, 300, 16000)).astype(np.int16)
if role == "llm":
    from appliance.llm.llamacpp import LlamaCppLlm
    from appliance.llm.base import Message
    before = rss()
    engine = LlamaCppLlm(path, threads=2, context=context)
    "".join(engine.stream([Message("user", "Tell me about the moon.")], threading.Event()))
elif role == "stt":
    from appliance.stt.whispercpp import WhisperCppStt
    before = rss()
    engine = WhisperCppStt(path, threads=2)
    engine.transcribe(second.astype(np.float32) / 32768)
elif role == "tts":
    from appliance.tts.piper import PiperTts
    before = rss()
    engine = PiperTts(path)
    engine.synthesize("The capital of France is Paris, a city on the Seine.")
elif role in ("vad", "turn", "wake-features", "wake"):
    import onnxruntime as ort
    before = rss()
    engine = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
else:
    raise SystemExit(f"cannot measure role {role}")
after = rss()  # `engine` is still alive here: its memory is counted
print(json.dumps({k: after[k] - before[k] for k in after}))
"""


def measure(entry: ModelEntry, models_dir: Path, *, context: int = 2048) -> RamUse:
    path = models_dir / entry.main_file.path
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, entry.role, str(path), str(context)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ModelError(f"measuring {entry.name} failed: {tail[0]}")
    grown = json.loads(proc.stdout.strip().splitlines()[-1])
    return RamUse(
        file_mb=round(grown["RssFile"] / 2**20, 1),
        anon_mb=round(grown["RssAnon"] / 2**20, 1),
        context=context if entry.role == "llm" else 0,
    )
