"""Loading and validating config.yaml into typed, frozen settings.

The schema is the dataclasses below: every key with its default. Unknown keys, wrong types and
missing values are reported with the file, line and key path before anything starts. Relative paths
resolve against the config file's folder. Secrets are never inline: only ``*_env`` (an environment
variable's name) or ``*_file`` (a path) keys name them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maild.config_schema import (
    SLOW,
    build_section,
    merge,
    parse_fast,
    parse_round_trip,
    resolve_path,
)
from maild.errors import ConfigError

PREFIX_RE = re.compile(r"^[A-Z][A-Z0-9]{0,15}$")
ADDRESS_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$|^[^@\s<>]+@localhost$")


@dataclasses.dataclass(frozen=True)
class InstanceConfig:
    name: str = "Support"
    ticket_prefix: str = "ACME"
    support_addresses: tuple[str, ...] = ()
    data_dir: Path = Path("./var")
    secret_env: str | None = None  # the signing secret from an environment variable ...
    secret_file: Path | None = None  # ... or a file; else generated into data_dir on first start


@dataclasses.dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///var/ticketd.db"
    busy_timeout_ms: int = 5000


@dataclasses.dataclass(frozen=True)
class SmtpInConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str = "localhost"  # the name in the greeting; never looked up per connection
    max_message_bytes: int = 26214400
    max_connections: int = 100
    timeout_seconds: int = 300


@dataclasses.dataclass(frozen=True)
class RetryConfig:
    first_seconds: float = 15.0  # the first retry; it doubles after each failure ...
    max_seconds: float = 3600.0  # ... up to this
    max_attempts: int = 50  # then the row is marked failed


@dataclasses.dataclass(frozen=True)
class SmtpOutConfig:
    transport: Literal["file", "smtp"] = "file"
    directory: Path = Path("./var/sent")
    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    timeout_seconds: float = 30.0
    poll_seconds: float = 1.0
    retry: RetryConfig = dataclasses.field(default_factory=RetryConfig)


@dataclasses.dataclass(frozen=True)
class ImapConfig:
    mailboxes: tuple[dict[str, Any], ...] = ()  # schema: maild.config_imap (validated where used)


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    max_attempts: int = 3  # a message that fails this often is quarantined
    retry_seconds: float = 5.0  # wait before the next attempt (doubles each time)
    lease_seconds: float = 300.0  # a claim older than this is taken as abandoned
    poll_seconds: float = 0.5  # idle wait between spool scans when not woken


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    auto_replies_per_hour: int = 10  # automatic mails to one address per hour
    bounce_suppress_days: float = 30.0  # no automatic mail to an address that bounced
    extra_robot_senders: tuple[str, ...] = ()  # regexes on the sender address


@dataclasses.dataclass(frozen=True)
class NotifyConfig:
    acknowledge: bool = True  # send the `ack` template to the requester of a new ticket


@dataclasses.dataclass(frozen=True)
class AgentsConfig:
    authserv_id: str | None = None  # the border MTA's Authentication-Results id to trust


@dataclasses.dataclass(frozen=True)
class AttachmentsConfig:
    max_bytes: int = 26214400  # one attachment larger than this is not stored (recorded)
    max_count: int = 100


@dataclasses.dataclass(frozen=True)
class RetentionConfig:
    spool_days: float = 30.0  # processed spool rows are deleted this long after (0: never)
    outbox_days: float = 90.0  # sent outbox rows are deleted this long after (0: never)


@dataclasses.dataclass(frozen=True)
class LifecycleConfig:
    auto_close_days: float = 7.0  # a resolved ticket closes this long after resolution (0: never)
    pending_reminder_days: float = (
        3.0  # remind the customer of a ticket pending this long (0: never)
    )
    pending_resolve_days: float = 7.0  # resolve a ticket pending this long (0: never)
    survey: bool = True  # mail the `survey` template (rating 1-5) when a ticket is resolved
    sweep_seconds: float = 60.0  # how often `ticketd run` runs the SLA and lifecycle sweep


@dataclasses.dataclass(frozen=True)
class DigestConfig:
    enabled: bool = False  # mail the report to `to` once a week (maild.reports.digest)
    to: tuple[str, ...] = ()
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    time: str = "08:00"  # HH:MM on `weekday`, in `timezone`
    timezone: str = "UTC"
    since: str = "7d"  # the window it covers, ending when it is sent: 12h, 7d, 2w


@dataclasses.dataclass(frozen=True)
class ReportsConfig:
    digest: DigestConfig = dataclasses.field(default_factory=DigestConfig)


@dataclasses.dataclass(frozen=True)
class HttpConfig:
    enabled: bool = False  # serve the web form, the API and the requester pages (maild.web)
    host: str = "127.0.0.1"
    port: int = 8025
    public_url: str | None = None  # the base of links in mail, e.g. https://help.example.com
    trusted_proxies: tuple[str, ...] = ()  # addresses/networks whose X-Forwarded-For is believed
    max_body_bytes: int = 26214400  # larger request bodies get 413 (never above smtp_in's limit)
    request_timeout_seconds: float = 60.0  # reading the body and answering; then 503
    keepalive_seconds: float = 15.0  # an idle keep-alive connection is closed after this
    db_threads: int = 8  # threads for the database work of requests
    channels: tuple[dict[str, Any], ...] = ()  # API channels {name, token_env|token_file}
    link_days: float = 90.0  # requester status links expire after this many days
    # GET /dashboard users: name -> password hash made by ``ticketd passwd NAME`` (never plain)
    dashboard_users: dict[str, str] = dataclasses.field(default_factory=dict)
    form_min_seconds: float = 3.0  # a form sent sooner after it was served is refused (bots)
    form_max_hours: float = 24.0  # a form older than this must be reloaded
    form_rate_per_ip: str = "20/hour;240/day"  # form submissions per client address
    form_rate_total: str = "5000/day"  # form submissions from everyone together
    api_rate_per_channel: str = "600/minute"  # API submissions per channel
    lookup_rate: str = "5/hour"  # lost-link requests per client address and per mail address


@dataclasses.dataclass(frozen=True)
class ThreadingConfig:
    # Mail threaded to a ticket from someone who is not its requester, a watcher or an agent
    # (and not sent to the ticket's signed reply address): "note" stores it as a flagged message
    # without re-opening; "new_ticket" opens a new ticket linked to it; "append" as a reply.
    non_participants: Literal["note", "new_ticket", "append"] = "note"


@dataclasses.dataclass(frozen=True)
class HealthConfig:
    # ``ticketd status`` and GET /healthz (maild.ops.health): unhealthy when ...
    spool_max_wait_seconds: float = 300.0  # ... a pending inbound message waited longer than this
    max_quarantined: int = 0  # ... more quarantined messages than this wait for `spool retry`
    outbox_max_wait_seconds: float = 900.0  # ... a queued outgoing mail is overdue by this much
    failed_window_hours: float = 24.0  # ... a delivery failed for good within this window
    imap_max_silence_seconds: float = 900.0  # ... a mailbox had no successful poll for this long


@dataclasses.dataclass(frozen=True)
class WebhookDeliveryConfig:
    first_retry_seconds: float = 10.0  # the first retry of a delivery; it doubles after each ...
    max_retry_seconds: float = 3600.0  # ... up to this (a 429's Retry-After is honoured)
    max_in_flight: int = 32  # deliveries under way at once (one per target and ticket)
    poll_seconds: float = 1.0  # how often new events and due retries are looked for


@dataclasses.dataclass(frozen=True)
class KbConfig:
    # Articles of kb_dir suggested in the acknowledgement (maild.kb): at most this many ...
    max_suggestions: int = 3
    # ... each with a score (0 to 1, higher fits better) of at least this; none when none fits
    min_score: float = 0.6
    # "That solved it" links in the acknowledgement (they need http.public_url) expire after:
    solved_link_days: float = 30.0


@dataclasses.dataclass(frozen=True)
class TriageConfig:
    # Retrain the triage model (maild.triage) from the resolved tickets when it is older than
    # this many days (checked hourly by `ticketd run`); 0: never (`ticketd triage train` by hand)
    retrain_days: float = 0.0


@dataclasses.dataclass(frozen=True)
class Config:
    instance: InstanceConfig = dataclasses.field(default_factory=InstanceConfig)
    database: DatabaseConfig = dataclasses.field(default_factory=DatabaseConfig)
    smtp_in: SmtpInConfig = dataclasses.field(default_factory=SmtpInConfig)
    smtp_out: SmtpOutConfig = dataclasses.field(default_factory=SmtpOutConfig)
    imap: ImapConfig = dataclasses.field(default_factory=ImapConfig)
    worker: WorkerConfig = dataclasses.field(default_factory=WorkerConfig)
    loop: LoopConfig = dataclasses.field(default_factory=LoopConfig)
    notify: NotifyConfig = dataclasses.field(default_factory=NotifyConfig)
    agents: AgentsConfig = dataclasses.field(default_factory=AgentsConfig)
    attachments: AttachmentsConfig = dataclasses.field(default_factory=AttachmentsConfig)
    lifecycle: LifecycleConfig = dataclasses.field(default_factory=LifecycleConfig)
    reports: ReportsConfig = dataclasses.field(default_factory=ReportsConfig)
    retention: RetentionConfig = dataclasses.field(default_factory=RetentionConfig)
    http: HttpConfig = dataclasses.field(default_factory=HttpConfig)
    threading: ThreadingConfig = dataclasses.field(default_factory=ThreadingConfig)
    health: HealthConfig = dataclasses.field(default_factory=HealthConfig)
    # Signed outbound webhooks {name, url, events, secret_env|secret_file, format, allow_private,
    # include_notes, timeout_seconds, max_attempts}: validated by maild.webhooks.targets.
    webhooks: tuple[dict[str, Any], ...] = ()
    webhook_delivery: WebhookDeliveryConfig = dataclasses.field(
        default_factory=WebhookDeliveryConfig
    )
    rules_dir: Path = Path("./rules")
    templates_dir: Path = Path("./templates")
    kb_dir: Path = Path("./kb")  # knowledge-base articles, Markdown with front matter (maild.kb)
    kb: KbConfig = dataclasses.field(default_factory=KbConfig)
    triage: TriageConfig = dataclasses.field(default_factory=TriageConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Where the file was read from; relative paths above are already resolved against its folder.
    source: Path = Path("config.yaml")

    @property
    def base_dir(self) -> Path:
        return self.source.parent

    @property
    def support_addresses(self) -> tuple[str, ...]:
        return self.instance.support_addresses

    @property
    def prefix(self) -> str:
        return self.instance.ticket_prefix


def default_config_path() -> Path:
    """``$TICKETD_CONFIG``, else ./config.yaml."""
    return Path(os.environ.get("TICKETD_CONFIG") or "config.yaml")


def load_config(path: Path | str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read, validate and resolve a config file; ``overrides`` are merged over it (for tests)."""
    path = Path(path) if path is not None else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from exc
    data = parse_fast(text)
    if data is SLOW:
        data = parse_round_trip(text, path)
    if data is None:
        data = {}
    if overrides:
        data = merge(data, overrides)
    config = build_section(Config, data, path=path, keypath="", exclude={"source"})
    config = dataclasses.replace(config, source=path.resolve())
    config = _resolve_paths(config, path.resolve().parent)
    _check(config)
    return config


def config_from_dict(data: dict[str, Any], *, base_dir: Path) -> Config:
    """Build a Config from plain data as if read from ``base_dir/config.yaml`` (tests, tools)."""
    path = base_dir / "config.yaml"
    config = build_section(Config, data, path=path, keypath="", exclude={"source"})
    config = dataclasses.replace(config, source=path.resolve())
    config = _resolve_paths(config, base_dir.resolve())
    _check(config)
    return config


def _resolve_paths(config: Config, base: Path) -> Config:
    inst = dataclasses.replace(
        config.instance,
        data_dir=resolve_path(config.instance.data_dir, base),
        secret_file=resolve_path(config.instance.secret_file, base),
    )
    out = dataclasses.replace(
        config.smtp_out,
        directory=resolve_path(config.smtp_out.directory, base),
        password_file=resolve_path(config.smtp_out.password_file, base),
    )
    return dataclasses.replace(
        config,
        instance=inst,
        smtp_out=out,
        rules_dir=resolve_path(config.rules_dir, base),
        templates_dir=resolve_path(config.templates_dir, base),
        kb_dir=resolve_path(config.kb_dir, base),
    )


def _check(config: Config) -> None:
    src = config.source
    inst = config.instance
    if not PREFIX_RE.match(inst.ticket_prefix):
        raise ConfigError(
            f"{src}: instance.ticket_prefix: {inst.ticket_prefix!r} must be capital "
            "letters and digits, starting with a letter (e.g. ACME)"
        )
    if not inst.support_addresses:
        raise ConfigError(f"{src}: instance.support_addresses: at least one address is required")
    if not 0 <= config.kb.min_score <= 1:
        raise ConfigError(f"{src}: kb.min_score: {config.kb.min_score} is not between 0 and 1")
    if not 0 <= config.kb.max_suggestions <= 10:
        raise ConfigError(
            f"{src}: kb.max_suggestions: {config.kb.max_suggestions} is not between 0 and 10"
        )
    for i, addr in enumerate(inst.support_addresses):
        if not ADDRESS_RE.match(addr) or "+" in addr.split("@")[0]:
            raise ConfigError(
                f"{src}: instance.support_addresses[{i}]: {addr!r} is not a plain "
                "address (user@domain, without +tag)"
            )
    if config.smtp_in.max_message_bytes < 1024:
        raise ConfigError(f"{src}: smtp_in.max_message_bytes: must be at least 1024")
    if not 0 <= config.smtp_in.port <= 65535:
        raise ConfigError(f"{src}: smtp_in.port: {config.smtp_in.port} is not a TCP port")
    out = config.smtp_out
    if out.password_env and out.password_file:
        raise ConfigError(f"{src}: smtp_out: give password_env or password_file, not both")
    if inst.secret_env and inst.secret_file:
        raise ConfigError(f"{src}: instance: give secret_env or secret_file, not both")
    _check_lifecycle(src, config.lifecycle)
    for name in ("spool_days", "outbox_days"):
        value = getattr(config.retention, name)
        if not 0 <= value <= 36600:
            raise ConfigError(f"{src}: retention.{name}: {value:g} must be 0 (keep) to 36600 days")
    _check_digest(src, config.reports.digest)
    _check_http(src, config.http)


def _check_digest(src: Path, digest: DigestConfig) -> None:
    key = "reports.digest"
    for i, addr in enumerate(digest.to):
        if not ADDRESS_RE.match(addr):
            raise ConfigError(f"{src}: {key}.to[{i}]: {addr!r} is not an address (user@domain)")
    if digest.enabled and not digest.to:
        raise ConfigError(f"{src}: {key}.to: give at least one address when enabled is true")
    if not re.match(r"^([01]?\d|2[0-3]):[0-5]\d$", digest.time):
        raise ConfigError(f"{src}: {key}.time: {digest.time!r} is not a time like 08:00")
    since = re.match(r"^(\d{1,5})([hdw])$", digest.since)
    hours = int(since.group(1)) * {"h": 1, "d": 24, "w": 168}[since.group(2)] if since else 0
    if not 0 < hours <= 3660 * 24:
        raise ConfigError(
            f"{src}: {key}.since: {digest.since!r} is not like 7d, 12h or 2w (at most 3660d)"
        )
    try:
        ZoneInfo(digest.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{src}: {key}.timezone: {digest.timezone!r} is not a time zone, e.g. Europe/Berlin"
        ) from None


def _check_http(src: Path, http: HttpConfig) -> None:
    if not 0 <= http.port <= 65535:
        raise ConfigError(f"{src}: http.port: {http.port} is not a TCP port")
    if http.public_url is not None and not re.match(
        r"^https?://[^\s/?#]+(/[^\s?#]*)?$", http.public_url
    ):
        raise ConfigError(
            f"{src}: http.public_url: {http.public_url!r} is not an http(s) URL like "
            "https://help.example.com"
        )
    if http.max_body_bytes < 1024:
        raise ConfigError(f"{src}: http.max_body_bytes: must be at least 1024")
    if not 1 <= http.request_timeout_seconds <= 3600:
        raise ConfigError(f"{src}: http.request_timeout_seconds: must be 1 to 3600 seconds")
    from maild.ops.passwords import is_hash

    for user, stored in http.dashboard_users.items():
        if not isinstance(stored, str) or not is_hash(stored):
            raise ConfigError(
                f"{src}: http.dashboard_users.{user}: not a password hash; make one with "
                f"`ticketd passwd {user}` (plain passwords are refused)"
            )
    if not 1 <= http.db_threads <= 64:
        raise ConfigError(f"{src}: http.db_threads: must be 1 to 64")
    if not 1 <= http.link_days <= 3660:
        raise ConfigError(f"{src}: http.link_days: {http.link_days:g} must be 1 to 3660 days")
    # The rates (http.form_rate_per_ip, ...) are parsed by maild.web.ratelimit.check_rates when
    # the server is built: importing `limits` here would cost every CLI command a tenth of a second.
    if not 0 <= http.form_min_seconds < http.form_max_hours * 3600:
        raise ConfigError(f"{src}: http.form_min_seconds: must be 0 or more, below form_max_hours")
    for i, proxy in enumerate(http.trusted_proxies):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(
                f"{src}: http.trusted_proxies[{i}]: {proxy!r} is not an address or network"
            ) from None


def _check_lifecycle(src: Path, life: LifecycleConfig) -> None:
    for name in ("auto_close_days", "pending_reminder_days", "pending_resolve_days"):
        value = getattr(life, name)
        if not 0 <= value <= 3660:
            raise ConfigError(f"{src}: lifecycle.{name}: {value:g} must be 0 (never) to 3660 days")
    if not 1 <= life.sweep_seconds <= 3600:
        raise ConfigError(
            f"{src}: lifecycle.sweep_seconds: {life.sweep_seconds:g} must be 1 to 3600 seconds"
        )
    remind, resolve = life.pending_reminder_days, life.pending_resolve_days
    if remind and resolve and remind >= resolve:
        raise ConfigError(
            f"{src}: lifecycle.pending_reminder_days: {remind:g} must be less than "
            f"pending_resolve_days ({resolve:g}), or the reminder comes too late"
        )


def read_secret(*, env: str | None, file: Path | None, what: str) -> str | None:
    """A secret from an environment variable or a file (first line, stripped), or None."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{what}: environment variable {env} is not set")
        return value
    if file:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {file}: {exc.strerror or exc}") from exc
    return None
