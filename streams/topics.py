"""The worker's topics. Names take the configured prefix:

=====================  ==========================================================
``<prefix>events``     input, keyed by customer id (or anonymous id)
``<prefix>events.dlq`` input records that are not valid events, reason in headers
``<prefix>actions``    journey actions and run milestones, keyed by profile key
``<prefix>actions.dlq`` actions the delivery stage gave up on, reason in headers
``<prefix>changes``    profile changes (tier, lifecycle, tags, ...), keyed by profile key
``<prefix>identity``   engine to engine: visitor profiles handed to the customer's
                       partition, and events forwarded to the partition that homes
                       their profile (``state/handoff.py``); as many partitions as
                       ``events``, read with it
``<prefix>churn.labels`` churn labels for the one learner (one partition)
``<prefix>churn.models`` the learner's model for every worker (compacted, one partition)
``<prefix>owners``     which worker's web address owns each input partition (compacted;
                       profile lookups are forwarded there)
``<prefix>audit``      erasure audit records, without personal data (``state/audit.py``)
``<app id>-profiles-changelog`` the profile tables, one partition per input partition
                       (compacted)
=====================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicNames:
    events: str
    dead_letters: str
    actions: str
    action_dead_letters: str
    changes: str
    identity: str
    churn_labels: str
    churn_models: str
    owners: str
    audit: str
    changelog: str

    @classmethod
    def with_prefix(cls, prefix: str, app_id: str = "rapport") -> TopicNames:
        return cls(
            events=f"{prefix}events",
            dead_letters=f"{prefix}events.dlq",
            actions=f"{prefix}actions",
            action_dead_letters=f"{prefix}actions.dlq",
            changes=f"{prefix}changes",
            identity=f"{prefix}identity",
            churn_labels=f"{prefix}churn.labels",
            churn_models=f"{prefix}churn.models",
            owners=f"{prefix}owners",
            audit=f"{prefix}audit",
            changelog=f"{app_id}-profiles-changelog",
        )

    @property
    def inputs(self) -> tuple[str, str]:
        """What the data plane reads, co-partitioned: index 0 events, 1 identity records."""
        return (self.events, self.identity)
