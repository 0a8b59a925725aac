"""Canonical schema shared by every stage (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

CANONICAL_FIELDS: tuple[str, ...] = (
    "record_id",
    "full_name",
    "first_name",
    "last_name",
    "gender",
    "email",
    "mobile",
    "landline",
    "phone",
    "birth_date",
    "national_id",
    "address",
    "city",
    "state",
    "postal_code",
    "country",
    "company",
    "created_at",
    "updated_at",
)

IDENTITY_COLUMNS: tuple[str, ...] = ("record_key", "source", "source_record_id", "locator", "file")

QUARANTINE_COLUMNS: tuple[str, ...] = (
    "source",
    "source_record_id",
    "locator",
    "stage",
    "reason_code",
    "reason",
    "raw",
)

MASTER_COLUMNS: tuple[str, ...] = (
    "master_id",
    "full_name",
    "first_name",
    "last_name",
    "name_suffix",
    "gender",
    "email",
    "phone",
    "mobile",
    "landline",
    "birth_date",
    "national_id",
    "street",
    "district",
    "city",
    "state_or_province",
    "postal_code",
    "country",
    "company",
    "record_count",
    "sources",
)


def record_key(source: str, source_record_id: str) -> str:
    """The join key between stages: unique per accepted record in a run."""
    return f"{source}|{source_record_id}"


def empty_quarantine():
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="object") for c in QUARANTINE_COLUMNS})
