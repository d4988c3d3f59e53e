"""Leases (SPEC §10): a claim on an orchestration stays live while its host keeps renewing it. The
remote ref `refs/specflow/leases/<orchestration>` points at a small commit that names the host and
the expiry time; every renewal replaces it by compare-and-swap (`--force-with-lease` with the
value expected), so one host at a time holds it. Pure: times come in, decisions go out.

The rules, and why they keep two hosts from running one orchestration at once:

- the holder renews every `lease_s / 3`, and every push of its marks and events renews it too;
- the holder gives the lease up, and stops its agent, `lease_s / 4` before the expiry it wrote
  (two renewals may fail first), measured on its own clock;
- another host takes it over only once the expiry has passed on *its* clock;
- hosts whose clocks differ by more than `lease_s / 4` refuse to run (`doctor` shows the skew): so
  the holder has stopped before any other host may take over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from specflowd.core.text import one_line
from specflowd.core.trailers import parse_trailers

LEASES = "refs/specflow/leases/"  # on the remote
RENEWALS_PER_LEASE = 3
SKEW_FRACTION = 4  # the clock skew allowed, and the margin the holder keeps, as a fraction of lease_s


def lease_ref(orchestration: str) -> str:
    return f"{LEASES}{orchestration}"


def tracking_leases(remote: str) -> str:
    """Where this clone keeps the remote's lease refs, as it keeps branches in refs/remotes/."""
    return f"refs/specflow/remotes/{remote}/leases/"


def tracking_branch(remote: str, branch: str) -> str:
    return f"refs/remotes/{remote}/{branch}"


@dataclass(frozen=True)
class Lease:
    orchestration: str
    host: str
    expires: datetime
    written: datetime  # the lease commit's committer time, on its host's clock
    sha: str  # the lease commit: the value a compare-and-swap of the ref expects


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def lease_message(orchestration: str, host: str, expires: datetime) -> str:
    until = iso(expires)
    return (f"lease {orchestration}: {one_line(host)} until {until}\n\n"
            f"Specflow-Lease: {orchestration}\nSpecflow-Host: {one_line(host)}\nSpecflow-Expires: {until}\n")


def parse_lease(sha: str, written: datetime, message: str) -> Lease | None:
    """The lease a lease commit states; None when it is not one of ours (written by hand, broken)."""
    values = dict(parse_trailers(message))
    try:
        expires = datetime.fromisoformat(values["Expires"])
        return Lease(orchestration=values["Lease"], host=values["Host"], expires=expires, written=written, sha=sha)
    except (KeyError, ValueError):
        return None


def expiry(now: datetime, lease_s: float) -> datetime:
    return now + timedelta(seconds=lease_s)


def renewal_due(renewed: datetime, now: datetime, lease_s: float) -> bool:
    return now - renewed >= timedelta(seconds=lease_s / RENEWALS_PER_LEASE)


def holder_must_stop(expires: datetime, now: datetime, lease_s: float) -> bool:
    """The holder could not renew in time: it stops before any other host may take over."""
    return now >= expires - timedelta(seconds=lease_s / SKEW_FRACTION)


def lapsed(lease: Lease, now: datetime) -> bool:
    """Another host may take the lease over."""
    return now > lease.expires


def max_skew_s(lease_s: float) -> float:
    return lease_s / SKEW_FRACTION


def clock_skew_s(leases: list[Lease], now: datetime) -> float:
    """How far ahead of this host's clock the newest lease commit was written (0 when none is
    ahead): a lease commit from the future means its host's clock runs ahead of ours."""
    return max((max(0.0, (lease.written - now).total_seconds()) for lease in leases), default=0.0)
