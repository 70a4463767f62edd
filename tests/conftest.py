"""Every test runs with its own data directory (timers, audit log, outbox, pairing), so
the suite never writes into the user's; the prepared models are still read from where
`./setup.sh` put them."""

from __future__ import annotations

import os

import pytest

from appliance.config import default_models_dir


@pytest.fixture(scope="session", autouse=True)
def own_data_dir(tmp_path_factory: pytest.TempPathFactory):
    models = str(default_models_dir())  # resolved before the data dir moves
    saved = {k: os.environ.get(k) for k in ("APPLIANCE_DATA_DIR", "APPLIANCE_MODELS_DIR")}
    os.environ["APPLIANCE_MODELS_DIR"] = models
    os.environ["APPLIANCE_DATA_DIR"] = str(tmp_path_factory.mktemp("appliance-data"))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
