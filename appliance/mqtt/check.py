"""`appliance doctor`'s MQTT line: can the configured broker be reached, with these
credentials and this TLS setup? One short connection under its own client id, so a
running appliance's session is not disturbed."""

from __future__ import annotations

import asyncio

import aiomqtt

from appliance.errors import ApplianceError
from appliance.mqtt.link import connect_client, is_auth_refusal
from appliance.sections.mqtt import MqttConfig


async def probe(config: MqttConfig, seconds: float = 5.0) -> tuple[str, str, str]:
    """(status ok/fail, what was found, how to fix it)."""
    where = f"{config.host}:{config.broker_port}{' (TLS)' if config.tls else ''}"
    try:
        async with asyncio.timeout(seconds):
            client = await connect_client(config, suffix="-doctor")
            async with client:
                pass
    except TimeoutError:
        return "fail", f"broker {where} did not answer within {seconds:.0f} s", _reach_fix()
    except ApplianceError as err:
        return "fail", str(err), "fix the [mqtt] settings"
    except (aiomqtt.MqttError, OSError) as err:
        if is_auth_refusal(err):
            return (
                "fail",
                f"broker {where} refused the credentials ({err})",
                "check mqtt.username and mqtt.password / mqtt.password_file",
            )
        if "CERTIFICATE_VERIFY_FAILED" in str(err):
            return (
                "fail",
                f"broker {where}: its certificate is not trusted ({err})",
                "set mqtt.ca_file to the CA that signed it (or mqtt.tls_insecure = true)",
            )
        return "fail", f"cannot reach broker {where} ({err})", _reach_fix()
    user = f" as {config.username}" if config.username else ""
    return "ok", f"broker {where} accepts the connection{user}; topics under {config.base}", ""


def _reach_fix() -> str:
    return "check mqtt.host and mqtt.port, and that the broker runs and is reachable"
