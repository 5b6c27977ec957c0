"""Is the judge there at all? One TCP connect per HTTP judge before a command claims its output
folder, so a mistyped `base_url` or a server not yet started is one line and no folder, not a run
that generates for an hour and then records a transport error for every answer."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlparse

from safer_vlm.errors import ConfigError


def check_judge_reachable(judge_cfg: Any, timeout_s: float = 5.0, *, field: str = "judge.base_url") -> None:
    """ConfigError when an HTTP judge (an ensemble's members too) refuses the connection; judges
    without a `base_url` (rules, hf_local) pass. A judge that dies or replies nonsense later is
    caught by each command's own failure accounting (train's failure-rate rule, eval's and
    curate's transport-error counts). `field` names the setting in the message."""
    for member in getattr(judge_cfg, "members", None) or []:
        check_judge_reachable(member, timeout_s, field=field)
    url = getattr(judge_cfg, "base_url", None)
    if not url:
        return
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(
            f"{field} {url}: cannot connect ({exc.strerror or exc}); start the judge server or fix "
            f"{field} (nothing was written)"
        ) from None
