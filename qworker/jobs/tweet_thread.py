"""An X thread as a flow: one tweet job per post, each after the previous one (``chain``), each
answering the tweet the previous one posted (read from its result, ``reply_to_dependency``).

A post that fails for good dead-letters the rest of the thread with the reason; requeuing that
post (``qworker dlq requeue``) finishes the thread in order. A rate-limited post is parked and
holds only the posts after it: the others are not waiting for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qworker.errors import ValidationFailed
from qworker.flows import Flow, Step, chain
from qworker.jobs.base import JobFactory

# X's own limit on a thread is far above this; a longer one is more likely a wrong file.
MAX_POSTS = 100
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def paragraphs(text: str) -> list[str]:
    """A file's posts: its paragraphs (separated by blank lines), each stripped."""
    return [part.strip() for part in _PARAGRAPH_BREAK.split(text) if part.strip()]


def thread_flow(posts: Sequence[str], priority: int = 3) -> Flow:
    """The thread's posts as a chain, each checked as a tweet (the first bad one is named)."""
    if not posts:
        raise ValidationFailed("a thread needs at least one post")
    if len(posts) > MAX_POSTS:
        raise ValidationFailed(f"a thread of {len(posts)} posts is over {MAX_POSTS}; split it")
    steps = []
    for index, text in enumerate(posts):
        job_data = {"job_type": "tweet", "content": text, "reply_to_dependency": index > 0}
        try:
            params = JobFactory.validate_params(job_data)
        except ValidationFailed as exc:
            raise ValidationFailed(f"post {index + 1} of the thread: {exc}") from None
        steps.append(Step(params, priority))
    return chain(*steps)
