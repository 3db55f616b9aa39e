"""``qworker job tree``'s drawing: a flow as a Rich tree, each job under the jobs it waits for.

A job that waits for several (a fan-in) is drawn in full under the first and named again, as
``(see above)``, under the others, so a flow of any shape draws as a tree without repeats.
"""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from qworker.dependencies import FlowGraph, FlowMember

# How each state looks: done green, dead red, and so on.
STATE_STYLE = {
    "done": "green",
    "dead": "red",
    "canceled": "red",
    "running": "cyan",
    "waiting": "yellow",
    "queued": "blue",
}


def _label(member: FlowMember, asked: str, repeat: bool = False) -> Text:
    # Text, not markup: a reason is the job's own error message.
    text = Text(member.id[:12], style="bold" if member.id == asked else "")
    text.append(f" {member.job_type or '?'} ")
    text.append(member.state, style=STATE_STYLE.get(member.state, ""))
    if member.reason and not repeat:
        text.append(f" ({member.reason})", style="dim")
    if repeat:
        text.append(" (see above)", style="dim")
    if member.id == asked:
        text.append("  <- this job", style="dim")
    return text


def flow_tree(graph: FlowGraph) -> Tree:
    members = {m.id: m for m in graph.jobs}
    title = f"Flow of job {graph.job_id}: {len(members)} jobs"
    if not graph.complete:
        title += " (the nearest shown)"
    tree = Tree(Text(title, style="bold"))
    drawn: set[str] = set()
    roots = [m for m in graph.jobs if not any(d in members for d in m.deps)]
    for root in sorted(roots, key=lambda m: m.id):
        _draw(tree, root, members, drawn, graph.job_id)
    return tree


def _draw(
    parent: Tree, member: FlowMember, members: dict[str, FlowMember], drawn: set[str], asked: str
) -> None:
    # A work list, not recursion: a chain of thousands would overflow Python's stack.
    work = [(parent, member)]
    while work:
        under, current = work.pop()
        if current.id in drawn:
            under.add(_label(current, asked, repeat=True))
            continue
        drawn.add(current.id)
        node = under.add(_label(current, asked))
        children = [members[d] for d in current.dependents if d in members]
        work += [(node, child) for child in reversed(children)]
