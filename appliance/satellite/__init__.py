"""Home Assistant's voice satellite: the ESPHome native API, served by `appliance run`.

Home Assistant finds a device that speaks this API on the network and adds it by itself,
as it does the Voice PE. Our server speaks the plaintext frame format (`frames`), with
the message classes of `aioesphomeapi`'s generated protobuf module (`messages`), and
offers a few entities of the appliance (`entities`): the mute switch and the wake word's
sensitivity. See docs/home-assistant.md.
"""
