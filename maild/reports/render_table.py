"""The report as plain text for a terminal: every line fits in 80 columns.

Durations are short (``3h05`` is three hours five minutes, ``2d4h`` two days four hours); ``-`` is a
figure without data. The digest mail's text body is this rendering.
"""

from __future__ import annotations

from maild.reports import fmt
from maild.reports.model import TRAFFIC_BASIS, GroupStats, Report, Target

WIDTH = 80


def _target(t: Target) -> str:
    total = t.met + t.breached
    return f"{fmt.share(t.share_met)} ({t.met}/{total})" if total else "-"


def summary(g: GroupStats) -> list[str]:
    s = g.satisfaction
    lines = [
        f"  tickets created {g.created}, resolved {g.resolved}, open at end {g.open_at_end}",
        "",
        f"  {'':<16}{'count':>7}{'median':>8}{'p90':>8}   business hours: median     p90",
    ]
    for label, t in (("first response", g.first_response), ("resolution", g.resolution)):
        lines.append(
            f"  {label:<16}{t.count:>7}{fmt.duration(t.median):>8}{fmt.duration(t.p90):>8}"
            f"{'':>19}{fmt.duration(t.business_median):>8}{fmt.duration(t.business_p90):>8}"
        )
    lines += [
        "",
        f"  SLA met: first response {_target(g.sla_first_response)}, "
        f"resolution {_target(g.sla_resolution)}",
        f"  satisfaction: average {fmt.rating(s.average)} from {s.rated} ratings, "
        f"response rate {fmt.share(s.response_rate)} of {s.surveyed} surveyed",
    ]
    return lines


def volume_table(groups: tuple[GroupStats, ...], title: str, none: str) -> list[str]:
    lines = [
        f"  {title:<20}{'created':>8}{'resolved':>9}{'open':>7}"
        f"{'SLA FR':>8}{'SLA RES':>8}{'rating':>7}{'rated':>6}"
    ]
    for g in groups:
        s = g.satisfaction
        lines.append(
            f"  {fmt.name(g.name, none, 19):<20}{g.created:>8}{g.resolved:>9}{g.open_at_end:>7}"
            f"{fmt.share(g.sla_first_response.share_met):>8}"
            f"{fmt.share(g.sla_resolution.share_met):>8}"
            f"{fmt.rating(s.average):>7}{fmt.share(s.response_rate):>6}"
        )
    return lines


def times_table(groups: tuple[GroupStats, ...], title: str, none: str) -> list[str]:
    heads = "".join(f"{h:>7}" for h in ("FR med", "FR p90", "RS med", "RS p90"))
    lines = [
        f"  {'':<16}{'wall clock':>28} | {'business hours':>27}",
        f"  {title:<16}{heads} |{heads}",
    ]
    for g in groups:
        fr, rs = g.first_response, g.resolution
        wall = (fr.median, fr.p90, rs.median, rs.p90)
        business = (fr.business_median, fr.business_p90, rs.business_median, rs.business_p90)
        lines.append(
            f"  {fmt.name(g.name, none, 15):<16}"
            + "".join(f"{fmt.duration(v):>7}" for v in wall)
            + " |"
            + "".join(f"{fmt.duration(v):>7}" for v in business)
        )
    return lines


def traffic(report: Report) -> list[str]:
    days = "  ".join(f"{w} {n}" for w, n in report.weekdays)
    lines = [f"Busiest weekdays and hours ({TRAFFIC_BASIS}, {report.timezone})", f"  {days}"]
    hours = report.hours
    for row in range(3):
        cells = hours[row * 8 : row * 8 + 8]
        lines.append("  " + "".join(f"{h:02d}h {n:<5}" for h, n in cells).rstrip())
    return lines


def render(report: Report) -> str:
    out = [f"ticketd report: {fmt.window(report)}"]
    out.append(f"days and hours in {report.timezone}; business hours {report.business_hours}")
    if report.team is not None:
        out.append(f"team: {report.team}")
    out += ["", "Summary", *summary(report.summary), "", "Per day"]
    out.append(f"  {'date':<12}{'created':>8}{'resolved':>9}{'open':>7}")
    for d in report.days:
        out.append(f"  {d.date.isoformat():<12}{d.created:>8}{d.resolved:>9}{d.open_at_end:>7}")
    for title, groups, none in (
        (report.grouped_by, report.teams, "(no team)" if report.grouped_by == "team" else "(none)"),
        ("agent", report.agents, "(unassigned)"),
    ):
        out += ["", f"Per {title}"]
        if not groups:
            out.append("  (none)")
            continue
        out += volume_table(groups, title, none)
        out.append("")
        out += times_table(groups, title, none)
    out += ["", "Top tags (tickets created)"]
    tags = [f"{fmt.name(tag, '', 30)} {n}" for tag, n in report.top_tags]
    out += _wrap(tags) if tags else ["  (none)"]
    mood = report.sentiment
    out += [
        "",
        f"Negative first messages (sentiment below -0.5): {fmt.share(mood.share_negative)} "
        f"({mood.negative} of {mood.scored} scored)",
    ]
    defl = report.deflection
    out += [
        "",
        f"Deflection: {defl.self_solved} of {defl.suggested} tickets with suggestions self-solved "
        f"({fmt.share(defl.share)})",
    ]
    out += [
        f"  {fmt.name(a.slug, '', 40):<42}{a.suggested:>6} suggested{a.self_solved:>6} solved"
        for a in defl.articles[:10]
    ]
    out += ["", *traffic(report)]
    return "\n".join(line.rstrip() for line in out) + "\n"


def _wrap(items: list[str]) -> list[str]:
    """Items three spaces apart, on as many indented lines as they need."""
    lines: list[str] = []
    line = ""
    for item in items:
        candidate = f"{line}   {item}" if line else item
        if line and len(candidate) + 2 > WIDTH:
            lines.append(line)
            line = item
        else:
            line = candidate
    lines.append(line)
    return ["  " + line for line in lines]
