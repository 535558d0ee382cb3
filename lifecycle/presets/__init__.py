"""The lifecycle policies shipped with leadflow, as TOML package data (see ``lifecycle.policy``)."""
