# The same data, config and models the service uses, for `appliance …` typed in a shell
# (run it as the service's user: sudo -u appliance appliance ask "…", or runuser).
export APPLIANCE_DATA_DIR=/data/appliance
export APPLIANCE_CONFIG=/data/appliance/config.toml
export APPLIANCE_MODELS_DIR=/data/appliance/models
