"""The only Python that knows the Lua scripts: one typed method per script in ``lua/``.

Each method returns a :class:`ScriptCall` (keys, arguments and a parser for the reply) instead of
running it, so the caller decides whether to run it alone or in one pipeline with others: the
worker acknowledges finished jobs and claims new ones in a single round trip. Argument names and
order follow each script's header.

The wrappers live in three families (``core``: moving jobs; ``control``: an operator's scripts;
``features``: flows, rate limits, X, schedules, dry run, maintenance) over the machinery of
``loading``. :class:`QueueScripts` combines them and this module re-exports every public name, so
``from qworker.scripts import X`` is the one import the rest of qworker needs.
"""

from __future__ import annotations

from qworker.scripts.control import DELETE_BATCH, ControlScripts, JobStep
from qworker.scripts.core import (
    ClaimedJob,
    ClaimReply,
    CoreScripts,
    EnqueueItem,
    EnqueueReply,
)
from qworker.scripts.features import (
    FeatureScripts,
    FireReply,
    FlowItem,
    FlowReply,
    ScheduledJob,
)
from qworker.scripts.loading import (
    SCRIPT_NAMES,
    LuaScript,
    ScriptCall,
    key_names_prelude,
    load_script,
)


class QueueScripts(CoreScripts, ControlScripts, FeatureScripts):
    """Builds the call of every script for one namespace."""


__all__ = [
    "DELETE_BATCH",
    "SCRIPT_NAMES",
    "ClaimReply",
    "ClaimedJob",
    "EnqueueItem",
    "EnqueueReply",
    "FireReply",
    "FlowItem",
    "FlowReply",
    "JobStep",
    "LuaScript",
    "QueueScripts",
    "ScheduledJob",
    "ScriptCall",
    "key_names_prelude",
    "load_script",
]
