"""Measuring the appliance: `appliance bench` (run.py and the figures it gathers),
`appliance models measure` (measure.py) and the MQTT figures (`python -m
appliance.bench.mqtt`). Nothing the running appliance imports: the runtime never imports
this package (tests/test_architecture.py)."""
