"""Understanding what people mean: commands matched with Home Assistant's sentence library
(hassil + home-assistant-intents), misheard words and names corrected with rapidfuzz,
speech-to-text biased towards the house's own words, and no reply that claims an action
which did not run."""
