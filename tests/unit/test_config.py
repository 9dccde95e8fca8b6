"""Settings: defaults written by init, precedence of home and catalog URL, errors naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from oais.config import (
    DEFAULT_HOME,
    ConfigError,
    default_config_text,
    load_settings,
    parse_settings,
    resolve_home,
)


def _doc(home: Path) -> dict:
    return tomllib.loads(default_config_text(home))


def test_default_config_has_two_local_replicas_and_sqlite_in_home(tmp_path: Path) -> None:
    s = parse_settings(_doc(tmp_path), tmp_path, environ={})
    assert [(loc.name, loc.kind, loc.path) for loc in s.locations] == [
        ("replica-a", "local", tmp_path / "replica-a"),
        ("replica-b", "local", tmp_path / "replica-b"),
    ]
    assert s.copies_required == 2
    assert s.catalog_url == f"sqlite:///{tmp_path}/catalog.sqlite"
    assert s.staging == tmp_path / "staging" and s.quarantine == tmp_path / "quarantine"
    assert (s.limits.max_files, s.limits.max_ratio, s.quarantine_retention_days) == (100_000, 200.0, 180)


def test_environment_overrides_catalog_url(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    s = parse_settings(_doc(tmp_path), tmp_path, environ={"OAIS_CATALOG_URL": url})
    assert s.catalog_url == url


def test_home_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAIS_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_home() == tmp_path / "env"
    monkeypatch.delenv("OAIS_HOME")
    assert resolve_home() == DEFAULT_HOME.expanduser().resolve()


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d["storage"].__setitem__("copies_required", 3), "storage.copies_required"),
        (lambda d: d["storage"].__setitem__("copies_required", "2"), "storage.copies_required"),
        (lambda d: d["storage"]["locations"][1].__setitem__("path", 5), "storage.locations[1].path"),
        (lambda d: d["storage"]["locations"][1].__setitem__("name", "replica-a"), "storage.locations[1].name"),
        (lambda d: d["storage"]["locations"][0].__setitem__("kind", "tape"), "storage.locations[0].kind"),
        (lambda d: d["storage"]["locations"][0].pop("path"), "storage.locations[0].path"),
        (lambda d: d["storage"].__setitem__("locations", []), "storage.locations"),
        (lambda d: d["catalog"].__setitem__("url", "catalog.sqlite"), "catalog.url"),
        (lambda d: d.__setitem__("extra", {}), "extra"),
        (lambda d: d["storage"].__setitem__("fsync", "yes"), "storage.fsync"),
        (lambda d: d["limits"].__setitem__("max_ratio", 0.5), "limits.max_ratio"),
        (lambda d: d["limits"].__setitem__("max_files", 0), "limits.max_files"),
        (lambda d: d["paths"].__setitem__("quarantine_retention_days", -1), "paths.quarantine_retention_days"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, mutate, key: str) -> None:  # type: ignore[no-untyped-def]
    doc = _doc(tmp_path)
    mutate(doc)
    with pytest.raises(ConfigError) as info:
        parse_settings(doc, tmp_path, source="oais.toml", environ={})
    assert str(info.value).startswith(f"oais.toml: {key}")


def test_missing_config_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="oais init"):
        load_settings(tmp_path)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "oais.toml").write_text("[catalog\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="oais.toml: not valid TOML"):
        load_settings(tmp_path)
