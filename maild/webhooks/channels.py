"""The HTTP channels that get answers back: ``reply_url`` of API channels and Slack channels.

An API channel (``kind: api``, the default) may name ``reply_url`` and a ``reply_secret_env`` or
``reply_secret_file``: agents' answers on tickets that came in through it are POSTed there,
signed like webhooks, instead of mailed. A Slack channel (``kind: slack``) names
``signing_secret_env|signing_secret_file`` (Slack's request signing secret),
``bot_token_env|bot_token_file`` and ``api_url`` (Slack's by default); agents' answers and status
changes go back into the Slack thread the ticket came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maild.config import Config, read_secret
from maild.config_schema import resolve_path
from maild.errors import ConfigError
from maild.webhooks.targets import Target, check_secret, check_url

SLACK_API_URL = "https://slack.com/api/"
API_KEYS = frozenset(
    {
        "name",
        "kind",
        "token_env",
        "token_file",
        "reply_url",
        "reply_secret_env",
        "reply_secret_file",
        "allow_private",
    }
)
SLACK_KEYS = frozenset(
    {
        "name",
        "kind",
        "signing_secret_env",
        "signing_secret_file",
        "bot_token_env",
        "bot_token_file",
        "api_url",
    }
)


@dataclass(frozen=True)
class SlackChannel:
    name: str
    signing_secret: str
    bot_token: str
    api_url: str


def kind_of(entry: dict[str, Any], key: str) -> str:
    kind = entry.get("kind", "api")
    if kind not in ("api", "slack"):
        raise ConfigError(f"{key}.kind: must be api or slack, not {kind!r}")
    unknown = set(entry) - (API_KEYS if kind == "api" else SLACK_KEYS)
    if unknown:
        known = ", ".join(sorted(API_KEYS if kind == "api" else SLACK_KEYS))
        raise ConfigError(f"{key}: unknown key {sorted(unknown)[0]} (known: {known})")
    return str(kind)


def secret_of(entry: dict[str, Any], key: str, what: str, base: Path) -> str:
    """``{what}_env`` or ``{what}_file`` of a channel entry (exactly one); ConfigError names it."""
    env, file = entry.get(f"{what}_env"), entry.get(f"{what}_file")
    if bool(env) == bool(file):
        raise ConfigError(f"{key}: give {what}_env or {what}_file (one of them)")
    which = f"{key}.{what}_env" if env else f"{key}.{what}_file"
    path = resolve_path(Path(str(file)), base) if file else None
    value = read_secret(env=str(env) if env else None, file=path, what=which)
    if not value:
        raise ConfigError(f"{which}: the secret is empty")
    return value


def slack_channels(config: Config) -> dict[str, SlackChannel]:
    found = {}
    for i, entry in enumerate(config.http.channels):
        key = f"http.channels[{i}]"
        if kind_of(entry, key) != "slack":
            continue
        name = str(entry.get("name"))
        api_url = str(entry.get("api_url") or SLACK_API_URL)
        if not api_url.endswith("/"):
            api_url += "/"
        found[name] = SlackChannel(
            name=name,
            signing_secret=secret_of(entry, key, "signing_secret", config.base_dir),
            bot_token=secret_of(entry, key, "bot_token", config.base_dir),
            api_url=api_url,
        )
    return found


def channel_targets(config: Config) -> dict[str, Target]:
    """``reply:NAME`` and ``slack:NAME`` targets of ``http.channels``."""
    targets: dict[str, Target] = {}
    for i, entry in enumerate(config.http.channels):
        key = f"http.channels[{i}]"
        name = entry.get("name")
        if kind_of(entry, key) == "slack":
            slack = slack_channels(config)[str(name)]
            targets[f"slack:{name}"] = Target(
                key=f"slack:{name}",
                url=slack.api_url,
                secret=None,
                allow_private=True,  # the admin's own Slack API (tests: a local fake)
                bot_token=slack.bot_token,
            )
        elif entry.get("reply_url"):
            allow = entry.get("allow_private", False)
            if not isinstance(allow, bool):
                raise ConfigError(f"{key}.allow_private: expected true or false")
            url = check_url(entry["reply_url"], f"{key}.reply_url", allow_private=allow)
            secret = check_secret(
                secret_of(entry, key, "reply_secret", config.base_dir), f"{key}.reply_secret"
            )
            targets[f"reply:{name}"] = Target(
                key=f"reply:{name}", url=url, secret=secret, allow_private=allow
            )
    return targets


def answers_over_http(config: Config, channel: str) -> bool:
    """True when agents' answers on tickets of ``channel`` go back over HTTP, not by mail."""
    for entry in config.http.channels:
        if entry.get("name") == channel:
            return entry.get("kind") == "slack" or bool(entry.get("reply_url"))
    return False
