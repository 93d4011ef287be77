"""Parties config (TOML): who takes part, where they listen, what each holds,
who may see which column, and who learns the answer.

    recipients = ["regulator"]

    [[party]]
    name = "regulator"
    host = "127.0.0.1"
    port = 9101

    [tables.reg]
    owner = "regulator"
    path = "data/reg.csv"            # on the owner's machine, relative to this file
    columns = { ssn = "int64", zip = "int64" }
    visible_to = { ssn = ["*"] }     # per column; default: owner only; "*" = public

Every mistake is a `ConfigError` with one line naming the party, table or
column at fault, because the CLI turns it into `musketeer: ...` and exit 2.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from musketeer.ir import Catalog, MusketeerError
from musketeer.ir.catalog import Table
from musketeer.ir.schema import Schema, suggest
from musketeer.ir.types import DataType, parse_type

#: The trust set of a public column.
PUBLIC = "*"

Trust = frozenset[str]


class ConfigError(MusketeerError):
    """A parties config that cannot describe a joint query."""


@dataclass(frozen=True)
class Party:
    name: str
    host: str
    port: int


@dataclass(frozen=True)
class TableSpec:
    """One party's input table. `visible_to[col]` is the column's full trust
    set (the owner is always in it); PUBLIC in it means everybody."""

    name: str
    owner: str
    path: str
    format: str
    columns: tuple[tuple[str, DataType], ...]
    visible_to: dict[str, Trust] = field(default_factory=dict)

    @property
    def schema(self) -> Schema:
        return Schema.of(self.columns)

    def trust(self, column: str) -> Trust:
        return self.visible_to.get(column, frozenset({self.owner}))


@dataclass(frozen=True)
class PartiesConfig:
    parties: tuple[Party, ...]
    tables: dict[str, TableSpec]
    recipients: tuple[str, ...]
    base_dir: str = "."

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parties)

    def party(self, name: str) -> Party:
        for p in self.parties:
            if p.name == name:
                return p
        raise ConfigError(f"unknown party {name!r}{suggest(name, self.names)} (parties: {', '.join(self.names)})")

    def index(self, name: str) -> int:
        return self.names.index(self.party(name).name)

    def catalog(self) -> Catalog:
        """An ir.Catalog of every party's tables, so the SQL frontend can
        type-check the joint query without reading any file."""
        cat = Catalog()
        for t in self.tables.values():
            cat.add(Table(t.name, t.path, t.format, t.schema))
        return cat


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _str(value: Any, what: str) -> str:
    _need(isinstance(value, str) and value != "", f"{what} must be a non-empty string")
    return value


def load_config(path: str) -> PartiesConfig:
    """Read and check a parties config file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"parties config {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"parties config {path} is not valid TOML: {e}") from None
    return parse_config(data, os.path.dirname(os.path.abspath(path)))


def parse_config(data: dict[str, Any], base_dir: str = ".") -> PartiesConfig:
    raw_parties = data.get("party", data.get("parties"))
    _need(isinstance(raw_parties, list) and len(raw_parties) >= 2,
          "the parties config needs at least two [[party]] entries")
    parties: list[Party] = []
    seen_addr: dict[tuple[str, int], str] = {}
    for i, p in enumerate(raw_parties):
        _need(isinstance(p, dict), f"party entry {i + 1} must be a table")
        name = _str(p.get("name"), f"party entry {i + 1}: name")
        _need(name != PUBLIC, "a party cannot be named '*'")
        _need(name not in [q.name for q in parties], f"party {name!r} is listed twice")
        host = _str(p.get("host", "127.0.0.1"), f"party {name!r}: host")
        port = p.get("port")
        _need(isinstance(port, int) and 0 < port < 65536, f"party {name!r}: port must be an integer in 1..65535")
        key = (host, port)
        _need(key not in seen_addr, f"port clash: parties {seen_addr.get(key)!r} and {name!r} both use {host}:{port}")
        seen_addr[key] = name
        parties.append(Party(name, host, port))
    names = [p.name for p in parties]

    def known(party: str, where: str) -> str:
        _need(isinstance(party, str), f"{where}: party names are strings")
        _need(party in names, f"{where}: unknown party {party!r}{suggest(party, names)} "
                              f"(parties: {', '.join(names)})")
        return party

    raw_tables = data.get("tables")
    _need(isinstance(raw_tables, dict) and raw_tables, "the parties config needs at least one [tables.NAME]")
    tables: dict[str, TableSpec] = {}
    for tname, t in raw_tables.items():
        _need(isinstance(t, dict), f"table {tname!r} must be a table")
        owner = t.get("owner")
        _need(owner is not None, f"table {tname!r} is owned by nobody: add owner = \"PARTY\"")
        known(owner, f"table {tname!r} owner")
        path = _str(t.get("path"), f"table {tname!r}: path")
        fmt = t.get("format") or ("parquet" if path.lower().endswith(".parquet") else "csv")
        cols = t.get("columns")
        _need(isinstance(cols, dict) and cols, f"table {tname!r} needs columns = {{ name = \"type\", ... }}")
        columns: list[tuple[str, DataType]] = []
        for cname, ctype in cols.items():
            try:
                columns.append((cname, parse_type(_str(ctype, f"table {tname!r} column {cname!r}: type"))))
            except MusketeerError as e:
                raise ConfigError(f"table {tname!r} column {cname!r}: {e}") from None
        visible: dict[str, Trust] = {}
        for cname, who in (t.get("visible_to") or {}).items():
            _need(cname in cols, f"table {tname!r}: visible_to names unknown column {cname!r}"
                                 f"{suggest(cname, list(cols))}")
            _need(isinstance(who, list), f"table {tname!r} column {cname!r}: visible_to must be a list of parties")
            if PUBLIC in who:
                visible[cname] = frozenset({PUBLIC})
            else:
                visible[cname] = frozenset({owner, *(known(w, f"table {tname!r} column {cname!r} visible_to")
                                                     for w in who)})
        tables[tname] = TableSpec(tname, owner, os.path.join(base_dir, path), fmt, tuple(columns), visible)

    rec = data.get("recipients")
    _need(isinstance(rec, list) and rec, "the parties config needs recipients = [\"PARTY\", ...]")
    recipients = tuple(known(r, "recipients") for r in rec)
    return PartiesConfig(tuple(parties), tables, recipients, base_dir)
