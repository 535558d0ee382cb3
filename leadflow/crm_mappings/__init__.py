"""The CRM mappings shipped with leadflow, as TOML package data (see ``leadflow.crm_import``)."""
