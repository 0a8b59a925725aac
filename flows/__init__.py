"""Prefect flows and deployments: wiring only — every stage lives in `pipeline/`."""
