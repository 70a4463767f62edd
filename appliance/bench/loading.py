"""`appliance bench`: what loading costs, each measured in a fresh interpreter: the cold
start of the service (until it listens, and until every model is loaded), and per prepared
GGUF the load time and RSS with mmap vs read into memory, first token and decode speed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from appliance.config import AppConfig

_COLD_START_CHILD = """
import json, resource, sys, time
from dataclasses import replace
from pathlib import Path
from appliance.config import load_config
from appliance.deferred import finish_loading
from appliance.engines import load_engines
started, config_path, models_dir = float(sys.argv[1]), sys.argv[2], sys.argv[3]
config = replace(load_config(Path(config_path) if config_path else None), models_dir=models_dir)
imported = time.time() - started
times = {}
engines = load_engines(config, defer=True, load_times=times)
ready = time.time() - started
finish_loading(engines.tts)
print(json.dumps({"imports": imported, "ready": ready, "loaded": time.time() - started,
                  "models": times,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def cold_start(config: AppConfig, config_path: Path | None) -> dict[str, Any]:
    """A fresh interpreter started as the service starts: until it listens (the listening
    engines and the language model loaded; the voice loads on), and until all are."""
    started = time.time()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _COLD_START_CHILD,
            repr(started),
            str(config_path or ""),
            str(config.models_path()),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "cold_start_s": data["ready"],
        "all_loaded_s": data["loaded"],
        "imports_s": data["imports"],
        "models_s": data["models"],
        "rss_after_load_mb": data["rss_mb"],
    }


_LLM_CHILD = r"""
import json, sys, threading, time
from pathlib import Path
path, context, mmap = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
from appliance.system import llm_threads

def rss():
    out = {}
    for line in open("/proc/self/status"):
        key, _, rest = line.partition(":")
        if key in ("RssFile", "RssAnon"):
            out[key] = int(rest.split()[0]) / 1024
    return out

from llama_cpp import Llama
before = rss()
started = time.monotonic()
llm = Llama(model_path=str(path), n_ctx=context, use_mmap=mmap, n_threads=llm_threads(),
            n_threads_batch=llm_threads(), verbose=False)
load = time.monotonic() - started
loaded = rss()
asked = time.monotonic()
first = None
tokens = 0
for chunk in llm.create_completion("The moon is", max_tokens=64, temperature=0.0, stream=True):
    tokens += 1
    if first is None:
        first = time.monotonic() - asked
total = time.monotonic() - asked
print(json.dumps({
    "load_s": load, "file_mb": loaded["RssFile"] - before["RssFile"],
    "anon_mb": loaded["RssAnon"] - before["RssAnon"], "ttft_s": first,
    "tokens_per_s": (tokens - 1) / (total - first) if tokens > 1 else 0.0,
}))
"""


def llm_figures(config: AppConfig) -> dict[str, Any]:
    """Per prepared GGUF: load time and RSS with mmap vs read into memory, time to first
    token and decode speed; each in a fresh process. Plus the NPU backend's status."""
    from appliance.models.catalog import ModelStore
    from appliance.npu import detect_npu

    store = ModelStore(config.models_path())
    figures: dict[str, Any] = {}
    for entry in store.prepared("llm"):
        if entry.facts.get("backend") == "rkllm":
            continue
        path = store.root / entry.main_file.path
        row = {}
        for mode, flag in (("mmap", "1"), ("read", "0")):
            out = subprocess.run(
                [sys.executable, "-c", _LLM_CHILD, str(path), str(config.llm.context), flag],
                capture_output=True,
                text=True,
                check=True,
            )
            row[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        figures[f"llama.cpp/{entry.name}"] = row
    npu = detect_npu()
    figures["rkllm"] = {"available": npu.available, "reason": npu.reason}
    return figures
