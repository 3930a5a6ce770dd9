"""The one settings object: defaults declared here, ``config/defaults.yaml`` generated from them,
a deployment's YAML file (``RAPPORT_CONFIG_FILE``) over that, ``RAPPORT_*`` variables over all.

Nested fields use ``__``: ``RAPPORT_ENGINE__ALLOWED_LATENESS=15m``,
``RAPPORT_PROFILE__LIFECYCLE__CHURNED_AFTER_DAYS=150``.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from churn.model import ChurnLearner
from churn.tracker import ChurnConfig
from engine import EngineConfig
from rules.durations import parse_duration
from rules.loader import DEFAULT_RULES_DIR
from schemas.limits import DEFAULT_MAX_RECORD_BYTES
from state.policy import ProfilePolicy

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The shortest API token or webhook secret accepted: guessing one must be out of reach.
MIN_TOKEN_CHARS = 24
MIN_SECRET_CHARS = 32
DEFAULTS_FILE = REPO_ROOT / "config" / "defaults.yaml"


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_lateness: str = Field(
        "1h", description="Events older than the newest minus this count as late."
    )
    max_clock_skew: str = Field(
        "1h", description="Events newer than the clock plus this are dead-lettered."
    )
    dedup_window: str = Field(
        "24h", description="How long an event id is remembered to skip redeliveries."
    )
    dedup_max_entries: int = Field(
        1_000_000, ge=1, description="At most this many event ids are remembered."
    )
    score_sentiment: bool = Field(
        True,
        description="Score the text of tickets, replies, rating comments and reviews "
        "(Chinese and English, locally). Off: only scores that come with the events "
        "(`sentiment`, from a scorer upstream) are used; routing still reads keywords.",
    )
    max_record_bytes: int = Field(
        DEFAULT_MAX_RECORD_BYTES,
        ge=1024,
        le=64 << 20,
        description="A record (input line or Kafka message) longer than this is dead-lettered "
        "as too_large, keeping its first 4 KiB.",
    )
    message_key_env: str | None = Field(
        None,
        description="Environment variable holding the key that signs messages' unsubscribe "
        f"links (at least {MIN_SECRET_CHARS} characters; the same on every worker). Unset: "
        "a development key, fine for replays, never for messages customers get.",
    )

    @field_validator("allowed_lateness", "max_clock_skew", "dedup_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    def engine_config(self, environ: Mapping[str, str] = os.environ) -> EngineConfig:
        config = EngineConfig(
            allowed_lateness_seconds=parse_duration(self.allowed_lateness),
            dedup_max_entries=self.dedup_max_entries,
            dedup_window_seconds=parse_duration(self.dedup_window),
            score_sentiment=self.score_sentiment,
        )
        if self.message_key_env is None:
            return config
        key = environ.get(self.message_key_env, "")
        if len(key) < MIN_SECRET_CHARS:
            raise ValueError(
                f"engine.message_key_env: {self.message_key_env} must hold at least "
                f"{MIN_SECRET_CHARS} characters (it has {len(key)})"
            )
        return dataclasses.replace(config, message_key=key.encode())

    @property
    def max_clock_skew_seconds(self) -> float:
        return parse_duration(self.max_clock_skew)


class ChurnSettings(BaseModel):
    """The churn model (``churn/``): snapshots, delayed labels, risk bands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Churn snapshots, labels, learning and risk.")
    horizon: str = Field(
        "90d", description="A snapshot with no order within this long is labelled churned."
    )
    checkin: str = Field(
        "30d",
        description="Score (and snapshot) a customer again after this long without an order, "
        "and again every this long; `0s` turns check-ins off.",
    )
    checkin_until: str = Field(
        "180d", description="No check-ins once the last order is this far back."
    )
    snapshot_gap: str = Field(
        "0s", description="At most one order snapshot per customer within this long."
    )
    refresh: str = Field(
        "30d",
        description="Score a customer's risk again after this long without a score (no "
        "snapshot, no label), so a quiet customer's risk does not freeze; `0s`: never.",
    )
    high: float = Field(0.7, gt=0, le=1, description="Risk at or above this: band `high`.")
    low: float = Field(0.5, ge=0, lt=1, description="Risk at or below this: back to `low`.")
    min_labels: int = Field(
        500, ge=1, description="Labels of each kind to learn before the model gives scores."
    )
    learning_rate: float = Field(0.1, gt=0, description="AdaGrad step of the logistic model.")

    @field_validator("horizon", "checkin", "checkin_until", "snapshot_gap", "refresh")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _bands(self) -> ChurnSettings:
        if self.low >= self.high:
            raise ValueError(f"churn.low ({self.low}) must be below churn.high ({self.high})")
        return self

    def config(self) -> ChurnConfig:
        return ChurnConfig(
            horizon=parse_duration(self.horizon),
            checkin=parse_duration(self.checkin),
            checkin_until=parse_duration(self.checkin_until),
            snapshot_gap=parse_duration(self.snapshot_gap),
            high=self.high,
            low=self.low,
            refresh=parse_duration(self.refresh),
        )

    def learner(self) -> ChurnLearner:
        return ChurnLearner(min_labels=self.min_labels, learning_rate=self.learning_rate)


class WorkerSettings(BaseModel):
    """``rapport worker``: Faust on Kafka."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str = Field(
        "rapport", description="Faust application id: consumer group and changelog names."
    )
    broker: str = Field("kafka://127.0.0.1:9092", description="Kafka bootstrap servers.")
    topic_prefix: str = Field("rapport.", description="Put before every topic name.")
    partitions: int = Field(8, ge=1, description="Partitions of the events topic and tables.")
    input_format: Literal["contract", "segment"] = Field(
        "contract",
        description="How records on the events topic are written: `contract` (Rapport's "
        "events) or `segment` (Segment / RudderStack messages, mapped as in docs/data.md).",
    )
    clock: Literal["wall", "events"] = Field(
        "wall",
        description="`wall`: waits fire as real time passes; `events`: only as event time "
        "advances (backfills and tests that compare with replay).",
    )
    web_port: int = Field(
        6066, ge=0, le=65535, description="HTTP port (health, metrics); 0 turns it off."
    )
    web_bind: str = Field(
        "127.0.0.1",
        description="Interface the HTTP server listens on: loopback by default; `0.0.0.0` "
        "to serve other machines (a container behind its own network).",
    )
    web_host: str = Field(
        "",
        description="Host name other workers reach this one's web server at (profile "
        "lookups are forwarded there); empty: 127.0.0.1 when bound to loopback, else the "
        "machine's host name.",
    )
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token for profile lookups and every endpoint but health, "
        "readiness and metrics (at least 24 characters; every worker of an app the same). "
        "Unset: those endpoints answer 403.",
    )
    api_token_file: Path | None = Field(
        None, description="File holding the bearer token (instead of `api_token`)."
    )
    feedback_secret_env: str | None = Field(
        None,
        description="Environment variable holding the secret that signs `POST /feedback` "
        f"(delivery feedback events; at least {MIN_SECRET_CHARS} characters). Unset: the "
        "endpoint answers 403.",
    )
    store: Literal["rocksdb", "memory"] = Field(
        "rocksdb",
        description="Where tables are kept locally: `rocksdb` (on disk under `data_dir`; a "
        "restart reads only the changelog written since) or `memory` (rebuilt from the "
        "changelogs at every start).",
    )
    data_dir: Path = Field(
        Path("build/worker"),
        description="Local table state (RocksDB). One per worker: two workers cannot share it.",
    )
    session_timeout: str = Field(
        "30s",
        description="A worker that sends no heartbeat for this long is presumed dead and its "
        "partitions go to the others.",
    )
    rebalance_timeout: str = Field(
        "30s", description="How long a rebalance waits for every worker to rejoin."
    )

    @field_validator("session_timeout", "rebalance_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _token(self) -> WorkerSettings:
        token = self.token()
        if token is not None and len(token) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"worker.api_token: at least {MIN_TOKEN_CHARS} characters, got {len(token)} "
                "(make one with `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
            )
        return self

    def feedback_secret(self, environ: Mapping[str, str]) -> bytes | None:
        """The ``POST /feedback`` signing secret; None: the endpoint is off."""
        if self.feedback_secret_env is None:
            return None
        secret = environ.get(self.feedback_secret_env, "")
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(
                f"worker.feedback_secret_env: {self.feedback_secret_env} must hold at least "
                f"{MIN_SECRET_CHARS} characters (it has {len(secret)})"
            )
        return secret.encode()

    def token(self) -> str | None:
        """The bearer token, from ``api_token`` or ``api_token_file``; None: lookups off."""
        if self.api_token is not None:
            return self.api_token.get_secret_value()
        if self.api_token_file is not None:
            try:
                return self.api_token_file.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ValueError(
                    f"worker.api_token_file: cannot read {self.api_token_file}: {error.strerror}"
                ) from error
        return None

    @property
    def advertised_host(self) -> str:
        """Where other workers reach this one: ``web_host``, else what the bind allows."""
        if self.web_host:
            return self.web_host
        if self.web_bind in ("127.0.0.1", "localhost", "::1"):
            return "127.0.0.1"
        return socket.gethostname() if self.web_bind in ("0.0.0.0", "::", "") else self.web_bind

    @property
    def session_seconds(self) -> float:
        return parse_duration(self.session_timeout)

    @property
    def rebalance_seconds(self) -> float:
        return parse_duration(self.rebalance_timeout)


class RedisSettings(BaseModel):
    """The worker's Redis: action dedup claims and the profile read model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis to claim action ids in and write the read model to; empty turns "
        "both off (development only: a restart may then publish an action twice).",
    )
    key_prefix: str = Field("rapport:", description="Put before every Redis key.")
    claim_ttl: str = Field(
        "7d",
        description="How long a claimed action id is remembered; longer than any "
        "redelivery (a restart re-reads at most the uncommitted input).",
    )
    profile_ttl: str = Field(
        "400d",
        description="A read-model profile not written for this long expires; every "
        "change renews it.",
    )
    timeout: str = Field("2s", description="Connect and reply timeout of one Redis call.")

    @field_validator("claim_ttl", "profile_ttl", "timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def claim_seconds(self) -> int:
        return max(1, int(parse_duration(self.claim_ttl)))

    @property
    def profile_seconds(self) -> int:
        return max(1, int(parse_duration(self.profile_ttl)))

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)


class LogAdapter(BaseModel):
    """Append each delivered action to a JSON-lines file (``-``: standard output)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["log"] = "log"
    path: str = Field("build/deliveries.jsonl", description="File to append to; `-` for stdout.")


class _TimedAdapter(BaseModel):
    """An adapter that gives up on one attempt after ``timeout``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: str = Field("10s", description="Give up on one attempt after this long.")

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)


class WebhookAdapter(_TimedAdapter):
    """POST each action as JSON, HMAC-SHA256 signed, to ``url``."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(description="Endpoint that receives the POST: https:// (see allow_http).")
    secret_env: str = Field(
        description="Environment variable holding the signing secret (never the secret "
        f"itself), at least {MIN_SECRET_CHARS} characters."
    )
    timeout: str = Field("5s", description="Give up on one attempt after this long.")
    allow_http: bool = Field(
        False,
        description="Allow a plain http:// URL (the action and its signature travel "
        "unencrypted): a receiver on loopback or a private network only.",
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an https:// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _https(self) -> WebhookAdapter:
        if self.url.startswith("http://") and not self.allow_http:
            raise ValueError(
                f"{self.url}: an http:// webhook sends actions unencrypted; use https://, "
                "or set allow_http: true for a receiver on loopback or a private network"
            )
        return self


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_RATE_PERIODS = {"s": 1.0, "min": 60.0, "h": 3600.0}


def parse_rate(text: str, where: str = "rate") -> tuple[float, float]:
    """``"100/s"`` -> (100, 1.0): how many, per how many seconds.

    >>> parse_rate("600/min")
    (600.0, 60.0)
    """
    count, _, period = text.partition("/")
    try:
        amount = float(count)
    except ValueError:
        amount = -1.0
    if amount <= 0 or period not in _RATE_PERIODS:
        raise ValueError(f"{where}: {text!r} is not a rate; write it as 100/s, 600/min or 10000/h")
    return amount, _RATE_PERIODS[period]


class SmtpAdapter(_TimedAdapter):
    """Send each email action's rendered message over SMTP (submission, RFC 6409)."""

    type: Literal["smtp"] = "smtp"
    host: str = Field(description="The mail server (an MTA or a provider's SMTP relay).")
    port: int = Field(587, ge=1, le=65535, description="587 for STARTTLS, 465 for TLS.")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="`starttls` (upgrade on 587), `tls` (implicit, 465) or `none` (plain, "
        "allowed only to a server on loopback).",
    )
    from_address: str = Field(
        pattern=r"^[^@\s<>]+@[^@\s<>]+$", description="The envelope and From address."
    )
    from_name: str | None = Field(None, max_length=100, description="The From display name.")
    username_env: str | None = Field(
        None, description="Environment variable holding the SMTP user (with password_env)."
    )
    password_env: str | None = Field(
        None, description="Environment variable holding the SMTP password."
    )

    @model_validator(mode="after")
    def _secure(self) -> SmtpAdapter:
        if self.security == "none" and self.host not in _LOOPBACK_HOSTS:
            raise ValueError(
                f"security: none sends mail (and any password) unencrypted to {self.host}; "
                "use starttls or tls, or a server on loopback"
            )
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env go together")
        return self

    @property
    def domain(self) -> str:
        return self.from_address.rsplit("@", 1)[1]


class TwilioAdapter(_TimedAdapter):
    """Send each SMS action's rendered text through Twilio's Messages API (a form POST to
    ``/2010-04-01/Accounts/<sid>/Messages.json`` with HTTP basic auth)."""

    type: Literal["twilio"] = "twilio"
    account_sid_env: str = Field(description="Environment variable holding the Account SID.")
    auth_token_env: str = Field(description="Environment variable holding the auth token.")
    sender: str = Field(
        description="The From number (E.164, +447…) or a Messaging Service SID (MG…)."
    )
    base_url: str = Field(
        "https://api.twilio.com", description="The API's address (a test double's, in tests)."
    )
    allow_http: bool = Field(False, description="Allow an http:// base_url (loopback tests).")

    @model_validator(mode="after")
    def _https(self) -> TwilioAdapter:
        if not self.base_url.startswith("https://") and not (
            self.allow_http and self.base_url.startswith("http://")
        ):
            raise ValueError(f"base_url {self.base_url!r}: expected https://")
        return self


class InboxAdapter(BaseModel):
    """Keep each in-app message (站内信) in the customer's inbox in Redis, served by the
    worker's ``GET /inbox/{customer}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["inbox"] = "inbox"
    max_messages: int = Field(50, ge=1, le=1000, description="Newest messages kept per customer.")
    ttl: str = Field("30d", description="A message expires this long after it was sent.")

    @field_validator("ttl")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def ttl_seconds(self) -> float:
        return parse_duration(self.ttl)


AnyAdapter = LogAdapter | WebhookAdapter | SmtpAdapter | TwilioAdapter | InboxAdapter
Adapter = Annotated[AnyAdapter, Field(discriminator="type")]


def _default_adapters() -> dict[str, AnyAdapter]:
    return {"log": LogAdapter()}


class DeliverySettings(BaseModel):
    """The delivery stage: reads the actions topic and hands each sent action to an adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run the delivery stage in this worker.")
    adapters: dict[str, Adapter] = Field(
        default_factory=lambda: _default_adapters(),
        description="Adapters by name: `type: log`, `webhook`, `smtp`, `twilio` or `inbox`.",
    )
    channels: dict[str, str] = Field(
        default_factory=dict,
        description="Channel (email, sms, ..., `emit` for emitted events) -> adapter name.",
    )
    default_adapter: str = Field("log", description="Adapter for channels not listed.")
    max_attempts: int = Field(5, ge=1, description="Tries per action before its dead letter.")
    rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description="Adapter -> at most this many tries per period, e.g. `100/s`, `600/min`, "
        "`10000/h` (a provider's quota): tries beyond it wait their turn.",
    )
    backoff_initial: str = Field("1s", description="Wait after the first failed try.")
    backoff_max: str = Field("30s", description="Longest wait between tries (doubling).")

    @field_validator("backoff_initial", "backoff_max")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _adapters_exist(self) -> DeliverySettings:
        names = sorted(self.adapters)
        wanted = [("default_adapter", self.default_adapter)]
        wanted += [(f"channels.{channel}", name) for channel, name in self.channels.items()]
        wanted += [(f"rate_limits.{name}", name) for name in self.rate_limits]
        for where, name in wanted:
            if name not in self.adapters:
                raise ValueError(f"{where}: no adapter named {name!r}; adapters are {names}")
        return self

    @field_validator("rate_limits")
    @classmethod
    def _rates(cls, value: dict[str, str]) -> dict[str, str]:
        for adapter, rate in value.items():
            parse_rate(rate, f"delivery.rate_limits.{adapter}")
        return value

    def adapter_for(self, channel: str) -> str:
        return self.channels.get(channel, self.default_adapter)

    @property
    def backoff_seconds(self) -> tuple[float, float]:
        return parse_duration(self.backoff_initial), parse_duration(self.backoff_max)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAPPORT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    rules_dir: Path = Field(
        DEFAULT_RULES_DIR, description="Directory of tags/journeys/policies YAML."
    )
    engine: EngineSettings = EngineSettings()
    profile: ProfilePolicy = ProfilePolicy()
    churn: ChurnSettings = ChurnSettings()
    worker: WorkerSettings = WorkerSettings()
    redis: RedisSettings = RedisSettings()
    delivery: DeliverySettings = DeliverySettings()

    @field_validator("rules_dir")
    @classmethod
    def _relative_to_repo(cls, value: Path) -> Path:
        """A relative rules_dir is taken from the working directory, else from the install."""
        if value.is_absolute() or value.exists():
            return value
        return REPO_ROOT / value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [DEFAULTS_FILE] if DEFAULTS_FILE.exists() else []
        extra = os.environ.get("RAPPORT_CONFIG_FILE")
        if extra:
            files.append(Path(extra))
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=files),
        )


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


def defaults_document() -> dict[str, Any]:
    """What ``config/defaults.yaml`` must contain: every setting at its declared default."""
    data = Settings.model_construct().model_dump(mode="json")
    data["rules_dir"] = "rules"
    return data
