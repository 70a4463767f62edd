"""The config file's sections, one module per feature: typed dataclasses with their own
checks, importing nothing of ours but `errors`.

`appliance.config.AppConfig` gathers them, and each feature reads its own, so the config
depends on no feature (the pipeline's section, `[conversation]`, stays in the core:
`appliance.sections.conversation`)."""
