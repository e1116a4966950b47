"""Progressive configuration rollouts (issue 11). Pure building blocks live here:
:mod:`configpipe.rollout.bucketing` decides which subjects read the candidate value; the
timeline (how the weight grows) is :class:`configpipe.release.strategies.Strategy`, shared with
alias releases."""
