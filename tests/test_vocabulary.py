"""Whisper's initial prompt for the house (appliance/understanding/vocabulary.py)."""

from __future__ import annotations

from appliance.sections.devices import DeviceConfig, GpioOutput
from appliance.understanding.vocabulary import MAX_CHARS, bias_prompt

HOUSE = [
    DeviceConfig("porch light", "light", ("front light",), "outside", GpioOutput(17, pwm=True)),
    DeviceConfig("kitchen light", "light", (), "kitchen", GpioOutput(27)),
    DeviceConfig("ceiling fan", "fan", (), "bedroom", GpioOutput(22)),
]


def test_the_prompt_names_the_devices_rooms_aliases_and_timers_in_sentences():
    prompt = bias_prompt(HOUSE, timer_names=["pasta"])
    for word in ("porch light", "kitchen light", "ceiling fan", "front light", "bedroom",
                 "pasta timer", "Set a timer for ten minutes.", "What time is it?"):  # fmt: skip
        assert word in prompt, word
    assert prompt.startswith("The porch light, the kitchen light, the ceiling fan")
    assert "Dim the porch light to 50 percent." in prompt  # the dimmable one
    assert prompt[0].isupper() and prompt.endswith((".", "?"))
    listed = prompt.split(". ")[0]
    assert listed.count("porch light") == 1 and listed.count("kitchen light") == 1


def test_five_hundred_devices_give_a_bounded_prompt_with_the_first_names_first():
    house = [DeviceConfig(f"lamp {i}", "lamp", (f"light {i}",), f"room {i % 50}")
             for i in range(1, 501)]  # fmt: skip
    prompt = bias_prompt(house, timer_names=[f"timer {i}" for i in range(100)])
    assert len(prompt) <= MAX_CHARS
    assert len(prompt.split()) < 100  # whisper reads at most 224 tokens
    assert "lamp 1," in prompt and "lamp 500" not in prompt
    assert prompt.endswith("Add milk to the shopping list.")  # the vocabulary stays


def test_a_house_with_no_devices_gets_a_generic_command_prompt():
    prompt = bias_prompt([])
    assert prompt.startswith("Turn on the light.")
    assert "Set a timer for ten minutes." in prompt
    assert len(prompt) <= MAX_CHARS


def test_another_language_gets_the_names_without_english_sentences():
    prompt = bias_prompt(HOUSE, language="de")
    names = "Porch light, kitchen light, ceiling fan, front light, outside, kitchen, bedroom."
    assert prompt == names
    assert bias_prompt([], language="de") == ""
