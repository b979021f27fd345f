"""The reference SynapScale API over the migrated schema (``synapscale.api.app:app``)."""
