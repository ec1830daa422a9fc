"""API access: scoped API keys, who may call what, per-key throttling."""
