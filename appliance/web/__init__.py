"""The config page and local HTTP API: status, settings, "try it", logs, pairing.

Served by uvicorn inside the `appliance run` process, sharing its event bus. Nothing is
loaded from outside the device: templates, CSS and JS ship in this package.
"""
