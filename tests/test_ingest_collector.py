"""Ingest reads the exports with the cyclic garbage collector paused (issue 14, speed14d) and
gives it back afterwards, also when reading fails."""

from __future__ import annotations

import gc
from unittest import mock

import pytest

import crmclean.ingest as ingest_module
from crmclean.ingest import ingest
from crmclean.settings import Rules


def _export(tmp_path):
    path = tmp_path / "crm_web_us.csv"
    path.write_text("Customer ID,First Name,Last Name\n1,John,Smith\n2,Ann,Lee\n", encoding="utf-8")
    return path


def test_reading_runs_without_the_collector_and_restores_it(tmp_path):
    seen = []
    real_read = ingest_module._read

    def read(path, config):
        seen.append(gc.isenabled())
        return real_read(path, config)

    with mock.patch.object(ingest_module, "_read", read):
        result = ingest([_export(tmp_path)], Rules())
    assert seen == [False]
    assert gc.isenabled()
    assert list(result.records["last_name"]) == ["Smith", "Lee"]


def test_the_collector_is_restored_when_reading_fails(tmp_path):
    def broken(path, config):
        raise OSError("disk gone")

    with mock.patch.object(ingest_module, "_read", broken), pytest.raises(OSError):
        ingest([_export(tmp_path)], Rules())
    assert gc.isenabled()
