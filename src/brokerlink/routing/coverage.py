"""The coverage map: which provider opens each institution, loaded from data and validated.

The shipped map is `coverage.toml` beside this module; an operator's file replaces it. A file that
does not parse or validate never takes effect: `CoverageRegistry.reload` keeps the last good map and
returns the error, which names the offending entry.
"""

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from brokerlink.domain import Provider
from brokerlink.errors import ConfigurationError

__all__ = [
    "CoverageEntry",
    "CoverageError",
    "CoverageMap",
    "CoverageRegistry",
    "load_coverage",
    "normalize_name",
]

log = structlog.get_logger(__name__)

LinkProvider = Literal["snaptrade", "plaid"]
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class CoverageError(ConfigurationError):
    """A coverage file that cannot take effect; the message names the file and the entry."""

    code = "coverage_invalid"


def normalize_name(name: str) -> str:
    """Case- and punctuation-insensitive key: "E*TRADE", "e-trade" and "Etrade" are one name."""
    return re.sub(r"[^0-9a-z]+", "", name.casefold().replace("&", "and"))


class CoverageEntry(BaseModel):
    """One institution as the curated map describes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slug: str
    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    type: Literal["brokerage", "bank", "retirement"]
    popular: bool = False
    preferred: LinkProvider
    fallback: LinkProvider | None = None
    allow_trading: bool = False
    snaptrade_slug: str | None = None
    plaid_institution_id: str | None = None
    # False: the provider updates this institution only on its own schedule and refuses a
    # refresh on demand, so none is offered (Plaid's investments refresh at some 401(k) plans).
    on_demand_refresh: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> "CoverageEntry":
        if not _SLUG.match(self.slug):
            raise ValueError("slug must be lowercase letters, digits and single hyphens")
        if self.fallback == self.preferred:
            raise ValueError("fallback must differ from the preferred provider")
        for provider in filter(None, (self.preferred, self.fallback)):
            if provider == "snaptrade" and not self.snaptrade_slug:
                raise ValueError("routes to snaptrade but has no snaptrade_slug")
            if provider == "plaid" and not self.plaid_institution_id:
                raise ValueError("routes to plaid but has no plaid_institution_id")
        if self.allow_trading and "snaptrade" not in (self.preferred, self.fallback):
            raise ValueError("allow_trading needs snaptrade as the preferred or fallback provider")
        return self

    @property
    def preferred_provider(self) -> Provider:
        return Provider(self.preferred)

    @property
    def fallback_provider(self) -> Provider | None:
        return Provider(self.fallback) if self.fallback else None

    def names(self) -> Iterator[str]:
        yield self.slug
        yield self.name
        yield from self.aliases
        if self.snaptrade_slug:
            yield self.snaptrade_slug


@dataclass(frozen=True)
class CoverageMap:
    """A validated map, with name lookup through slugs, names and aliases."""

    entries: tuple[CoverageEntry, ...]
    source: str
    _index: dict[str, CoverageEntry]

    def get(self, slug: str) -> CoverageEntry | None:
        return next((e for e in self.entries if e.slug == slug), None)

    def match(self, name: str) -> CoverageEntry | None:
        """The entry whose slug, name or alias matches `name`, ignoring case and punctuation."""
        return self._index.get(normalize_name(name))

    def refreshable_on_demand(self, institution: str | None) -> bool:
        """Whether a refresh of the institution may be asked for (unknown institutions may)."""
        entry = self.match(institution) if institution else None
        return entry is None or entry.on_demand_refresh

    def by_plaid_id(self, institution_id: str) -> CoverageEntry | None:
        return next((e for e in self.entries if e.plaid_institution_id == institution_id), None)

    def by_snaptrade_slug(self, slug: str) -> CoverageEntry | None:
        return next((e for e in self.entries if e.snaptrade_slug == slug), None)

    def slug_for_snaptrade(self, brokerage_slug: str) -> str | None:
        """Our institution slug for a SnapTrade brokerage slug (a connector's lookup)."""
        entry = self.by_snaptrade_slug(brokerage_slug)
        return entry.slug if entry is not None else None

    def popular(self) -> list[CoverageEntry]:
        return [e for e in self.entries if e.popular]

    def __len__(self) -> int:
        return len(self.entries)


def _build(data: object, source: str) -> CoverageMap:
    if not isinstance(data, dict) or not isinstance(data.get("institutions"), dict):
        raise CoverageError(f"{source}: expected an [institutions.<slug>] table per institution")
    entries: list[CoverageEntry] = []
    index: dict[str, CoverageEntry] = {}
    for slug, raw in data["institutions"].items():
        if not isinstance(raw, dict):
            raise CoverageError(f"{source}: institutions.{slug} must be a table")
        try:
            entry = CoverageEntry.model_validate({"slug": slug, **raw})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
                for err in exc.errors()
            )
            raise CoverageError(f"{source}: institutions.{slug}: {problems}") from exc
        for name in entry.names():
            key = normalize_name(name)
            other = index.get(key)
            if other is not None and other.slug != slug:
                raise CoverageError(
                    f"{source}: institutions.{slug}: name {name!r} is already used by "
                    f"institutions.{other.slug}"
                )
            index[key] = entry
        entries.append(entry)
    if not entries:
        raise CoverageError(f"{source}: no institutions")
    return CoverageMap(tuple(entries), source, index)


def load_coverage(path: Path | None = None) -> CoverageMap:
    """Load and validate a coverage file; the shipped map when `path` is None."""
    if path is None:
        source = "brokerlink/routing/coverage.toml"
        text = resources.files("brokerlink.routing").joinpath("coverage.toml").read_text("utf-8")
    else:
        source = str(path)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise CoverageError(f"{source}: cannot read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CoverageError(f"{source}: not valid TOML: {exc}") from exc
    return _build(data, source)


class CoverageRegistry:
    """Holds the map in force. A reload that fails leaves the last good map in place."""

    def __init__(self, initial: CoverageMap | None = None) -> None:
        self._current = initial or load_coverage()
        self.last_error: CoverageError | None = None

    @property
    def current(self) -> CoverageMap:
        return self._current

    @classmethod
    def start(cls, override: Path | None) -> "CoverageRegistry":
        """The shipped map, then the operator's file if one is set (its error kept and logged)."""
        registry = cls()
        if override is not None:
            registry.reload(override)
        return registry

    def reload(self, path: Path | None) -> CoverageError | None:
        """Try to switch to the map at `path` (None: the shipped map). Returns the error, if any."""
        try:
            fresh = load_coverage(path)
        except CoverageError as exc:
            self.last_error = exc
            log.error("routing.coverage.rejected", error=str(exc), kept=self._current.source)
            return exc
        self._current = fresh
        self.last_error = None
        log.info("routing.coverage.loaded", source=fresh.source, institutions=len(fresh))
        return None
