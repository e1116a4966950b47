"""Progressive configuration rollouts (docs/rollouts.md): who reads a candidate value
(:mod:`.bucketing`), when a rollout moves (:mod:`.engine`, pure) and how it is applied
(:mod:`.service`, on the change log)."""
